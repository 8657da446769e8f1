"""A small, independent GGUF v2/v3 reader and writer (pure Python, no numpy needed).

Written from the GGUF specification (ggml docs/gguf.md) as a test oracle for edgelm's C++ reader.

    read_gguf(path, with_types=False) -> (metadata, tensors)
        metadata: dict key -> value (Python natives; arrays are lists, nested arrays nested lists).
                  With with_types=True each value is (type_id, value) and arrays are
                  (ARRAY, (elem_type_id, [elements...])) with elements typed the same way recursively
                  for nested arrays (plain values otherwise).
        tensors:  list of dicts: name, type (ggml type id), ne (list, ne[0] innermost), offset (from the
                  data section), file_offset (absolute), n_bytes, data (bytes).
    write_gguf(path, metadata, tensors, alignment=32)
        metadata: dict key -> value, either (type_id, value) or a plain value whose type is inferred
                  (str -> STRING, bool -> BOOL, int -> UINT32 if it fits else INT64, float -> FLOAT32,
                  list -> ARRAY of the type inferred from its first element, bytes -> STRING).
        tensors:  list of dicts with name, type (id), ne, data (bytes); laid out in list order, each
                  aligned to `alignment` and zero-padded; the file ends padded when it has tensors.
"""

import struct

GGUF_MAGIC = b"GGUF"

UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)

TYPE_NAMES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64",
              "f64"]

_SCALAR_FORMATS = {
    UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i", FLOAT32: "<f",
    BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d",
}

# ggml tensor types: id -> (name, elements per block, bytes per block), from ggml's block structs.
TENSOR_TYPES = {
    0: ("f32", 1, 4), 1: ("f16", 1, 2),
    2: ("q4_0", 32, 18), 3: ("q4_1", 32, 20), 6: ("q5_0", 32, 22), 7: ("q5_1", 32, 24),
    8: ("q8_0", 32, 34), 9: ("q8_1", 32, 36),
    10: ("q2_k", 256, 84), 11: ("q3_k", 256, 110), 12: ("q4_k", 256, 144), 13: ("q5_k", 256, 176),
    14: ("q6_k", 256, 210), 15: ("q8_k", 256, 292),
    16: ("iq2_xxs", 256, 66), 17: ("iq2_xs", 256, 74), 18: ("iq3_xxs", 256, 98), 19: ("iq1_s", 256, 50),
    20: ("iq4_nl", 32, 18), 21: ("iq3_s", 256, 110), 22: ("iq2_s", 256, 82), 23: ("iq4_xs", 256, 136),
    24: ("i8", 1, 1), 25: ("i16", 1, 2), 26: ("i32", 1, 4), 27: ("i64", 1, 8), 28: ("f64", 1, 8),
    29: ("iq1_m", 256, 56), 30: ("bf16", 1, 2), 34: ("tq1_0", 256, 54), 35: ("tq2_0", 256, 66),
}


class GgufError(Exception):
    pass


def tensor_nbytes(type_id, ne):
    if type_id not in TENSOR_TYPES:
        raise GgufError("unknown tensor type id %d" % type_id)
    _, block, block_bytes = TENSOR_TYPES[type_id]
    n = 1
    for d in ne:
        n *= d
    if ne[0] % block != 0:
        raise GgufError("ne[0]=%d is not a multiple of the block size %d" % (ne[0], block))
    return n // block * block_bytes


