"""How each engine's operands become what its HLS top reads: the host side of
an engine call, shared by every engine the board driver drives.

Owns, per engine (`BOARD_ENGINES`): validating the operands with the
engine's own `EngineDef.validate` (backends/engine_<e>.py, so the board
refuses exactly what the reference and the C-sim refuse), the per-layer
constant arrays each m_axi pointer argument of `hls/top/gemm_<e>.cpp` points
at (`consts`, in the dtype and layout the top reads), and the values of its
s_axilite scalar registers other than M (`scalars`). The activations (the
top's `A`, uint8 bytes, M x K) and the result (`C`, int32, M x N) are the
same for every engine and are handled by the driver's row tiling.

A pointer argument a call does not use (the TR top's `W` in TR mode, `Wt`
and `Wn` in conventional mode) is simply absent from `consts`; the driver
writes 0 to its register and the top never dereferences it in that mode.

numpy and termshift's formats only: no pynq, no C-sim extension.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from termshift.backends.cycle_model import INT_ENGINE, ArrayGeometry
from termshift.backends.engine_bfp import BFP_ENGINE
from termshift.backends.engine_pot import POT_ENGINE
from termshift.backends.engine_teq import TEQ_ENGINE
from termshift.backends.engine_tr import TR_ENGINE
from termshift.backends.engines import get_engine
from termshift.formats import pot, tr

# hls/include/termshift/config.h: the flags register's shared bits.
FLAG_A_UNSIGNED, FLAG_RAW_OUT = 1, 2
# hls/include/termshift/tr_terms.h: the TR top's mode register.
TR_MODE_CONVENTIONAL, TR_MODE_TR = 0, 1


@dataclass(frozen=True)
class BoardEngine:
    """One engine as the board driver packs it."""

    name: str
    geometry: ArrayGeometry
    consts: Callable[[Any], dict]  # validated args -> {pointer arg: contiguous array}
    scalars: Callable[[Any], dict]  # validated args -> {scalar arg: int}, M excluded

    @property
    def top(self) -> str:
        return f"gemm_{self.name}"

    def validate(self, **operands):
        return get_engine(self.name).validate(**operands)


def _requant_regs(args, n: int) -> tuple[np.ndarray, dict]:
    """The multiplier vector and the shift/lo/hi registers of the shared
    requant stage; zeros (and the raw-output flag) when there is none."""
    if args.requant is None:
        return np.zeros(n, np.int32), {"shift": 0, "lo": 0, "hi": 0}
    rq = args.requant
    mult = np.ascontiguousarray(np.broadcast_to(np.asarray(rq.multiplier, np.int32), (n,)))
    return mult, {"shift": int(rq.shift), "lo": int(rq.lo), "hi": int(rq.hi)}


def _flags(args) -> int:
    return (FLAG_A_UNSIGNED if args.a_unsigned else 0) | (FLAG_RAW_OUT if args.requant is None else 0)


def _c(x, dtype) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x).reshape(-1), dtype=dtype)


# ------------------------------------------------------------------ int


def _int_consts(args) -> dict:
    n = args.w.shape[0]
    mult, _ = _requant_regs(args, n)
    return {"W": _c(args.w, np.int8), "bias": _c(args.bias, np.int32), "multiplier": mult}


def _int_scalars(args) -> dict:
    _, n, k = args.shape
    return {"N": n, "K": k, **_requant_regs(args, n)[1], "flags": _flags(args)}


# ------------------------------------------------------------------ pot


def _pot_consts(args) -> dict:
    n = args.w.shape[0]
    mult, _ = _requant_regs(args, n)
    # The compressed stream the BAC engine walks (docs/formats/pot.md, section 5).
    stream, _ = pot.pack_stream(args.w, args.bits, POT_ENGINE.cols, POT_ENGINE.tile_k)
    return {"W": _c(stream, np.uint32), "bias": _c(args.bias, np.int32), "multiplier": mult}


def _pot_scalars(args) -> dict:
    _, n, k = args.shape
    return {"N": n, "K": k, "bits": args.bits, "emax": args.emax, **_requant_regs(args, n)[1], "flags": _flags(args)}


# ------------------------------------------------------------------ tr


def _tr_consts(args) -> dict:
    n = args.bias.shape[0]
    mult, _ = _requant_regs(args, n)
    out = {"bias": _c(args.bias, np.int32), "multiplier": mult}
    if args.mode == "conventional":
        out["W"] = _c(args.w, np.int8)
    else:
        out["Wt"] = _c(args.terms, np.uint8)  # N x ceil(K/group) x slots term words
        out["Wn"] = _c(args.counts, np.uint8)  # N x ceil(K/group) term counts
    return out


def _tr_scalars(args) -> dict:
    _, n, k = args.shape
    conventional = args.mode == "conventional"
    return {"N": n, "K": k, **_requant_regs(args, n)[1], "flags": _flags(args),
            "mode": TR_MODE_CONVENTIONAL if conventional else TR_MODE_TR,
            "group": args.group, "slots": 1 if conventional else int(args.terms.shape[2]),
            "data_terms": args.data_terms, "encoding": tr.ENCODINGS.index(args.encoding),
            "conv_bits": args.conv_bits}


# ------------------------------------------------------------------ bfp


def _bfp_consts(args) -> dict:
    n = args.w.shape[0]
    mult, _ = _requant_regs(args, n)
    return {"W": _c(args.w, np.uint8), "eref": _c(args.eref, np.uint8), "bias": _c(args.bias, np.int32),
            "multiplier": mult}


def _bfp_scalars(args) -> dict:
    _, n, k = args.shape
    p = args.p
    return {"N": n, "K": k, "block_log2": p.block_log2, "m_bits": p.mantissa, "e_bits": p.e_bits,
            **_requant_regs(args, n)[1], "flags": _flags(args)}


# ------------------------------------------------------------------ teq


def _teq_consts(args) -> dict:
    n = args.w.shape[0]
    mult, _ = _requant_regs(args, n)
    return {"W": _c(args.w, np.uint8), "bias": _c(args.bias, np.int32), "multiplier": mult,
            "tables": _c(args.tables, np.int16), "lut": _c(args.lut, np.int8)}


def _teq_scalars(args) -> dict:
    _, n, k = args.shape
    # TEQ's flags carry its bank bits too (docs/formats/teq.md); the format computes them.
    return {"N": n, "K": k, "w_bits": args.w_bits, "lw": args.lw, "la": args.la, **_requant_regs(args, n)[1],
            "flags": int(args.flags)}


BOARD_ENGINES: dict[str, BoardEngine] = {
    "int": BoardEngine("int", INT_ENGINE, _int_consts, _int_scalars),
    "pot": BoardEngine("pot", POT_ENGINE, _pot_consts, _pot_scalars),
    "tr": BoardEngine("tr", TR_ENGINE, _tr_consts, _tr_scalars),
    "bfp": BoardEngine("bfp", BFP_ENGINE, _bfp_consts, _bfp_scalars),
    "teq": BoardEngine("teq", TEQ_ENGINE, _teq_consts, _teq_scalars),
}


def board_engine(name: str) -> BoardEngine:
    try:
        return BOARD_ENGINES[name]
    except KeyError:
        raise ValueError(f"the board driver has no engine {name!r}; it drives {', '.join(BOARD_ENGINES)}") from None
