"""The C-sim backend: the HLS engines compiled into termshift._csim.

`build="fast"` (default) runs the engine templates over native integers,
`build="exact"` runs the synthesizable top over Xilinx ap_types. Operands are
validated here with the same checks as the reference, so the extension only
ever sees legal calls.
"""

from __future__ import annotations

import numpy as np

from termshift.backends.base import Backend, GemmResult
from termshift.formats import uniform

BUILDS = ("fast", "exact")


def load_extension():
    """Import termshift._csim, or explain how to build it."""
    try:
        from termshift import _csim
    except ImportError as exc:
        raise ImportError(
            "termshift._csim (the C-sim extension) is not built or not importable "
            f"({exc}). Build it with `pip install .` from the repository root; it needs "
            "a C++17 compiler and the ap_types headers (from hls4ml, installed by the build, "
            "or from Vitis via XILINX_HLS)."
        ) from exc
    return _csim


class CSimBackend(Backend):
    name = "csim"

    def __init__(self, build: str = "fast"):
        if build not in BUILDS:
            raise ValueError(f"csim build must be one of {BUILDS}, got {build!r}")
        self.build = build
        self._ext = load_extension()
        self._info = self._ext.ENGINES["int"]

    def gemm_int(self, a, w, bias=None, requant=None) -> GemmResult:
        args = uniform.validate_gemm_int(a, w, bias, requant)
        flags = self._info["flag_a_unsigned"] if args.a_unsigned else 0
        if args.requant is None:
            flags |= self._info["flag_raw_out"]
            mult, shift, lo, hi = np.zeros_like(args.bias), 0, 0, 0
        else:
            rq = args.requant
            mult, shift, lo, hi = rq.multiplier, rq.shift, rq.lo, rq.hi
        out, cycles = self._ext.gemm_int(
            self.build, args.a.view(np.uint8), args.w, args.bias,
            np.ascontiguousarray(mult, dtype=np.int32), shift, lo, hi, flags,
        )
        return GemmResult(out, int(cycles))
