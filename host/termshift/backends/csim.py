"""The C-sim backend: the HLS engines compiled into termshift._csim.

`build="fast"` (default) runs the engine templates over native integers,
`build="exact"` runs the synthesizable tops over Xilinx ap_types. Operands are
validated here with the same checks as the reference, so the extension only
ever sees legal calls.
"""

from __future__ import annotations

from termshift.backends.base import Backend, GemmResult
from termshift.backends.engines import get_engine

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

    def run(self, engine: str, **operands) -> GemmResult:
        e = get_engine(engine)
        if engine not in self._ext.ENGINES:
            raise RuntimeError(f"engine {engine!r} is not in this build of termshift._csim; rebuild with `pip install .`")
        return e.csim(self._ext, self.build, e.validate(**operands))