class _Reader:
    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.buf):
            raise GgufError("truncated at offset %d" % self.pos)
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def scalar(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        return bytes(self.take(self.scalar("<Q")))

    def strings(self, count):
        buf, pos, size = self.buf, self.pos, len(self.buf)
        items = []
        for _ in range(count):
            if pos + 8 > size:
                raise GgufError("truncated at offset %d" % pos)
            (n,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
            if pos + n > size:
                raise GgufError("truncated at offset %d" % pos)
            items.append(_decode(buf[pos:pos + n]))
            pos += n
        self.pos = pos
        return items

    def value(self, type_id, with_types):
        if type_id in _SCALAR_FORMATS:
            return self.scalar(_SCALAR_FORMATS[type_id])
        if type_id == STRING:
            return _decode(self.string())
        if type_id == ARRAY:
            elem_type = self.scalar("<I")
            count = self.scalar("<Q")
            if elem_type == STRING:  # fast path for vocabularies
                items = self.strings(count)
            elif elem_type in _SCALAR_FORMATS:  # fast path for long numeric arrays
                fmt = _SCALAR_FORMATS[elem_type]
                size = struct.calcsize(fmt)
                items = list(struct.unpack("<%d%s" % (count, fmt[1]), self.take(count * size)))
            else:
                items = [self.value(elem_type, with_types) for _ in range(count)]
            if with_types and elem_type == ARRAY:
                items = [(ARRAY, item) for item in items]
            return (elem_type, items) if with_types else items
        raise GgufError("unknown value type %d at offset %d" % (type_id, self.pos - 4))


def _decode(raw):
    """Strings are bytes in the file; keep them as str when they are valid UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def read_gguf(path, with_types=False):
    with open(path, "rb") as f:
        buf = f.read()
    r = _Reader(buf)
    if r.take(4) != GGUF_MAGIC:
        raise GgufError("bad magic")
    version = r.scalar("<I")
    if version == 1:
        raise GgufError("unsupported GGUF v1")
    if version not in (2, 3):
        raise GgufError("unsupported GGUF version %d" % version)
    n_tensors = r.scalar("<Q")
    n_kv = r.scalar("<Q")
    metadata = {}
    for _ in range(n_kv):
        key = _decode(r.string())
        type_id = r.scalar("<I")
        value = r.value(type_id, with_types)
        if key in metadata:
            raise GgufError("duplicate key %r" % key)
        metadata[key] = (type_id, value) if with_types else value
    alignment = metadata.get("general.alignment", 32)
    if with_types and "general.alignment" in metadata:
        alignment = metadata["general.alignment"][1]
    tensors = []
    for _ in range(n_tensors):
        name = _decode(r.string())
        n_dims = r.scalar("<I")
        ne = [r.scalar("<Q") for _ in range(n_dims)]
        type_id = r.scalar("<I")
        offset = r.scalar("<Q")
        tensors.append({"name": name, "type": type_id, "ne": ne, "offset": offset})
    data_start = (r.pos + alignment - 1) // alignment * alignment
    for t in tensors:
        t["n_bytes"] = tensor_nbytes(t["type"], t["ne"])
        t["file_offset"] = data_start + t["offset"]
        end = t["file_offset"] + t["n_bytes"]
        if end > len(buf):
            raise GgufError("tensor %r data runs past the end of the file" % t["name"])
        t["data"] = bytes(buf[t["file_offset"]:end])
    return metadata, tensors


def _infer(value):
    if isinstance(value, tuple):
        return value
    if isinstance(value, bool):
        return (BOOL, value)
    if isinstance(value, int):
        return (UINT32, value) if 0 <= value < 2**32 else (INT64, value)
    if isinstance(value, float):
        return (FLOAT32, value)
    if isinstance(value, (str, bytes)):
        return (STRING, value)
    if isinstance(value, list):
        if not value:
            raise GgufError("cannot infer the element type of an empty list; pass (ARRAY, (type, []))")
        elem_type = _infer(value[0])[0]
        items = [_infer(v)[1] if elem_type != ARRAY else _infer(v) for v in value]
        return (ARRAY, (elem_type, items))
    raise GgufError("cannot infer a GGUF type for %r" % (value,))


def _pack_string(s):
    raw = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(raw)) + raw


def _pack_value(type_id, value):
    if type_id in _SCALAR_FORMATS:
        return struct.pack(_SCALAR_FORMATS[type_id], value)
    if type_id == STRING:
        return _pack_string(value)
    if type_id == ARRAY:
        elem_type, items = value
        out = [struct.pack("<IQ", elem_type, len(items))]
        for item in items:
            if elem_type == ARRAY:  # items are (ARRAY, (type, items)) as read_gguf returns, or lists
                if isinstance(item, list):
                    item = _infer(item)
                if item[0] != ARRAY:
                    raise GgufError("nested array element must be (ARRAY, (type, items))")
                out.append(_pack_value(ARRAY, item[1]))
            else:
                out.append(_pack_value(elem_type, item))
        return b"".join(out)
    raise GgufError("unknown value type %d" % type_id)


def write_gguf(path, metadata, tensors, alignment=32):
    out = [GGUF_MAGIC, struct.pack("<IQQ", 3, len(tensors), len(metadata))]
    for key, value in metadata.items():
        type_id, v = _infer(value)
        out.append(_pack_string(key) + struct.pack("<I", type_id) + _pack_value(type_id, v))
    offset = 0
    layout = []
    for t in tensors:
        n_bytes = tensor_nbytes(t["type"], t["ne"])
        if len(t["data"]) != n_bytes:
            raise GgufError("tensor %r: %d data bytes, expected %d" % (t["name"], len(t["data"]), n_bytes))
        out.append(_pack_string(t["name"]) + struct.pack("<I", len(t["ne"])))
        out.append(struct.pack("<%dQ" % len(t["ne"]), *t["ne"]))
        out.append(struct.pack("<IQ", t["type"], offset))
        layout.append(offset)
        offset = (offset + n_bytes + alignment - 1) // alignment * alignment
    header = b"".join(out)
    blob = bytearray(header)
    if tensors:
        blob += bytes(-len(blob) % alignment)
        for t in tensors:
            blob += t["data"]
            blob += bytes(-len(blob) % alignment)
    with open(path, "wb") as f:
        f.write(bytes(blob))
