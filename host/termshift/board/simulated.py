"""A simulated ZCU104 carrying the termshift overlay, for tests and for users
without a board.

Owns:
- `write_overlay()`: the files a Vivado build leaves next to each other
  (`termshift.bit`, `termshift.hwh`, `manifest.json`) for a simulated overlay.
  The `.bit` has a real Xilinx header; its payload describes the simulated
  hardware (cells, base addresses, the register layout the engines really
  decode). The `.hwh` is generated separately and can be made to disagree
  with it, the way a stale `.hwh` would on a board.
- `SimulatedZCU104`, a `pynq.Device` (the pattern of pynq's own
  tests/mock_devices.py): register reads and writes go through
  `read_registers`/`write_registers`, so a write of ap_start runs the C-sim
  of that IP's top (`termshift._csim`: gemm_int, gemm_pot, gemm_tr, gemm_bfp
  or gemm_teq) on operands fetched from a simulated DDR by the physical
  addresses in the pointer registers, sized from the scalar registers as the
  top sizes them; buffers from `allocate` are
  `pynq.buffer.PynqBuffer`s whose device copy lives in that DDR, so a driver
  that forgets `sync_to_device`/`sync_from_device` sees stale data, as on the
  board (the buffers are cacheable). The PS clock registers (CRL_APB/CRF_APB)
  are modelled so pynq's `Clocks` sets and reads the PL clock as on a board.
- The engine model (`SimulatedEngine`): the Vitis HLS block-level protocol
  (ap_start/ap_done/ap_idle/ap_ready/auto_restart, GIE/IER/ISR, clear-on-read
  bits, ap_vld of output scalars), a configurable latency in polls, and a
  `hung` switch for testing timeouts.
- Simulated PMBus rails (`simulated_rails`) whose power rises while an engine
  computes, and deterministic sensors/recorder on a manual clock
  (`ManualClock`, `TraceSensor`, `ClockedRecorder`) whose traces are known
  exactly, for checking the power arithmetic.

The power numbers of the simulated rails are invented round figures, not
measurements; they exist so the energy pipeline runs end to end.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import hashlib
import json
import struct
import threading
import weakref
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from termshift.board import regmap as rm

try:
    import pynq
    from pynq.buffer import PynqBuffer
except ImportError as _exc:  # pragma: no cover - exercised only without pynq
    raise ImportError(
        f"termshift.board.simulated needs pynq ({_exc}); install it with `pip install 'termshift[board]'`"
    ) from _exc

BOARD_PART = "xilinx.com:zcu104:part0:1.1"
PART = "xczu7ev-ffvc1156-2-e"
PS_CELL = "zynq_ultra_ps_e_0"
PS_VLNV = "xilinx.com:ip:zynq_ultra_ps_e:3.5"
CONTROL_BASE = 0xA000_0000  # overlays/zcu104/termshift_bd.tcl: HPM0_FPD window
CONTROL_STRIDE = 0x1_0000
DDR_LOW = (0x0000_0000, 0x8000_0000)  # what the HP ports reach (DDR_LOW)
CMA_BASE = 0x6000_0000  # where the simulated allocator hands out buffers
SIM_MAGIC = b"TERMSHIFT-SIMULATED-OVERLAY\n"

# ZynqMP clock registers pynq's Clocks reads and writes (UG1087).
CRL_APB, CRF_APB = 0xFF5E_0000, 0xFD1A_0000
IOPLL_CTRL, RPLL_CTRL, PL_REF_CTRL = CRL_APB + 0x20, CRL_APB + 0x30, CRL_APB + 0xC0
PS_REF_MHZ = 33.333
IOPLL_FBDIV, IOPLL_DIV2 = 90, 1  # 1499.985 MHz, as on the ZCU104 preset

# The m_axi bundles of each top (the `bundle=` of its INTERFACE pragmas in
# hls/top/gemm_<engine>.cpp), which the .hwh lists as m_axi_<bundle> ports.
# Every top streams A, W (or its weight stream / term lists) and C on their
# own bundles and shares gmem_p among the small per-call vectors.
ENGINE_AXI_BUNDLES = {
    "int": ("gmem_a", "gmem_w", "gmem_p", "gmem_c"),  # gmem_p: bias, multiplier
    "pot": ("gmem_a", "gmem_w", "gmem_p", "gmem_c"),  # gmem_w: the compressed weight stream
    "tr": ("gmem_a", "gmem_w", "gmem_p", "gmem_c"),  # gmem_w: W or Wt; gmem_p: Wn, bias, multiplier
    "bfp": ("gmem_a", "gmem_w", "gmem_p", "gmem_c"),  # gmem_p: eref, bias, multiplier
    "teq": ("gmem_a", "gmem_w", "gmem_p", "gmem_c"),  # gmem_p: bias, multiplier, tables, lut
}
SIM_ENGINES = tuple(sorted(ENGINE_AXI_BUNDLES))  # what a simulated overlay carries by default
HP_OF_BUNDLE = {"gmem_a": 0, "gmem_w": 1, "gmem_c": 2}


class SimulatedBusError(RuntimeError):
    """An engine's master port addressed memory outside the simulated DDR."""


class SimulatedEngineError(RuntimeError):
    """The C-sim refused the operands the registers describe."""


# ---------------------------------------------------------------- files


def _pl_clock(clock_mhz: float) -> tuple[int, int, float]:
    """Divisors of IOPLL nearest `clock_mhz` and the rate they give."""
    src = PS_REF_MHZ * IOPLL_FBDIV / (2 if IOPLL_DIV2 else 1)
    best = min(((d0, d1) for d0 in range(1, 64) for d1 in range(1, 64)),
               key=lambda d: (abs(src / (d[0] * d[1]) - clock_mhz), d[1]))
    return best[0], best[1], round(src / (best[0] * best[1]), 6)


