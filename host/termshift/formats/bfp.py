"""The `bfp` format: block floating point weights (one shared exponent per
block of B consecutive values along the reduction axis, m-bit signed
mantissas), the packed bit-stream the engine reads, and the exact GEMM the
BFP engine computes.

docs/formats/bfp.md is the written spec; every function here implements one
clause of it, and the HLS engine (hls/include/termshift/gemm_bfp.h) must agree
with `gemm` bit for bit. With block=32, mantissa=8, e_bits=8 (`preset=mxint8`)
a block is exactly an OCP MX v1.0 MXINT8 block: an E8M0 scale and 32 INT8
elements with an implicit scale of 2^-6.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from termshift.checks import as_float_array, require_dtype, require_int, require_ndim
from termshift.formats.spec import FormatSpec, Param, parse_int
from termshift.formats.uniform import ACC_MAX, Requant, requantize, round_half_away, validate_bias_requant

BLOCKS = (4, 8, 16, 32, 64, 128)  # powers of two: a block never straddles a 256-deep K tile
SWITCH = {"off", "on"}

SPEC = {
    "block": Param(32, parse_int, BLOCKS, "values sharing one exponent, along the reduction axis"),
    "mantissa": Param(8, parse_int, range(2, 9), "bits per signed mantissa (sign included)"),
    "e_bits": Param(8, parse_int, range(4, 9), "bits of the shared exponent (8: E8M0, bias 127)"),
    "preset": Param("none", str, {"none", "mxint8"}, "mxint8: OCP MX INT8 (block 32, INT8 elements, E8M0 scale)"),
    "search": Param("off", str, SWITCH, "on: per-layer (block, mantissa) chosen by termshift.search.bfp"),
}

PRESETS = {"mxint8": {"block": 32, "mantissa": 8, "e_bits": 8}}

FRAC_BITS = 16  # guard bits below the row's anchor exponent in the accumulator
ACC_BITS = 48  # accumulator width (a DSP48E2 P register); section 4 of the spec
MAX_SHIFT = ACC_BITS - 1  # any block alignment shift above this gives the same result
HALF = 1 << (FRAC_BITS - 1)


@dataclass(frozen=True)
class BfpParams:
    """The three numbers that define a BFP encoding."""

    block: int
    mantissa: int
    e_bits: int

    @property
    def block_log2(self) -> int:
        return self.block.bit_length() - 1

    @property
    def bias(self) -> int:
        """Exponent bias 2^(e-1) - 1: 127 for E8M0."""
        return 2 ** (self.e_bits - 1) - 1

    @property
    def e_code_max(self) -> int:
        """Largest exponent code the quantizer writes; all-ones stays unused (NaN in E8M0)."""
        return 2**self.e_bits - 2

    @property
    def q_max(self) -> int:
        """Largest mantissa magnitude the quantizer writes (symmetric)."""
        return 2 ** (self.mantissa - 1) - 1

    def n_blocks(self, k: int) -> int:
        return -(-k // self.block)

    def row_bits(self, k: int) -> int:
        """Bits of one packed row: an exponent per block plus a mantissa per value."""
        return self.n_blocks(k) * self.e_bits + k * self.mantissa

    def row_bytes(self, k: int) -> int:
        return -(-self.row_bits(k) // 8)

    def bits_per_weight(self) -> float:
        return self.mantissa + self.e_bits / self.block

    def label(self) -> str:
        return f"B{self.block}m{self.mantissa}" + ("" if self.e_bits == 8 else f"e{self.e_bits}")

    def spec(self) -> str:
        return f"bfp:block={self.block},mantissa={self.mantissa},e_bits={self.e_bits}"


def params_of(spec: FormatSpec | BfpParams) -> BfpParams:
    """The encoding a parsed `bfp` spec stands for, with its preset applied."""
    if isinstance(spec, BfpParams):
        return validated_params(spec.block, spec.mantissa, spec.e_bits)
    if not isinstance(spec, FormatSpec) or spec.name != "bfp":
        raise TypeError(f"expected a parsed bfp spec, got {spec!r}")
    p = {k: spec[k] for k in ("block", "mantissa", "e_bits")}
    preset = spec["preset"]
    if preset != "none":
        fixed = PRESETS[preset]
        clash = {k: v for k, v in p.items() if v != fixed[k]}
        if clash:
            shown = ", ".join(f"{k}={v}" for k, v in clash.items())
            want = ", ".join(f"{k}={v}" for k, v in fixed.items())
            raise ValueError(f"bfp: preset={preset} fixes {want}; it cannot be combined with {shown}")
    return BfpParams(p["block"], p["mantissa"], p["e_bits"])


def validated_params(block, mantissa, e_bits) -> BfpParams:
    block = require_int(block, "block", 4, 128)
    if block not in BLOCKS:
        raise ValueError(f"block={block} must be one of {', '.join(map(str, BLOCKS))}")
    return BfpParams(block, require_int(mantissa, "mantissa", 2, 8), require_int(e_bits, "e_bits", 4, 8))


# --------------------------------------------------------------------------- quantization (section 2)


def _blocks(x: np.ndarray, block: int) -> np.ndarray:
    """(N, K) -> (N, n_blocks, block), the ragged last block padded with zeros
    (zeros never change a block's max |x|)."""
    n, k = x.shape
    nb = -(-k // block)
    padded = np.zeros((n, nb * block), x.dtype)
    padded[:, :k] = x
    return padded.reshape(n, nb, block)


def quantize(w, p: BfpParams) -> tuple[np.ndarray, np.ndarray]:
    """Float (N, K) -> (exponent codes uint8 (N, n_blocks), mantissas int8 (N, K)).

    Per block: X = floor(log2 max|w|), clamped to [-bias, bias]; code E = X + bias
    (0 for an all-zero block); q = clamp(round_half_away(w / 2^(X - (m-2))), +-(2^(m-1)-1)).
    """
    w = as_float_array(w, "w")
    require_ndim(w, "w", 2)
    if w.size == 0:
        raise ValueError(f"w must be non-empty, got shape {w.shape}")
    p = params_of(p)
    n, k = w.shape
    wb = _blocks(w, p.block)
    amax = np.abs(wb).max(axis=2)
    # frexp is exact: amax = f * 2^ex with f in [0.5, 1), so floor(log2 amax) = ex - 1.
    _, ex = np.frexp(amax)
    x = np.where(amax > 0, ex.astype(np.int64) - 1, -p.bias)
    x = np.clip(x, -p.bias, p.bias)
    lsb = x - (p.mantissa - 2)
    scaled = np.ldexp(wb, -lsb[:, :, None])  # exact: a power-of-two rescale
    q = np.clip(round_half_away(scaled), -p.q_max, p.q_max).reshape(n, -1)[:, :k]
    return (x + p.bias).astype(np.uint8), q.astype(np.int8)


def dequantize(exps: np.ndarray, mant: np.ndarray, p: BfpParams) -> np.ndarray:
    """Float64 values q * 2^(E - bias - (m-2)) of decoded blocks."""
    p = params_of(p)
    n, k = mant.shape
    lsb = exps.astype(np.int64) - p.bias - (p.mantissa - 2)
    per_value = np.repeat(lsb, p.block, axis=1)[:, :k]
    return np.ldexp(mant.astype(np.float64), per_value)


def row_anchor(exps: np.ndarray) -> np.ndarray:
    """The accumulator anchor of each row: its largest exponent code."""
    return exps.max(axis=1).astype(np.uint8)


def row_scale(eref: np.ndarray, p: BfpParams) -> np.ndarray:
    """s_w[n] = 2^(eref[n] - bias - (m-2)): the value of one accumulator unit
    per unit of activation scale (the GemmFormat contract's weight scale)."""
    p = params_of(p)
    return np.ldexp(1.0, eref.astype(np.int64) - p.bias - (p.mantissa - 2))


# --------------------------------------------------------------------------- packing (section 3)


def _field_layout(k: int, p: BfpParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per field of one row, in stream order: its width, whether it is an
    exponent, and the bit where it starts."""
    nb = p.n_blocks(k)
    is_exp = np.zeros(nb + k, bool)
    is_exp[np.arange(nb) * (p.block + 1)] = True
    widths = np.where(is_exp, p.e_bits, p.mantissa)
    starts = np.concatenate(([0], np.cumsum(widths)[:-1]))
    return widths, is_exp, starts


def _bit_positions(widths: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """For every bit of a row: its position inside its field."""
    return np.arange(int(widths.sum())) - np.repeat(starts, widths)


def pack(exps: np.ndarray, mant: np.ndarray, p: BfpParams) -> np.ndarray:
    """Rows of fields [E_0, q_0 .. q_{B-1}, E_1, ...], each LSB first (mantissas in
    m-bit two's complement), each row zero-padded to a whole byte: uint8 (N, row_bytes)."""
    p = params_of(p)
    exps = require_dtype(exps, "exps", (np.uint8,))
    mant = require_dtype(mant, "mant", (np.int8,))
    n, k = mant.shape
    if exps.shape != (n, p.n_blocks(k)):
        raise ValueError(f"exps must have shape ({n}, {p.n_blocks(k)}) for K={k}, block={p.block}; got {exps.shape}")
    if exps.size and int(exps.max()) >= 2**p.e_bits:
        raise ValueError(f"exponent code {int(exps.max())} does not fit e_bits={p.e_bits}")
    lo, hi = -(2 ** (p.mantissa - 1)), 2 ** (p.mantissa - 1) - 1
    if mant.size and (int(mant.min()) < lo or int(mant.max()) > hi):
        raise ValueError(f"mantissas must be in [{lo}, {hi}] for mantissa={p.mantissa}")
    widths, is_exp, starts = _field_layout(k, p)
    fields = np.empty((n, widths.size), np.int32)
    fields[:, is_exp] = exps
    fields[:, ~is_exp] = mant.astype(np.int32) & ((1 << p.mantissa) - 1)
    stream = (np.repeat(fields, widths, axis=1) >> _bit_positions(widths, starts)) & 1  # (N, row_bits)
    return np.packbits(stream.astype(np.uint8), axis=1, bitorder="little")


def unpack(w: np.ndarray, k: int, p: BfpParams) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `pack`: (exponent codes uint8 (N, n_blocks), mantissas int8 (N, K))."""
    p = params_of(p)
    widths, is_exp, starts = _field_layout(k, p)
    stream = np.unpackbits(w, axis=1, bitorder="little")[:, : p.row_bits(k)].astype(np.int32)
    fields = np.add.reduceat(stream << _bit_positions(widths, starts), starts, axis=1)
    exps = fields[:, is_exp].astype(np.uint8)
    m = fields[:, ~is_exp]
    m = m - ((m >> (p.mantissa - 1)) << p.mantissa)  # sign-extend the m-bit field
    return exps, m.astype(np.int8)


def encode(w, p: BfpParams) -> dict:
    """Float weights (N, K) -> the engine payload {"w": packed rows, "eref": row anchors}."""
    p = params_of(p)
    exps, mant = quantize(w, p)
    return {"w": pack(exps, mant, p), "eref": row_anchor(exps)}


# --------------------------------------------------------------------------- GEMM (sections 4-6)


def max_operand(a_unsigned: bool, p: BfpParams) -> tuple[int, int]:
    """Worst-case |a| and |q| the engine can be fed: any m-bit field, -2^(m-1) included."""
    return (255 if a_unsigned else 128), 2 ** (p.mantissa - 1)


def output_worst_case(k: int, a_unsigned: bool, p: BfpParams, bias_absmax: int = 0) -> int:
    """Bound on |acc + bias| after the drain rounding: K * a_max * q_max + 1 + |bias|."""
    a_max, q_max = max_operand(a_unsigned, p)
    return k * a_max * q_max + 1 + bias_absmax


def max_reduction_length(a_unsigned: bool, p: BfpParams, bias_absmax: int = 0) -> int:
    a_max, q_max = max_operand(a_unsigned, p)
    return (ACC_MAX - 1 - bias_absmax) // (a_max * q_max)


def check_accumulator(k: int, a_unsigned: bool, p: BfpParams, bias_absmax: int = 0) -> None:
    """Reject a reduction length whose rounded result could leave int32 (which
    also keeps the 48-bit accumulator from overflowing: section 4)."""
    worst = output_worst_case(k, a_unsigned, p, bias_absmax)
    if worst > ACC_MAX:
        a_max, q_max = max_operand(a_unsigned, p)
        raise ValueError(
            f"reduction length K={k} can overflow the BFP engine's 32-bit output: worst case "
            f"{k} * {a_max} * {q_max} + 1 + |bias| {bias_absmax} = {worst} > 2^31-1 "
            f"(mantissa={p.mantissa}). The largest K here is "
            f"{max_reduction_length(a_unsigned, p, bias_absmax)}; split the reduction into chunks."
        )


@dataclass(frozen=True)
class GemmBfpArgs:
    """Validated operands of one BFP engine call, with the decoded weights."""

    a: np.ndarray  # (M, K) int8 or uint8 activation codes
    w: np.ndarray  # (N, row_bytes) uint8 packed rows
    eref: np.ndarray  # (N,) uint8 row anchors
    p: BfpParams
    bias: np.ndarray  # (N,) int32
    requant: Requant | None
    exps: np.ndarray  # (N, n_blocks) decoded exponent codes
    mant: np.ndarray  # (N, K) decoded mantissas

    @property
    def a_unsigned(self) -> bool:
        return self.a.dtype == np.uint8

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.a.shape[0], self.w.shape[0], self.a.shape[1]


def validate_gemm_bfp(a, w, eref, block, mantissa, e_bits=8, bias=None, requant: Requant | None = None) -> GemmBfpArgs:
    """Check a BFP GEMM's operands against the spec; every backend calls this."""
    p = validated_params(block, mantissa, e_bits)
    a = require_dtype(a, "a (activations)", (np.int8, np.uint8))
    w = require_dtype(w, "w (packed BFP weights)", (np.uint8,))
    eref = require_dtype(eref, "eref (row anchors)", (np.uint8,))
    require_ndim(a, "a (activations)", 2)
    require_ndim(w, "w (packed BFP weights)", 2)
    m, k = a.shape
    n = w.shape[0]
    if m == 0 or n == 0 or k == 0:
        raise ValueError(f"GEMM dimensions must be positive, got M={m}, N={n}, K={k}")
    if max(m, n, k) >= 2**31:
        raise ValueError(f"GEMM dimension too large for the engine's 32-bit registers: M={m}, N={n}, K={k}")
    if w.shape[1] != p.row_bytes(k):
        raise ValueError(f"w rows must be {p.row_bytes(k)} bytes for K={k}, block={p.block}, mantissa={p.mantissa}, "
                         f"e_bits={p.e_bits} ({p.row_bits(k)} bits); got {w.shape[1]}")
    if eref.shape != (n,):
        raise ValueError(f"eref must have shape ({n},), one anchor per output channel, got {eref.shape}")
    if int(eref.max()) >= 2**p.e_bits:
        raise ValueError(f"eref {int(eref.max())} does not fit e_bits={p.e_bits}")
    exps, mant = unpack(w, k, p)
    below = eref < exps.max(axis=1)
    if below.any():
        row = int(np.argmax(below))
        raise ValueError(f"eref[{row}]={int(eref[row])} is below that row's largest exponent code "
                         f"{int(exps[row].max())}: the anchor must be >= every block exponent of its row")
    bias, requant = validate_bias_requant(bias, requant, n)
    check_accumulator(k, a.dtype == np.uint8, p, int(np.abs(bias.astype(np.int64)).max()))
    return GemmBfpArgs(a, w, eref, p, bias, requant, exps, mant)


_CHUNK_ELEMENTS = 1 << 22  # bounds the (rows, slow blocks, B) gather per step


def block_accumulate(a: np.ndarray, exps: np.ndarray, mant: np.ndarray, eref: np.ndarray, p: BfpParams) -> np.ndarray:
    """The 48-bit accumulator of every output: sum over blocks of
    floor(P_b * 2^(16 - d_b)), P_b the block's integer dot, d_b = eref - E_b.

    A block within 16 of its anchor (d_b <= 16) loses nothing to the floor, so
    all such blocks are one float64 GEMM against mantissas pre-scaled by
    2^(16 - d_b): exact, because every product and partial sum is an integer
    below 2^47 (section 4). Only the rare far-below blocks with a non-zero
    mantissa are summed one by one and floored.
    """
    m, k = a.shape
    d = np.minimum(eref.astype(np.int64)[:, None] - exps.astype(np.int64), MAX_SHIFT)  # (N, nb)
    d_k = np.repeat(d, p.block, axis=1)[:, :k]
    near = d_k <= FRAC_BITS
    scaled = np.where(near, np.ldexp(mant.astype(np.float64), FRAC_BITS - np.minimum(d_k, FRAC_BITS)), 0.0)
    af = a.astype(np.float64)
    acc = np.rint(af @ scaled.T).astype(np.int64)
    far = (d > FRAC_BITS) & _blocks(mant != 0, p.block).any(axis=2)
    rows, blks = np.nonzero(far)
    if rows.size:
        qb = _blocks(mant.astype(np.float64), p.block)[rows, blks]  # (S, B)
        ab = _blocks(af, p.block)  # (M, nb, B)
        step = max(1, _CHUNK_ELEMENTS // max(1, m * p.block))
        for s0 in range(0, rows.size, step):
            sl = slice(s0, s0 + step)
            # float64 is exact: |P_b| <= 128 * 255 * 128 < 2^22.
            pb = np.einsum("msk,sk->ms", ab[:, blks[sl]], qb[sl]).astype(np.int64)
            np.add.at(acc, (slice(None), rows[sl]), (pb << FRAC_BITS) >> d[rows[sl], blks[sl]])
    return acc


def gemm(a, w, eref, block, mantissa, e_bits=8, bias=None, requant: Requant | None = None) -> np.ndarray:
    """Reference C = requant(round(acc / 2^16) + bias) as int32, bit-exact with the engine."""
    args = validate_gemm_bfp(a, w, eref, block, mantissa, e_bits, bias, requant)
    return gemm_validated(args)


def gemm_validated(args: GemmBfpArgs) -> np.ndarray:
    acc = block_accumulate(args.a, args.exps, args.mant, args.eref, args.p)
    total = ((acc + HALF) >> FRAC_BITS) + args.bias.astype(np.int64)  # round half toward +inf
    out = total if args.requant is None else requantize(total, args.requant)
    return out.astype(np.int32)
