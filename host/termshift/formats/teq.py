"""The `teq` format (DNA-TEQ): adaptive exponential quantization, and the exact
integer exponent-sum GEMM the TEQ engine computes.

docs/formats/teq.md is the written spec; every function here implements one
clause of it, and the HLS engine (hls/include/termshift/gemm_teq.h) must agree
with `gemm` bit for bit. This module owns, numpy only:

- the codec: a nonzero code q means sign(q) * (alpha * base^(|q|-1) + beta),
  q = 0 means 0 (`TeqParams`, `quantize`, `dequantize`);
- the offline parameter search minimizing the relative squared error
  (default) or RMAE (`fit_tensor`, `fit_layer`: grid + refinement, one base
  shared by a layer's weights and activations), and which granularity a spec
  asks for (`per_channel`);
- the weight rounding: nearest level, or with error feedback through the
  calibration inputs' second moments (`gptq_round` on `termshift.formats.gptq`);
- the engine payload: packed n-bit weight codes (`pack_codes`), the 256-entry
  activation lookup table (`activation_lut`), the fixed-point tables
  (`layer_tables`);
- the engine semantics: `validate_gemm_teq`, `gemm`, the accumulator bound;
- `premise_report`: exponential vs uniform RMAE, tensor by tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from termshift.checks import as_float_array, require_dtype, require_int, require_ndim
from termshift.formats import gptq, uniform
from termshift.formats.spec import Param

# ----------------------------------------------------------------------------- spec

BITS = range(3, 8)  # per-layer widths the format chooses from


def _parse_bits(text: str):
    if text.strip().lower() == "adaptive":
        return "adaptive"
    try:
        value = int(text, 10)
    except ValueError:
        raise ValueError(f"expected 'adaptive' or an integer {BITS.start}..{BITS.stop - 1}, got {text!r}") from None
    if value not in BITS:
        raise ValueError(f"bits={value} is out of range (allowed: adaptive, {BITS.start}..{BITS.stop - 1})")
    return value


def _parse_widths(text: str) -> str:
    """'5/4/4' (one width per GEMM layer, in model order), normalized; '' for none."""
    text = text.strip()
    if not text:
        return ""
    out = []
    for part in text.split("/"):
        w = _parse_bits(part)
        if w == "adaptive":
            raise ValueError(f"widths lists integers {BITS.start}..{BITS.stop - 1}, got {text!r}")
        out.append(str(w))
    return "/".join(out)


SPEC = {
    "bits": Param("adaptive", _parse_bits, None,
                  "per-layer width: 'adaptive' (searched, docs/formats/teq.md section 7) or 3..7 for every layer"),
    "widths": Param("", _parse_widths, None, "explicit per-layer widths, e.g. 5/4/4 (what the adaptive search found)"),
    "beta": Param("off", str, {"on", "off"}, "fit the offset beta (costs two counter banks per PE) or keep beta = 0"),
    "fit": Param("mse", str, {"rmae", "mse"},
                 "error the parameter search minimizes per tensor: mse (sum e^2 / sum x^2, which protects the "
                 "largest values) or rmae (sum|e| / sum|x|, the paper's); docs/formats/teq.md section 6"),
    # 'auto' rather than 'channel' so that plain `teq:beta=on` stays valid:
    # the beta weight bank's table is per tensor, so per-channel alpha needs beta=off.
    "granularity": Param("auto", str, {"auto", "tensor", "channel"},
                         "weight alpha per output channel on the layer's shared base (channel, beta=off only) or "
                         "per tensor; auto: channel with beta=off, tensor with beta=on"),
    "round": Param("gptq", str, {"nearest", "gptq"},
                   "how weights take their codes once the grids are fitted: gptq (column by column, each "
                   "rounding error fed back into the not yet rounded columns through the calibration "
                   "inputs' second moments) or nearest; docs/formats/teq.md section 6"),
}

FIT_LOSSES = ("rmae", "mse")


def option_suffix(spec, keys=("beta", "fit", "granularity", "round")) -> str:
    """The non-default fitting options of a parsed `teq` spec as ',key=value'
    text, so a spec rebuilt with explicit widths keeps them."""
    return "".join(f",{k}={spec[k]}" for k in keys if spec[k] != SPEC[k].default)


def per_channel(spec) -> bool:
    """Whether a parsed `teq` spec fits a weight alpha per output channel
    (granularity=auto resolves by beta); channel with beta=on is refused."""
    gran, beta = spec["granularity"], spec["beta"]
    if gran == "channel" and beta == "on":
        raise ValueError(f"{spec}: granularity=channel needs beta=off (the weight bank's table is per tensor)")
    return gran == "channel" or (gran == "auto" and beta == "off")


def layer_widths(spec, n_layers: int) -> list[int] | None:
    """Per-layer widths a parsed `teq` spec fixes, or None when it asks for the search."""
    n_layers = require_int(n_layers, "n_layers", 1, 10**6)
    bits, widths = spec["bits"], spec["widths"]
    if widths:
        if bits != "adaptive":
            raise ValueError(f"{spec}: give either bits=N or widths=..., not both")
        ws = [int(w) for w in widths.split("/")]
        if len(ws) != n_layers:
            raise ValueError(f"{spec}: widths lists {len(ws)} layers but the model has {n_layers} GEMM layers")
        return ws
    if bits == "adaptive":
        return None
    return [int(bits)] * n_layers


# ----------------------------------------------------------------------------- codec

TABLE_BITS = 16  # signed fixed-point table entries
TABLE_MAX = 2 ** (TABLE_BITS - 1) - 1
COUNT_BITS = 20  # signed exponent-sum counters
MAX_K = 2 ** (COUNT_BITS - 1) - 1  # longest reduction a counter can count
W_BITS = range(2, 8)  # packed weight field widths the engine decodes
A_MAG_MAX = 127  # largest |activation code| the lookup table may hold
ACC_MAX = uniform.ACC_MAX


def n_levels(bits: int, signed: bool) -> int:
    """Nonzero magnitudes of an n-bit code: 2^(n-1) - 1 with a sign bit, 2^n - 1 without."""
    bits = require_int(bits, "bits", 2, 8)
    return 2 ** (bits - 1) - 1 if signed else 2**bits - 1


@dataclass(frozen=True)
class TeqParams:
    """One tensor's grid: magnitude of code j >= 1 is alpha * base^(j-1) + beta."""

    alpha: float
    beta: float
    base: float
    levels: int  # L: codes -L..L (signed) or 0..L
    signed: bool = True

    def __post_init__(self):
        for name in ("alpha", "beta", "base"):
            v = getattr(self, name)
            if not np.isfinite(v):
                raise ValueError(f"TeqParams.{name} must be finite, got {v}")
        if self.alpha <= 0:
            raise ValueError(f"TeqParams.alpha must be > 0, got {self.alpha}")
        if self.base <= 1:
            raise ValueError(f"TeqParams.base must be > 1, got {self.base}")
        if self.alpha + self.beta <= 0:
            raise ValueError(f"TeqParams: the smallest level alpha + beta = {self.alpha + self.beta} must be > 0")
        require_int(self.levels, "TeqParams.levels", 1, 255)

    def magnitudes(self) -> np.ndarray:
        """Level magnitudes for codes 1..L, strictly increasing and positive."""
        return self.alpha * self.base ** np.arange(self.levels, dtype=np.float64) + self.beta