def bit_file_bytes(design: str, payload: bytes, when: _dt.datetime | None = None) -> bytes:
    """A .bit file: Xilinx's header (design/part/date/time fields) and a data
    field, laid out as pynq's parse_bit_header reads it."""
    when = when or _dt.datetime(2025, 1, 1, 0, 0, 0)
    payload = payload + b"\0" * (-len(payload) % 4)  # bit2bin byte-swaps 32-bit words

    def field(key: bytes, text: str) -> bytes:
        data = text.encode("ascii") + b"\0"
        return key + struct.pack(">H", len(data)) + data

    head = struct.pack(">H", 9) + bytes.fromhex("0ff00ff00ff00ff000") + struct.pack(">H", 1)
    head += field(b"a", f"{design};UserID=0XFFFFFFFF;Version=2023.1")
    head += field(b"b", PART)
    head += field(b"c", when.strftime("%Y/%m/%d"))
    head += field(b"d", when.strftime("%H:%M:%S"))
    return head + b"e" + struct.pack(">I", len(payload)) + payload


def read_bit_payload(path) -> bytes:
    """The data field of a .bit file (header checked)."""
    from pynq.pl_server.embedded_device import parse_bit_header

    return parse_bit_header(Path(path).read_bytes())["data"]


def _prop(parent, name, value):
    ET.SubElement(parent, "PROPERTY", NAME=name, VALUE=str(value))


def _register_xml(regs_el, name, offset, size, access, desc, fields):
    r = ET.SubElement(regs_el, "REGISTER", NAME=name)
    _prop(r, "DESCRIPTION", desc)
    _prop(r, "ADDRESS_OFFSET", offset)
    _prop(r, "SIZE", size)
    _prop(r, "ACCESS", access)
    _prop(r, "IS_ENABLED", "true")
    _prop(r, "RESET_VALUE", 0)
    fs = ET.SubElement(r, "FIELDS")
    for fname, bit, width, faccess, fdesc in fields:
        f = ET.SubElement(fs, "FIELD", NAME=fname)
        _prop(f, "DESCRIPTION", fdesc)
        _prop(f, "ADDRESS_OFFSET", 0)
        _prop(f, "ACCESS", faccess)
        _prop(f, "BIT_OFFSET", bit)
        _prop(f, "BIT_WIDTH", width)


def _vitis_registers(regs_el, regmap: rm.RegisterMap) -> None:
    """The register list Vitis HLS exports for a top, under the names it
    uses (CTRL, GIER, IP_IER, IP_ISR, A_1/A_2 for pointers, cycles_ctrl)."""
    b = regmap.ctrl_bits
    _register_xml(regs_el, "CTRL", regmap.ctrl, 32, "read-write", "Control signals", [
        ("AP_START", b["AP_START"], 1, "read-write", "Control signal Register for 'ap_start'."),
        ("AP_DONE", b["AP_DONE"], 1, "read-only", "Control signal Register for 'ap_done'."),
        ("AP_IDLE", b["AP_IDLE"], 1, "read-only", "Control signal Register for 'ap_idle'."),
        ("AP_READY", b["AP_READY"], 1, "read-only", "Control signal Register for 'ap_ready'."),
        ("RESERVED_1", 4, 3, "read-only", "Reserved.  0s on read."),
        ("AUTO_RESTART", b["AUTO_RESTART"], 1, "read-write", "Control signal Register for 'auto_restart'."),
        ("RESERVED_2", 8, 1, "read-only", "Reserved.  0s on read."),
        ("INTERRUPT", 9, 1, "read-only", "Control signal Register for 'interrupt'."),
        ("RESERVED_3", 10, 22, "read-only", "Reserved.  0s on read."),
    ])
    _register_xml(regs_el, "GIER", regmap.gie, 32, "read-write", "Global Interrupt Enable Register",
                  [("Enable", 0, 1, "read-write", "Master enable for the device interrupt output"),
                   ("RESERVED", 1, 31, "read-only", "Reserved.  0s on read.")])
    _register_xml(regs_el, "IP_IER", regmap.ier, 32, "read-write", "IP Interrupt Enable Register",
                  [("CHAN0_INT_EN", 0, 1, "read-write", "Enable Channel 0 (ap_done) Interrupt"),
                   ("CHAN1_INT_EN", 1, 1, "read-write", "Enable Channel 1 (ap_ready) Interrupt"),
                   ("RESERVED_0", 2, 30, "read-only", "Reserved.  0s on read.")])
    _register_xml(regs_el, "IP_ISR", regmap.isr, 32, "read-write", "IP Interrupt Status Register",
                  [("CHAN0_INT_ST", 0, 1, "read-write", "Channel 0 (ap_done) Interrupt Status"),
                   ("CHAN1_INT_ST", 1, 1, "read-write", "Channel 1 (ap_ready) Interrupt Status"),
                   ("RESERVED_0", 2, 30, "read-only", "Reserved.  0s on read.")])
    for arg in regmap.args.values():
        access = "read-only" if arg.kind == "out" else "write-only" if arg.kind == "ptr" else "read-write"
        if len(arg.words) == 1:
            _register_xml(regs_el, arg.name, arg.words[0], 32, access, f"Data signal of {arg.name}",
                          [(arg.name, 0, 32, access, f"Bit 31 to 0 of {arg.name}")])
        else:
            for i, off in enumerate(arg.words):
                _register_xml(regs_el, f"{arg.name}_{i + 1}", off, 32, access, f"Data signal of {arg.name}",
                              [(arg.name, 0, 32, access, f"Bit {32 * i + 31} to {32 * i} of {arg.name}")])
        if arg.ctrl is not None:
            _register_xml(regs_el, f"{arg.name}_ctrl", arg.ctrl, 32, "read-only", f"Control signal of {arg.name}",
                          [(f"{arg.name}_ap_vld", 0, 1, "read-only", f"Control signal {arg.name}_ap_vld"),
                           ("RESERVED", 1, 31, "read-only", "Reserved.  0s on read.")])


