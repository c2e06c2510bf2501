# Vitis HLS script for any engine that has no hls/tcl/gemm_<engine>.tcl of its
# own: the engine is named by TERMSHIFT_ENGINE (scripts/build_hls.sh sets it
# from the hls/top/gemm_<engine>.cpp it found). Everything else is common.tcl.
source [file join [file dirname [file normalize [info script]]] common.tcl]
if {![info exists ::env(TERMSHIFT_ENGINE)] || $::env(TERMSHIFT_ENGINE) eq ""} {
    puts stderr "termshift: ERROR: set TERMSHIFT_ENGINE to the engine to build (e.g. int)"
    exit 2
}
::termshift::main $::env(TERMSHIFT_ENGINE)