def _midpoints(lv: np.ndarray) -> np.ndarray:
    """Decision thresholds: between 0 and level 1, then between neighbours (last axis)."""
    return np.concatenate([lv[..., :1] / 2, (lv[..., :-1] + lv[..., 1:]) / 2], axis=-1)


def quantize(x, p: TeqParams) -> np.ndarray:
    """Nearest level in the linear domain (zero included); a value exactly on a
    threshold goes to the larger magnitude (ties away from zero). int8 codes;
    negative inputs of an unsigned grid give code 0."""
    x = as_float_array(x, "x")
    idx = np.searchsorted(_midpoints(p.magnitudes()), np.abs(x), side="right")
    q = np.where(x < 0, -idx, idx) if p.signed else np.where(x < 0, 0, idx)
    return q.astype(np.int8)


def dequantize(q, p: TeqParams) -> np.ndarray:
    q = np.asarray(q)
    if not np.issubdtype(q.dtype, np.integer):
        raise TypeError(f"q must hold integer codes, got dtype {q.dtype}")
    mag = np.abs(q.astype(np.int64))
    if mag.size and mag.max() > p.levels:
        raise ValueError(f"code magnitude {mag.max()} exceeds the grid's {p.levels} levels")
    lv = np.concatenate([[0.0], p.magnitudes()])
    return np.sign(q) * lv[mag]


def rmae(x, xq) -> float:
    """Relative mean absolute error sum|x - xq| / sum|x| (0 for an all-zero x)."""
    x = as_float_array(x, "x")
    den = np.abs(x).sum()
    return float(np.abs(x - np.asarray(xq, np.float64)).sum() / den) if den > 0 else 0.0


# ----------------------------------------------------------------------------- RMAE search


