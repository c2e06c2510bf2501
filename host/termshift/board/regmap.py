"""Register maps of the engines' s_axilite control interfaces.

Owns: the argument list of every engine top (the order Vitis HLS lays the
registers out in), reading each argument's offsets from the register map that
the overlay's `.hwh` carries (`ip_dict[cell]["registers"]`, as pynq parses it,
or straight from the XML with `read_hwh`), and the Vitis HLS 2022+ layout
rule, used only as a checked fallback when a `.hwh` has no register map.

Offsets move between Vitis releases (older ones put output scalars on 16-byte
boundaries, some name pointer halves `A_1`/`A_2`, others `A_DATA_0`/...), so
the `.hwh` is the authority; the rule exists so a stripped `.hwh` still works
once the driver has probed the live registers (see `check_probe`).

Standard library only: runs on the board and in tools that never import pynq.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

# Block-level control register, common to every Vitis HLS top.
CTRL, GIE, IER, ISR = 0x00, 0x04, 0x08, 0x0C
ARGS_BASE = 0x10
AP_START, AP_DONE, AP_IDLE, AP_READY, AUTO_RESTART, INTERRUPT = 0, 1, 2, 3, 7, 9
CTRL_FIELDS = {"AP_START": AP_START, "AP_DONE": AP_DONE, "AP_IDLE": AP_IDLE, "AP_READY": AP_READY,
               "AUTO_RESTART": AUTO_RESTART}

# (name, kind, bits). kind: "ptr" (m_axi offset register, 64-bit address),
# "in" (input scalar), "out" (output scalar with an ap_vld control word).
# Order is the C argument order of hls/top/gemm_<engine>.cpp, which is the
# order Vitis assigns offsets in (tests/test_board_engines.py parses the tops
# and checks these lists against them).
TOP_ARGS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "gemm_int": (
        ("A", "ptr", 64), ("W", "ptr", 64), ("bias", "ptr", 64), ("multiplier", "ptr", 64), ("C", "ptr", 64),
        ("M", "in", 32), ("N", "in", 32), ("K", "in", 32), ("shift", "in", 32), ("lo", "in", 32),
        ("hi", "in", 32), ("flags", "in", 32), ("cycles", "out", 64),
    ),
    "gemm_pot": (
        ("A", "ptr", 64), ("W", "ptr", 64), ("bias", "ptr", 64), ("multiplier", "ptr", 64), ("C", "ptr", 64),
        ("M", "in", 32), ("N", "in", 32), ("K", "in", 32), ("bits", "in", 32), ("emax", "in", 32),
        ("shift", "in", 32), ("lo", "in", 32), ("hi", "in", 32), ("flags", "in", 32), ("cycles", "out", 64),
    ),
    "gemm_tr": (
        ("A", "ptr", 64), ("W", "ptr", 64), ("Wt", "ptr", 64), ("Wn", "ptr", 64), ("bias", "ptr", 64),
        ("multiplier", "ptr", 64), ("C", "ptr", 64),
        ("M", "in", 32), ("N", "in", 32), ("K", "in", 32), ("shift", "in", 32), ("lo", "in", 32),
        ("hi", "in", 32), ("flags", "in", 32), ("mode", "in", 32), ("group", "in", 32), ("slots", "in", 32),
        ("data_terms", "in", 32), ("encoding", "in", 32), ("conv_bits", "in", 32), ("cycles", "out", 64),
    ),
    "gemm_bfp": (
        ("A", "ptr", 64), ("W", "ptr", 64), ("eref", "ptr", 64), ("bias", "ptr", 64), ("multiplier", "ptr", 64),
        ("C", "ptr", 64),
        ("M", "in", 32), ("N", "in", 32), ("K", "in", 32), ("block_log2", "in", 32), ("m_bits", "in", 32),
        ("e_bits", "in", 32), ("shift", "in", 32), ("lo", "in", 32), ("hi", "in", 32), ("flags", "in", 32),
        ("cycles", "out", 64),
    ),
    "gemm_teq": (
        ("A", "ptr", 64), ("W", "ptr", 64), ("bias", "ptr", 64), ("multiplier", "ptr", 64), ("tables", "ptr", 64),
        ("lut", "ptr", 64), ("C", "ptr", 64),
        ("M", "in", 32), ("N", "in", 32), ("K", "in", 32), ("w_bits", "in", 32), ("lw", "in", 32),
        ("la", "in", 32), ("shift", "in", 32), ("lo", "in", 32), ("hi", "in", 32), ("flags", "in", 32),
        ("cycles", "out", 64),
    ),
}


class RegisterMapError(ValueError):
    """A register map is missing an argument, overlaps itself, or disagrees with the hardware."""


@dataclass(frozen=True)
class ArgRegister:
    """Where one top-level argument lives: its 32-bit data words (least
    significant first) and, for output scalars, the ap_vld control word."""

    name: str
    kind: str
    bits: int
    words: tuple[int, ...]
    ctrl: int | None = None


@dataclass(frozen=True)
class RegisterMap:
    """The control interface of one engine instance."""

    top: str
    args: dict
    ctrl: int = CTRL
    ctrl_bits: dict = field(default_factory=lambda: dict(CTRL_FIELDS))
    gie: int = GIE
    ier: int = IER
    isr: int = ISR
    source: str = "hwh"  # "hwh" or "fallback"

    def __getitem__(self, name: str) -> ArgRegister:
        return self.args[name]

    def named_words(self) -> list[tuple[int, str]]:
        """(offset, label) of every word, in address order: what a dump shows."""
        out = [(self.ctrl, "CTRL"), (self.gie, "GIE"), (self.ier, "IER"), (self.isr, "ISR")]
        for arg in self.args.values():
            for i, off in enumerate(arg.words):
                suffix = f"[{32 * i + 31}:{32 * i}]" if len(arg.words) > 1 else ""
                out.append((off, arg.name + suffix))
            if arg.ctrl is not None:
                out.append((arg.ctrl, f"{arg.name}_ap_vld"))
        return sorted(out)

    def span(self) -> int:
        """Bytes the map occupies (last word + 4)."""
        return max(off for off, _ in self.named_words()) + 4


def vitis_layout(top: str) -> RegisterMap:
    """The layout Vitis HLS 2022.x/2023.x generates: arguments packed from
    0x10 in C order; a pointer takes lo, hi, reserved; a 32-bit input scalar
    data, reserved; an output scalar its data words then its ap_vld word."""
    spec = _args_of(top)
    off = ARGS_BASE
    args = {}
    for name, kind, bits in spec:
        nwords = bits // 32
        words = tuple(off + 4 * i for i in range(nwords))
        if kind == "out":
            args[name] = ArgRegister(name, kind, bits, words, ctrl=off + 4 * nwords)
            off += 4 * nwords + 4
        else:
            args[name] = ArgRegister(name, kind, bits, words)
            off += 4 * nwords + 4  # the reserved word after every input
    return RegisterMap(top, args, source="fallback")


def _args_of(top: str):
    try:
        return TOP_ARGS[top]
    except KeyError:
        raise RegisterMapError(f"no argument list for top {top!r}; this termshift knows {', '.join(TOP_ARGS)}") from None


def _norm(name: str) -> str:
    return name.lower()


def _find(registers: dict, *names: str):
    """The first register whose name matches one of `names` (case-insensitive)."""
    index = {_norm(k): (k, v) for k, v in registers.items()}
    for n in names:
        if _norm(n) in index:
            return index[_norm(n)]
    return None


def _offset(reg: dict) -> int:
    off = reg["address_offset"]
    return int(off, 0) if isinstance(off, str) else int(off)


def _size_bits(reg: dict) -> int:
    size = reg.get("size", 32)
    return int(size, 0) if isinstance(size, str) else int(size)


def _words_for(registers: dict, top: str, name: str, bits: int) -> tuple[int, ...]:
    nwords = bits // 32
    # One register wide enough for the whole argument.
    whole = _find(registers, name, f"{name}_r", f"{name}_DATA")
    if whole is not None and _size_bits(whole[1]) >= bits:
        base = _offset(whole[1])
        return tuple(base + 4 * i for i in range(nwords))
    # Split into 32-bit halves: Vitis names them NAME_1, NAME_2 (or _DATA_0/1).
    for pattern in ("{n}_{i1}", "{n}_r_{i1}", "{n}_DATA_{i0}"):
        parts = [_find(registers, pattern.format(n=name, i1=i + 1, i0=i)) for i in range(nwords)]
        if all(p is not None for p in parts):
            return tuple(_offset(p[1]) for p in parts)
    if whole is not None and nwords == 1:
        return (_offset(whole[1]),)
    raise RegisterMapError(
        f"{top}: the .hwh register map has no register for argument '{name}' "
        f"(looked for {name}, {name}_1/{name}_2, {name}_DATA_0/...); it lists {', '.join(sorted(registers)) or 'nothing'}"
    )


def _ctrl_bits(registers: dict) -> dict:
    found = _find(registers, "CTRL", "AP_CTRL")
    bits = dict(CTRL_FIELDS)
    if found is None:
        return bits
    fields = {_norm(k): v for k, v in (found[1].get("fields") or {}).items()}
    for key in bits:
        f = fields.get(_norm(key))
        if f is not None:
            bits[key] = int(f["bit_offset"])
    return bits


def from_registers(top: str, registers: dict | None) -> RegisterMap:
    """The map of `top` from an ip_dict "registers" entry (pynq's parse of
    the .hwh). Falls back to `vitis_layout` only when the .hwh has no
    registers at all; the caller must then `check_probe` the live hardware."""
    if not registers:
        return vitis_layout(top)
    args = {}
    for name, kind, bits in _args_of(top):
        words = _words_for(registers, top, name, bits)
        ctrl = None
        if kind == "out":
            c = _find(registers, f"{name}_ctrl", f"{name}_r_ctrl", f"{name}_CTRL")
            if c is None:
                raise RegisterMapError(f"{top}: output '{name}' has no ap_vld control register ({name}_ctrl) in the .hwh")
            ctrl = _offset(c[1])
        args[name] = ArgRegister(name, kind, bits, words, ctrl)

    def at(names, default):
        found = _find(registers, *names)
        return _offset(found[1]) if found else default

    regmap = RegisterMap(top, args, ctrl=at(("CTRL", "AP_CTRL"), CTRL), ctrl_bits=_ctrl_bits(registers),
                         gie=at(("GIER", "GIE"), GIE), ier=at(("IP_IER", "IER"), IER), isr=at(("IP_ISR", "ISR"), ISR),
                         source="hwh")
    validate(regmap)
    return regmap


def validate(regmap: RegisterMap, addr_range: int | None = None) -> RegisterMap:
    """Reject maps a driver could corrupt hardware with: unaligned or
    overlapping words, or words outside the IP's address range."""
    seen: dict[int, str] = {}
    for off, label in regmap.named_words():
        if off % 4:
            raise RegisterMapError(f"{regmap.top}: register {label} at 0x{off:X} is not 4-byte aligned")
        if off in seen:
            raise RegisterMapError(f"{regmap.top}: registers {seen[off]} and {label} share offset 0x{off:X}")
        if addr_range is not None and off + 4 > addr_range:
            raise RegisterMapError(f"{regmap.top}: register {label} at 0x{off:X} is outside the IP's 0x{addr_range:X}-byte range")
        seen[off] = label
    return regmap


