"""The `tr` format: Term Revealing / Term Quantization (Kung, McDanel, Zhang,
SC20). An already-quantized value is written as signed power-of-two terms;
per group of `group` weights only the `budget` largest terms are kept
(offline), per activation its `data_terms` largest terms (at run time, in the
engine). A dot product is then a sum of term pairs +-2^(a+b).

docs/formats/tr.md is the written spec. This module is its numpy reference:
the public surface `terms` and `term_reveal`, the base weight quantization,
the engine payload (term lists) and the GEMM the TR engine
(hls/include/termshift/gemm_tr.h) must compute bit for bit, in both its modes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from termshift.checks import as_float_array, require_dtype, require_int, require_ndim
from termshift.formats import uniform
from termshift.formats.spec import Param, parse_int

ENCODINGS = ("binary", "hese", "naf")  # index = the engine's `encoding` register value
MAX_GROUP = 16  # the engine's term word has a 4-bit index within the group
MAX_BUDGET = 128
MAX_SLOTS = 255  # per-group term counts travel as uint8
MAX_DATA_TERMS = 8  # term-pair lanes per cell: all binary terms of an 8-bit value
W_EXP_MAX = 7  # 3-bit exponent field of a weight term word
DATA_POSITIONS = 9  # digits of an 8-bit magnitude: HESE/NAF of 255 reach 2^8
MODES = ("conventional", "tr")  # index = the engine's `mode` register value

SPEC = {
    "bits": Param(4, parse_int, range(2, 9), "bits of the base sign-magnitude weight quantization"),
    "group": Param(16, parse_int, range(1, MAX_GROUP + 1), "weights per group along the reduction axis"),
    "budget": Param(12, parse_int, range(1, MAX_BUDGET + 1), "terms kept per weight group"),
    "data_terms": Param(3, parse_int, range(1, MAX_DATA_TERMS + 1), "terms kept per activation, at run time"),
    "encoding": Param("hese", str, set(ENCODINGS), "signed-digit encoding of weights and activations"),
    "granularity": Param("channel", str, {"channel", "tensor"}, "weight scale per output channel or per tensor"),
}

# Term word of a weight (uint8): bits 0-2 exponent, bit 3 sign (1 = negative),
# bits 4-7 index of the value within its group.
_EXP_MASK, _SIGN_BIT, _IDX_SHIFT = 0x7, 0x8, 4


# --------------------------------------------------------------------------- terms


def _require_int_array(q, name: str) -> np.ndarray:
    arr = np.asarray(q)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.dtype == np.uint64:
        raise TypeError(f"{name}: uint64 is not supported (magnitudes must fit 63 bits); use int64 or narrower")
    return arr


def _encoding_index(encoding) -> int:
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    return ENCODINGS.index(encoding)


def digit_count(dtype) -> int:
    """Digits `terms` returns for a dtype: enough for HESE/NAF of its largest magnitude."""
    info = np.iinfo(dtype)
    return max(abs(int(info.min)), int(info.max)).bit_length() + 1


def _magnitude(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(|q| as uint64, q < 0): exact even for the most negative value of the dtype."""
    mag = q.astype(np.uint64)
    neg = q < 0
    # Two's complement negation in uint64 is exact modulo 2^64, so |-2^63| = 2^63.
    np.negative(mag, out=mag, where=neg)
    return mag, neg


def _digits_of_magnitude(mag: np.ndarray, n: int, encoding: str) -> np.ndarray:
    """Digits (..., n) in {-1, 0, 1} of non-negative magnitudes (uint64)."""
    shifts = np.arange(n, dtype=np.uint64)
    bits = ((mag[..., None] >> shifts) & np.uint64(1)).astype(bool)
    if encoding == "binary":
        return bits.astype(np.int8)
    if encoding == "hese":
        zero = np.zeros(bits.shape[:-1] + (1,), bool)
        below = np.concatenate([zero, bits[..., :-1]], axis=-1)  # b[j-1]
        below2 = np.concatenate([zero, below[..., :-1]], axis=-1)  # b[j-2]
        above = np.concatenate([bits[..., 1:], zero], axis=-1)  # b[j+1]
        # A run of 1s at bits h..l: isolated (h == l) -> +2^l; longer -> +2^(h+1) - 2^l.
        plus = (bits & ~below & ~above) | (~bits & below & below2)
        minus = bits & ~below & above
        return plus.astype(np.int8) - minus.astype(np.int8)
    # NAF, least significant digit first: an odd remainder r takes digit
    # 2 - (r mod 4), which leaves r - d divisible by 4 (no two adjacent nonzeros).
    out = np.zeros(mag.shape + (n,), np.int8)
    x = mag.copy()
    one = np.uint64(1)
    for j in range(n):
        odd = (x & one).astype(bool)
        up = odd & ((x & np.uint64(3)) == 3)
        out[..., j] = odd.astype(np.int8) - 2 * up.astype(np.int8)
        x = np.where(up, x + one, x - (x & one)) >> one
    return out


