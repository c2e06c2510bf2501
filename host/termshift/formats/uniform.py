"""The `int` format: uniform symmetric integer quantization and the exact
integer GEMM with requantization that the INT8 engine computes.

docs/formats/int.md is the written spec; every function here implements one
clause of it, and the HLS engine (hls/include/termshift/gemm_int.h) must agree
with `gemm` bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from termshift.checks import as_float_array, require_dtype, require_int, require_ndim
from termshift.formats.spec import Param, parse_int

SPEC = {
    "bits": Param(8, parse_int, range(2, 9), "bits per weight and activation code"),
    "granularity": Param("channel", str, {"channel", "tensor"}, "weight scale per output channel or per tensor"),
}

ACC_BITS = 32  # the engine's accumulator width
ACC_MAX = 2**31 - 1
MAX_SHIFT = 62  # keeps the rounding term of the requant product inside int64
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def qrange(bits: int, signed: bool) -> tuple[int, int]:
    """Code range: signed is symmetric [-(2^(b-1)-1), 2^(b-1)-1], unsigned [0, 2^b-1]."""
    bits = require_int(bits, "bits", 2, 8)
    if signed:
        return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties away from zero (2.5 -> 3, -2.5 -> -3)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _scale_max(absmax: np.ndarray, qmax: int) -> np.ndarray:
    # An all-zero tensor or channel gets scale 1: its codes are 0 whatever the scale.
    return np.where(absmax > 0, absmax / qmax, 1.0)


def weight_scale(w, bits: int = 8, granularity: str = "channel") -> np.ndarray:
    """Scale s = max|w| / (2^(b-1)-1), per output channel (axis 0) or per tensor."""
    w = as_float_array(w, "w")
    if w.ndim < 1 or w.size == 0:
        raise ValueError(f"w must be a non-empty array with the output channels on axis 0, got shape {w.shape}")
    qmax = qrange(bits, True)[1]
    if granularity == "channel":
        return _scale_max(np.abs(w.reshape(w.shape[0], -1)).max(axis=1), qmax)
    if granularity == "tensor":
        return _scale_max(np.asarray(np.abs(w).max()), qmax)
    raise ValueError(f"granularity must be 'channel' or 'tensor', got {granularity!r}")


def activation_scale(x, bits: int = 8, signed: bool = False) -> float:
    """Per-tensor scale from calibration data: max|x| over the code range's top."""
    x = as_float_array(x, "x")
    qmax = qrange(bits, signed)[1]
    return float(_scale_max(np.asarray(np.abs(x).max() if x.size else 0.0), qmax))


def _check_scale(scale, name: str) -> np.ndarray:
    scale = as_float_array(scale, name)
    if (scale <= 0).any():
        raise ValueError(f"{name} must be positive, got min {scale.min()}")
    return scale


def quantize(x, scale, bits: int = 8, signed: bool = True) -> np.ndarray:
    """Codes q = clamp(round_half_away(x / s)); int8 if signed else uint8.

    A per-channel scale (1-D, length x.shape[0]) applies along axis 0.
    """
    x = as_float_array(x, "x")
    scale = _check_scale(scale, "scale")
    if scale.ndim == 1 and scale.size != 1:
        if x.ndim == 0 or scale.shape[0] != x.shape[0]:
            raise ValueError(f"per-channel scale has {scale.shape[0]} entries but x has shape {x.shape}")
        scale = scale.reshape((-1,) + (1,) * (x.ndim - 1))
    elif scale.ndim > 1:
        raise ValueError(f"scale must be a scalar or 1-D, got shape {scale.shape}")
    lo, hi = qrange(bits, signed)
    q = np.clip(round_half_away(x / scale), lo, hi)
    return q.astype(np.int8 if signed else np.uint8)


def dequantize(q, scale) -> np.ndarray:
    """x = q * s (per-channel scale along axis 0)."""
    q = np.asarray(q)
    if not np.issubdtype(q.dtype, np.integer):
        raise TypeError(f"q must hold integer codes, got dtype {q.dtype}")
    scale = _check_scale(scale, "scale")
    if scale.ndim == 1 and scale.size != 1:
        if q.ndim == 0 or scale.shape[0] != q.shape[0]:
            raise ValueError(f"per-channel scale has {scale.shape[0]} entries but q has shape {q.shape}")
        scale = scale.reshape((-1,) + (1,) * (q.ndim - 1))
    return q.astype(np.float64) * scale