def hwh_text(design: str, engines: list[dict], clock_mhz: float, with_registers: bool = True) -> str:
    """A hardware handoff file for the simulated overlay: the PS (with its
    PL-clock parameters and the address map of every engine) and each engine
    (parameters, bus interfaces, register map). Structured like Vivado's, so
    pynq's parsers (pynqmetadata's and pynq's own HWH classes) read it."""
    d0, d1, act = _pl_clock(clock_mhz)
    root = ET.Element("EDKSYSTEM", EDWVERSION="1.2", TIMESTAMP="Wed Jan  1 00:00:00 2025", VIVADOVERSION="2023.1")
    ET.SubElement(root, "SYSTEMINFO", ARCH="zynquplus", BOARD=BOARD_PART, DEVICE="xczu7ev", NAME=design,
                  PACKAGE="ffvc1156", SPEEDGRADE="-2")
    ET.SubElement(root, "EXTERNALPORTS")
    ET.SubElement(root, "EXTERNALINTERFACES")
    modules = ET.SubElement(root, "MODULES")

    ps = ET.SubElement(modules, "MODULE", COREREVISION="5", FULLNAME="/" + PS_CELL, HWVERSION="3.5",
                       INSTANCE=PS_CELL, IPTYPE="PERIPHERAL", IS_ENABLE="1", MODCLASS="PROCESSOR",
                       MODTYPE="zynq_ultra_ps_e", VLNV=PS_VLNV)
    ET.SubElement(ps, "DOCUMENTS")
    params = ET.SubElement(ps, "PARAMETERS")
    for i in range(4):
        pre = f"PSU__CRL_APB__PL{i}_REF_CTRL__"
        on = i == 0
        values = {f"PSU__FPGA_PL{i}_ENABLE": int(on), pre + "SRCSEL": "IOPLL",
                  pre + "DIVISOR0": d0 if on else 15, pre + "DIVISOR1": d1 if on else 1,
                  pre + "FREQMHZ": clock_mhz if on else 100, pre + "ACT_FREQMHZ": act if on else 99.999}
        for k, v in values.items():
            ET.SubElement(params, "PARAMETER", NAME=k, VALUE=str(v))
    for k, v in {"C_MAXIGP0_DATA_WIDTH": 128, "PSU__USE__M_AXI_GP0": 1, "PSU_DDR_RAM_HIGHADDR": "0x7FFFFFFF"}.items():
        ET.SubElement(params, "PARAMETER", NAME=k, VALUE=str(v))
    mmap = ET.SubElement(ps, "MEMORYMAP")
    for e in engines:
        ET.SubElement(mmap, "MEMRANGE", ADDRESSBLOCK="Reg", BASENAME="C_S_AXI_CONTROL_BASEADDR",
                      BASEVALUE=f"0x{e['control_base']:08X}", HIGHNAME="C_S_AXI_CONTROL_HIGHADDR",
                      HIGHVALUE=f"0x{e['control_base'] + e['control_range'] - 1:08X}", INSTANCE=e["cell"],
                      IS_DATA="TRUE", IS_INSTRUCTION="TRUE", MASTERBUSINTERFACE="M_AXI_HPM0_FPD",
                      MEMTYPE="REGISTER", SLAVEBUSINTERFACE="s_axi_control")
    periph = ET.SubElement(ps, "PERIPHERALS")
    for e in engines:
        ET.SubElement(periph, "PERIPHERAL", INSTANCE=e["cell"])
    ports = ET.SubElement(ps, "PORTS")
    for pname, sigis, dst in (("pl_clk0", "clk", "ap_clk"), ("pl_resetn0", "rst", "ap_rst_n")):
        p = ET.SubElement(ports, "PORT", DIR="O", NAME=pname, SIGIS=sigis, SIGNAME=f"{PS_CELL}_{pname}")
        if sigis == "clk":
            p.set("CLKFREQUENCY", str(round(act * 1e6)))
        cons = ET.SubElement(p, "CONNECTIONS")
        for e in engines:
            ET.SubElement(cons, "CONNECTION", INSTANCE=e["cell"], PORT=dst)
    bifs = ET.SubElement(ps, "BUSINTERFACES")
    ET.SubElement(bifs, "BUSINTERFACE", BUSNAME="ps8_0_axi_periph_M00", DATAWIDTH="128", NAME="M_AXI_HPM0_FPD",
                  TYPE="MASTER", VLNV="xilinx.com:interface:aximm:1.0")
    for hp in range(4):
        ET.SubElement(bifs, "BUSINTERFACE", BUSNAME=f"axi_smc_hp{hp}_M00_AXI", DATAWIDTH="128",
                      NAME=f"S_AXI_HP{hp}_FPD", TYPE="SLAVE", VLNV="xilinx.com:interface:aximm:1.0")

    for e in engines:
        mod = ET.SubElement(modules, "MODULE", COREREVISION="1", FULLNAME="/" + e["cell"], HWVERSION="1.0",
                            INSTANCE=e["cell"], IPTYPE="PERIPHERAL", IS_ENABLE="1", MODCLASS="PERIPHERAL",
                            MODTYPE=e["top"], VLNV=e["vlnv"])
        ET.SubElement(mod, "DOCUMENTS")
        blocks = ET.SubElement(mod, "ADDRESSBLOCKS")
        blk = ET.SubElement(blocks, "ADDRESSBLOCK", ACCESS="read-write", INTERFACE="s_axi_control", NAME="Reg",
                            RANGE=str(e["control_range"]), USAGE="register")
        if with_registers:
            _vitis_registers(ET.SubElement(blk, "REGISTERS"), e["hwh_regmap"])
        params = ET.SubElement(mod, "PARAMETERS")
        for k, v in {"C_S_AXI_CONTROL_ADDR_WIDTH": max(4, (e["hwh_regmap"].span() - 1).bit_length()),
                     "C_S_AXI_CONTROL_DATA_WIDTH": 32, "Component_Name": f"termshift_{e['cell']}",
                     "C_S_AXI_CONTROL_BASEADDR": f"0x{e['control_base']:08X}",
                     "C_S_AXI_CONTROL_HIGHADDR": f"0x{e['control_base'] + e['control_range'] - 1:08X}"}.items():
            ET.SubElement(params, "PARAMETER", NAME=k, VALUE=str(v))
        for bundle in e["bundles"]:
            ET.SubElement(params, "PARAMETER", NAME=f"C_M_AXI_{bundle.upper()}_ADDR_WIDTH", VALUE="64")
        mm = ET.SubElement(mod, "MEMORYMAP")
        for bundle in e["bundles"]:
            hp = HP_OF_BUNDLE.get(bundle, 3)
            ET.SubElement(mm, "MEMRANGE", ADDRESSBLOCK=f"HP{hp}_DDR_LOW", BASENAME="C_BASEADDR",
                          BASEVALUE=f"0x{DDR_LOW[0]:08X}", HIGHNAME="C_HIGHADDR",
                          HIGHVALUE=f"0x{DDR_LOW[0] + DDR_LOW[1] - 1:08X}", INSTANCE=PS_CELL, IS_DATA="TRUE",
                          IS_INSTRUCTION="TRUE", MASTERBUSINTERFACE=f"m_axi_{bundle}", MEMTYPE="MEMORY",
                          SLAVEBUSINTERFACE=f"S_AXI_HP{hp}_FPD")
        ET.SubElement(mod, "PERIPHERALS")
        eports = ET.SubElement(mod, "PORTS")
        for pname, sigis, src in (("ap_clk", "clk", "pl_clk0"), ("ap_rst_n", "rst", "pl_resetn0")):
            p = ET.SubElement(eports, "PORT", DIR="I", NAME=pname, SIGIS=sigis, SIGNAME=f"{PS_CELL}_{src}")
            ET.SubElement(ET.SubElement(p, "CONNECTIONS"), "CONNECTION", INSTANCE=PS_CELL, PORT=src)
        ET.SubElement(eports, "PORT", DIR="O", NAME="interrupt", SENSITIVITY="LEVEL_HIGH", SIGIS="INTERRUPT",
                      SIGNAME="")
        ebifs = ET.SubElement(mod, "BUSINTERFACES")
        ET.SubElement(ebifs, "BUSINTERFACE", BUSNAME="ps8_0_axi_periph_M00", DATAWIDTH="32", NAME="s_axi_control",
                      TYPE="SLAVE", VLNV="xilinx.com:interface:aximm:1.0")
        for bundle in e["bundles"]:
            ET.SubElement(ebifs, "BUSINTERFACE", BUSNAME=f"{e['cell']}_m_axi_{bundle}", DATAWIDTH="32",
                          NAME=f"m_axi_{bundle}", TYPE="MASTER", VLNV="xilinx.com:interface:aximm:1.0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_overlay(directory, engines=SIM_ENGINES, clock_mhz: float = 100.0, name: str = "termshift",
                  layouts: dict | None = None, hwh_layouts: dict | None = None, hwh_registers: bool = True,
                  manifest_overrides: dict | None = None, vlnv_vendor: str = "termshift",
                  omit_from_hwh: tuple = ()) -> Path:
    """Write `<name>.bit`, `<name>.hwh` and `manifest.json` of a simulated
    overlay into `directory`; returns the .bit path.

    layouts: {engine: RegisterMap} the engines decode (default: the Vitis
    2022+ rule); a different one shows that the driver follows the .hwh.
    hwh_layouts: {engine: RegisterMap} to describe a different layout in the
    .hwh than the engine decodes, as a stale .hwh would. hwh_registers=False writes a .hwh without
    register maps (the fallback path). manifest_overrides: top-level keys or
    `engines` entries to change, to test mismatch handling. omit_from_hwh:
    engines the manifest and bitstream carry but the .hwh does not describe.

    Engines are placed as overlays/zcu104/termshift_bd.tcl places them: sorted
    by name, control blocks at CONTROL_BASE + 64 KiB * index."""
    from termshift import __version__
    from termshift.board.packing import BOARD_ENGINES
    from termshift.hls.manifest import MANIFEST_VERSION, validate

    geometry = {name: e.geometry for name, e in BOARD_ENGINES.items()}
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    placed = []
    for i, e in enumerate(sorted(engines)):
        if e not in geometry:
            raise ValueError(f"no simulated engine '{e}'; the simulator has {', '.join(geometry)}")
        top = f"gemm_{e}"
        true_map = (layouts or {}).get(e) or rm.vitis_layout(top)
        placed.append({"name": e, "top": top, "cell": f"{top}_0", "vlnv": f"{vlnv_vendor}:hls:{top}:1.0",
                       "control_base": CONTROL_BASE + i * CONTROL_STRIDE, "control_range": CONTROL_STRIDE,
                       "bundles": ENGINE_AXI_BUNDLES[e], "true_regmap": true_map,
                       "hwh_regmap": (hwh_layouts or {}).get(e, true_map)})
    _, _, act = _pl_clock(clock_mhz)
    hardware = {"design": name, "clock_mhz": act, "engines": [
        {"name": p["name"], "top": p["top"], "cell": p["cell"], "control_base": p["control_base"],
         "control_range": p["control_range"],
         "registers": {a.name: {"words": list(a.words), "ctrl": a.ctrl} for a in p["true_regmap"].args.values()}}
        for p in placed]}
    bit = directory / f"{name}.bit"
    hwh = directory / f"{name}.hwh"
    bit.write_bytes(bit_file_bytes(name, SIM_MAGIC + json.dumps(hardware, sort_keys=True).encode()))
    hwh.write_text(hwh_text(name, [p for p in placed if p["name"] not in omit_from_hwh], clock_mhz,
                            with_registers=hwh_registers))
    manifest = {
        "manifest_version": MANIFEST_VERSION, "version": __version__, "board": "zcu104", "part": PART,
        "clock_mhz": act, "bitstream": bit.name, "hwh": hwh.name,
        "sha256": {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in (bit, hwh)},
        "engines": [{"name": p["name"], "top": p["top"], "cell": p["cell"], "vlnv": p["vlnv"],
                     "rows": geometry[p["name"]].rows, "cols": geometry[p["name"]].cols,
                     "tile_k": geometry[p["name"]].tile_k, "control_base": p["control_base"],
                     "control_range": p["control_range"]} for p in placed],
        "build": {"vivado": "simulated", "clock_mhz_requested": clock_mhz, "wns_ns": None, "simulated": True},
    }
    for key, value in (manifest_overrides or {}).items():
        if key == "engines" and isinstance(value, dict):
            for eng in manifest["engines"]:
                eng.update(value.get(eng["name"], {}))
        else:
            manifest[key] = value
    if not manifest_overrides:
        validate(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return bit


# ---------------------------------------------------------------- engine


class SimulatedEngine:
    """One HLS engine's AXI-lite slave and its m_axi masters.

    Register semantics follow the Vitis HLS 2023 control block: ap_start is
    set by software and cleared by the handshake, ap_done and ap_ready clear
    on read, ap_idle is read-only, ISR bits toggle on write, output scalars
    have an ap_vld bit that clears on read. The C-sim runs when ap_start is
    written; completion becomes visible after `latency_polls` reads of the
    control word, so a driver that does not poll sees a busy engine."""

    def __init__(self, device, name: str, top: str, cell: str, base: int, span: int, registers: dict,
                 latency_polls: int = 2):
        self.device, self.name, self.top, self.cell = device, name, top, cell
        self.base, self.span = base, span
        args = {}
        for aname, kind, bits in rm.TOP_ARGS[top]:
            r = registers[aname]
            args[aname] = rm.ArgRegister(aname, kind, bits, tuple(r["words"]), r.get("ctrl"))
        self.regmap = rm.validate(rm.RegisterMap(top, args), span)
        self.words = np.zeros(span // 4, np.uint32)
        self.latency_polls = latency_polls
        self.hung = False
        self.calls = 0
        self.busy = False  # True while the C-sim computes (the power model reads it)
        self._remaining = 0
        self._pending = None
        b = self.regmap.ctrl_bits
        self._bit = {k: 1 << v for k, v in b.items()}
        self.words[self.regmap.ctrl // 4] = self._bit["AP_IDLE"]

    # -- register file --------------------------------------------------

    def _arg(self, name: str) -> int:
        value = 0
        for i, off in enumerate(self.regmap[name].words):
            value |= int(self.words[off // 4]) << (32 * i)
        return value

    def read(self, offset: int) -> int:
        idx = offset // 4
        r = self.regmap
        if offset == r.ctrl:
            if self._pending is not None:
                if self._remaining > 0:
                    self._remaining -= 1
                else:
                    self._complete()
            value = int(self.words[idx]) & ~(1 << rm.INTERRUPT)
            self.words[idx] &= ~np.uint32(self._bit["AP_DONE"] | self._bit["AP_READY"])  # clear on read
            if self.words[r.gie // 4] & 1 and self.words[r.isr // 4] & self.words[r.ier // 4]:
                value |= 1 << rm.INTERRUPT
            return value
        for arg in r.args.values():
            if arg.ctrl == offset:
                value = int(self.words[idx])
                self.words[idx] = 0
                return value
        return int(self.words[idx])

    def write(self, offset: int, value: int) -> None:
        idx = offset // 4
        r = self.regmap
        if offset == r.ctrl:
            keep = int(self.words[idx]) & ~self._bit["AUTO_RESTART"]
            self.words[idx] = keep | (value & self._bit["AUTO_RESTART"])
            if value & self._bit["AP_START"] and self.words[idx] & self._bit["AP_IDLE"]:
                self._start()
            return
        if offset == r.isr:
            self.words[idx] ^= np.uint32(value & 0x3)  # toggle on write
            return
        if offset == r.gie:
            self.words[idx] = value & 0x1
            return
        if offset == r.ier:
            self.words[idx] = value & 0x3
            return
        for arg in r.args.values():
            if offset in arg.words and arg.kind == "out" or arg.ctrl == offset:
                return  # read-only
        self.words[idx] = value & 0xFFFFFFFF

    # -- execution ------------------------------------------------------

    def _start(self) -> None:
        ctrl = self.regmap.ctrl // 4
        self.words[ctrl] = (int(self.words[ctrl]) & ~self._bit["AP_IDLE"]) | self._bit["AP_START"]
        self.calls += 1
        if self.hung:
            self._pending = "hung"
            self._remaining = float("inf")
            return
        try:
            self._pending = self._compute()
        except Exception:
            self.words[ctrl] = self._bit["AP_IDLE"]  # a refused call leaves the engine idle
            raise
        self._remaining = self.latency_polls

    def _compute(self):
        """Run the top on what its registers point at: (C address, C, cycles)."""
        m, n = self._arg("M"), self._arg("N")
        try:
            top = _SIM_TOPS[self.top]
        except KeyError:
            raise SimulatedEngineError(f"{self.cell}: the simulator has no model of top {self.top}") from None
        self.busy = True
        try:
            out, cycles = top(self, self.device)
        except ValueError as exc:
            regs = ", ".join(f"{a}={self._arg(a)}" for a, kind, _ in rm.TOP_ARGS[self.top] if kind == "in")
            raise SimulatedEngineError(f"{self.cell}: the engine cannot run these register values "
                                       f"({regs}): {exc}") from None
        finally:
            self.busy = False
        self.device.ddr_check(self._arg("C"), m * n * 4, f"{self.cell} C")
        return self._arg("C"), np.ascontiguousarray(out, np.int32), int(cycles)

    # What each top reads, from its pointer and scalar registers, as
    # hls/top/gemm_<engine>.cpp dereferences them; then the C-sim of that top.

    def _read(self, ptr: str, count: int, dtype) -> np.ndarray:
        return self.device.ddr_read(self._arg(ptr), count, dtype, f"{self.cell} {ptr}")

    def _i32(self, name: str) -> int:
        return int(np.uint32(self._arg(name)).view(np.int32))

    def _requant_regs(self) -> tuple:
        return self._arg("shift"), self._i32("lo"), self._i32("hi"), self._arg("flags")

    def _mk(self, n: int) -> tuple:
        m, k = self._arg("M"), self._arg("K")
        a = self._read("A", m * k, np.uint8).reshape(m, k)
        return a, self._read("bias", n, np.int32), self._read("multiplier", n, np.int32)

    def _sim_int(self, dev):
        n, k = self._arg("N"), self._arg("K")
        a, bias, mult = self._mk(n)
        w = self._read("W", n * k, np.int8).reshape(n, k)
        return dev.csim.gemm_int(dev.build, a, w, bias, mult, *self._requant_regs())

    def _sim_pot(self, dev):
        n, k, bits = self._arg("N"), self._arg("K"), self._arg("bits")
        a, bias, mult = self._mk(n)
        # The stream's length follows from its own group masks: read the most
        # it could be (every k kept), stop at the end of DDR, then keep what
        # the engine's walk over the masks consumes.
        cols = dev.csim.ENGINES["pot"]["cols"]
        most_bits = -(-n // cols) * k + n * k * max(bits, 0)
        addr = self._arg("W")
        room = (self.device.ddr_base + self.device.ddr.size - addr) // 4
        words = self.device.ddr_read(addr, max(0, min(-(-most_bits // 32), room)), np.uint32, f"{self.cell} W")
        used = dev.csim.pot_stream_bits(words, n, k, bits) if 2 <= bits <= 6 else 0
        if used < 0:
            raise SimulatedBusError(f"{self.cell} W: the weight stream at 0x{addr:X} runs past the end of the "
                                    f"simulated DDR (its group masks ask for more words than are left)")
        stream = words[:max(-(-used // 32), 1)]
        return dev.csim.gemm_pot(dev.build, a, stream, n, bits, self._arg("emax"), bias, mult, *self._requant_regs())

    def _sim_tr(self, dev):
        n, k = self._arg("N"), self._arg("K")
        a, bias, mult = self._mk(n)
        mode, group, slots = self._arg("mode"), self._arg("group"), self._arg("slots")
        if mode == dev.csim.ENGINES["tr"]["mode_tr"]:
            info = dev.csim.ENGINES["tr"]
            if not 1 <= group <= info["max_group"] or not 1 <= slots <= info["max_slots"]:
                raise ValueError(f"group={group} or slots={slots} out of range")
            n_groups = -(-k // group)
            terms = self._read("Wt", n * n_groups * slots, np.uint8).reshape(n, n_groups, slots)
            counts = self._read("Wn", n * n_groups, np.uint8).reshape(n, n_groups)
            w = np.zeros((1, 1), np.int8)
        else:
            w = self._read("W", n * k, np.int8).reshape(n, k)
            terms, counts = np.zeros((1, 1, 1), np.uint8), np.zeros((1, 1), np.uint8)
        shift, lo, hi, flags = self._requant_regs()
        return dev.csim.gemm_tr(dev.build, a, w, terms, counts, bias, mult, shift, lo, hi, flags, mode, group,
                                self._arg("data_terms"), self._arg("encoding"), self._arg("conv_bits"))

    def _sim_bfp(self, dev):
        n, k = self._arg("N"), self._arg("K")
        block_log2, m_bits, e_bits = self._arg("block_log2"), self._arg("m_bits"), self._arg("e_bits")
        if block_log2 > 16 or m_bits > 8 or e_bits > 8:
            raise ValueError(f"block_log2={block_log2}, m_bits={m_bits} or e_bits={e_bits} out of range")
        a, bias, mult = self._mk(n)
        # A packed row: one e_bits exponent per block, one m_bits mantissa per value.
        row_bytes = -(-((-(-k // (1 << block_log2))) * e_bits + k * m_bits) // 8)
        w = self._read("W", n * row_bytes, np.uint8).reshape(n, row_bytes)
        eref = self._read("eref", n, np.uint8)
        return dev.csim.gemm_bfp(dev.build, a, w, eref, bias, mult, block_log2, m_bits, e_bits,
                                 *self._requant_regs())

    def _sim_teq(self, dev):
        n, k = self._arg("N"), self._arg("K")
        w_bits, lw, la = self._arg("w_bits"), self._arg("lw"), self._arg("la")
        if not 2 <= w_bits <= 8 or not 1 <= lw <= 127 or not 1 <= la <= 127:
            raise ValueError(f"w_bits={w_bits}, lw={lw} or la={la} out of range")
        a, bias, mult = self._mk(n)
        w = self._read("W", n * -(-(k * w_bits) // 8), np.uint8).reshape(n, -1)
        tables = self._read("tables", 2 * (la + lw) - 1, np.int16)  # p (la + lw - 1), then w (lw), then a (la)
        lut = self._read("lut", 256, np.int8)
        return dev.csim.gemm_teq(dev.build, a, w, bias, mult, tables, lut, k, w_bits, lw, la, *self._requant_regs())

    def _complete(self) -> None:
        if self._pending == "hung":
            return
        c_addr, out, cycles = self._pending
        self._pending = None
        self.device.ddr_write(c_addr, out.view(np.uint8).reshape(-1))
        cyc = self.regmap["cycles"]
        for i, off in enumerate(cyc.words):
            self.words[off // 4] = (cycles >> (32 * i)) & 0xFFFFFFFF
        self.words[cyc.ctrl // 4] = 1
        ctrl = self.regmap.ctrl // 4
        value = int(self.words[ctrl]) & ~self._bit["AP_START"]
        value |= self._bit["AP_DONE"] | self._bit["AP_READY"] | self._bit["AP_IDLE"]
        isr = self.regmap.isr // 4
        self.words[isr] |= np.uint32(int(self.words[self.regmap.ier // 4]) & 0x3)
        self.words[ctrl] = value
        self._remaining = 0


_SIM_TOPS = {"gemm_int": SimulatedEngine._sim_int, "gemm_pot": SimulatedEngine._sim_pot,
             "gemm_tr": SimulatedEngine._sim_tr, "gemm_bfp": SimulatedEngine._sim_bfp,
             "gemm_teq": SimulatedEngine._sim_teq}


# ---------------------------------------------------------------- device


class SimulatedZCU104(pynq.Device):
    """A ZCU104 with the termshift overlay, simulated (see the module doc).

    Not registered with pynq's device probing (no `_probe_`): pass it
    explicitly, `TermshiftOverlay(bit, device=SimulatedZCU104())`."""

    # The PS is one per process, like pynq's Clocks singleton that writes it.
    _ps_regs: ClassVar[dict[int, int]] = {}
    _ps_lock = threading.Lock()

    def __init__(self, ddr_mib: int = 256, build: str = "fast", latency_polls: int = 2, tag: str = "sim_zcu104"):
        super().__init__(tag)
        from termshift.backends.csim import load_extension

        if build not in ("fast", "exact"):
            raise ValueError(f"build must be 'fast' or 'exact', got {build!r}")
        self.name = "ZCU104"
        self.arch = "aarch64"
        self.capabilities = {"REGISTER_RW": True}
        self.build = build
        self.csim = load_extension()
        self.latency_polls = latency_polls
        self.ddr_base = CMA_BASE
        self.ddr = np.zeros(ddr_mib << 20, np.uint8)  # pages are only touched when used
        self._free: list[tuple[int, int]] = [(0, self.ddr.size)]
        self._allocs: dict[int, tuple[int, int]] = {}
        self._next_bo = 1
        self.engines: dict[str, SimulatedEngine] = {}
        self.timestamp = ""
        self.bitfile_name = None
        self.clock_mhz = None
        with self._ps_lock:
            if not self._ps_regs:
                self._reset_ps_clocks()

    @classmethod
    def _reset_ps_clocks(cls) -> None:
        pll = (IOPLL_FBDIV << 8) | (IOPLL_DIV2 << 16)
        cls._ps_regs.update({IOPLL_CTRL: pll, RPLL_CTRL: pll, CRF_APB + 0x2C: pll, CRF_APB + 0x20: pll,
                             CRF_APB + 0x38: pll, CRF_APB + 0x60: (1 << 8)})
        for i in range(4):
            cls._ps_regs[PL_REF_CTRL + 4 * i] = (1 << 24) | (1 << 16) | (15 << 8)

    # -- metadata and programming ----------------------------------------

    def get_bitfile_metadata(self, bitfile_name, partial=False):
        """Parse the .hwh beside the bitstream with the parser a board's
        EmbeddedDevice uses (pynqmetadata)."""
        from pynqmetadata.frontends import Metadata
        from pynqmetadata.views.runtime import RuntimeMetadataParser

        hwh = Path(bitfile_name).with_suffix(".hwh")
        if not hwh.is_file():
            raise RuntimeError(f"Unable to find metadata for bitstream: {hwh} does not exist")
        return RuntimeMetadataParser(Metadata(input=str(hwh)))

    def download(self, bitstream, parser=None):
        payload = read_bit_payload(bitstream.bitfile_name)
        if not payload.startswith(SIM_MAGIC):
            raise RuntimeError(f"{bitstream.bitfile_name} is not a simulated termshift overlay; "
                               "the simulated ZCU104 can only load bitstreams written by termshift.board.simulated")
        hw = json.loads(payload[len(SIM_MAGIC):].rstrip(b"\0"))
        self.engines = {}
        for e in hw["engines"]:
            self.engines[e["cell"]] = SimulatedEngine(self, e["name"], e["top"], e["cell"], e["control_base"],
                                                      e["control_range"], e["registers"], self.latency_polls)
        self.clock_mhz = hw["clock_mhz"]
        self.post_download(bitstream, parser)

    def gen_cache(self, bitstream, parser=None):
        pass

    # -- AXI-lite ---------------------------------------------------------

    def _target(self, address: int):
        for eng in self.engines.values():
            if eng.base <= address < eng.base + eng.span:
                return eng, address - eng.base
        return None, address

    def read_registers(self, address, length):
        if address % 4 or length % 4:
            raise MemoryError(f"unaligned AXI-lite read at 0x{address:X} ({length} bytes)")
        out = bytearray()
        for a in range(address, address + length, 4):
            eng, off = self._target(a)
            if eng is not None:
                word = eng.read(off)
            else:
                with self._ps_lock:
                    word = self._ps_regs.get(a, 0)
            out += struct.pack("<I", word & 0xFFFFFFFF)
        return bytes(out)

    def write_registers(self, address, data):
        data = bytes(data)
        if address % 4 or len(data) % 4:
            raise MemoryError(f"unaligned AXI-lite write at 0x{address:X} ({len(data)} bytes)")
        for i in range(0, len(data), 4):
            (word,) = struct.unpack_from("<I", data, i)
            eng, off = self._target(address + i)
            if eng is not None:
                eng.write(off, word)
            else:
                with self._ps_lock:
                    self._ps_regs[address + i] = word

    # -- DDR and buffers --------------------------------------------------

    def _span(self, phys: int, nbytes: int, what: str) -> int:
        off = phys - self.ddr_base
        if nbytes < 0 or off < 0 or off + nbytes > self.ddr.size:
            raise SimulatedBusError(
                f"{what}: access to 0x{phys:X} (+{nbytes} bytes) is outside the simulated DDR "
                f"[0x{self.ddr_base:X}, 0x{self.ddr_base + self.ddr.size:X}); the pointer register is wrong")
        return off

    def ddr_check(self, phys: int, nbytes: int, what: str = "access") -> None:
        self._span(phys, nbytes, what)

    def ddr_read(self, phys: int, count: int, dtype, what: str = "read") -> np.ndarray:
        dtype = np.dtype(dtype)
        off = self._span(phys, count * dtype.itemsize, what)
        return self.ddr[off:off + count * dtype.itemsize].view(dtype).copy()

    def ddr_write(self, phys: int, data: np.ndarray, what: str = "write") -> None:
        off = self._span(phys, data.nbytes, what)
        self.ddr[off:off + data.nbytes] = data.view(np.uint8).reshape(-1)

    def allocate(self, shape, dtype, **kwargs):
        """A cacheable PynqBuffer whose device copy lives in the simulated DDR."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        size = max(4096, -(-nbytes // 4096) * 4096)
        for i, (start, length) in enumerate(self._free):
            if length >= size:
                self._free[i] = (start + size, length - size)
                break
        else:
            raise MemoryError(f"simulated DDR exhausted: cannot allocate {nbytes} bytes "
                              f"(SimulatedZCU104(ddr_mib=...) sets its size)")
        bo = self._next_bo
        self._next_bo += 1
        self._allocs[bo] = (start, size)
        buf = PynqBuffer(shape, dtype, device=self, device_address=self.ddr_base + start, bo=bo, coherent=False)
        weakref.finalize(buf, self._release, bo)
        return buf

    def _release(self, bo: int) -> None:
        start, size = self._allocs.pop(bo)
        self._free.append((start, size))
        self._free.sort()
        merged = [self._free[0]]
        for s, n in self._free[1:]:
            ps, pn = merged[-1]
            if ps + pn == s:
                merged[-1] = (ps, pn + n)
            else:
                merged.append((s, n))
        self._free = merged

    def _bo_span(self, bo, offset, length):
        start, size = self._allocs[bo]
        if offset < 0 or offset + length > size:
            raise SimulatedBusError(f"buffer {bo}: sync of [{offset}, {offset + length}) outside its {size} bytes")
        return self.ddr.ctypes.data + start + offset

    def flush(self, bo, offset, vaddr, length):
        """Write back the CPU cache: host bytes -> device copy in DDR."""
        ctypes.memmove(self._bo_span(bo, offset, length), vaddr, length)

    def invalidate(self, bo, offset, vaddr, length):
        """Drop the CPU cache: device copy in DDR -> host bytes."""
        ctypes.memmove(vaddr, self._bo_span(bo, offset, length), length)

    # -- conveniences for tests -------------------------------------------

    def engine(self, cell: str) -> SimulatedEngine:
        try:
            return self.engines[cell]
        except KeyError:
            raise KeyError(f"no engine cell {cell!r} on the simulated board; it has {', '.join(self.engines)}") from None

    def busy(self) -> bool:
        return any(e.busy for e in self.engines.values())


# ---------------------------------------------------------------- power


class _Sensor:
    """A power sensor with pynq.pmbus's interface (name, value, get_value, parents)."""

    def __init__(self, name: str, fn):
        self.name = name
        self._fn = fn
        self.parents = ()

    def get_value(self, parents=None):
        return float(self._fn())

    @property
    def value(self):
        return self.get_value()

    def __repr__(self):
        return f"Sensor {{name={self.name}, value={self.value}W}}"


class SimRail:
    """A rail with pynq.pmbus.Rail's attributes; only power is simulated."""

    def __init__(self, name: str, power: _Sensor):
        self.name = name
        self.voltage = None
        self.current = None
        self.power = power

    def __repr__(self):
        return f"Rail {{name={self.name}, power={self.power!r}}}"


# Idle and busy watts per rail of the simulated board: invented round numbers
# in the range a ZCU104 with a small overlay shows, not measurements.
SIM_RAIL_WATTS = {"INT": (0.90, 0.60), "1V8": (0.30, 0.00), "1V2": (0.45, 0.15), "MGTA": (0.10, 0.00),
                  "3V3": (0.20, 0.00), "1V13": (0.05, 0.00), "5V0": (0.30, 0.00), "FMC": (0.00, 0.00),
                  "MGTRA": (0.05, 0.00)}
SIM_12V_IDLE_W = 9.5  # board input: rails above plus everything unmetered
SIM_REGULATOR_EFFICIENCY = 0.85


def simulated_rails(device: SimulatedZCU104) -> dict:
    """The ZCU104's PMBus rails (plus the 12V input), as `pynq.pmbus.get_rails`
    returns them, whose power steps up while any engine on `device` runs the
    C-sim. Averaged over a run this makes dynamic energy proportional to the
    time the engines compute."""
    rails = {}
    for name, (idle, busy) in SIM_RAIL_WATTS.items():
        rails[name] = SimRail(name, _Sensor(f"{name}_power", lambda i=idle, b=busy: i + (b if device.busy() else 0.0)))
    extra = sum(b for _, b in SIM_RAIL_WATTS.values()) / SIM_REGULATOR_EFFICIENCY
    rails["12V"] = SimRail("12V", _Sensor("12V_power", lambda: SIM_12V_IDLE_W + (extra if device.busy() else 0.0)))
    return rails


class ManualClock:
    """Time that only moves when told to: `sleep(dt)` advances it and lets
    recorders attached to it take the samples that fall due, so traces are
    sampled at exact instants. Kept in integer nanoseconds so that sums of
    sleeps do not drift."""

    def __init__(self, t0: float = 0.0):
        self.ns = round(t0 * 1e9)
        self._listeners = []

    def __call__(self) -> float:
        return self.ns / 1e9

    def attach(self, fn) -> None:
        self._listeners.append(fn)

    def detach(self, fn) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def sleep(self, dt: float) -> None:
        end = self.ns + round(float(dt) * 1e9)
        while True:
            due = [fn.next_due_ns() for fn in self._listeners if fn.next_due_ns() is not None]
            if not due or min(due) > end:
                break
            self.ns = min(due)
            for fn in list(self._listeners):
                if fn.next_due_ns() is not None and fn.next_due_ns() <= self.ns:
                    fn.sample()
        self.ns = end


class TraceSensor(_Sensor):
    """Power given as a function of a clock's time: p = fn(t)."""

    def __init__(self, name: str, fn, clock: ManualClock):
        super().__init__(name, lambda: fn(clock()))


@dataclass
class _Sample:
    t: int  # ns
    mark: int
    values: tuple


class ClockedRecorder:
    """pynq.pmbus.DataRecorder's interface (record/mark/stop/frame, context
    manager) sampling on a ManualClock instead of a thread: samples land at
    exact multiples of the interval after `record`, including its start."""

    def __init__(self, *sensors, clock: ManualClock):
        self._sensors = sensors
        self._clock = clock
        self._record_index = -1
        self._samples: list[_Sample] = []
        self._next = None
        self._interval = None

    def record(self, interval):
        if self._next is not None:
            raise RuntimeError("DataRecorder is already recording")
        self._interval = round(float(interval) * 1e9)
        self._record_index += 1
        self._clock.attach(self)
        self.sample()
        return self

    def next_due_ns(self):
        return self._next

    def sample(self):
        self._samples.append(_Sample(self._clock.ns, self._record_index, tuple(s.get_value() for s in self._sensors)))
        self._next = self._clock.ns + self._interval

    def mark(self):
        self._record_index += 1
        return self._record_index

    def stop(self):
        self._clock.detach(self)
        self._next = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def frame(self):
        import pandas as pd

        index = pd.to_datetime([s.t for s in self._samples], unit="ns")
        data = {"Mark": [float(s.mark) for s in self._samples]}
        for i, sensor in enumerate(self._sensors):
            data[sensor.name] = [s.values[i] for s in self._samples]
        return pd.DataFrame(data, index=index)
