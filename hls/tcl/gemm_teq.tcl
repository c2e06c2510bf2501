# Vitis HLS script for the TEQ exponent-sum GEMM engine (top gemm_teq, hls/top/gemm_teq.cpp).
#   vitis_hls -f hls/tcl/gemm_teq.tcl                      (from build/hls)
#   vitis-run --mode hls --tcl hls/tcl/gemm_teq.tcl
# Step and clock come from TERMSHIFT_HLS_STEP / TERMSHIFT_CLOCK_MHZ; see
# common.tcl. scripts/build_hls.sh sets them for you.
source [file join [file dirname [file normalize [info script]]] common.tcl]
::termshift::main teq
