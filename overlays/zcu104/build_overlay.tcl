# Builds the termshift ZCU104 overlay in Vivado batch mode:
#
#   vivado -mode batch -source overlays/zcu104/build_overlay.tcl
#
# (scripts/build_overlay.sh runs this and then writes manifest.json.) Needs the
# engines' IP exported by `scripts/build_hls.sh all export`. Settings come
# from the environment:
#
#   TERMSHIFT_ROOT         repository root (default: two levels above this file)
#   TERMSHIFT_BUILD_DIR    build tree (default <root>/build); the IP is read from
#                          <build>/hls/gemm_<e>/<solution>/impl/ip, the Vivado
#                          project goes to <build>/overlay
#   TERMSHIFT_ENGINES      engines to include, space separated (default: every
#                          engine with exported IP)
#   TERMSHIFT_CLOCK_MHZ    PL clock pl_clk0 (default 200)
#   TERMSHIFT_JOBS         parallel Vivado jobs (default 4)
#   TERMSHIFT_OVERLAY_OUT  where termshift.bit / termshift.hwh go
#                          (default <root>/overlays/zcu104)
#   TERMSHIFT_ALLOW_TIMING_FAILURE=1  keep a bitstream with negative slack
#
# Writes <build>/overlay/build_info.json (engines, addresses, actual clock,
# Vivado version, worst slack) for the manifest step.

source [file join [file dirname [file normalize [info script]]] termshift_bd.tcl]

namespace eval ::termshift_ov {
    variable script_dir [file dirname [file normalize [info script]]]
    variable design termshift
}

proc ::termshift_ov::env_or {name default} {
    if {[info exists ::env($name)] && $::env($name) ne ""} {
        return $::env($name)
    }
    return $default
}

