"""The INT8 engine (hls/top/gemm_int.cpp) as seen by the backends: operand
validation and reference from the `int` format, the C-sim call, and the cases
`termshift verify` runs."""

from __future__ import annotations

import numpy as np

from termshift.backends.base import GemmResult
from termshift.backends.cycle_model import INT_ENGINE, gemm_cycles
from termshift.backends.engines import EngineDef
from termshift.formats import uniform


def validate(a, w, bias=None, requant=None) -> uniform.GemmIntArgs:
    return uniform.validate_gemm_int(a, w, bias, requant)


def reference(args: uniform.GemmIntArgs) -> GemmResult:
    out = uniform.gemm(args.a, args.w, args.bias, args.requant)
    return GemmResult(out, gemm_cycles(INT_ENGINE, *args.shape))


def csim(ext, build: str, args: uniform.GemmIntArgs) -> GemmResult:
    info = ext.ENGINES["int"]
    flags = info["flag_a_unsigned"] if args.a_unsigned else 0
    if args.requant is None:
        flags |= info["flag_raw_out"]
        mult, shift, lo, hi = np.zeros_like(args.bias), 0, 0, 0
    else:
        rq = args.requant
        mult, shift, lo, hi = rq.multiplier, rq.shift, rq.lo, rq.hi
    out, cycles = ext.gemm_int(build, args.a.view(np.uint8), args.w, args.bias,
                               np.ascontiguousarray(mult, dtype=np.int32), shift, lo, hi, flags)
    return GemmResult(out, int(cycles))


def cases(seed: int, n_random: int):
    from termshift.cases import all_cases

    for c in all_cases(seed, n_random):
        yield c.name, {"a": c.a, "w": c.w, "bias": c.bias, "requant": c.requant}


ENGINE = EngineDef("int", validate, reference, csim, cases)
