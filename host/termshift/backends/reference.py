"""The numpy reference backend: the format specs executed directly."""

from __future__ import annotations

from termshift.backends.base import Backend, GemmResult
from termshift.backends.cycle_model import INT_ENGINE, gemm_cycles
from termshift.formats import uniform


class ReferenceBackend(Backend):
    name = "reference"

    def gemm_int(self, a, w, bias=None, requant=None) -> GemmResult:
        args = uniform.validate_gemm_int(a, w, bias, requant)
        out = uniform.gemm(args.a, args.w, args.bias, args.requant)
        return GemmResult(out, gemm_cycles(INT_ENGINE, *args.shape))
