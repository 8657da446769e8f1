"""Writes a small seed corpus for fuzz_gguf: shrunk copies of the real GGUF files (arrays cut to a
few elements, a few tiny tensors) plus synthetic files covering every value type, nested arrays and
block-quantized tensor types. Seeds are generated, never committed.

Usage: gguf_seeds.py OUT_DIR MODELS_DIR
"""

import glob
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import gguf  # noqa: E402


def shrink_value(type_id, value):
    if type_id != gguf.ARRAY:
        return (type_id, value[:64] if isinstance(value, (str, bytes)) else value)
    elem_type, items = value
    items = items[:3]
    if elem_type == gguf.ARRAY:
        items = [(gguf.ARRAY, shrink_value(gguf.ARRAY, item[1])[1]) for item in items]
    elif elem_type == gguf.STRING:
        items = [s[:16] for s in items]
    return (gguf.ARRAY, (elem_type, items))


def tiny_tensor(name, type_id, rng, rows=1):
    _, block, block_bytes = gguf.TENSOR_TYPES[type_id]
    ne = [block if block > 1 else 4] + ([rows] if rows > 1 else [])
    data = bytes(rng.randrange(256) for _ in range(gguf.tensor_nbytes(type_id, ne)))
    return {"name": name, "type": type_id, "ne": ne, "data": data}


def main():
    out_dir, models_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(1)
    for path in sorted(glob.glob(os.path.join(models_dir, "**", "*.gguf"), recursive=True)):
        try:
            metadata, tensors = gguf.read_gguf(path, with_types=True)
        except gguf.GgufError:
            continue  # the v1 file
        small = {k: shrink_value(t, v) for k, (t, v) in metadata.items()}
        small_tensors = [tiny_tensor(t["name"], t["type"], rng, rows=2) for t in tensors[:3]]
        name = os.path.splitext(os.path.basename(path))[0]
        gguf.write_gguf(os.path.join(out_dir, name + ".gguf"), small, small_tensors)

    every_type = {
        "u8": (gguf.UINT8, 255), "i8": (gguf.INT8, -1), "u16": (gguf.UINT16, 65535),
        "i16": (gguf.INT16, -2), "u32": (gguf.UINT32, 7), "i32": (gguf.INT32, -3),
        "f32": (gguf.FLOAT32, 0.5), "bool": (gguf.BOOL, True), "s": (gguf.STRING, "text"),
        "u64": (gguf.UINT64, 2**64 - 1), "i64": (gguf.INT64, -2**63), "f64": (gguf.FLOAT64, -0.25),
        "a.str": (gguf.ARRAY, (gguf.STRING, ["a", "bc"])),
        "a.f32": (gguf.ARRAY, (gguf.FLOAT32, [1.0, 2.0])),
        "a.bool": (gguf.ARRAY, (gguf.BOOL, [True, False])),
        "a.nested": (gguf.ARRAY, (gguf.ARRAY, [(gguf.ARRAY, (gguf.INT32, [1, 2])),
                                              (gguf.ARRAY, (gguf.ARRAY, [(gguf.ARRAY, (gguf.UINT8, [3]))]))])),
        "general.alignment": (gguf.UINT32, 64),
    }
    quantized = [tiny_tensor("q%d" % t, t, rng) for t in (0, 1, 2, 8, 12, 14, 20, 30, 35)]
    gguf.write_gguf(os.path.join(out_dir, "every_type.gguf"), every_type, quantized, alignment=64)
    gguf.write_gguf(os.path.join(out_dir, "empty.gguf"), {}, [])


if __name__ == "__main__":
    main()