@dataclass(frozen=True)
class Requant:
    """Integer requantization y = clamp((acc * M[n] + 2^(s-1)) >> s, lo, hi)."""

    multiplier: np.ndarray  # int32, one per output channel, each >= 0
    shift: int  # 0..62; 0 means no rounding term
    lo: int
    hi: int

    def validated(self, n: int) -> "Requant":
        mult = np.asarray(self.multiplier)
        if not np.issubdtype(mult.dtype, np.integer):
            raise TypeError(f"requant multiplier must be integer, got dtype {mult.dtype}")
        if mult.ndim == 0:
            mult = np.full(n, int(mult), dtype=np.int64)
        if mult.shape != (n,):
            raise ValueError(f"requant multiplier must have {n} entries (one per output channel), got shape {mult.shape}")
        if mult.size and (mult.min() < 0 or mult.max() > INT32_MAX):
            raise ValueError(f"requant multiplier must be in [0, 2^31-1], got [{mult.min()}, {mult.max()}]")
        shift = require_int(self.shift, "requant shift", 0, MAX_SHIFT)
        lo = require_int(self.lo, "requant lo", INT32_MIN, INT32_MAX)
        hi = require_int(self.hi, "requant hi", INT32_MIN, INT32_MAX)
        if lo > hi:
            raise ValueError(f"requant lo={lo} is above hi={hi}")
        return Requant(mult.astype(np.int32), shift, lo, hi)


def requant_params(real_multiplier, out_bits: int = 8, out_signed: bool = False, relu: bool = False) -> Requant:
    """Fixed-point form of real multipliers r[n] = s_a * s_w[n] / s_out.

    Picks the largest shift <= 62 for which every round_half_away(r * 2^shift)
    fits in 31 bits, so the relative error per channel is below 2^-30 for r
    near the largest channel's.
    """
    r = as_float_array(real_multiplier, "real_multiplier").reshape(-1)
    if (r < 0).any():
        raise ValueError("real_multiplier must be >= 0 (scales are positive)")
    lo, hi = qrange(out_bits, out_signed)
    if relu:
        lo = 0
    rmax = float(r.max()) if r.size else 0.0
    if rmax == 0.0:
        return Requant(np.zeros(r.size, np.int32), 0, lo, hi)
    if rmax >= ACC_MAX:
        raise ValueError(f"real_multiplier {rmax} does not fit a 31-bit multiplier even with shift 0")
    shift = MAX_SHIFT
    while shift > 0 and round_half_away(rmax * 2.0**shift) > ACC_MAX:
        shift -= 1
    mult = round_half_away(r * 2.0**shift).astype(np.int64)
    return Requant(mult.astype(np.int32), shift, lo, hi)


def quantize_bias(bias, s_a: float, s_w) -> np.ndarray:
    """Bias in accumulator units: round_half_away(b / (s_a * s_w[n])) as int32."""
    b = as_float_array(bias, "bias")
    q = round_half_away(b / (float(s_a) * np.asarray(s_w, dtype=np.float64)))
    if np.abs(q).max(initial=0) > ACC_MAX:
        raise ValueError("bias does not fit the 32-bit accumulator at these scales")
    return q.astype(np.int32)


def max_operand(a_unsigned: bool) -> tuple[int, int]:
    """Worst-case |a| and |w| the engine can be fed (int8/uint8 containers)."""
    return (255 if a_unsigned else 128), 128


def accumulator_worst_case(k: int, a_unsigned: bool, bias_absmax: int = 0) -> int:
    a_max, w_max = max_operand(a_unsigned)
    return k * a_max * w_max + bias_absmax


def required_acc_bits(k: int, a_unsigned: bool, bias_absmax: int = 0) -> int:
    """Signed accumulator width that holds every sum of k products plus bias."""
    return int(accumulator_worst_case(k, a_unsigned, bias_absmax)).bit_length() + 1


def max_reduction_length(a_unsigned: bool, bias_absmax: int = 0, acc_bits: int = ACC_BITS) -> int:
    a_max, w_max = max_operand(a_unsigned)
    return (2 ** (acc_bits - 1) - 1 - bias_absmax) // (a_max * w_max)


