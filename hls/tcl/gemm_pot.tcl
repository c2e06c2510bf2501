# Vitis HLS script for the PoT (BAC) GEMM engine (top gemm_pot, hls/top/gemm_pot.cpp).
#   vitis_hls -f hls/tcl/gemm_pot.tcl                      (from build/hls)
#   vitis-run --mode hls --tcl hls/tcl/gemm_pot.tcl
# Step and clock come from TERMSHIFT_HLS_STEP / TERMSHIFT_CLOCK_MHZ; see
# common.tcl. scripts/build_hls.sh sets them for you.
source [file join [file dirname [file normalize [info script]]] common.tcl]
::termshift::main pot