class Magnitudes:
    """|values| of one tensor, sorted with multiplicities and prefix sums, so the
    absolute error of any grid costs O(L log n): a sum over the segments the
    decision thresholds cut, each split at its level (values below vs above)."""

    def __init__(self, values):
        m = np.abs(as_float_array(values, "values")).reshape(-1)
        m = m[m > 0]  # zeros map to the zero code exactly: no error, no weight in RMAE
        self.v, counts = np.unique(m, return_counts=True)
        self.cnt = np.concatenate([[0.0], np.cumsum(counts, dtype=np.float64)])
        self.sum = np.concatenate([[0.0], np.cumsum(self.v * counts)])
        self.sq = np.concatenate([[0.0], np.cumsum(self.v * self.v * counts)])
        self.total = float(self.sum[-1])
        self.total_sq = float(self.sq[-1])
        self.absmax = float(self.v[-1]) if self.v.size else 0.0

    def _segments(self, lv: np.ndarray):
        lv = np.atleast_2d(np.asarray(lv, np.float64))
        n = self.v.size
        bnd = np.searchsorted(self.v, _midpoints(lv), side="left")  # first value >= threshold goes up
        hi = np.concatenate([bnd[:, 1:], np.full((lv.shape[0], 1), n)], axis=1)
        lo = bnd
        p = np.clip(np.searchsorted(self.v, lv, side="left"), lo, hi)
        return lv, bnd, lo, p, hi

    def rmae(self, lv: np.ndarray) -> np.ndarray:
        """RMAE of nearest-level quantization onto each row of `lv` (C, L), levels increasing."""
        lv = np.atleast_2d(np.asarray(lv, np.float64))
        if self.total == 0:
            return np.zeros(lv.shape[0])
        lv, bnd, lo, p, hi = self._segments(lv)
        below = (self.cnt[p] - self.cnt[lo]) * lv - (self.sum[p] - self.sum[lo])
        above = (self.sum[hi] - self.sum[p]) - (self.cnt[hi] - self.cnt[p]) * lv
        err = self.sum[bnd[:, 0]] + (below + above).sum(axis=1)
        return np.maximum(err, 0.0) / self.total

    def rmse2(self, lv: np.ndarray) -> np.ndarray:
        """Relative squared error sum (x - Q(x))^2 / sum x^2 of each row of `lv`
        (the `fit=mse` objective): each segment a level serves adds
        cnt*l^2 - 2*l*sum + sumsq."""
        lv = np.atleast_2d(np.asarray(lv, np.float64))
        if self.total_sq == 0:
            return np.zeros(lv.shape[0])
        lv, bnd, lo, _, hi = self._segments(lv)
        seg = ((self.cnt[hi] - self.cnt[lo]) * lv * lv - 2 * lv * (self.sum[hi] - self.sum[lo])
               + (self.sq[hi] - self.sq[lo]))
        err = self.sq[bnd[:, 0]] + seg.sum(axis=1)
        return np.maximum(err, 0.0) / self.total_sq

    def error(self, lv: np.ndarray, loss: str = "rmae") -> np.ndarray:
        """The fit objective `loss` ("rmae" or "mse") of each row of `lv`."""
        if loss == "rmae":
            return self.rmae(lv)
        if loss == "mse":
            return self.rmse2(lv)
        raise ValueError(f"fit loss must be one of {FIT_LOSSES}, got {loss!r}")