def check_accumulator(k: int, a_unsigned: bool, bias_absmax: int = 0) -> None:
    """Reject a reduction length whose worst case could overflow the accumulator."""
    worst = accumulator_worst_case(k, a_unsigned, bias_absmax)
    if worst > ACC_MAX:
        a_max, w_max = max_operand(a_unsigned)
        raise ValueError(
            f"reduction length K={k} can overflow the engine's {ACC_BITS}-bit accumulator: "
            f"worst case {k} * {a_max} * {w_max} + |bias| {bias_absmax} = {worst} > 2^31-1 "
            f"(needs {required_acc_bits(k, a_unsigned, bias_absmax)} bits). The largest K here is "
            f"{max_reduction_length(a_unsigned, bias_absmax)}; split the reduction into chunks."
        )


def validate_bias_requant(bias, requant: Requant | None, n: int) -> tuple[np.ndarray, Requant | None]:
    """The output stage every engine shares: bias (None means zeros) as n
    int32, one per output channel, and requant as a validated Requant or None
    (raw int32 output). Every format's validator calls this."""
    if bias is None:
        bias = np.zeros(n, np.int32)
    bias = require_dtype(bias, "bias", (np.int32,))
    if bias.shape != (n,):
        raise ValueError(f"bias must have shape ({n},), one per output channel, got {bias.shape}")
    if requant is not None:
        if not isinstance(requant, Requant):
            raise TypeError(f"requant must be a termshift.formats.uniform.Requant or None, got {type(requant).__name__}")
        requant = requant.validated(n)
    return bias, requant


@dataclass(frozen=True)
class GemmIntArgs:
    """Validated, contiguous operands of one INT8 engine call."""

    a: np.ndarray  # (M, K) int8 or uint8
    w: np.ndarray  # (N, K) int8
    bias: np.ndarray  # (N,) int32
    requant: Requant | None  # None: raw int32 output (acc + bias)

    @property
    def a_unsigned(self) -> bool:
        return self.a.dtype == np.uint8

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.a.shape[0], self.w.shape[0], self.a.shape[1]


def validate_gemm_int(a, w, bias=None, requant: Requant | None = None) -> GemmIntArgs:
    """Check an INT8 GEMM's operands against the spec; every backend calls this."""
    a = require_dtype(a, "a (activations)", (np.int8, np.uint8))
    w = require_dtype(w, "w (weights)", (np.int8,))
    require_ndim(a, "a (activations)", 2)
    require_ndim(w, "w (weights)", 2)
    m, k = a.shape
    n = w.shape[0]
    if m == 0 or n == 0 or k == 0:
        raise ValueError(f"GEMM dimensions must be positive, got M={m}, N={n}, K={k}")
    if w.shape[1] != k:
        raise ValueError(f"a is {m} x {k} but w is {w.shape[0]} x {w.shape[1]}: both need K={k} columns")
    if max(m, n, k) >= 2**31:
        raise ValueError(f"GEMM dimension too large for the engine's 32-bit registers: M={m}, N={n}, K={k}")
    bias, requant = validate_bias_requant(bias, requant, n)
    bias_absmax = int(np.abs(bias.astype(np.int64)).max())
    check_accumulator(k, a.dtype == np.uint8, bias_absmax)
    return GemmIntArgs(a, w, bias, requant)


def requantize(acc: np.ndarray, rq: Requant) -> np.ndarray:
    """Apply the requant clause to int64 accumulators (bias already added)."""
    y = acc.astype(np.int64) * rq.multiplier.astype(np.int64)
    if rq.shift:
        y += np.int64(1) << np.int64(rq.shift - 1)
    y >>= np.int64(rq.shift)  # numpy's >> on int64 is arithmetic: floor
    return np.clip(y, rq.lo, rq.hi)


def gemm(a, w, bias=None, requant: Requant | None = None) -> np.ndarray:
    """Reference C = requant(a @ w.T + bias) as int32, bit-exact with the engine."""
    args = validate_gemm_int(a, w, bias, requant)
    # float64 BLAS is exact here: every product and partial sum is an integer
    # below 2^31 in magnitude (check_accumulator), far under 2^53.
    acc = np.rint(args.a.astype(np.float64) @ args.w.astype(np.float64).T).astype(np.int64)
    acc += args.bias.astype(np.int64)
    out = acc if args.requant is None else requantize(acc, args.requant)
    return out.astype(np.int32)
