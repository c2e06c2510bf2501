# Shared Vitis HLS flow for every termshift engine: one project per engine,
# one solution, the ZCU104 part and clock, and the steps the caller asks for.
#
# Sourced by hls/tcl/gemm_<engine>.tcl (or run_engine.tcl for an engine with no
# script of its own); scripts/build_hls.sh is the normal way in. Settings come
# from the environment so the same script runs under `vitis_hls -f` and
# `vitis-run --mode hls --tcl`, which do not pass arguments the same way:
#
#   TERMSHIFT_ROOT       repository root (default: two levels above this file)
#   TERMSHIFT_HLS_STEP   csim | synth | cosim | export (default: export)
#   TERMSHIFT_CLOCK_MHZ  target clock (default: 200, what the overlay runs at)
#   TERMSHIFT_PART       FPGA part (default: the ZCU104's xczu7ev-ffvc1156-2-e)
#
# The project is created in the current directory (build_hls.sh runs it from
# build/hls), so the exported IP lands in ./gemm_<engine>/solution/impl/ip,
# where overlays/zcu104/build_overlay.tcl looks for it.

namespace eval ::termshift {
    variable script_dir [file dirname [file normalize [info script]]]
    variable default_part xczu7ev-ffvc1156-2-e
    variable default_clock_mhz 200
    variable steps {csim synth cosim export}
    # The VLNV the overlay instantiates: termshift:hls:gemm_<engine>:1.0
    variable ip_vendor termshift
    variable ip_library hls
    variable ip_version 1.0
}

proc ::termshift::env_or {name default} {
    if {[info exists ::env($name)] && $::env($name) ne ""} {
        return $::env($name)
    }
    return $default
}

proc ::termshift::root {} {
    variable script_dir
    return [file normalize [env_or TERMSHIFT_ROOT [file join $script_dir .. ..]]]
}

# What each requested step runs, in order. cosim and export need the RTL, so
# they synthesize first in the same solution (open_solution -reset starts clean).
proc ::termshift::actions_for {step} {
    switch -- $step {
        csim   { return {csim} }
        synth  { return {synth} }
        cosim  { return {synth cosim} }
        export { return {synth export} }
        default {
            variable steps
            error "unknown HLS step '$step' (expected one of: [join $steps {, }])"
        }
    }
}

# Source files of one engine, checked to exist before the tool is asked for
# anything: a missing testbench is an error only for the steps that run it.
proc ::termshift::engine_files {engine actions} {
    set root [root]
    set top_cpp [file join $root hls top gemm_${engine}.cpp]
    if {![file exists $top_cpp]} {
        error "engine '$engine': $top_cpp not found"
    }
    set tb [file join $root hls tb gemm_${engine}_tb.cpp]
    set data [lsort [glob -nocomplain -directory [file join $root hls tb data] gemm_${engine}_*]]
    set needs_tb [expr {[lsearch -exact $actions csim] >= 0 || [lsearch -exact $actions cosim] >= 0}]
    if {![file exists $tb]} {
        if {$needs_tb} {
            error "engine '$engine': testbench $tb not found (needed for csim/cosim)"
        }
        set tb ""
    }
    set inc [list -I[file join $root hls include] -I[file join $root hls top]]
    set tb_inc [concat $inc [list -I[file join $root hls tb]]]
    return [dict create top gemm_${engine} top_cpp $top_cpp tb $tb data $data \
                cflags [join $inc " "] tb_cflags [join $tb_inc " "]]
}

# Runs the HLS flow for `engine`; returns normally or raises an error.
proc ::termshift::run_engine {engine {step ""} {extra_cflags ""}} {
    variable default_part
    variable default_clock_mhz
    variable ip_vendor
    variable ip_library
    variable ip_version
    if {$step eq ""} {
        set step [env_or TERMSHIFT_HLS_STEP export]
    }
    set actions [actions_for $step]
    set files [engine_files $engine $actions]
    set part [env_or TERMSHIFT_PART $default_part]
    set mhz [env_or TERMSHIFT_CLOCK_MHZ $default_clock_mhz]
    if {![string is double -strict $mhz] || $mhz <= 0} {
        error "TERMSHIFT_CLOCK_MHZ must be a positive number, got '$mhz'"
    }
    set period [format %.3f [expr {1000.0 / $mhz}]]
    set top [dict get $files top]
    set cflags [string trim "[dict get $files cflags] $extra_cflags"]
    set tb_cflags [string trim "[dict get $files tb_cflags] $extra_cflags"]

    puts "termshift: $top: $step (part $part, ${mhz} MHz = ${period} ns)"
    open_project -reset $top
    set_top $top
    add_files [dict get $files top_cpp] -cflags $cflags
    if {[dict get $files tb] ne ""} {
        add_files -tb [dict get $files tb] -cflags $tb_cflags
        foreach f [dict get $files data] {
            add_files -tb $f -cflags $tb_cflags
        }
    }
    open_solution -reset solution -flow_target vivado
    set_part $part
    create_clock -period $period -name default
    # 64-bit m_axi addresses: the PS maps DDR above 4 GiB on the ZCU104, and the
    # default for the Vivado flow has changed between releases, so say it.
    config_interface -m_axi_addr64=true

    foreach action $actions {
        switch -- $action {
            csim   { csim_design -clean -O }
            synth  { csynth_design }
            cosim  { cosim_design -rtl verilog -trace_level none }
            export {
                export_design -format ip_catalog -vendor $ip_vendor -library $ip_library \
                    -version $ip_version -ipname $top -display_name "termshift $top" \
                    -description "termshift GEMM engine $engine"
            }
        }
    }
    close_project
    puts "termshift: $top: $step done"
}

# Entry point for the per-engine scripts: runs the flow and always exits, so
# `vitis_hls -f` never drops into its interactive prompt (which would hang CI).
proc ::termshift::main {engine {extra_cflags ""}} {
    if {[catch {run_engine $engine "" $extra_cflags} err]} {
        puts stderr "termshift: ERROR: $err"
        exit 1
    }
    exit 0
}
