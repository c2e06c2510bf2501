# The termshift block design for the ZCU104: the Zynq UltraScale+ PS with the
# board preset, every HLS engine as an IP cell, and the AXI plumbing between
# them. Sourced by build_overlay.tcl; can also be sourced into an open Vivado
# project to recreate the design by hand (see overlays/zcu104/README.md).
#
#   PS M_AXI_HPM0_FPD -> AXI interconnect -> each engine's s_axi_control
#       (registers at 0xA000_0000 + 64 KiB * engine index, in engine order)
#   engine m_axi_gmem_a -> SmartConnect -> S_AXI_HP0_FPD
#   engine m_axi_gmem_w -> SmartConnect -> S_AXI_HP1_FPD
#   engine m_axi_gmem_c -> SmartConnect -> S_AXI_HP2_FPD
#   every other m_axi   -> SmartConnect -> S_AXI_HP3_FPD
#   pl_clk0 (TERMSHIFT_CLOCK_MHZ) clocks everything; one proc_sys_reset.
#
# A, W and C of all engines each get their own HP port because those are the
# streams that run concurrently during a GEMM; the small per-channel vectors
# (bias, multiplier) share the fourth.

namespace eval ::termshift_ov {
    variable part xczu7ev-ffvc1156-2-e
    variable board_part xilinx.com:zcu104:part0:1.1
    variable ps zynq_ultra_ps_e_0
    variable control_base 0xA0000000
    variable control_stride 0x10000
    variable control_range 64K
    variable hp_of_bundle {gmem_a 0 gmem_w 1 gmem_c 2}
    variable hp_default 3
}

# The catalog VLNV of an HLS top, preferring the termshift:hls library that
# scripts/build_hls.sh exports to over any other IP of the same name.
proc ::termshift_ov::ip_vlnv {top} {
    set defs [get_ipdefs -filter "NAME == $top"]
    if {[llength $defs] == 0} {
        error "IP '$top' is not in the IP catalog; run scripts/build_hls.sh [string range $top 5 end] export first"
    }
    foreach d $defs {
        if {[string match termshift:hls:* $d]} {
            return $d
        }
    }
    return [lindex $defs end]
}

proc ::termshift_ov::hp_port_for {bundle} {
    variable hp_of_bundle
    variable hp_default
    if {[dict exists $hp_of_bundle $bundle]} {
        return [dict get $hp_of_bundle $bundle]
    }
    return $hp_default
}