def _grid_levels(base: float, L: int, top: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Levels from the top level and bottom/top ratio: alpha = (top - bottom) / (b^(L-1) - 1)."""
    g = base ** np.arange(L, dtype=np.float64)
    bottom = top * ratio
    if L == 1:
        return top[:, None]
    alpha = (top - bottom) / (g[-1] - 1)
    return alpha[:, None] * g[None, :] + (bottom - alpha)[:, None]


def _params_from(top: float, ratio: float, base: float, L: int, signed: bool) -> TeqParams:
    if L == 1:
        return TeqParams(alpha=top / base, beta=top - top / base, base=base, levels=1, signed=signed)
    alpha = top * (1 - ratio) / (base ** (L - 1) - 1)
    return TeqParams(alpha=alpha, beta=top * ratio - alpha, base=base, levels=L, signed=signed)


@dataclass(frozen=True)
class TensorFit:
    params: TeqParams
    rmae: float
    score: float = float("nan")  # the objective the fit minimized (== rmae with fit=rmae)


# Search constants (docs/formats/teq.md, section 6).
_TOP_GRID = 2.0 ** np.linspace(-2.5, 0.5, 13)  # top level / max|x|
_RATIO_GRID = 2.0 ** np.linspace(-16, -1, 16)  # bottom level / top level (beta on)
_REFINE_ROUNDS = 6
_BASE_GRID = 40  # log-spaced bases per layer search


def fit_tensor(mags: Magnitudes, base: float, L: int, beta: bool, signed: bool = True,
               loss: str = "rmae") -> TensorFit:
    """Best (alpha, beta) for a fixed base under `loss` (`Magnitudes.error`):
    grid over the top level (and, with beta, the bottom/top ratio), then
    pattern-search refinement in log space. `rmae` of the result is its RMAE
    whatever the loss."""
    if mags.total == 0:  # all-zero tensor: any grid is exact
        return TensorFit(TeqParams(base ** -(L - 1), 0.0, base, L, signed), 0.0, 0.0)
    fixed_ratio = base ** -(L - 1)
    tops = mags.absmax * _TOP_GRID
    if beta:
        t, r = np.meshgrid(tops, np.append(_RATIO_GRID, fixed_ratio), indexing="ij")
        t, r = t.ravel(), r.ravel()
    else:
        t, r = tops, np.full(tops.size, fixed_ratio)
    err = mags.error(_grid_levels(base, L, t, r), loss)
    i = int(np.argmin(err))
    best_t, best_r, best = float(t[i]), float(r[i]), float(err[i])
    step_t, step_r = 2.0 ** 0.25, 2.0
    for _ in range(_REFINE_ROUNDS):
        ft = np.array([1 / step_t, 1.0, step_t])
        fr = np.array([1 / step_r, 1.0, step_r]) if beta else np.ones(1)
        cand_t, cand_r = np.meshgrid(best_t * ft, best_r * fr, indexing="ij")
        cand_t, cand_r = cand_t.ravel(), np.minimum(cand_r.ravel(), 0.999)
        err = mags.error(_grid_levels(base, L, cand_t, cand_r), loss)
        j = int(np.argmin(err))
        if err[j] < best:
            best_t, best_r, best = float(cand_t[j]), float(cand_r[j]), float(err[j])
        step_t, step_r = step_t ** 0.5, step_r ** 0.5
    if not beta:  # exactly 0, so the engine's beta banks stay off
        params = TeqParams(best_t * fixed_ratio, 0.0, base, L, signed)
    else:
        params = _params_from(best_t, best_r, base, L, signed)
    r = best if loss == "rmae" else float(mags.rmae(params.magnitudes())[0])
    return TensorFit(params, r, best)


@dataclass(frozen=True)
class LayerFit:
    """A layer's shared base and the two tensors' grids: weights in real units,
    activations in units of the input's uniform code (code value c means c * s_in)."""

    w: TensorFit
    a: TensorFit
    bits: int

    @property
    def base(self) -> float:
        return self.w.params.base


def _bases(lw: int, la: int, n: int) -> np.ndarray:
    # From a dynamic range of 2 to 2^20 spread over the longer grid: enough for
    # 3-bit grids (b up to ~2^10) and 7-bit ones (b near 1.01).
    lmax = max(lw, la, 2) - 1
    lmin = max(min(lw, la), 2) - 1
    return 2.0 ** np.geomspace(1.0 / lmax, 20.0 / lmin, n)


def fit_layer(w, a_codes, bits: int, a_signed: bool, beta: bool = False, loss: str = "rmae") -> LayerFit:
    """Shared base b minimizing loss(weights) + loss(activation codes) (RMAE by
    default, `Magnitudes.error`): 40 log-spaced bases, then golden-section
    refinement of log b around the best; for each base, `fit_tensor` fits
    each tensor's own (alpha, beta)."""
    if loss not in FIT_LOSSES:
        raise ValueError(f"fit loss must be one of {FIT_LOSSES}, got {loss!r}")
    bits = require_int(bits, "bits", BITS.start, BITS.stop - 1)
    wm = w if isinstance(w, Magnitudes) else Magnitudes(w)
    am = a_codes if isinstance(a_codes, Magnitudes) else Magnitudes(a_codes)
    lw, la = n_levels(bits, True), n_levels(bits, a_signed)

    def both(b: float) -> tuple[float, TensorFit, TensorFit]:
        fw = fit_tensor(wm, b, lw, beta, True, loss)
        fa = fit_tensor(am, b, la, beta, a_signed, loss)
        return fw.score + fa.score, fw, fa

    grid = _bases(lw, la, _BASE_GRID)
    scores = [both(float(b))[0] for b in grid]
    i = int(np.argmin(scores))
    lo, hi = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, grid.size - 1)])
    best = both(float(grid[i]))
    invphi = (np.sqrt(5) - 1) / 2
    x1, x2 = hi - invphi * (hi - lo), lo + invphi * (hi - lo)
    f1, f2 = both(float(np.exp(x1))), both(float(np.exp(x2)))
    for _ in range(12):
        if f1[0] < f2[0]:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - invphi * (hi - lo)
            f1 = both(float(np.exp(x1)))
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + invphi * (hi - lo)
            f2 = both(float(np.exp(x2)))
    for cand in (f1, f2):
        if cand[0] < best[0]:
            best = cand
    return LayerFit(best[1], best[2], bits)