def check_probe(regmap: RegisterMap, read_word) -> None:
    """Sanity-check a map against idle hardware through `read_word(offset)`:
    the engine must report ap_idle and no bits outside the documented control
    fields. Catches a fallback layout (or a wrong base address) pointing at
    something that is not an idle HLS control block."""
    ctrl = read_word(regmap.ctrl)
    known = 0
    for bit in regmap.ctrl_bits.values():
        known |= 1 << bit
    known |= 1 << INTERRUPT | 1 << 4  # interrupt status, ap_continue on some tops
    if ctrl == 0xFFFFFFFF or ctrl & ~known:
        raise RegisterMapError(
            f"{regmap.top}: control word at 0x{regmap.ctrl:X} reads 0x{ctrl:08X}, which is not an HLS "
            f"block-level control register (bits outside ap_start/done/idle/ready/auto_restart set)")
    if not ctrl & (1 << regmap.ctrl_bits["AP_IDLE"]):
        raise RegisterMapError(
            f"{regmap.top}: control word reads 0x{ctrl:08X} with ap_idle clear before any call: the engine is "
            f"busy or this is not its control block; reload the overlay")


@dataclass(frozen=True)
class HwhIP:
    """One addressable IP as the .hwh describes it."""

    cell: str
    vlnv: str
    modtype: str
    phys_addr: int
    addr_range: int
    registers: dict


