"""Minimal GGUF v2/v3 reader and v3 writer for the model tests (tests/reference/forward.py,
tests/reference/model_make_tiny.py). Written from the GGUF spec; independent of the C++ reader.

Tensor data is returned raw (bytes); forward.py turns it into float32 arrays.
"""
import struct

import numpy as np

GGUF_MAGIC = b"GGUF"

# Metadata value type ids.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR_FORMATS = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
                   FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}

# ggml tensor type ids and (block size, block bytes).
TENSOR_TYPES = {
    "F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20),
    "Q5_0": (6, 32, 22), "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q8_1": (9, 32, 36),
    "Q2_K": (10, 256, 84), "Q3_K": (11, 256, 110), "Q4_K": (12, 256, 144),
    "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210), "Q8_K": (15, 256, 292),
    "IQ4_NL": (20, 32, 18), "BF16": (30, 1, 2),
}
TYPE_NAME_BY_ID = {v[0]: k for k, v in TENSOR_TYPES.items()}


def tensor_nbytes(type_name, n_elements):
    _, block, block_bytes = TENSOR_TYPES[type_name]
    assert n_elements % block == 0, f"{n_elements} elements is not a whole number of {type_name} blocks"
    return n_elements // block * block_bytes


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, fmt):
        value = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value[0]

    def string(self):
        n = self.take("<Q")
        s = self.data[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def value(self, vtype):
        if vtype == STRING:
            return self.string()
        if vtype == ARRAY:
            elem_type = self.take("<I")
            n = self.take("<Q")
            return [self.value(elem_type) for _ in range(n)]
        return self.take(_SCALAR_FORMATS[vtype])


class GgufTensor:
    def __init__(self, name, ne, type_name, data):
        self.name, self.ne, self.type_name, self.data = name, ne, type_name, data


def read_gguf(path):
    """Returns (metadata dict, dict name -> GgufTensor) with raw tensor bytes."""
    with open(path, "rb") as f:
        data = f.read()
    r = _Reader(data)
    assert data[:4] == GGUF_MAGIC, f"{path}: not a GGUF file"
    r.pos = 4
    version = r.take("<I")
    assert version in (2, 3), f"{path}: GGUF version {version} not supported"
    n_tensors = r.take("<Q")
    n_kv = r.take("<Q")
    metadata = {}
    for _ in range(n_kv):
        key = r.string()
        metadata[key] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.take("<I")
        ne = [r.take("<Q") for _ in range(n_dims)]
        type_id = r.take("<I")
        offset = r.take("<Q")
        infos.append((name, ne, TYPE_NAME_BY_ID[type_id], offset))
    alignment = metadata.get("general.alignment", 32)
    data_start = (r.pos + alignment - 1) // alignment * alignment
    tensors = {}
    for name, ne, type_name, offset in infos:
        n = int(np.prod(ne))
        start = data_start + offset
        tensors[name] = GgufTensor(name, ne, type_name, data[start:start + tensor_nbytes(type_name, n)])
    return metadata, tensors


def _pack_value(vtype, value):
    if vtype == STRING:
        raw = value.encode("utf-8")
        return struct.pack("<Q", len(raw)) + raw
    return struct.pack(_SCALAR_FORMATS[vtype], value)


def _pack_kv(key, vtype, value, elem_type=None):
    out = _pack_value(STRING, key) + struct.pack("<I", vtype)
    if vtype == ARRAY:
        out += struct.pack("<IQ", elem_type, len(value))
        out += b"".join(_pack_value(elem_type, v) for v in value)
    else:
        out += _pack_value(vtype, value)
    return out


def write_gguf(path, metadata, tensors, alignment=32):
    """metadata: list of (key, type id, value[, elem type id for arrays]).
    tensors: list of (name, ne list, type name, raw bytes)."""
    header = GGUF_MAGIC + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    header += b"".join(_pack_kv(*kv) for kv in metadata)
    offset = 0
    blobs = []
    for name, ne, type_name, raw in tensors:
        assert len(raw) == tensor_nbytes(type_name, int(np.prod(ne))), name
        header += _pack_value(STRING, name) + struct.pack("<I", len(ne))
        header += b"".join(struct.pack("<Q", d) for d in ne)
        header += struct.pack("<IQ", TENSOR_TYPES[type_name][0], offset)
        padded = raw + b"\0" * ((-len(raw)) % alignment)
        blobs.append(padded)
        offset += len(padded)
    header += b"\0" * ((-len(header)) % alignment)
    with open(path, "wb") as f:
        f.write(header)
        for blob in blobs:
            f.write(blob)
