"""Prints the tokenizer.chat_template of every GGUF (v2/v3) under a folder as JSON {file: template}.

Usage: /usr/bin/python3 template_collect.py <models_dir>
Only the metadata header is read; tensor data is never touched.
"""
import json
import os
import struct
import sys

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def _read(f, fmt):
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated GGUF header")
    return struct.unpack(fmt, data)[0]


def _read_string(f):
    length = _read(f, "<Q")
    return f.read(length).decode("utf-8", errors="replace")


def _skip_or_read_value(f, value_type):
    if value_type == _STRING:
        return _read_string(f)
    if value_type == _ARRAY:
        item_type = _read(f, "<I")
        count = _read(f, "<Q")
        if item_type in _SCALARS:  # skip the payload: vocabularies are large and not needed here
            f.seek(count * struct.calcsize(_SCALARS[item_type]), os.SEEK_CUR)
        else:
            for _ in range(count):
                _skip_or_read_value(f, item_type)
        return None
    return _read(f, _SCALARS[value_type])


def chat_template(path):
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            return None
        version = _read(f, "<I")
        if version < 2:  # v1 used 32-bit counts; no v1 file carries a chat template
            return None
        _read(f, "<Q")  # tensor count
        kv_count = _read(f, "<Q")
        for _ in range(kv_count):
            key = _read_string(f)
            value = _skip_or_read_value(f, _read(f, "<I"))
            if key == "tokenizer.chat_template":
                return value
    return None


def main():
    found = {}
    for root, _, files in sorted(os.walk(sys.argv[1])):
        for name in sorted(files):
            if name.endswith(".gguf"):
                path = os.path.join(root, name)
                template = chat_template(path)
                if template is not None:
                    found[os.path.relpath(path, sys.argv[1])] = template
    json.dump(found, sys.stdout, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
