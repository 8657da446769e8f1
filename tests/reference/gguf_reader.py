"""Prints a canonical listing of GGUF files (header, every key with its type and value, every tensor)
using the independent pure-Python reader in gguf.py. test_format renders the same listing from the
C++ reader and compares the two line by line.

Usage: gguf_reader.py FILE...

Listing (one line each):
  file <basename>            | error <message>  (files the reader rejects)
  version <v> alignment <a> tensors <n> kv <n>
  kv <key> <type>            then the value: "v <scalar>" or "array <elem type> <count>" followed by
                             its elements (nested arrays recursively)
  tensor <name> <type id> <ne0,ne1,..> <offset> <n_bytes>
Strings print printable ASCII as is and every other byte (and backslash) as \\xNN; integers in decimal;
floats as the 16 hex digits of their IEEE double bits; bools as true/false.
"""

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf  # noqa: E402

# Byte value -> its escape, for every byte that is not printable ASCII, and for backslash.
_ESCAPES = {b: "\\x%02x" % b for b in range(256) if not 0x20 <= b <= 0x7e or b == 0x5c}


def render_string(s):
    raw = s.encode("utf-8") if isinstance(s, str) else s
    return raw.decode("latin-1").translate(_ESCAPES)


def render_scalar(type_id, v):
    if type_id == gguf.STRING:
        return render_string(v)
    if type_id == gguf.BOOL:
        return "true" if v else "false"
    if type_id in (gguf.FLOAT32, gguf.FLOAT64):
        return "%016x" % struct.unpack("<Q", struct.pack("<d", v))[0]
    return str(v)


def render_value(type_id, v, out):
    if type_id != gguf.ARRAY:
        out.append("v " + render_scalar(type_id, v))
        return
    elem_type, items = v
    out.append("array %s %d" % (gguf.TYPE_NAMES[elem_type], len(items)))
    for item in items:
        if elem_type == gguf.ARRAY:
            render_value(gguf.ARRAY, item[1], out)
        else:
            out.append("v " + render_scalar(elem_type, item))


def listing(path):
    out = ["file " + os.path.basename(path)]
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        metadata, tensors = gguf.read_gguf(path, with_types=True)
    except gguf.GgufError as e:
        out.append("error " + str(e))
        return out
    version = struct.unpack("<I", head[4:8])[0]
    alignment = metadata.get("general.alignment", (gguf.UINT32, 32))[1]
    out.append("version %d alignment %d tensors %d kv %d" % (version, alignment, len(tensors), len(metadata)))
    for key, (type_id, value) in metadata.items():
        out.append("kv %s %s" % (render_string(key), gguf.TYPE_NAMES[type_id]))
        render_value(type_id, value, out)
    for t in tensors:
        out.append("tensor %s %d %s %d %d" % (render_string(t["name"]), t["type"],
                                              ",".join(str(d) for d in t["ne"]), t["offset"], t["n_bytes"]))
    return out


def main():
    lines = []
    for path in sys.argv[1:]:
        lines.extend(listing(path))
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