def _build_byte_tables() -> dict:
    """Digits of every byte, read as int8 and as uint8, per encoding."""
    byte = np.arange(256)
    tables = {}
    for enc in ENCODINGS:
        mags = _digits_of_magnitude(np.arange(256, dtype=np.uint64), DATA_POSITIONS, enc)
        signed_val = byte.astype(np.uint8).view(np.int8).astype(np.int64)
        sign = np.where(signed_val < 0, -1, 1).astype(np.int8)
        tables[(enc, "u1")] = mags
        tables[(enc, "i1")] = mags[np.abs(signed_val)] * sign[:, None]
    return tables


_BYTE_TABLES = _build_byte_tables()


def terms(q, encoding: str = "hese") -> np.ndarray:
    """Signed digits of integer codes (sign-magnitude values, any shape).

    Returns an int8 array of shape q.shape + (n,): digit j in {-1, 0, +1} is
    the coefficient of 2^j and sum_j d_j 2^j == q. n = digit_count(q.dtype)
    (9 for 8-bit dtypes, 17 for 16-bit, 33 for 32-bit, 65 for int64). The sign
    is applied to every digit of the magnitude. Encodings: `binary`; `hese`
    (each maximal run of 1s at bits h..l: isolated 1 -> +2^l, longer run ->
    +2^(h+1) - 2^l); `naf` (non-adjacent form).
    """
    q = _require_int_array(q, "q")
    _encoding_index(encoding)
    if q.dtype.itemsize == 1:
        return _BYTE_TABLES[(encoding, q.dtype.str[1:])][q.view(np.uint8)]
    mag, neg = _magnitude(q)
    d = _digits_of_magnitude(mag, digit_count(q.dtype), encoding)
    np.negative(d, out=d, where=neg[..., None])
    return d


def term_count(q, encoding: str = "hese") -> np.ndarray:
    """Nonzero digits of each value (int16, same shape as q)."""
    return np.count_nonzero(terms(q, encoding), axis=-1).astype(np.int16)


# --------------------------------------------------------------------------- term revealing


def _reveal_dtype(dtype) -> np.dtype:
    # Dropping a negative term can round a magnitude up to the next power of
    # two (127 -> 128, 255 -> 256), so the result needs a wider type.
    size = np.dtype(dtype).itemsize
    return np.dtype({1: np.int16, 2: np.int32}.get(size, np.int64))


def _group_keep(d: np.ndarray, budget: int) -> np.ndarray:
    """Keep mask of digits d (..., g, n): the budget largest terms of each
    group, ties broken by lower index (terms of one value never tie)."""
    nz = d != 0
    per_exp = nz.sum(axis=-2, dtype=np.int16)  # (..., n) terms at each exponent
    # Terms strictly above each exponent, then those at the same exponent with a lower index.
    above = np.cumsum(per_exp[..., ::-1], axis=-1, dtype=np.int16)[..., ::-1] - per_exp
    before = np.cumsum(nz, axis=-2, dtype=np.int16) - nz
    rank = before + above[..., None, :]
    return nz & (rank < budget)


_CHUNK_VALUES = 1 << 18  # values per pass: keeps the (chunk, n) temporaries in cache