# ----------------------------------------------------------------------------- weight rounding


def gptq_round(w2d, row_scale, unit: TeqParams, gram, damp: float = gptq.DAMP) -> np.ndarray:
    """Codes (N, K) int8 of weights w2d on per-row grids `row_scale[n] * unit`
    (row n's level j is row_scale[n] times unit's level j), chosen by
    error-feedback rounding (`termshift.formats.gptq`) with the calibration
    inputs' second moments `gram` (K, K)."""
    n = np.shape(w2d)[0]
    scale = np.asarray(row_scale, np.float64).reshape(-1)
    if scale.shape != (n,) or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise ValueError(f"row_scale must hold {n} finite positive scales")

    def round_column(col, _k):
        q = quantize(col / scale, unit)
        return q, dequantize(q, unit) * scale

    return gptq.gptq_round(w2d, round_column, gram, damp)


def activation_codes(x, s_in: float, signed: bool) -> np.ndarray:
    """The uniform 8-bit codes the engine is fed (docs/formats/int.md), as integers."""
    return uniform.quantize(x, s_in, 8, signed).astype(np.int64)


# ----------------------------------------------------------------------------- engine payload


def activation_lut(p: TeqParams, input_signed: bool) -> np.ndarray:
    """256-entry table from a uniform input byte to its TEQ code: index is the
    byte (uint8 view); the byte means code value b (uint8) or (int8)b."""
    if p.levels > A_MAG_MAX:
        raise ValueError(f"activation grid has {p.levels} levels; the engine holds at most {A_MAG_MAX}")
    byte = np.arange(256)
    value = byte.astype(np.uint8).view(np.int8).astype(np.float64) if input_signed else byte.astype(np.float64)
    return quantize(value, p)


def pack_codes(q, bits: int) -> np.ndarray:
    """n-bit two's-complement fields, row by row: code k of a row occupies bits
    k*n .. k*n+n-1 of the row's little-endian bit stream (bit j is bit j%8 of
    byte j//8); each row starts on a byte, ceil(K*n/8) bytes per row."""
    q = require_dtype(q, "q (codes)", (np.int8,))
    require_ndim(q, "q (codes)", 2)
    bits = require_int(bits, "bits", W_BITS.start, W_BITS.stop - 1)
    lim = 2 ** (bits - 1)
    if q.size and (q.min() < -lim or q.max() >= lim):
        raise ValueError(f"codes in [{q.min()}, {q.max()}] do not fit {bits}-bit two's-complement fields")
    n, k = q.shape
    fields = (q.astype(np.int64) & (2**bits - 1)).astype(np.uint8)
    stream = np.unpackbits(fields[:, :, None], axis=2, bitorder="little")[:, :, :bits].reshape(n, k * bits)
    return np.packbits(stream, axis=1, bitorder="little")