def read_hwh(path) -> dict[str, HwhIP]:
    """Every IP the processing system addresses, with its register map, read
    from the .hwh XML directly (the same facts pynq's parsers extract), keyed
    by block-design cell name."""
    root = ET.parse(Path(path)).getroot()
    modules = {m.get("INSTANCE"): m for m in root.iter("MODULE")}
    out: dict[str, HwhIP] = {}
    for ps in modules.values():
        if ps.get("MODTYPE") not in ("zynq_ultra_ps_e", "processing_system7"):
            continue
        for mr in ps.iter("MEMRANGE"):
            if mr.get("MEMTYPE") != "REGISTER":
                continue
            inst = modules.get(mr.get("INSTANCE"))
            if inst is None:
                continue
            base = int(mr.get("BASEVALUE"), 16)
            high = int(mr.get("HIGHVALUE"), 16)
            regs = {}
            for block in inst.iter("ADDRESSBLOCK"):
                if block.get("INTERFACE") != mr.get("SLAVEBUSINTERFACE"):
                    continue
                for reg in block.iter("REGISTER"):
                    props = {p.get("NAME"): p.get("VALUE") for p in reg.findall("PROPERTY")}
                    fields = {}
                    for f in reg.iter("FIELD"):
                        fp = {p.get("NAME"): p.get("VALUE") for p in f.findall("PROPERTY")}
                        fields[f.get("NAME")] = {"bit_offset": int(fp.get("BIT_OFFSET", "0"), 0),
                                                 "bit_width": int(fp.get("BIT_WIDTH", "1"), 0),
                                                 "access": fp.get("ACCESS", ""), "description": fp.get("DESCRIPTION", "")}
                    regs[reg.get("NAME")] = {"address_offset": int(props.get("ADDRESS_OFFSET", "0"), 0),
                                             "size": int(props.get("SIZE", "32"), 0),
                                             "access": props.get("ACCESS", ""),
                                             "description": props.get("DESCRIPTION", ""), "fields": fields}
            cell = inst.get("FULLNAME", "/" + inst.get("INSTANCE")).lstrip("/")
            out[cell] = HwhIP(cell, inst.get("VLNV", ""), inst.get("MODTYPE", ""), base, high - base + 1, regs)
    return out


_TOP_RE = re.compile(r"^[^:]+:[^:]+:(gemm_[a-z0-9_]+):[0-9.]+$")


def top_of_vlnv(vlnv: str) -> str | None:
    """'termshift:hls:gemm_int:1.0' -> 'gemm_int' (None for other IP)."""
    m = _TOP_RE.match(vlnv or "")
    return m.group(1) if m else None
