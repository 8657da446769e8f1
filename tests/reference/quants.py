"""Independent numpy reference for the GGUF/ggml tensor block layouts.

Written from the layout description (field offsets and bit positions), vectorised over blocks:
each block type is a byte matrix of shape (n_blocks, block_bytes) whose columns are sliced into
fields. Used by the C++ tests as an oracle and by other reference code to build and read
quantized tensors.

API (stable):
  BLOCK = {type_name: (block_size, block_bytes)}
  dequantize(type_name, data, n) -> np.ndarray float32 of n values
  quantize(type_name, x) -> bytes

Command line (used by the C++ tests; one process for many jobs):
  quants.py batch MANIFEST   # lines: "dequantize TYPE N IN OUT" or "quantize TYPE N IN OUT"
All arithmetic is float32 in the same operation order as the format definition, so results are
bit-exact, not just close.
"""

import sys

import numpy as np

QK = 32
QKK = 256

BLOCK = {
    "f32": (1, 4),
    "f16": (1, 2),
    "bf16": (1, 2),
    "f64": (1, 8),
    "i8": (1, 1),
    "i16": (1, 2),
    "i32": (1, 4),
    "i64": (1, 8),
    "q4_0": (QK, 18),
    "q4_1": (QK, 20),
    "q5_0": (QK, 22),
    "q5_1": (QK, 24),
    "q8_0": (QK, 34),
    "q8_1": (QK, 36),
    "q2_k": (QKK, 84),
    "q3_k": (QKK, 110),
    "q4_k": (QKK, 144),
    "q5_k": (QKK, 176),
    "q6_k": (QKK, 210),
    "q8_k": (QKK, 292),
    "tq1_0": (QKK, 54),
    "tq2_0": (QKK, 66),
}

F32 = np.float32


# ----------------------------------------------------------------------------- half precision


def half_bits_to_f32(bits):
    """uint16 binary16 bits -> float32; NaNs become quiet with sign and payload kept (as F16C)."""
    bits = np.asarray(bits, dtype=np.uint16)
    out = bits.view(np.float16).astype(F32)
    nan = (bits & 0x7C00) == 0x7C00
    nan &= (bits & 0x03FF) != 0
    if nan.any():
        b = bits[nan].astype(np.uint32)
        quiet = ((b & 0x8000) << 16) | 0x7FC00000 | ((b & 0x03FF) << 13)
        out[nan] = quiet.astype(np.uint32).view(F32)
    return out


def f32_to_half_bits(x):
    """float32 -> binary16 bits, round to nearest even; NaN -> quiet NaN with top payload bits."""
    x = np.asarray(x, dtype=F32)
    with np.errstate(over="ignore", invalid="ignore"):
        out = x.astype(np.float16).view(np.uint16).copy()
    nan = np.isnan(x)
    if nan.any():
        b = x[nan].view(np.uint32)
        out[nan] = (((b >> 16) & 0x8000) | 0x7E00 | ((b >> 13) & 0x03FF)).astype(np.uint16)
    return out


def bf16_bits_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(F32)


def f32_to_bf16_bits(x):
    b = np.asarray(x, dtype=F32).view(np.uint32).astype(np.uint64)
    rounded = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    nan = (b & 0x7FFFFFFF) > 0x7F800000
    rounded = np.where(nan, (b >> 16) | 0x40, rounded)
    return rounded.astype(np.uint16)


# ----------------------------------------------------------------------------- helpers


def _field_half(blocks, offset):
    """An fp16 field at byte `offset` of every block, as a float32 column (n_blocks, 1)."""
    bits = blocks[:, offset:offset + 2].copy().view("<u2")
    return half_bits_to_f32(bits)


