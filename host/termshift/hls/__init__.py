"""The Vitis HLS / Vivado side of termshift, as far as it can run without the tools.

Owns: the static check of the synthesizable C++ (`check`), engine discovery
from `hls/top/gemm_*.cpp` (`engines`), the analytical resource model
(`resources`) and the overlay manifest schema (`manifest`). The Tcl that drives
Vitis HLS and Vivado lives in `hls/tcl/` and `overlays/zcu104/`; docs/hls_flow.md
describes the whole flow.

Nothing here imports numpy or the C-sim extension, so the board side (numpy +
pynq only) and CI without a compiler can use the manifest validator.
"""