# {engine ip_dir} pairs of every engine that has exported IP, sorted by name.
proc ::termshift_ov::exported_ips {hls_dir} {
    set found [dict create]
    foreach xml [lsort [glob -nocomplain -directory $hls_dir gemm_*/*/impl/ip/component.xml]] {
        set ip_dir [file dirname $xml]
        set proj [file tail [file dirname [file dirname [file dirname $ip_dir]]]]
        set engine [string range $proj 5 end]
        if {![dict exists $found $engine]} {
            dict set found $engine $ip_dir
        }
    }
    return $found
}

proc ::termshift_ov::json_str {s} {
    return "\"[string map [list \\ \\\\ \" \\\" \n \\n \r \\r \t \\t] $s]\""
}

proc ::termshift_ov::write_build_info {path info engines} {
    set lines {}
    foreach key {board part board_part vivado_version bitstream hwh} {
        lappend lines "  [json_str $key]: [json_str [dict get $info $key]]"
    }
    foreach key {clock_mhz_requested clock_mhz wns_ns} {
        lappend lines "  [json_str $key]: [dict get $info $key]"
    }
    set items {}
    foreach e $engines {
        set fields {}
        foreach key {name top cell vlnv} {
            lappend fields "[json_str $key]: [json_str [dict get $e $key]]"
        }
        foreach key {control_base control_range} {
            lappend fields "[json_str $key]: [dict get $e $key]"
        }
        lappend items "    {[join $fields {, }]}"
    }
    lappend lines "  [json_str engines]: \[\n[join $items ",\n"]\n  \]"
    set f [open $path w]
    puts $f "\{\n[join $lines ",\n"]\n\}"
    close $f
}

proc ::termshift_ov::build {} {
    variable script_dir
    variable design
    variable part
    variable board_part
    variable ps

    set root [file normalize [env_or TERMSHIFT_ROOT [file join $script_dir .. ..]]]
    set build [file normalize [env_or TERMSHIFT_BUILD_DIR [file join $root build]]]
    set out_dir [file normalize [env_or TERMSHIFT_OVERLAY_OUT [file join $root overlays zcu104]]]
    set clock_mhz [env_or TERMSHIFT_CLOCK_MHZ 200]
    set jobs [env_or TERMSHIFT_JOBS 4]
    if {![string is double -strict $clock_mhz] || $clock_mhz <= 0} {
        error "TERMSHIFT_CLOCK_MHZ must be a positive number, got '$clock_mhz'"
    }

    set ips [exported_ips [file join $build hls]]
    set engines [env_or TERMSHIFT_ENGINES [lsort [dict keys $ips]]]
    if {[llength $engines] == 0} {
        error "no exported engine IP under [file join $build hls]; run scripts/build_hls.sh all export first"
    }
    set repo_paths {}
    foreach e $engines {
        if {![dict exists $ips $e]} {
            error "engine '$e' has no exported IP under [file join $build hls gemm_$e]; run scripts/build_hls.sh $e export"
        }
        lappend repo_paths [dict get $ips $e]
    }
    puts "termshift: overlay with engines {$engines} at $clock_mhz MHz"

    set proj_dir [file join $build overlay]
    file mkdir $proj_dir
    create_project -force $design $proj_dir -part $part
    set_property board_part $board_part [current_project]
    set_property ip_repo_paths $repo_paths [current_project]
    update_ip_catalog

    set placed [create_bd $design $engines $clock_mhz]
    # The PS rounds the requested PL clock to what its PLL dividers can make;
    # the manifest records what the fabric really runs at.
    set actual_mhz [get_property CONFIG.PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ [get_bd_cells $ps]]

    set bd_file [get_files $design.bd]
    generate_target all $bd_file
    set wrapper [make_wrapper -files $bd_file -top]
    add_files -norecurse $wrapper
    set_property top ${design}_wrapper [current_fileset]
    update_compile_order -fileset sources_1

    launch_runs impl_1 -to_step write_bitstream -jobs $jobs
    wait_on_run impl_1
    set run [get_runs impl_1]
    if {[get_property PROGRESS $run] ne "100%"} {
        error "implementation did not finish: [get_property STATUS $run] (logs in [get_property DIRECTORY $run])"
    }
    open_run impl_1
    report_utilization -file [file join $proj_dir utilization.rpt]
    report_timing_summary -file [file join $proj_dir timing_summary.rpt]
    set wns [get_property SLACK [get_timing_paths -max_paths 1 -nworst 1 -setup]]
    if {$wns eq ""} {
        set wns 0
    }
    if {$wns < 0 && [env_or TERMSHIFT_ALLOW_TIMING_FAILURE 0] ne "1"} {
        error "timing not met at $clock_mhz MHz (WNS $wns ns); lower TERMSHIFT_CLOCK_MHZ or set TERMSHIFT_ALLOW_TIMING_FAILURE=1"
    }

    set bit [file join [get_property DIRECTORY $run] ${design}_wrapper.bit]
    # Vivado 2020.2+ writes generated files under <project>.gen, older ones under .srcs.
    set hwh ""
    foreach tree [list $design.gen $design.srcs] {
        set cand [file join $proj_dir $tree sources_1 bd $design hw_handoff $design.hwh]
        if {[file exists $cand]} {
            set hwh $cand
            break
        }
    }
    if {![file exists $bit]} {
        error "no bitstream at $bit"
    }
    if {$hwh eq ""} {
        error "no $design.hwh under $proj_dir/$design.gen or .srcs"
    }
    # PYNQ loads X.bit together with X.hwh from the same folder.
    file mkdir $out_dir
    file copy -force $bit [file join $out_dir termshift.bit]
    file copy -force $hwh [file join $out_dir termshift.hwh]

    set info [dict create board zcu104 part $part board_part $board_part \
                  vivado_version [version -short] bitstream termshift.bit hwh termshift.hwh \
                  clock_mhz_requested $clock_mhz clock_mhz $actual_mhz wns_ns $wns]
    write_build_info [file join $proj_dir build_info.json] $info $placed
    puts "termshift: wrote [file join $out_dir termshift.bit] and termshift.hwh ($actual_mhz MHz, WNS $wns ns)"
}

if {[catch {::termshift_ov::build} err]} {
    puts stderr "termshift: ERROR: $err"
    exit 1
}
exit 0