def _nibbles(qs):
    """(nb, k) bytes -> (nb, 2k): all low nibbles first, then all high nibbles."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1)


def _bit_planes(bytes_, n_bits, width):
    """(nb, m) bytes -> (nb, n_bits, m) fields: out[:, p, j] = (bytes_[:, j] >> (p*width)) & mask."""
    shifts = (np.arange(n_bits, dtype=np.uint8) * width)[None, :, None]
    return (bytes_[:, None, :] >> shifts) & ((1 << width) - 1)


def _expand(per_group, group):
    """(nb, g) -> (nb, g*group), each value repeated for its group of elements."""
    return np.repeat(per_group, group, axis=1)


# ----------------------------------------------------------------------------- dequantizers


def _dq_q4_0(b):
    d = _field_half(b, 0)
    q = _nibbles(b[:, 2:18]).astype(np.int32) - 8
    return q.astype(F32) * d


def _dq_q4_1(b):
    d, m = _field_half(b, 0), _field_half(b, 2)
    q = _nibbles(b[:, 4:20])
    return q.astype(F32) * d + m


def _fifth_bits(qh_bytes):
    qh = qh_bytes.copy().view("<u4")  # (nb, 1)
    return ((qh >> np.arange(32, dtype=np.uint32)[None, :]) & 1).astype(np.int32)


def _dq_q5_0(b):
    d = _field_half(b, 0)
    q = _nibbles(b[:, 6:22]).astype(np.int32) | (_fifth_bits(b[:, 2:6]) << 4)
    return (q - 16).astype(F32) * d


def _dq_q5_1(b):
    d, m = _field_half(b, 0), _field_half(b, 2)
    q = _nibbles(b[:, 8:24]).astype(np.int32) | (_fifth_bits(b[:, 4:8]) << 4)
    return q.astype(F32) * d + m


def _dq_q8_0(b):
    return b[:, 2:34].view(np.int8).astype(F32) * _field_half(b, 0)


def _dq_q8_1(b):
    return b[:, 4:36].view(np.int8).astype(F32) * _field_half(b, 0)


def _two_bit_values(qs):
    """K-quant 2-bit packing: (nb, 64) -> (nb, 256); element 128h + 32s + i is bits 2s of byte 32h+i."""
    nb = qs.shape[0]
    halves = qs.reshape(nb * 2, 32)
    return _bit_planes(halves, 4, 2).reshape(nb, QKK).astype(np.int32)


def _dq_q2_k(b):
    scales = b[:, 0:16]
    q = _two_bit_values(b[:, 16:80])
    d, dmin = _field_half(b, 80), _field_half(b, 82)
    dl = d * (scales & 0x0F).astype(F32)
    ml = dmin * (scales >> 4).astype(F32)
    return _expand(dl, 16) * q.astype(F32) - _expand(ml, 16)


def _q3_k_scales(packed):
    """(nb, 12) -> (nb, 16) signed scales."""
    nb = packed.shape[0]
    low = _nibbles(packed[:, 0:8]).astype(np.int32)
    high = _bit_planes(packed[:, 8:12], 4, 2).reshape(nb, 16).astype(np.int32)
    return (low | (high << 4)) - 32


def _dq_q3_k(b):
    nb = b.shape[0]
    hmask = _bit_planes(b[:, 0:32], 8, 1).reshape(nb, QKK).astype(np.int32)
    low = _two_bit_values(b[:, 32:96])
    scales = _q3_k_scales(b[:, 96:108])
    d = _field_half(b, 108)
    dl = d * scales.astype(F32)
    q = low - 4 * (1 - hmask)
    return _expand(dl, 16) * q.astype(F32)


def _q4_k_scales_mins(packed):
    """(nb, 12) -> two (nb, 8) arrays of 6-bit values."""
    first, second, rest = packed[:, 0:4], packed[:, 4:8], packed[:, 8:12]
    scales = np.concatenate([first & 63, (rest & 0x0F) | ((first >> 6) << 4)], axis=1)
    mins = np.concatenate([second & 63, (rest >> 4) | ((second >> 6) << 4)], axis=1)
    return scales.astype(F32), mins.astype(F32)


def _k_nibbles(qs):
    """(nb, 128) -> (nb, 256): each 32-byte group gives 32 low nibbles then 32 high nibbles."""
    nb = qs.shape[0]
    groups = qs.reshape(nb * 4, 32)
    return _nibbles(groups).reshape(nb, QKK).astype(np.int32)


def _dq_q4_k(b):
    d, dmin = _field_half(b, 0), _field_half(b, 2)
    scales, mins = _q4_k_scales_mins(b[:, 4:16])
    q = _k_nibbles(b[:, 16:144])
    return _expand(d * scales, 32) * q.astype(F32) - _expand(dmin * mins, 32)


def _dq_q5_k(b):
    nb = b.shape[0]
    d, dmin = _field_half(b, 0), _field_half(b, 2)
    scales, mins = _q4_k_scales_mins(b[:, 4:16])
    high = _bit_planes(b[:, 16:48], 8, 1).reshape(nb, QKK).astype(np.int32)
    q = _k_nibbles(b[:, 48:176]) | (high << 4)
    return _expand(d * scales, 32) * q.astype(F32) - _expand(dmin * mins, 32)


def _dq_q6_k(b):
    nb = b.shape[0]
    ql = b[:, 0:128].reshape(nb, 2, 64)
    qh = b[:, 128:192].reshape(nb * 2, 32)
    scales = b[:, 192:208].view(np.int8).astype(F32)
    d = _field_half(b, 208)
    low = np.concatenate(
        [ql[:, :, :32] & 0x0F, ql[:, :, 32:] & 0x0F, ql[:, :, :32] >> 4, ql[:, :, 32:] >> 4], axis=2
    ).reshape(nb, QKK)
    high = _bit_planes(qh, 4, 2).reshape(nb, QKK)
    q = (low.astype(np.int32) | (high.astype(np.int32) << 4)) - 32
    return _expand(d * scales, 16) * q.astype(F32)


def _dq_q8_k(b):
    d = b[:, 0:4].copy().view("<f4")
    return d * b[:, 4:260].view(np.int8).astype(F32)


_POW3 = np.array([1, 3, 9, 27, 81], dtype=np.uint16)


def _trits(bytes_):
    """(nb, m) base-3 packed bytes -> (nb, 5, m) trits 0..2 (most significant first)."""
    shifted = (bytes_[:, None, :].astype(np.uint16) * _POW3[None, :, None]) & 0xFF
    return ((shifted * 3) >> 8).astype(np.int32)


def _dq_tq1_0(b):
    nb = b.shape[0]
    t = _trits(b[:, 0:48])
    th = _trits(b[:, 48:52])[:, :4, :]
    levels = np.concatenate(
        [t[:, :, :32].reshape(nb, 160), t[:, :, 32:].reshape(nb, 80), th.reshape(nb, 16)], axis=1
    )
    return (levels - 1).astype(F32) * _field_half(b, 52)


def _dq_tq2_0(b):
    nb = b.shape[0]
    q = _two_bit_values(b[:, 0:64])
    return (q - 1).astype(F32) * _field_half(b, 64)


def _dq_plain(dtype):
    def run(b):
        with np.errstate(over="ignore"):
            return b.copy().view(dtype).astype(F32)

    return run


_DEQUANTIZERS = {
    "f32": lambda b: b.copy().view("<f4").reshape(-1),
    "f16": lambda b: half_bits_to_f32(b.copy().view("<u2")),
    "bf16": lambda b: bf16_bits_to_f32(b.copy().view("<u2")),
    "f64": _dq_plain("<f8"),
    "i8": _dq_plain("i1"),
    "i16": _dq_plain("<i2"),
    "i32": _dq_plain("<i4"),
    "i64": _dq_plain("<i8"),
    "q4_0": _dq_q4_0,
    "q4_1": _dq_q4_1,
    "q5_0": _dq_q5_0,
    "q5_1": _dq_q5_1,
    "q8_0": _dq_q8_0,
    "q8_1": _dq_q8_1,
    "q2_k": _dq_q2_k,
    "q3_k": _dq_q3_k,
    "q4_k": _dq_q4_k,
    "q5_k": _dq_q5_k,
    "q6_k": _dq_q6_k,
    "q8_k": _dq_q8_k,
    "tq1_0": _dq_tq1_0,
    "tq2_0": _dq_tq2_0,
}


def _check_count(type_name, n):
    if type_name not in BLOCK:
        raise ValueError(f"tensor type {type_name} is not supported")
    size, nbytes = BLOCK[type_name]
    if n % size != 0:
        raise ValueError(f"{n} elements is not a whole number of {type_name} blocks of {size}")
    return n // size, nbytes


def dequantize(type_name, data, n):
    type_name = type_name.lower()
    nb, nbytes = _check_count(type_name, n)
    raw = np.frombuffer(bytes(data), dtype=np.uint8, count=nb * nbytes)
    out = _DEQUANTIZERS[type_name](raw.reshape(nb, nbytes))
    return np.ascontiguousarray(out, dtype=F32).reshape(n)


# ----------------------------------------------------------------------------- quantizers


def _inverse(d):
    """1/d where d != 0, else 0 (float32)."""
    safe = np.where(d != 0, d, F32(1))
    return np.where(d != 0, F32(1) / safe, F32(0)).astype(F32)


def _round_half_away(v):
    """C roundf on float32 values (computed in float64, where |v| + 0.5 is exact)."""
    v64 = v.astype(np.float64)
    return np.sign(v64) * np.floor(np.abs(v64) + 0.5)


def _fused_multiply_add(a, b, c):
    """float32 a*b + c with one rounding, like a fused multiply-add: the product of two floats
    (48 bits) and the sum with c are exact in long double (64-bit mantissa on x86, 113 on
    aarch64), so the only rounding is the final one to float32."""
    wide = np.longdouble
    return (a.astype(wide) * b.astype(wide) + wide(c)).astype(F32)


def _signed_absmax(x):
    """Per row, the first element of largest magnitude (0 when the row is all zeros)."""
    idx = np.argmax(np.abs(x), axis=1)
    picked = x[np.arange(x.shape[0]), idx]
    return np.where(np.abs(picked) > 0, picked, F32(0)).astype(F32)[:, None]


def _half_column(values):
    return f32_to_half_bits(values.reshape(-1)).reshape(-1, 1).view(np.uint8)


def _pack_nibbles(q):
    """(nb, 32) values 0..15 -> (nb, 16) bytes: element j low nibble, element j+16 high."""
    return (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)


def _pack_fifth_bits(q):
    bits = ((q >> 4) & 1).astype(np.uint64) << np.arange(32, dtype=np.uint64)[None, :]
    return bits.sum(axis=1).astype("<u4").reshape(-1, 1).view(np.uint8)


def _q_q4_0(x):
    d = _signed_absmax(x) / F32(-8)
    q = np.clip(np.trunc(_fused_multiply_add(x, _inverse(d), 8.5)), 0, 15).astype(np.int32)
    return np.hstack([_half_column(d), _pack_nibbles(q)])


def _q_q4_1(x):
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    d = (hi - lo) / F32(15)
    q = np.clip(np.trunc(_fused_multiply_add(x - lo, _inverse(d), 0.5)), 0, 15).astype(np.int32)
    return np.hstack([_half_column(d), _half_column(lo), _pack_nibbles(q)])


def _q_q5_0(x):
    d = _signed_absmax(x) / F32(-16)
    q = np.clip(np.trunc(_fused_multiply_add(x, _inverse(d), 16.5)), 0, 31).astype(np.int32)
    return np.hstack([_half_column(d), _pack_fifth_bits(q), _pack_nibbles(q & 0x0F)])


def _q_q5_1(x):
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    d = (hi - lo) / F32(31)
    q = np.clip(np.trunc(_fused_multiply_add(x - lo, _inverse(d), 0.5)), 0, 31).astype(np.int32)
    return np.hstack(
        [_half_column(d), _half_column(lo), _pack_fifth_bits(q), _pack_nibbles(q & 0x0F)]
    )


def _int8_grid(x):
    d = (np.abs(x).max(axis=1, keepdims=True) / F32(127)).astype(F32)
    q = np.clip(_round_half_away(x * _inverse(d)), -127, 127).astype(np.int8)
    return d, q


def _q_q8_0(x):
    d, q = _int8_grid(x)
    return np.hstack([_half_column(d), q.view(np.uint8)])


def _q_q8_1(x):
    d, q = _int8_grid(x)
    s = q.astype(np.int32).sum(axis=1, keepdims=True).astype(F32) * d
    return np.hstack([_half_column(d), _half_column(s), q.view(np.uint8)])


def _q_q8_k(x):
    top = _signed_absmax(x)
    iscale = np.where(top != 0, F32(-127) / np.where(top != 0, top, F32(1)), F32(0)).astype(F32)
    q = np.minimum(np.rint(iscale * x), 127).astype(np.int8)
    d = np.where(top != 0, F32(1) / np.where(top != 0, iscale, F32(1)), F32(0)).astype("<f4")
    bsums = q.astype(np.int16).reshape(-1, 16, 16).sum(axis=2).astype("<i2")
    return np.hstack([d.view(np.uint8), q.view(np.uint8), bsums.view(np.uint8)])


def _ternary(x):
    d = np.abs(x).max(axis=1, keepdims=True).astype(F32)
    return d, (np.clip(_round_half_away(x * _inverse(d)), -1, 1) + 1).astype(np.int32)


def _pack_trits(t):
    """(nb, 5, m) trits, most significant first -> (nb, m) bytes ceil(value * 256 / 243)."""
    value = np.zeros(t[:, 0, :].shape, dtype=np.int32)
    for k in range(5):
        value = value * 3 + t[:, k, :]
    return ((value * 256 + 242) // 243).astype(np.uint8)


def _q_tq1_0(x):
    nb = x.shape[0]
    d, lv = _ternary(x)
    first = lv[:, :160].reshape(nb, 5, 32)
    second = lv[:, 160:240].reshape(nb, 5, 16)
    tail = np.concatenate([lv[:, 240:].reshape(nb, 4, 4), np.zeros((nb, 1, 4), np.int32)], axis=1)
    return np.hstack([_pack_trits(first), _pack_trits(second), _pack_trits(tail), _half_column(d)])


def _pack_two_bit(q):
    """Inverse of _two_bit_values: (nb, 256) values 0..3 -> (nb, 64) bytes."""
    nb = q.shape[0]
    planes = q.reshape(nb, 2, 4, 32).astype(np.uint8)
    shifts = (np.arange(4, dtype=np.uint8) * 2)[None, None, :, None]
    return np.bitwise_or.reduce(planes << shifts, axis=2).reshape(nb, 64)


def _q_tq2_0(x):
    d, lv = _ternary(x)
    return np.hstack([_pack_two_bit(lv), _half_column(d)])


# K-quants: plain min/max (or absmax) sub-block scales, then a second level quantizing those
# scales. Simpler than the library's search, but every field goes through its packing.


def _sub_block_range(x, size, nmax):
    """Asymmetric grid per sub-block: scale and (non-negative) offset m with x ~ scale*q - m."""
    nb = x.shape[0]
    sub = x.reshape(nb, -1, size)
    lo = np.minimum(sub.min(axis=2), F32(0))
    hi = sub.max(axis=2)
    return ((hi - lo) / F32(nmax)).astype(F32), (-lo).astype(F32)


def _quantize_levels(values, bits):
    """Non-negative per-sub-block values -> super-scale and integer levels 0..2^bits-1."""
    top = values.max(axis=1, keepdims=True)
    levels_max = (1 << bits) - 1
    d = (top / F32(levels_max)).astype(F32)
    lv = np.clip(np.rint(values * _inverse(d)), 0, levels_max).astype(np.int32)
    return d, lv


def _requantize_asym(x, size, d, sc, dmin, mn, nmax):
    scale = _expand(half_bits_to_f32(f32_to_half_bits(d)) * sc.astype(F32), size)
    offset = _expand(half_bits_to_f32(f32_to_half_bits(dmin)) * mn.astype(F32), size)
    return np.clip(np.rint((x + offset) * _inverse(scale)), 0, nmax).astype(np.int32)


def _q_q2_k(x):
    scale, offset = _sub_block_range(x, 16, 3)
    d, sc = _quantize_levels(scale, 4)
    dmin, mn = _quantize_levels(offset, 4)
    q = _requantize_asym(x, 16, d, sc, dmin, mn, 3)
    scales = (sc | (mn << 4)).astype(np.uint8)
    return np.hstack([scales, _pack_two_bit(q), _half_column(d), _half_column(dmin)])


def _pack_q4_k_scales(sc, mn):
    lo_sc, hi_sc, lo_mn, hi_mn = sc[:, :4], sc[:, 4:], mn[:, :4], mn[:, 4:]
    first = lo_sc | ((hi_sc >> 4) << 6)
    second = lo_mn | ((hi_mn >> 4) << 6)
    rest = (hi_sc & 0x0F) | ((hi_mn & 0x0F) << 4)
    return np.hstack([first, second, rest]).astype(np.uint8)


def _pack_k_nibbles(q):
    nb = q.shape[0]
    groups = q.reshape(nb, 4, 2, 32)
    return (groups[:, :, 0, :] | (groups[:, :, 1, :] << 4)).reshape(nb, 128).astype(np.uint8)


def _pack_bit_planes(bits, n_planes):
    """(nb, n_planes*32) bits -> (nb, 32) bytes: element 32p + i is bit p of byte i."""
    nb = bits.shape[0]
    planes = bits.reshape(nb, n_planes, 32).astype(np.uint8)
    shifts = np.arange(n_planes, dtype=np.uint8)[None, :, None]
    return np.bitwise_or.reduce(planes << shifts, axis=1)


def _q_q4_k(x):
    scale, offset = _sub_block_range(x, 32, 15)
    d, sc = _quantize_levels(scale, 6)
    dmin, mn = _quantize_levels(offset, 6)
    q = _requantize_asym(x, 32, d, sc, dmin, mn, 15)
    return np.hstack(
        [_half_column(d), _half_column(dmin), _pack_q4_k_scales(sc, mn), _pack_k_nibbles(q)]
    )


def _q_q5_k(x):
    scale, offset = _sub_block_range(x, 32, 31)
    d, sc = _quantize_levels(scale, 6)
    dmin, mn = _quantize_levels(offset, 6)
    q = _requantize_asym(x, 32, d, sc, dmin, mn, 31)
    return np.hstack(
        [
            _half_column(d),
            _half_column(dmin),
            _pack_q4_k_scales(sc, mn),
            _pack_bit_planes(q >> 4, 8),
            _pack_k_nibbles(q & 0x0F),
        ]
    )


def _symmetric_scales(x, size, qmax, scale_max):
    """Signed sub-block scales (extreme element -> -qmax) quantized to integers in
    [-scale_max, scale_max - 1] under one super-scale d; returns d, integer scales, levels."""
    nb = x.shape[0]
    sub_scale = _signed_absmax(x.reshape(-1, size)).reshape(nb, -1) / F32(-qmax)
    top = _signed_absmax(sub_scale)
    iscale = np.where(top != 0, F32(-scale_max) / np.where(top != 0, top, F32(1)), F32(0))
    sc = np.clip(np.rint(sub_scale * iscale), -scale_max, scale_max - 1).astype(np.int32)
    d = np.where(iscale != 0, F32(1) / np.where(iscale != 0, iscale, F32(1)), F32(0)).astype(F32)
    step = _expand(half_bits_to_f32(f32_to_half_bits(d)) * sc.astype(F32), size)
    q = np.clip(np.rint(x * _inverse(step)), -qmax, qmax - 1).astype(np.int32)
    return d, sc, q


def _q_q3_k(x):
    nb = x.shape[0]
    d, sc, q = _symmetric_scales(x, 16, 4, 32)
    stored = q + 4
    hmask = _pack_bit_planes(stored >> 2, 8)
    biased = (sc + 32).astype(np.uint8)
    low = biased[:, :8] & 0x0F | ((biased[:, 8:] & 0x0F) << 4)
    top = (biased >> 4).reshape(nb, 4, 4)  # [i // 4, i % 4]
    high = np.bitwise_or.reduce(top << (np.arange(4, dtype=np.uint8) * 2)[None, :, None], axis=1)
    return np.hstack([hmask, _pack_two_bit(stored & 3), low, high, _half_column(d)])


def _q_q6_k(x):
    nb = x.shape[0]
    d, sc, q = _symmetric_scales(x, 16, 32, 128)
    stored = (q + 32).reshape(nb, 2, 4, 32).astype(np.uint8)
    low, high = stored & 0x0F, stored >> 4
    ql = np.concatenate([low[:, :, 0] | (low[:, :, 2] << 4), low[:, :, 1] | (low[:, :, 3] << 4)],
                        axis=2).reshape(nb, 128)
    qh = np.bitwise_or.reduce(high << (np.arange(4, dtype=np.uint8) * 2)[None, None, :, None],
                              axis=2).reshape(nb, 64)
    return np.hstack([ql, qh, sc.astype(np.int8).view(np.uint8), _half_column(d)])


_QUANTIZERS = {
    "f32": lambda x: x.astype("<f4").view(np.uint8),
    "f16": lambda x: f32_to_half_bits(x).astype("<u2").view(np.uint8),
    "bf16": lambda x: f32_to_bf16_bits(x).astype("<u2").view(np.uint8),
    "q4_0": _q_q4_0,
    "q4_1": _q_q4_1,
    "q5_0": _q_q5_0,
    "q5_1": _q_q5_1,
    "q8_0": _q_q8_0,
    "q8_1": _q_q8_1,
    "q2_k": _q_q2_k,
    "q3_k": _q_q3_k,
    "q4_k": _q_q4_k,
    "q5_k": _q_q5_k,
    "q6_k": _q_q6_k,
    "q8_k": _q_q8_k,
    "tq1_0": _q_tq1_0,
    "tq2_0": _q_tq2_0,
}


def quantize(type_name, x):
    type_name = type_name.lower()
    x = np.ascontiguousarray(np.asarray(x, dtype=F32).reshape(-1))
    _check_count(type_name, x.size)
    if type_name not in _QUANTIZERS:
        raise ValueError(f"quantize: tensor type {type_name} is not supported")
    size = BLOCK[type_name][0]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = _QUANTIZERS[type_name](x.reshape(-1, size))
    return np.ascontiguousarray(out, dtype=np.uint8).tobytes()


# ----------------------------------------------------------------------------- command line


def _run_batch(manifest):
    with open(manifest) as f:
        for line in f:
            if not line.strip():
                continue
            op, type_name, n, src, dst = line.split()
            n = int(n)
            with open(src, "rb") as fin:
                data = fin.read()
            if op == "dequantize":
                result = dequantize(type_name, data, n).tobytes()
            elif op == "quantize":
                result = quantize(type_name, np.frombuffer(data, dtype="<f4", count=n))
            else:
                raise ValueError(f"unknown operation {op}")
            with open(dst, "wb") as fout:
                fout.write(result)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "batch":
        sys.exit("usage: quants.py batch MANIFEST")
    _run_batch(sys.argv[2])
