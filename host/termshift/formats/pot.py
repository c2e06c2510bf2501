"""The `pot` format: power-of-two weights (sign + exponent index, with a zero
code), log-domain group pruning, the compressed weight stream the BAC engine
reads, and the exact integer GEMM that engine computes.

docs/formats/pot.md is the written spec; every function here implements one
clause of it, and the HLS engine (hls/include/termshift/gemm_pot.h) must agree
with `gemm` bit for bit, and with `group_counts` on its cycle count.
Activations stay uniform INT8 (termshift.formats.uniform).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from termshift.checks import as_float_array, require_dtype, require_int, require_ndim
from termshift.formats import gptq, uniform
from termshift.formats.spec import Param, parse_int


def parse_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise ValueError(f"expected a fraction in [0, 1), got {text!r}")
    return value


SPEC = {
    "bits": Param(4, parse_int, range(2, 7), "bits per weight code: sign + exponent index, zero code included"),
    "rounding": Param("linear", str, {"linear", "log"}, "nearest level in the value domain or in log2"),
    "granularity": Param("channel", str, {"channel", "tensor"}, "weight scale per output channel or per tensor"),
    "scale": Param("float", str, {"float", "pow2"}, "scale is max|w|, or max|w| rounded to a power of two"),
    "sparsity": Param(0.0, parse_fraction, None, "fraction of weights forced to zero by log-domain group pruning"),
    "round": Param("nearest", str, {"nearest", "gptq"},
                   "codes by nearest level, or by error feedback through the calibration inputs "
                   "(termshift.formats.gptq; needs the layer's inputs, not with sparsity)"),
}

MAX_EMAX = 23  # largest shift whose single product 255 << emax still fits the 32-bit accumulator
# Half the accumulator's range is kept for the bias when a layer's level count
# is fitted to its reduction length (layer_emax).
LEVEL_FIT_BUDGET = 2**30
# fl(sqrt(2)) = 1.4142135623730951 lies above the real sqrt(2), and no float64
# equals sqrt(2), so for a float64 m: m >= SQRT2 exactly when m > sqrt(2).
SQRT2 = float(np.sqrt(2.0))
ROUNDINGS = ("linear", "log")


def max_levels(bits: int) -> int:
    """Nonzero magnitudes a b-bit code can name: exponent indices 0..2^(b-1)-2."""
    bits = require_int(bits, "bits", 2, 6)
    return 2 ** (bits - 1) - 1


def _check_rounding(rounding: str) -> str:
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be 'linear' or 'log', got {rounding!r}")
    return rounding


def _split(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """v > 0 as m * 2^e with m in [1, 2): both exact (frexp)."""
    f, e = np.frexp(v)
    return 2.0 * f, e.astype(np.int64) - 1


def _rounds_up(m: np.ndarray, rounding: str) -> np.ndarray:
    # linear: midpoint 1.5 * 2^e, a tie goes to the larger magnitude (away from zero);
    # log: geometric midpoint sqrt(2) * 2^e, which no float can equal.
    return m >= (1.5 if rounding == "linear" else SQRT2)


def pot_exponent(x, rounding: str = "linear") -> np.ndarray:
    """Exponent of the power of two nearest to each x > 0 (no range limit)."""
    x = as_float_array(x, "x")
    if (x <= 0).any():
        raise ValueError("pot_exponent needs positive values")
    m, e = _split(x)
    return e + _rounds_up(m, _check_rounding(rounding))


def weight_scale(w, granularity: str = "channel", scale: str = "float", rounding: str = "linear") -> np.ndarray:
    """Top level s per output channel (axis 0) or per tensor.

    float: s = max|w|; pow2: s = 2^pot_exponent(max|w|). An all-zero channel
    (tensor) gets s = 1: its codes are zero whatever the scale.
    """
    w = as_float_array(w, "w")
    if w.ndim < 1 or w.size == 0:
        raise ValueError(f"w must be a non-empty array with the output channels on axis 0, got shape {w.shape}")
    if granularity == "channel":
        absmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    elif granularity == "tensor":
        absmax = np.asarray(np.abs(w).max())
    else:
        raise ValueError(f"granularity must be 'channel' or 'tensor', got {granularity!r}")
    if scale == "float":
        s = absmax.astype(np.float64)
    elif scale == "pow2":
        _check_rounding(rounding)
        s = np.ldexp(1.0, pot_exponent(np.where(absmax > 0, absmax, 1.0), rounding))
    else:
        raise ValueError(f"scale must be 'float' or 'pow2', got {scale!r}")
    return np.where(absmax > 0, s, 1.0)


def _per_channel(scale, x: np.ndarray, name: str) -> np.ndarray:
    scale = as_float_array(scale, name)
    if (scale <= 0).any():
        raise ValueError(f"{name} must be positive, got min {scale.min()}")
    if scale.ndim == 1 and scale.size != 1:
        if x.ndim == 0 or scale.shape[0] != x.shape[0]:
            raise ValueError(f"per-channel {name} has {scale.shape[0]} entries but the array has shape {x.shape}")
        return scale.reshape((-1,) + (1,) * (x.ndim - 1))
    if scale.ndim > 1:
        raise ValueError(f"{name} must be a scalar or 1-D, got shape {scale.shape}")
    return scale


def normalized(w, scale) -> np.ndarray:
    """v = |w| / s in float64 (per-channel s along axis 0): what rounding and pruning see."""
    w = as_float_array(w, "w")
    return np.abs(w) / _per_channel(scale, w, "scale")


def quantize(w, scale, bits: int = 4, rounding: str = "linear", levels: int | None = None) -> np.ndarray:
    """Signed exponent codes (int8): 0 is zero, +-c is +-s * 2^-(c-1).

    `levels` (default 2^(b-1)-1) limits the indices to 0..levels-1; values
    round to the nearest level (docs/formats/pot.md, section 2), clamp at the
    top level s, and flush to zero below 2^-levels (linear) or
    sqrt(2) * 2^-levels (log).
    """
    w = as_float_array(w, "w")
    top = max_levels(bits)
    levels = top if levels is None else require_int(levels, "levels", 1, top)
    rounding = _check_rounding(rounding)
    v = normalized(w, scale)
    nz = v > 0
    m, e = _split(np.where(nz, v, 1.0))
    up = _rounds_up(m, rounding)
    index = np.maximum(-(e + up), 0)  # clamp at the top level
    keep = nz & ((e > -levels) | ((e == -levels) & (up | (rounding == "linear"))))
    mag = np.where(keep, np.minimum(index, levels - 1) + 1, 0)
    return (np.where(w < 0, -mag, mag)).astype(np.int8)


def dequantize(q, scale) -> np.ndarray:
    """w = sign(q) * s * 2^-(|q|-1), 0 for q = 0."""
    q = np.asarray(q)
    if not np.issubdtype(q.dtype, np.integer):
        raise TypeError(f"q must hold integer codes, got dtype {q.dtype}")
    mag = np.abs(q.astype(np.int64))
    val = np.where(mag > 0, np.ldexp(1.0, np.where(mag > 0, 1 - mag, 0)), 0.0)
    return np.sign(q) * val * _per_channel(scale, q, "scale")


def level_values(q) -> np.ndarray:
    """2^-(|q|-1) (0 for q = 0): the code's magnitude in units of its scale."""
    mag = np.abs(np.asarray(q, np.int64))
    return np.where(mag > 0, np.ldexp(1.0, np.where(mag > 0, 1 - mag, 0)), 0.0)


