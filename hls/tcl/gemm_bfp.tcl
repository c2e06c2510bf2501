# Vitis HLS script for the block floating point GEMM engine (top gemm_bfp, hls/top/gemm_bfp.cpp).
#   vitis_hls -f hls/tcl/gemm_bfp.tcl                      (from build/hls)
#   vitis-run --mode hls --tcl hls/tcl/gemm_bfp.tcl
# Step and clock come from TERMSHIFT_HLS_STEP / TERMSHIFT_CLOCK_MHZ; see
# common.tcl. scripts/build_hls.sh sets them for you.
source [file join [file dirname [file normalize [info script]]] common.tcl]
::termshift::main bfp