# Creates and validates block design `design` holding `engines` (names such as
# int, pot). Returns a list of dicts, one per engine: name top cell vlnv
# control_base control_range.
proc ::termshift_ov::create_bd {design engines clock_mhz} {
    variable ps
    variable control_base
    variable control_stride
    variable control_range
    if {[llength $engines] == 0} {
        error "no engines to put in the overlay"
    }

    create_bd_design $design
    create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e $ps
    apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset "1"} [get_bd_cells $ps]

    # Engines first: their m_axi bundles decide which HP ports the PS opens.
    set hp_pins [dict create 0 {} 1 {} 2 {} 3 {}]
    set result {}
    foreach e $engines {
        set top gemm_$e
        set cell ${top}_0
        set vlnv [ip_vlnv $top]
        create_bd_cell -type ip -vlnv $vlnv $cell
        set slaves [get_bd_intf_pins -of_objects [get_bd_cells $cell] -filter {MODE == Slave}]
        if {[llength $slaves] != 1} {
            error "$cell has [llength $slaves] AXI slave interfaces; expected one s_axilite control interface"
        }
        foreach pin [get_bd_intf_pins -of_objects [get_bd_cells $cell] -filter {MODE == Master}] {
            set bundle [regsub {^m_axi_} [get_property NAME $pin] {}]
            dict lappend hp_pins [hp_port_for $bundle] $pin
        }
        lappend result [dict create name $e top $top cell $cell vlnv $vlnv slave [lindex $slaves 0]]
    }

    set used_hp {}
    foreach hp {0 1 2 3} {
        if {[llength [dict get $hp_pins $hp]] > 0} {
            lappend used_hp $hp
        }
    }
    # HPM0_FPD carries control; HPM1_FPD and HPM0_LPD stay off so no unused
    # master needs a clock. S_AXI_GP2..GP5 are HP0..HP3.
    set cfg [list \
        CONFIG.PSU__USE__M_AXI_GP0 {1} \
        CONFIG.PSU__USE__M_AXI_GP1 {0} \
        CONFIG.PSU__USE__M_AXI_GP2 {0} \
        CONFIG.PSU__FPGA_PL0_ENABLE {1} \
        CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ $clock_mhz]
    foreach hp {0 1 2 3} {
        lappend cfg CONFIG.PSU__USE__S_AXI_GP[expr {$hp + 2}] [expr {[lsearch -exact $used_hp $hp] >= 0 ? 1 : 0}]
    }
    set_property -dict $cfg [get_bd_cells $ps]

    # One clock and one reset domain.
    set clk [get_bd_pins $ps/pl_clk0]
    create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset rst_pl_clk0
    connect_bd_net $clk [get_bd_pins rst_pl_clk0/slowest_sync_clk]
    connect_bd_net [get_bd_pins $ps/pl_resetn0] [get_bd_pins rst_pl_clk0/ext_reset_in]
    set periph_rstn [get_bd_pins rst_pl_clk0/peripheral_aresetn]
    set ic_rstn [get_bd_pins rst_pl_clk0/interconnect_aresetn]
    connect_bd_net $clk [get_bd_pins $ps/maxihpm0_fpd_aclk]
    foreach hp $used_hp {
        connect_bd_net $clk [get_bd_pins $ps/saxihp${hp}_fpd_aclk]
    }
    foreach r $result {
        set cell [dict get $r cell]
        connect_bd_net $clk [get_bd_pins $cell/ap_clk]
        connect_bd_net $periph_rstn [get_bd_pins $cell/ap_rst_n]
    }

    # Control: AXI-lite through an AXI interconnect, one master port per engine.
    set n [llength $result]
    create_bd_cell -type ip -vlnv xilinx.com:ip:axi_interconnect ctrl_interconnect
    set_property CONFIG.NUM_MI $n [get_bd_cells ctrl_interconnect]
    connect_bd_intf_net [get_bd_intf_pins $ps/M_AXI_HPM0_FPD] [get_bd_intf_pins ctrl_interconnect/S00_AXI]
    connect_bd_net $clk [get_bd_pins ctrl_interconnect/ACLK]
    connect_bd_net $ic_rstn [get_bd_pins ctrl_interconnect/ARESETN]
    connect_bd_net $clk [get_bd_pins ctrl_interconnect/S00_ACLK]
    connect_bd_net $periph_rstn [get_bd_pins ctrl_interconnect/S00_ARESETN]
    for {set i 0} {$i < $n} {incr i} {
        set m [format M%02d $i]
        connect_bd_intf_net [get_bd_intf_pins ctrl_interconnect/${m}_AXI] [dict get [lindex $result $i] slave]
        connect_bd_net $clk [get_bd_pins ctrl_interconnect/${m}_ACLK]
        connect_bd_net $periph_rstn [get_bd_pins ctrl_interconnect/${m}_ARESETN]
    }

    # Data: one SmartConnect per HP port, fanning in every master mapped to it.
    foreach hp $used_hp {
        set pins [dict get $hp_pins $hp]
        set sc axi_smc_hp$hp
        create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect $sc
        set_property -dict [list CONFIG.NUM_SI [llength $pins] CONFIG.NUM_MI {1}] [get_bd_cells $sc]
        connect_bd_net $clk [get_bd_pins $sc/aclk]
        connect_bd_net $periph_rstn [get_bd_pins $sc/aresetn]
        for {set i 0} {$i < [llength $pins]} {incr i} {
            connect_bd_intf_net [lindex $pins $i] [get_bd_intf_pins $sc/[format S%02d_AXI $i]]
        }
        connect_bd_intf_net [get_bd_intf_pins $sc/M00_AXI] [get_bd_intf_pins $ps/S_AXI_HP${hp}_FPD]
    }

    # Addresses: control registers at fixed, documented offsets (the manifest
    # records them; the driver still reads the .hwh), then everything the
    # engines' masters can reach (DDR through the HP ports) automatically.
    set space [get_bd_addr_spaces $ps/Data]
    set out {}
    for {set i 0} {$i < $n} {incr i} {
        set r [lindex $result $i]
        set base [expr {$control_base + $i * $control_stride}]
        set seg [get_bd_addr_segs -of_objects [dict get $r slave]]
        assign_bd_address -target_address_space $space -offset [format 0x%08X $base] -range $control_range $seg
        dict unset r slave
        dict set r control_base $base
        dict set r control_range [expr {$control_stride}]
        lappend out $r
    }
    assign_bd_address

    validate_bd_design
    save_bd_design
    return $out
}