def layer_emax(bits: int, k: int) -> int:
    """The engine's shift for the top level of a layer with reduction length k.

    It is 2^(b-1)-2 (every level representable) unless k * 255 * 2^emax would
    exceed 2^30, the half of the 32-bit accumulator a layer may fill before its
    bias: then the deepest levels are dropped (they flush to zero).
    """
    k = require_int(k, "reduction length K", 1, 2**31 - 1)
    if 255 * k > LEVEL_FIT_BUDGET:
        raise ValueError(f"reduction length K={k} is too long for the PoT engine's 32-bit accumulator even at one "
                         f"level (K * 255 must be <= 2^30, K <= {LEVEL_FIT_BUDGET // 255}); split the layer")
    fit = (LEVEL_FIT_BUDGET // (255 * k)).bit_length() - 1
    return min(max_levels(bits) - 1, fit, MAX_EMAX)


def prune_target(sparsity: float, size: int) -> int:
    """Weights the pruned groups must cover: floor(sparsity * size + 1/2)."""
    return int(math.floor(sparsity * size + 0.5))


def prune(codes, v, sparsity: float, group: int) -> np.ndarray:
    """Log-domain group pruning (docs/formats/pot.md, section 3).

    A group is `group` consecutive output channels (rows) at one input
    position k: the weights one engine column tile uses at step k (the last
    tile's groups are shorter when N is not a multiple of `group`). Groups are
    zeroed in increasing order of (mean of their PoT levels 2^-i, mean of their
    normalized magnitudes v, group index) until the zeroed groups hold
    prune_target(sparsity, N*K) weights. Groups that are already all zero
    sort first and count: pruning a tensor twice changes nothing.
    """
    codes = require_dtype(codes, "codes", (np.int8,))
    require_ndim(codes, "codes", 2)
    v = as_float_array(v, "v")
    if v.shape != codes.shape:
        raise ValueError(f"v has shape {v.shape} but codes have {codes.shape}")
    group = require_int(group, "group", 1, 2**16)
    sparsity = float(sparsity)
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    n, k = codes.shape
    need = prune_target(sparsity, codes.size)
    if need == 0:
        return codes.copy()
    t = -(-n // group)
    pad = t * group - n
    q = np.pad(codes, ((0, pad), (0, 0))).reshape(t, group, k)
    vv = np.pad(v, ((0, pad), (0, 0))).reshape(t, group, k)
    # Means over each group's live rows, so the shorter groups of a partial last
    # tile are not pruned first just for having fewer weights.
    size = np.repeat(np.minimum(group, n - np.arange(t) * group), k)
    score = level_values(q).sum(axis=1).reshape(-1) / size
    tie = vv.sum(axis=1).reshape(-1) / size
    order = np.lexsort((np.arange(score.size), tie, score))
    cut = int(np.searchsorted(np.cumsum(size[order]), need)) + 1
    dead = np.zeros(score.size, bool)
    dead[order[:cut]] = True
    mask = np.repeat(dead.reshape(t, 1, k), group, axis=1).reshape(t * group, k)[:n]
    return np.where(mask, 0, codes).astype(np.int8)


@dataclass(frozen=True)
class Layer:
    """One weight matrix in `pot`: codes, the top level per channel, the engine shift."""

    codes: np.ndarray  # (N, K) int8
    scale: np.ndarray  # (N,) float64: s, the top level
    emax: int

    @property
    def acc_scale(self) -> np.ndarray:
        """s_w in the GemmFormat contract: the accumulator counts s_in * s * 2^-emax."""
        return np.ldexp(self.scale, -self.emax)


def quantize_layer(w2d, bits: int = 4, rounding: str = "linear", granularity: str = "channel",
                   scale: str = "float", sparsity: float = 0.0, group: int = 8, gram=None) -> Layer:
    """A Linear/Conv2d weight (N, K) as the engine runs it: scale, codes, pruning, emax.
    `gram`: the calibration inputs' second moments (K, K); given, the codes
    come from error-feedback rounding on the same levels (`gptq.gptq_round`)."""
    w2d = as_float_array(w2d, "w")
    require_ndim(w2d, "w", 2)
    emax = layer_emax(bits, w2d.shape[1])
    s = np.broadcast_to(weight_scale(w2d, granularity, scale, rounding), (w2d.shape[0],)).astype(np.float64)
    if gram is None:
        codes = quantize(w2d, s, bits, rounding, levels=emax + 1)
    elif sparsity > 0:
        raise ValueError("pot round=gptq with sparsity > 0 is not supported: pruning after the feedback would "
                         "undo what it compensated; use round=nearest for pruned layers")
    else:
        def round_column(col, _k):
            q = quantize(col[:, None], s, bits, rounding, levels=emax + 1)
            return q[:, 0], dequantize(q, s)[:, 0]

        codes = gptq.gptq_round(w2d, round_column, gram)
    if sparsity > 0:
        codes = prune(codes, normalized(w2d, s), sparsity, group)
    return Layer(codes, s, emax)


# --------------------------------------------------------------------------- the engine's GEMM


@dataclass(frozen=True)
class GemmPotArgs:
    """Validated, contiguous operands of one BAC engine call."""

    a: np.ndarray  # (M, K) int8 or uint8
    w: np.ndarray  # (N, K) int8 signed exponent codes
    bits: int
    emax: int
    bias: np.ndarray  # (N,) int32
    requant: uniform.Requant | None

    @property
    def a_unsigned(self) -> bool:
        return self.a.dtype == np.uint8

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.a.shape[0], self.w.shape[0], self.a.shape[1]


def accumulator_worst_case(k: int, emax: int, a_unsigned: bool, bias_absmax: int = 0) -> int:
    return k * uniform.max_operand(a_unsigned)[0] * 2**emax + bias_absmax


def max_reduction_length(emax: int, a_unsigned: bool, bias_absmax: int = 0) -> int:
    return (uniform.ACC_MAX - bias_absmax) // (uniform.max_operand(a_unsigned)[0] * 2**emax)


def check_accumulator(k: int, emax: int, a_unsigned: bool, bias_absmax: int = 0) -> None:
    """Reject a call whose worst case K * a_max * 2^emax + |bias| could overflow 32 bits."""
    worst = accumulator_worst_case(k, emax, a_unsigned, bias_absmax)
    if worst > uniform.ACC_MAX:
        a_max = uniform.max_operand(a_unsigned)[0]
        raise ValueError(
            f"reduction length K={k} can overflow the PoT engine's 32-bit accumulator: worst case "
            f"{k} * {a_max} * 2^{emax} + |bias| {bias_absmax} = {worst} > 2^31-1. The largest K at emax={emax} is "
            f"{max(0, max_reduction_length(emax, a_unsigned, bias_absmax))}; split the reduction or lower emax.")


def validate_gemm_pot(a, w, bits: int, emax: int, bias=None, requant=None) -> GemmPotArgs:
    """Check a BAC GEMM's operands against the spec; every backend calls this."""
    a = require_dtype(a, "a (activations)", (np.int8, np.uint8))
    w = require_dtype(w, "w (weight codes)", (np.int8,))
    require_ndim(a, "a (activations)", 2)
    require_ndim(w, "w (weight codes)", 2)
    bits = require_int(bits, "bits", 2, 6)
    emax = require_int(emax, "emax", 0, MAX_EMAX)
    m, k = a.shape
    n = w.shape[0]
    if m == 0 or n == 0 or k == 0:
        raise ValueError(f"GEMM dimensions must be positive, got M={m}, N={n}, K={k}")
    if w.shape[1] != k:
        raise ValueError(f"a is {m} x {k} but w is {w.shape[0]} x {w.shape[1]}: both need K={k} columns")
    if max(m, n, k) >= 2**31:
        raise ValueError(f"GEMM dimension too large for the engine's 32-bit registers: M={m}, N={n}, K={k}")
    mag = int(np.abs(w.astype(np.int16)).max())
    if mag > max_levels(bits):
        raise ValueError(f"w (weight codes) holds |code| {mag}, above the {bits}-bit maximum {max_levels(bits)}")
    if mag - 1 > emax:
        raise ValueError(f"w (weight codes) holds |code| {mag} (exponent index {mag - 1}), deeper than emax={emax}")
    bias, requant = uniform.validate_bias_requant(bias, requant, n)
    check_accumulator(k, emax, a.dtype == np.uint8, int(np.abs(bias.astype(np.int64)).max()))
    return GemmPotArgs(a, w, bits, emax, bias, requant)


def integer_weights(codes, emax: int) -> np.ndarray:
    """sign(q) * 2^(emax - (|q|-1)) as int64: the weights in accumulator units."""
    mag = np.abs(np.asarray(codes, np.int64))
    return np.where(mag > 0, np.sign(codes) * np.left_shift(1, np.where(mag > 0, emax + 1 - mag, 0)), 0)


def gemm(a, w, bits: int, emax: int, bias=None, requant=None) -> np.ndarray:
    """Reference C = requant(sum_k a * sign(q) * 2^(emax+1-|q|) + bias) as int32."""
    args = validate_gemm_pot(a, w, bits, emax, bias, requant)
    # float64 BLAS is exact: every product and partial sum is an integer below
    # 2^31 in magnitude (check_accumulator), far under 2^53.
    wi = integer_weights(args.w, args.emax).astype(np.float64)
    acc = np.rint(args.a.astype(np.float64) @ wi.T).astype(np.int64) + args.bias.astype(np.int64)
    out = acc if args.requant is None else uniform.requantize(acc, args.requant)
    return out.astype(np.int32)


# --------------------------------------------------------------------------- the compressed weight stream


def group_mask(codes, cols: int) -> np.ndarray:
    """(ceil(N/cols), K) bool: does column tile t have a nonzero code at k."""
    codes = np.asarray(codes)
    n, k = codes.shape
    t = -(-n // cols)
    padded = np.zeros((t * cols, k), bool)
    padded[:n] = codes != 0
    return padded.reshape(t, cols, k).any(axis=1)


def group_counts(codes, cols: int, tile_k: int) -> np.ndarray:
    """(column tiles, K slices) int64: the kept steps P of every slice the engine runs."""
    g = group_mask(codes, cols)
    k = g.shape[1]
    j = -(-k // tile_k)
    padded = np.zeros((g.shape[0], j * tile_k), bool)
    padded[:, :k] = g
    return padded.reshape(g.shape[0], j, tile_k).sum(axis=2)


def sign_magnitude(codes, bits: int) -> np.ndarray:
    """b-bit field of each code: sign in bit b-1, |q| below it."""
    q = np.asarray(codes, np.int64)
    return (np.where(q < 0, 1 << (bits - 1), 0) | np.abs(q)).astype(np.int64)


def pack_stream(codes, bits: int, cols: int, tile_k: int) -> tuple[np.ndarray, int]:
    """The engine's weight stream (uint32 words, LSB first) and its length in bits.

    For each column tile, for each K slice: the slice's group mask (one bit
    per k), then for each kept k in order the codes of the tile's live
    columns, b bits each (docs/formats/pot.md, section 5).
    """
    codes = np.asarray(codes)
    n, k = codes.shape
    fields = sign_magnitude(codes, bits)
    mask = group_mask(codes, cols)
    values, widths = [], []
    for t in range(mask.shape[0]):
        live = min(cols, n - t * cols)
        for k0 in range(0, k, tile_k):
            m = mask[t, k0:k0 + tile_k]
            values.append(m.astype(np.int64))
            widths.append(np.ones(m.size, np.int64))
            kept = np.flatnonzero(m) + k0
            block = fields[t * cols:t * cols + live][:, kept].T.reshape(-1)  # kept-k major, column minor
            values.append(block)
            widths.append(np.full(block.size, bits, np.int64))
    v = np.concatenate(values)
    wd = np.concatenate(widths)
    total = int(wd.sum())
    lane = np.arange(8)
    bits_mat = ((v[:, None] >> lane) & 1).astype(np.uint8)
    flat = bits_mat[lane[None, :] < wd[:, None]]
    padded = np.zeros(-(-max(total, 1) // 32) * 32, np.uint8)
    padded[:total] = flat
    words = np.packbits(padded, bitorder="little").view("<u4").astype(np.uint32)
    return words, total


def stream_bits(codes, bits: int, cols: int, tile_k: int) -> int:
    """Length of pack_stream's stream, from the group counts alone."""
    codes = np.asarray(codes)
    n, k = codes.shape
    counts = group_counts(codes, cols, tile_k)
    live = np.minimum(cols, n - np.arange(counts.shape[0]) * cols)
    return int(counts.shape[0] * k + (counts.sum(axis=1) * live).sum() * bits)
