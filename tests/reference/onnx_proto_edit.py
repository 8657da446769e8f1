"""A minimal protobuf wire-format editor for ONNX files, written for the tests (Debian's torch
exports without the `onnx` Python package). Field numbers are from onnx.proto:
ModelProto.graph = 7, GraphProto.node = 1, GraphProto.initializer = 5, TensorProto.raw_data = 9,
TensorProto.external_data = 13, TensorProto.data_location = 14, StringStringEntryProto key/value = 1/2.
"""


def read_varint(buf, pos):
    value, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def varint(value):
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def fields(buf):
    """Yields (field_number, wire_type, payload_bytes_or_int, raw_field_bytes)."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value, buf[start:pos]


def field_bytes(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def rewrite(buf, path, edit):
    """Rebuilds message `buf`, calling edit(number, payload) -> bytes|None for fields at `path`
    (a list of field numbers leading to nested messages); None keeps the field."""
    out = bytearray()
    for number, wire, value, raw in fields(buf):
        if path and number == path[0] and wire == 2:
            if len(path) == 1:
                replaced = edit(value)
                out += raw if replaced is None else field_bytes(number, replaced)
            else:
                out += field_bytes(number, rewrite(value, path[1:], edit))
        else:
            out += raw
    return bytes(out)


def externalize(path, data_name):
    """Moves every initializer's raw_data into the file data_name beside path."""
    blob = bytearray()
    base = path.rsplit("/", 1)[0]

    def edit(tensor):
        nonlocal blob
        out = bytearray()
        raw = None
        for number, _, value, field in fields(tensor):
            if number == 9:
                raw = value
            else:
                out += field
        if raw is None:
            return None
        while len(blob) % 64:
            blob.append(0)
        offset = len(blob)
        blob += raw
        for key, value in (("location", data_name), ("offset", str(offset)), ("length", str(len(raw)))):
            out += field_bytes(13, field_bytes(1, key.encode()) + field_bytes(2, value.encode()))
        out += field_varint(14, 1)
        return bytes(out)

    with open(path, "rb") as f:
        model = f.read()
    model = rewrite(model, [7, 5], edit)
    with open(path, "wb") as f:
        f.write(model)
    with open(base + "/" + data_name, "wb") as f:
        f.write(blob)