def reveal_digits(q, group: int, budget: int, encoding: str = "hese", axis: int = -1) -> np.ndarray:
    """The digits `term_reveal` keeps: terms(q) with dropped terms zeroed,
    shape q.shape + (n,) (the digit axis last, `axis` left where it was)."""
    q = _require_int_array(q, "q")
    group = require_int(group, "group", 1, 2**31 - 1)
    budget = require_int(budget, "budget", 0, 2**31 - 1)
    _encoding_index(encoding)
    if q.ndim == 0:
        raise ValueError("q must have at least one axis to group along")
    axis = require_int(axis, "axis", -q.ndim, q.ndim - 1) % q.ndim
    moved = np.moveaxis(q, axis, -1)
    length = moved.shape[-1]
    n_groups = -(-length // group) if length else 0
    pad = n_groups * group - length
    if pad:
        # Zeros have no terms, so padding the last group never changes what it keeps.
        moved = np.concatenate([moved, np.zeros(moved.shape[:-1] + (pad,), moved.dtype)], axis=-1)
    flat = np.ascontiguousarray(moved).reshape(-1, group)
    n = digit_count(q.dtype)
    out = np.empty(flat.shape + (n,), np.int8)
    step = max(1, _CHUNK_VALUES // group)
    for start in range(0, flat.shape[0], step):
        d = terms(flat[start:start + step], encoding)
        out[start:start + step] = np.where(_group_keep(d, budget), d, 0) if budget < group * n else d
    out = out.reshape(moved.shape + (n,))[..., :length, :]
    return np.moveaxis(out, -2, axis)


def _digit_values(d: np.ndarray, dtype) -> np.ndarray:
    """sum_j d_j 2^j along the last axis, in `dtype`."""
    out = np.zeros(d.shape[:-1], dtype)
    for j in range(d.shape[-1]):
        out += d[..., j].astype(dtype) << dtype.type(j)
    return out


def _truncation_tables() -> dict:
    """term_reveal(byte, group=1, budget=t) of every byte, per encoding and t."""
    out = {}
    for (enc, kind), table in _BYTE_TABLES.items():
        for t in range(MAX_DATA_TERMS + 1):
            kept = np.where(_group_keep(table[:, None, :], t), table[:, None, :], 0)[:, 0, :]
            out[(enc, kind, t)] = _digit_values(kept, np.dtype(np.int16))
    return out


_TRUNC_TABLES = _truncation_tables()


def _byte_masks() -> dict:
    """Per encoding and byte kind: masks of the +1 and -1 digit positions, the
    term count, and the nonzero positions 1..8 spread into 8-bit fields (field
    j-1 for exponent j), so summing over a group counts its terms at every
    exponent in one add."""
    out = {}
    weights = np.int64(1) << np.arange(DATA_POSITIONS, dtype=np.int64)
    spread = np.concatenate([[0], np.uint64(1) << (8 * np.arange(DATA_POSITIONS - 1, dtype=np.uint64))])
    for key, table in _BYTE_TABLES.items():
        pos = ((table > 0) * weights).sum(axis=1).astype(np.uint16)
        neg = ((table < 0) * weights).sum(axis=1).astype(np.uint16)
        nz = (table != 0).astype(np.uint64)
        out[key] = (pos, neg, nz.sum(axis=1).astype(np.uint8), (nz * spread.astype(np.uint64)).sum(axis=1))
    return out


_BYTE_MASKS = _byte_masks()
# A group of 16 bytes has at most 16 x 7 = 112 terms at exponents >= 1: an
# 8-bit field never carries into the next.
_FAST_MAX_GROUP = 16


def _reveal_bytes(flat: np.ndarray, kind: str, encoding: str, budget: int) -> np.ndarray:
    """term_reveal of bytes (G, g), g <= 16, on digit masks: a group keeps every
    term at exponents whose suffix count is within budget, and at the one
    exponent where the budget runs out, the lowest-indexed terms that fit."""
    pos_t, neg_t, count_t, spread_t = _BYTE_MASKS[(encoding, kind)]
    b = flat.view(np.uint8)
    pos, neg = pos_t[b], neg_t[b]
    nz = pos | neg
    suffix = spread_t[b].sum(axis=1, dtype=np.uint64)  # field j-1: terms at exponent j
    for sh in (8, 16, 32):  # suffix sums: field j-1 becomes the terms at exponents >= j
        suffix += suffix >> np.uint64(sh)
    over = np.zeros(len(flat), np.int16)  # exponents whose suffix count exceeds the budget
    above = np.zeros(len(flat), np.int16)  # terms above the cut exponent
    for j in range(DATA_POSITIONS):
        if j == 0:
            field = count_t[b].sum(axis=1, dtype=np.int16)
        else:
            field = ((suffix >> np.uint64(8 * (j - 1))) & np.uint64(255)).astype(np.int16)
        exceeds = field > budget
        over += exceeds
        above = np.where(exceeds, above, np.maximum(above, field))
    cut = over - 1  # highest exponent not wholly kept (-1: everything fits)
    full = (np.uint16(0xFFFF) << np.maximum(over, 0).astype(np.uint16)).astype(np.uint16)
    kept = nz & full[:, None]
    partial = cut >= 0
    if partial.any():
        c = np.maximum(cut, 0).astype(np.uint16)[:, None]
        at_cut = (nz >> c) & np.uint16(1)
        rank = np.cumsum(at_cut, axis=1, dtype=np.int16) - at_cut.astype(np.int16)
        room = np.where(partial, budget - above, 0)[:, None]
        kept |= ((at_cut.astype(bool) & (rank < room)).astype(np.uint16) << c)
    return (pos & kept).astype(np.int16) - (neg & kept).astype(np.int16)


def term_reveal(q, group: int, budget: int, encoding: str = "hese", axis: int = -1) -> np.ndarray:
    """Keep the `budget` largest-magnitude terms of each run of `group`
    consecutive values along `axis`; return the resulting integer values.

    Ties in magnitude go to the lower index (within one value no two terms
    tie; the larger is taken first). group=1 truncates each value to its
    `budget` largest terms. When the axis length is not a multiple of
    `group`, the last group is shorter. Because a dropped negative term
    rounds a magnitude up (7 = 8 - 1 in HESE keeps 8), the result is one
    type wider: int16 for 8-bit input, int32 for 16-bit, int64 above.
    """
    q = _require_int_array(q, "q")
    group = require_int(group, "group", 1, 2**31 - 1)
    budget = require_int(budget, "budget", 0, 2**31 - 1)
    _encoding_index(encoding)
    out_dtype = _reveal_dtype(q.dtype)
    if q.dtype.itemsize == 8 and q.size and int(np.abs(q.astype(np.float64)).max()) >= 2**62:
        raise ValueError("term_reveal on 64-bit input needs |q| < 2^62 (a rounded-up magnitude must still fit int64)")
    if q.dtype.itemsize == 1 and q.ndim and group == 1:
        # Per-value truncation of bytes: a table lookup (no byte has more than 8 terms).
        return _TRUNC_TABLES[(encoding, q.dtype.str[1:], min(budget, MAX_DATA_TERMS))][q.view(np.uint8)]
    if q.dtype.itemsize == 1 and q.ndim and group <= _FAST_MAX_GROUP and q.size:
        axis = require_int(axis, "axis", -q.ndim, q.ndim - 1) % q.ndim
        moved = np.moveaxis(q, axis, -1)
        length = moved.shape[-1]
        pad = -length % group
        if pad:
            moved = np.concatenate([moved, np.zeros(moved.shape[:-1] + (pad,), moved.dtype)], axis=-1)
        flat = np.ascontiguousarray(moved).reshape(-1, group)
        out = np.empty(flat.shape, np.int16)
        step = max(1, _CHUNK_VALUES // group)
        for start in range(0, len(flat), step):
            out[start:start + step] = _reveal_bytes(flat[start:start + step], q.dtype.str[1:], encoding, budget)
        return np.moveaxis(out.reshape(moved.shape)[..., :length], -1, axis)
    return _digit_values(reveal_digits(q, group, budget, encoding, axis), out_dtype)


def truncate_data(a: np.ndarray, data_terms: int, encoding: str) -> np.ndarray:
    """Activations as the engine's encoder leaves them: each int8/uint8 code
    cut to its `data_terms` largest terms (int16)."""
    a = require_dtype(a, "a (activations)", (np.int8, np.uint8))
    data_terms = require_int(data_terms, "data_terms", 1, MAX_DATA_TERMS)
    _encoding_index(encoding)
    return _TRUNC_TABLES[(encoding, a.dtype.str[1:], data_terms)][a.view(np.uint8)]


# --------------------------------------------------------------------------- weights


def weight_scale(w, bits: int, granularity: str = "channel") -> np.ndarray:
    """s = max|w| / 2^(bits-1), per output channel (axis 0) or per tensor;
    an all-zero channel or tensor gets 1."""
    w = as_float_array(w, "w")
    bits = require_int(bits, "bits", 2, 8)
    if w.ndim < 1 or w.size == 0:
        raise ValueError(f"w must be a non-empty array with the output channels on axis 0, got shape {w.shape}")
    if granularity == "channel":
        absmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    elif granularity == "tensor":
        absmax = np.asarray(np.abs(w).max())
    else:
        raise ValueError(f"granularity must be 'channel' or 'tensor', got {granularity!r}")
    return np.where(absmax > 0, absmax / 2.0 ** (bits - 1), 1.0)


def quantize_weights(w, scale, bits: int) -> np.ndarray:
    """Sign-magnitude codes q = sign(w) * min(floor(|w|/s + 1/2), 2^bits - 1)
    (int16; a per-channel scale applies along axis 0)."""
    w = as_float_array(w, "w")
    bits = require_int(bits, "bits", 2, 8)
    scale = as_float_array(scale, "scale")
    if (scale <= 0).any():
        raise ValueError(f"scale must be positive, got min {scale.min()}")
    if scale.ndim == 1 and scale.size != 1:
        if w.ndim == 0 or scale.shape[0] != w.shape[0]:
            raise ValueError(f"per-channel scale has {scale.shape[0]} entries but w has shape {w.shape}")
        scale = scale.reshape((-1,) + (1,) * (w.ndim - 1))
    elif scale.ndim > 1:
        raise ValueError(f"scale must be a scalar or 1-D, got shape {scale.shape}")
    mag = np.minimum(np.floor(np.abs(w) / scale + 0.5), 2**bits - 1)
    return (np.sign(w) * mag).astype(np.int16)


def encode_weight_terms(kept: np.ndarray, group: int, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Kept digits (N, K, n) -> the engine's term lists.

    Returns terms (N, n_groups, slots) uint8 and counts (N, n_groups) uint8.
    Each group's list is in selection order (exponent descending, then index
    ascending); slots past the count are 0. Word: bits 0-2 exponent, bit 3
    sign (1 = negative), bits 4-7 index within the group.
    """
    group = require_int(group, "group", 1, MAX_GROUP)
    slots = require_int(slots, "slots", 1, MAX_SLOTS)
    if kept.ndim != 3:
        raise ValueError(f"kept digits must be (N, K, n), got shape {kept.shape}")
    n_rows, k, n = kept.shape
    if n > W_EXP_MAX + 1 and np.any(kept[..., W_EXP_MAX + 1:]):
        raise ValueError(f"a kept weight term exceeds 2^{W_EXP_MAX}, which the engine's 3-bit exponent field cannot "
                         f"hold; weight codes must be at most 2^{W_EXP_MAX} in magnitude (the spec's scale gives "
                         f"at most 2^(bits-1))")
    e_n = min(n, W_EXP_MAX + 1)
    n_groups = -(-k // group)
    pad = n_groups * group - k
    d = kept[..., :e_n]
    if pad:
        d = np.concatenate([d, np.zeros((n_rows, pad, e_n), d.dtype)], axis=1)
    d = d.reshape(n_rows, n_groups, group, e_n)
    counts = np.count_nonzero(d, axis=(2, 3))
    if counts.size and counts.max() > slots:
        raise ValueError(f"a group keeps {counts.max()} terms but only {slots} slots are available")
    # Selection order as one sort key: exponent descending, then index ascending.
    idx = np.arange(group)[:, None]
    exp = np.arange(e_n)[None, :]
    key = np.broadcast_to((e_n - 1 - exp) * group + idx, d.shape).reshape(n_rows, n_groups, -1)
    flat = d.reshape(n_rows, n_groups, -1)
    sentinel = group * e_n
    order = np.sort(np.where(flat != 0, key, sentinel), axis=-1)[..., :slots]
    if order.shape[-1] < slots:
        order = np.concatenate([order, np.full(order.shape[:-1] + (slots - order.shape[-1],), sentinel)], axis=-1)
    valid = order < sentinel
    e = (e_n - 1) - order // group
    i = order % group
    sign = np.take_along_axis(flat, np.where(valid, i * e_n + e, 0), axis=-1) < 0
    words = np.where(valid, e | (sign.astype(np.int64) << 3) | (i << _IDX_SHIFT), 0)
    return words.astype(np.uint8), counts.astype(np.uint8)


def decode_weight_terms(terms_arr: np.ndarray, counts: np.ndarray, k: int, group: int) -> np.ndarray:
    """Weight values (N, K) int64 that term lists stand for (slots past each count ignored)."""
    n_rows, n_groups, slots = terms_arr.shape
    w = terms_arr.astype(np.int64)
    valid = np.arange(slots)[None, None, :] < counts[..., None].astype(np.int64)
    mag = np.int64(1) << (w & _EXP_MASK)
    val = np.where(valid, np.where(w & _SIGN_BIT, -mag, mag), 0)
    col = np.arange(n_groups)[None, :, None] * group + (w >> _IDX_SHIFT)
    flat = (np.arange(n_rows)[:, None, None] * k + col)[valid]
    out = np.bincount(flat, weights=val[valid].astype(np.float64), minlength=n_rows * k)
    return np.rint(out).astype(np.int64).reshape(n_rows, k)


def weight_payload(w2d, bits: int, group: int, budget: int, encoding: str = "hese",
                   granularity: str = "channel") -> tuple[dict, np.ndarray]:
    """Float (N, K) weights -> ({"terms", "counts"}, per-channel scales (N,))."""
    w2d = as_float_array(w2d, "w")
    require_ndim(w2d, "w", 2)
    s_w = np.broadcast_to(weight_scale(w2d, bits, granularity), (w2d.shape[0],)).copy()
    q = quantize_weights(w2d, s_w, bits)
    kept = reveal_digits(q, group, budget, encoding, axis=1)
    words, counts = encode_weight_terms(kept, group, budget)
    return {"terms": words, "counts": counts}, s_w


# --------------------------------------------------------------------------- GEMM


def data_magnitude_max(a_unsigned: bool) -> int:
    """Largest |activation| after truncation: 255 can round up to 256."""
    return 256 if a_unsigned else 128


@dataclass(frozen=True)
class GemmTrArgs:
    """Validated operands of one TR engine call in either mode."""

    mode: str  # "conventional" or "tr"
    a: np.ndarray  # (M, K) int8 or uint8
    bias: np.ndarray  # (N,) int32
    requant: uniform.Requant | None
    w: np.ndarray | None = None  # conventional: (N, K) int8
    conv_bits: int = 8  # conventional: weight bits processed serially
    terms: np.ndarray | None = None  # tr: (N, n_groups, slots) uint8
    counts: np.ndarray | None = None  # tr: (N, n_groups) uint8
    group: int = 1
    data_terms: int = MAX_DATA_TERMS
    encoding: str = "binary"

    @property
    def a_unsigned(self) -> bool:
        return self.a.dtype == np.uint8

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.a.shape[0], self.bias.shape[0], self.a.shape[1]

    @property
    def slots(self) -> int:
        return int(self.terms.shape[2]) if self.terms is not None else self.conv_bits


def validate_conventional(a, w, bias=None, requant=None, conv_bits: int = 8) -> GemmTrArgs:
    """Conventional mode: the INT8 GEMM, weights processed bit-serially."""
    base = uniform.validate_gemm_int(a, w, bias, requant)
    conv_bits = require_int(conv_bits, "conv_bits", 1, 8)
    wmax = int(np.abs(base.w.astype(np.int16)).max())
    if wmax >= 2**conv_bits:
        raise ValueError(f"conv_bits={conv_bits}: weight magnitude {wmax} needs more than {conv_bits} bits")
    return GemmTrArgs("conventional", base.a, base.bias, base.requant, w=base.w, conv_bits=conv_bits)


def _check_tr_accumulator(terms_arr, counts, a_unsigned: bool, bias: np.ndarray, k: int) -> None:
    slots = terms_arr.shape[2]
    valid = np.arange(slots)[None, None, :] < counts[..., None].astype(np.int64)
    l1 = np.where(valid, np.int64(1) << (terms_arr.astype(np.int64) & _EXP_MASK), 0).sum(axis=(1, 2))
    a_max = data_magnitude_max(a_unsigned)
    worst = l1 * a_max + np.abs(bias.astype(np.int64))
    n = int(np.argmax(worst))
    if worst[n] > uniform.ACC_MAX:
        raise ValueError(
            f"reduction length K={k} can overflow the engine's 32-bit accumulator: output channel {n} has weight "
            f"terms summing to {int(l1[n])}, worst case {int(l1[n])} * {a_max} + |bias| {abs(int(bias[n]))} = "
            f"{int(worst[n])} > 2^31-1. With B-bit weights (each at most 2^B after term revealing) K up to "
            f"{uniform.ACC_MAX // (256 * a_max)} is always safe at B=8; split the reduction into chunks."
        )


def validate_tr(a, terms, counts, group: int, data_terms: int, encoding: str = "hese", bias=None,
                requant=None) -> GemmTrArgs:
    """TR mode: weight term lists (host-selected), activations truncated in the engine."""
    a = require_dtype(a, "a (activations)", (np.int8, np.uint8))
    require_ndim(a, "a (activations)", 2)
    terms = require_dtype(terms, "terms", (np.uint8,))
    counts = require_dtype(counts, "counts", (np.uint8,))
    require_ndim(terms, "terms", 3)
    require_ndim(counts, "counts", 2)
    group = require_int(group, "group", 1, MAX_GROUP)
    data_terms = require_int(data_terms, "data_terms", 1, MAX_DATA_TERMS)
    _encoding_index(encoding)
    m, k = a.shape
    n, n_groups, slots = terms.shape
    if m == 0 or n == 0 or k == 0:
        raise ValueError(f"GEMM dimensions must be positive, got M={m}, N={n}, K={k}")
    if max(m, n, k) >= 2**31:
        raise ValueError(f"GEMM dimension too large for the engine's 32-bit registers: M={m}, N={n}, K={k}")
    if n_groups != -(-k // group):
        raise ValueError(f"terms has {n_groups} groups per row but K={k} in groups of {group} needs {-(-k // group)}")
    if not 1 <= slots <= MAX_SLOTS:
        raise ValueError(f"terms has {slots} slots per group; the engine takes 1..{MAX_SLOTS}")
    if counts.shape != (n, n_groups):
        raise ValueError(f"counts must have shape {(n, n_groups)} (one per row and group), got {counts.shape}")
    if counts.size and counts.max() > slots:
        raise ValueError(f"counts holds {counts.max()} but each group has only {slots} slots")
    valid = np.arange(slots)[None, None, :] < counts[..., None].astype(np.int64)
    glen = np.minimum(group, k - np.arange(n_groups) * group)[None, :, None]
    bad = valid & ((terms >> _IDX_SHIFT) >= glen)
    if bad.any():
        r, j, s = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"terms[{r}, {j}, {s}] indexes value {int(terms[r, j, s]) >> _IDX_SHIFT} of a group of "
                         f"{int(glen[0, j, 0])}")
    bias, requant = uniform.validate_bias_requant(bias, requant, n)
    _check_tr_accumulator(terms, counts, a.dtype == np.uint8, bias, k)
    return GemmTrArgs("tr", a, bias, requant, terms=terms, counts=counts, group=group, data_terms=data_terms,
                      encoding=encoding)


def gemm_tr(args: GemmTrArgs) -> np.ndarray:
    """Reference C = requant(A' @ W'^T + bias) as int32, bit-exact with the engine.

    Conventional mode: A' = A, W' = W (the INT8 engine's result). TR mode: A'
    is A cut to data_terms terms per value, W' the values the term lists stand for.
    """
    if args.mode == "conventional":
        return uniform.gemm(args.a, args.w, args.bias, args.requant)
    a_t = truncate_data(args.a, args.data_terms, args.encoding)
    w_v = decode_weight_terms(args.terms, args.counts, args.a.shape[1], args.group)
    # float64 BLAS is exact: every partial sum is an integer bounded by the
    # accumulator check (< 2^31), far under 2^53.
    acc = np.rint(a_t.astype(np.float64) @ w_v.astype(np.float64).T).astype(np.int64)
    acc += args.bias.astype(np.int64)
    out = acc if args.requant is None else uniform.requantize(acc, args.requant)
    return out.astype(np.int32)


# --------------------------------------------------------------------------- cost


def term_pairs(counts: np.ndarray, data_terms: int, m: int = 1) -> int:
    """Term pairs TR mode issues for m input rows: every kept weight term
    meets the data_terms term slots of its activation."""
    return int(m) * int(np.asarray(counts, np.int64).sum()) * int(data_terms)


def conventional_term_pairs(m: int, n: int, k: int, w_bits: int, a_bits: int = 8) -> int:
    """Bit pairs of conventional quantization: MACs x b_w x b_x."""
    return int(m) * int(n) * int(k) * int(w_bits) * int(a_bits)


def weight_storage_bits(group: int, slots: int) -> float:
    """Bits per weight the engine reads: `slots` 8-bit term words and an 8-bit count per group."""
    return (8.0 * slots + 8.0) / group


def packed_weight_bits(group: int, budget: int) -> float:
    """Bits per weight of a packed term list: exponent (3) + sign (1) + index
    (ceil log2 g) per kept term, plus a count per group."""
    idx = math.ceil(math.log2(group)) if group > 1 else 0
    return (budget * (3 + 1 + idx) + max(1, budget.bit_length())) / group