def row_bytes(k: int, bits: int) -> int:
    return -(-k * bits // 8)


def unpack_codes(packed, k: int, bits: int) -> np.ndarray:
    """Inverse of `pack_codes`: (N, row_bytes) uint8 -> (N, K) int8."""
    packed = require_dtype(packed, "w (packed weights)", (np.uint8,))
    require_ndim(packed, "w (packed weights)", 2)
    bits = require_int(bits, "w_bits", W_BITS.start, W_BITS.stop - 1)
    k = require_int(k, "k", 1, 2**31 - 1)
    if packed.shape[1] != row_bytes(k, bits):
        raise ValueError(f"packed weights have {packed.shape[1]} bytes per row; K={k} at {bits} bits needs "
                         f"{row_bytes(k, bits)}")
    stream = np.unpackbits(packed, axis=1, bitorder="little")[:, :k * bits].reshape(packed.shape[0], k, bits)
    field = (stream.astype(np.int64) << np.arange(bits)).sum(axis=2)
    return np.where(field >= 2 ** (bits - 1), field - 2**bits, field).astype(np.int8)


@dataclass(frozen=True)
class Tables:
    """Fixed-point reconstruction tables of one layer, in units of `unit`
    (weight-real x input-code units): p[t] = round(aw*aa*b^t / unit) for
    exponent sums t, w[e] = round(beta_a * |level_w(e)| / unit) for the weight
    exponent bank, a[e] = round(beta_w * aa*b^e / unit) for the activation one."""

    p: np.ndarray  # (la + lw - 1,) int16
    w: np.ndarray  # (lw,) int16
    a: np.ndarray  # (la,) int16
    unit: float


def layer_tables(wp: TeqParams, ap: TeqParams) -> Tables:
    """Tables whose largest entry is TABLE_MAX (16-bit signed), entries rounded
    half away from zero. The layer's weights and activations must share a base."""
    if not np.isclose(wp.base, ap.base, rtol=1e-12, atol=0):
        raise ValueError(f"weights (base {wp.base}) and activations (base {ap.base}) must share one base")
    b, lw, la = wp.base, wp.levels, ap.levels
    t = np.arange(la + lw - 1, dtype=np.float64)
    p = wp.alpha * ap.alpha * b**t
    w = ap.beta * wp.magnitudes()
    a = wp.beta * ap.alpha * b ** np.arange(la, dtype=np.float64)
    biggest = max(np.abs(p).max(), np.abs(w).max(), np.abs(a).max())
    unit = biggest / TABLE_MAX

    def fix(v):
        q = uniform.round_half_away(v / unit)
        return np.clip(q, -TABLE_MAX, TABLE_MAX).astype(np.int16)  # clip only absorbs the last ulp

    return Tables(fix(p), fix(w), fix(a), float(unit))


# ----------------------------------------------------------------------------- GEMM


FLAG_RAW_OUT = 1 << 1  # as the INT engine: write acc + bias, skip requant
FLAG_WBANK = 1 << 2  # count the weight-exponent bank (beta_a != 0)
FLAG_ABANK = 1 << 3  # count the activation-exponent bank (beta_w != 0)


@dataclass(frozen=True)
class GemmTeqArgs:
    """Validated, contiguous operands of one TEQ engine call."""

    a: np.ndarray  # (M, K) uint8 or int8 uniform codes (only the byte matters)
    w: np.ndarray  # (N, row_bytes) uint8 packed weight codes
    k: int
    w_bits: int
    lut: np.ndarray  # (256,) int8
    p_table: np.ndarray  # (la + lw - 1,) int16
    w_table: np.ndarray  # (lw,) int16
    a_table: np.ndarray  # (la,) int16
    bias: np.ndarray  # (N,) int32
    requant: uniform.Requant | None

    @property
    def lw(self) -> int:
        return int(self.w_table.size)

    @property
    def la(self) -> int:
        return int(self.a_table.size)

    @property
    def wbank(self) -> bool:
        return bool(np.any(self.w_table))

    @property
    def abank(self) -> bool:
        return bool(np.any(self.a_table))

    @property
    def n_recon(self) -> int:
        """Counters reconstructed per output: the exponent-sum bins plus each bank in use."""
        return self.p_table.size + (self.lw if self.wbank else 0) + (self.la if self.abank else 0)

    @property
    def flags(self) -> int:
        return ((FLAG_RAW_OUT if self.requant is None else 0) | (FLAG_WBANK if self.wbank else 0)
                | (FLAG_ABANK if self.abank else 0))

    @property
    def tables(self) -> np.ndarray:
        """The engine's one table array: p, then w, then a."""
        return np.concatenate([self.p_table, self.w_table, self.a_table]).astype(np.int16)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.a.shape[0], self.w.shape[0], self.k


def accumulator_worst_case(k: int, p_table, w_table, a_table, bias_absmax: int = 0) -> int:
    """Bound on every partial sum of the engine: each pair adds at most
    max|p| + max|w| + max|a| through its counters (a bank not in use has an
    all-zero table, so it adds 0 to the bound as to the sum)."""
    def mx(t):
        return int(np.abs(np.asarray(t, np.int64)).max(initial=0))

    return k * (mx(p_table) + mx(w_table) + mx(a_table)) + bias_absmax


def validate_gemm_teq(a, w, k, w_bits, lut, p_table, w_table, a_table, bias=None, requant=None) -> GemmTeqArgs:
    """Check a TEQ GEMM's operands against the spec; every backend calls this."""
    a = require_dtype(a, "a (activations)", (np.int8, np.uint8))
    require_ndim(a, "a (activations)", 2)
    w_bits = require_int(w_bits, "w_bits", W_BITS.start, W_BITS.stop - 1)
    k = require_int(k, "k", 1, MAX_K)
    m = a.shape[0]
    if m == 0:
        raise ValueError("GEMM dimensions must be positive, got M=0")
    if a.shape[1] != k:
        raise ValueError(f"a is {m} x {a.shape[1]} but k={k}")
    codes = unpack_codes(w, k, w_bits)
    n = codes.shape[0]
    if n == 0:
        raise ValueError("GEMM dimensions must be positive, got N=0")
    if max(m, n) >= 2**31:
        raise ValueError(f"GEMM dimension too large for the engine's 32-bit registers: M={m}, N={n}")
    tabs = {}
    for name, t in (("p_table", p_table), ("w_table", w_table), ("a_table", a_table)):
        t = require_dtype(t, name, (np.int16,))
        require_ndim(t, name, 1)
        tabs[name] = t
    lw, la = tabs["w_table"].size, tabs["a_table"].size
    lw_max = 2 ** (w_bits - 1) - 1
    if not 1 <= lw <= lw_max:
        raise ValueError(f"w_table has {lw} entries (weight levels); {w_bits}-bit codes allow 1..{lw_max}")
    if not 1 <= la <= A_MAG_MAX:
        raise ValueError(f"a_table has {la} entries (activation levels); allowed 1..{A_MAG_MAX}")
    if tabs["p_table"].size != la + lw - 1:
        raise ValueError(f"p_table must have la + lw - 1 = {la + lw - 1} entries (one per exponent sum), "
                         f"got {tabs['p_table'].size}")
    wmag = np.abs(codes.astype(np.int64))
    if wmag.max() > lw:
        idx = tuple(int(i) for i in np.argwhere(wmag > lw)[0])
        raise ValueError(f"weight code {codes[idx]} at {idx} exceeds the {lw} weight levels of w_table")
    lut = require_dtype(lut, "lut", (np.int8,))
    if lut.shape != (256,):
        raise ValueError(f"lut must have shape (256,), one TEQ code per input byte, got {lut.shape}")
    lmag = np.abs(lut.astype(np.int64))
    if lmag.max() > la:
        raise ValueError(f"lut holds code magnitude {lmag.max()} but a_table has only {la} activation levels")
    bias, requant = uniform.validate_bias_requant(bias, requant, n)
    args = GemmTeqArgs(a, np.ascontiguousarray(w), k, w_bits, lut, tabs["p_table"], tabs["w_table"],
                       tabs["a_table"], bias, requant)
    bias_absmax = int(np.abs(bias.astype(np.int64)).max())
    worst = accumulator_worst_case(k, args.p_table, args.w_table, args.a_table, bias_absmax)
    if worst > ACC_MAX:
        per_pair = (worst - bias_absmax) // k
        largest = (ACC_MAX - bias_absmax) // per_pair if per_pair else MAX_K
        raise ValueError(
            f"reduction length K={k} can overflow the engine's 32-bit accumulator with these tables: "
            f"worst case {k} * {per_pair} (max|p| + max|w| + max|a| of the banks in use) + |bias| {bias_absmax} "
            f"= {worst} > 2^31-1. The largest K here is {max(largest, 0)}; split the reduction into chunks.")
    return args


def product_table(args: GemmTeqArgs) -> np.ndarray:
    """T[qa + la, qw + lw]: what one pair of codes adds to the accumulator,
    s * (p[ea+ew] + w[ew] + a[ea]) with the banks not in use counting 0, and 0
    when either code is 0 (int64, (2la+1) x (2lw+1))."""
    la, lw = args.la, args.lw
    ea = np.arange(la)[:, None]
    ew = np.arange(lw)[None, :]
    mag = args.p_table.astype(np.int64)[ea + ew]
    if args.wbank:
        mag = mag + args.w_table.astype(np.int64)[ew]
    if args.abank:
        mag = mag + args.a_table.astype(np.int64)[ea]
    t = np.zeros((2 * la + 1, 2 * lw + 1), np.int64)
    t[la + 1:, lw + 1:] = mag  # + x +
    t[:la, :lw] = mag[::-1, ::-1]  # - x -
    t[la + 1:, :lw] = -mag[:, ::-1]  # + x -
    t[:la, lw + 1:] = -mag[::-1, :]  # - x +
    return t


def gemm_codes(qa: np.ndarray, qw: np.ndarray, args: GemmTeqArgs) -> np.ndarray:
    """acc[m, n] = sum_k T[qa[m, k], qw[n, k]] (`product_table`), exactly.

    Few output channels: one int64 gather of T per k. Otherwise grouped by
    weight magnitude j: (T[qa, +j] as float64) @ (sign(qw) where |qw| = j)^T,
    since T[qa, -j] = -T[qa, +j]; exact because every partial sum is an
    integer below 2^53 (|T| < 3 * 2^15, K < 2^19)."""
    t = product_table(args)
    ia = qa.astype(np.intp) + args.la
    mags = np.abs(qw.astype(np.intp))
    present = [j for j in np.unique(mags) if j != 0]  # the zero code adds nothing
    m, n = qa.shape[0], qw.shape[0]
    if n <= len(present):
        iw = qw.astype(np.intp) + args.lw
        acc = np.zeros((m, n), np.int64)
        for k in range(qa.shape[1]):
            acc += t[ia[:, k][:, None], iw[:, k][None, :]]
        return acc
    acc = np.zeros((m, n))
    tf = t.astype(np.float64)
    sw = np.sign(qw).astype(np.float64)
    for j in present:
        acc += tf[ia, args.lw + j] @ np.where(mags == j, sw, 0.0).T
    return np.rint(acc).astype(np.int64)


def gemm(a, w, k, w_bits, lut, p_table, w_table, a_table, bias=None, requant=None) -> np.ndarray:
    """Reference C = requant(teq_dot(lut[a], unpack(w)) + bias) as int32, bit-exact with the engine."""
    args = validate_gemm_teq(a, w, k, w_bits, lut, p_table, w_table, a_table, bias, requant)
    return gemm_args(args)


def gemm_args(args: GemmTeqArgs) -> np.ndarray:
    qa = args.lut[args.a.view(np.uint8)]
    qw = unpack_codes(args.w, args.k, args.w_bits)
    acc = gemm_codes(qa, qw, args) + args.bias.astype(np.int64)
    out = acc if args.requant is None else uniform.requantize(acc, args.requant)
    return out.astype(np.int32)


# ----------------------------------------------------------------------------- premise


def fit_uniform(mags: Magnitudes, L: int) -> tuple[float, float]:
    """(step, RMAE) of the best symmetric uniform grid step*{0..L} for these
    magnitudes: grid over step then the same refinement as `fit_tensor`."""
    if mags.total == 0:
        return 1.0, 0.0
    steps = mags.absmax / L * _TOP_GRID
    j = np.arange(1, L + 1, dtype=np.float64)
    err = mags.rmae(steps[:, None] * j[None, :])
    i = int(np.argmin(err))
    best_s, best = float(steps[i]), float(err[i])
    step = 2.0 ** 0.25
    for _ in range(_REFINE_ROUNDS):
        cand = best_s * np.array([1 / step, step])
        e = mags.rmae(cand[:, None] * j[None, :])
        if e.min() < best:
            best_s, best = float(cand[int(np.argmin(e))]), float(e.min())
        step = step ** 0.5
    return best_s, best


def premise_report(tensors: dict, bits=(3, 4, 5, 6), beta: bool = False) -> dict:
    """Does an exponential grid fit these tensors better than a uniform one?

    `tensors` maps a name to (values, signed): e.g. a layer's float weights
    (signed) or its input activations (unsigned after ReLU). For every tensor
    and width n, both grids get the same number of codes (2^(n-1)-1 nonzero
    magnitudes per sign when signed, 2^n - 1 when not, plus zero) and each is
    fitted to minimize RMAE on that tensor alone: the uniform grid over its
    step, the exponential one over its own base, alpha (and beta when `beta`),
    with `fit_tensor`'s search. Returns {"rows": [{"tensor", "bits",
    "rmae_exp", "rmae_uniform", "exp_better"}], "share": {n: fraction of
    tensors where the exponential grid has the lower RMAE}, "beta": beta}.
    """
    rows = []
    for name, (values, signed) in tensors.items():
        mags = Magnitudes(values)
        for n in bits:
            L = n_levels(n, bool(signed))
            _, r_uni = fit_uniform(mags, L)
            best = min((fit_tensor(mags, float(b), L, beta, bool(signed)) for b in _bases(L, L, _BASE_GRID)),
                       key=lambda f: f.rmae)
            rows.append({"tensor": name, "bits": int(n), "rmae_exp": best.rmae, "rmae_uniform": r_uni,
                         "base": best.params.base, "exp_better": bool(best.rmae < r_uni)})
    share = {int(n): float(np.mean([r["exp_better"] for r in rows if r["bits"] == n])) for n in bits} if rows else {}
    return {"rows": rows, "share": share, "beta": bool(beta)}
