"""Analytical FPGA resource model of the GEMM engines on the ZCU104's XCZU7EV.

Owns `estimate()` (LUT, FF, DSP, BRAM, URAM of one engine as a function of
its array size and operand widths), `estimate_overlay()` (engines plus the AXI
shell of overlays/zcu104), the device table, `parse_csynth_xml()` for
comparing against a Vitis HLS report, and `termshift hls resources`.

It exists because synthesis cannot run in CI: the model answers "does an
R x C array fit, and what dominates" before anyone opens Vivado, and its
per-component breakdown says which term to recalibrate once a csynth report
exists (`--compare`). Every number comes from a primitive below whose
assumption is written next to it and collected in docs/resources.md. The INT8
model follows hls/include/termshift/gemm_int.h loop by loop, and the pot, tr,
bfp and teq models follow their own gemm_<e>.h. None is calibrated against a
csynth report yet (no Vitis here): every figure is an estimate until
`--compare` has seen one. A model can still be flagged provisional in
MODELS; it is then marked in every output.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

# XCZU7EV (ZCU104), speed grade -2: CLB LUTs, CLB flip-flops, DSP48E2 slices,
# 36 Kb block RAMs (each two 18 Kb halves), 288 Kb UltraRAMs. DS891's product
# table; the same totals appear as "Available" in Vivado utilization reports
# for xczu7ev-ffvc1156-2-e.
DEVICE = {
    "name": "XCZU7EV (ZCU104)",
    "part": "xczu7ev-ffvc1156-2-e",
    "LUT": 230400,
    "FF": 460800,
    "DSP": 1728,
    "BRAM36": 312,
    "URAM": 96,
}
RESOURCES = ("LUT", "FF", "DSP", "BRAM36", "URAM")

# --------------------------------------------------------------------------- primitives


@dataclass
class Cost:
    lut: float = 0.0
    ff: float = 0.0
    dsp: float = 0.0
    bram18: float = 0.0
    uram: float = 0.0

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(
            self.lut + other.lut,
            self.ff + other.ff,
            self.dsp + other.dsp,
            self.bram18 + other.bram18,
            self.uram + other.uram,
        )

    def __mul__(self, k: float) -> "Cost":
        return Cost(self.lut * k, self.ff * k, self.dsp * k, self.bram18 * k, self.uram * k)

    __rmul__ = __mul__

    def as_dict(self) -> dict:
        return {
            "LUT": math.ceil(self.lut),
            "FF": math.ceil(self.ff),
            "DSP": math.ceil(self.dsp),
            "BRAM18": math.ceil(self.bram18),
            "URAM": math.ceil(self.uram),
        }


def clog2(n: int) -> int:
    return max(1, math.ceil(math.log2(max(2, n))))


def adder(bits: int) -> Cost:
    """A1: one LUT per bit feeding the CARRY8 chain (add, subtract, increment)."""
    return Cost(lut=bits)


def reg(bits: int) -> Cost:
    return Cost(ff=bits)


def mux(bits: int, ways: int) -> Cost:
    """A2: 2:1 muxes pack two bits per LUT6_2; wider muxes use one LUT6 per
    4 inputs per bit, with the F7/F8 muxes (free) joining them."""
    if ways <= 1:
        return Cost()
    if ways == 2:
        return Cost(lut=bits / 2)
    return Cost(lut=bits * math.ceil(ways / 4))


def comparator(bits: int) -> Cost:
    """A3: magnitude compare on the carry chain, two bits per LUT."""
    return Cost(lut=math.ceil(bits / 2))


def barrel_shift(bits: int, shift_bits: int) -> Cost:
    """A4: each LUT6 level is a 4:1 mux, i.e. resolves two bits of the shift amount."""
    return Cost(lut=bits * math.ceil(shift_bits / 2))


def decoder(outputs: int) -> Cost:
    """One LUT per output bit for a <= 6-input select (e.g. 1 << (s - 1))."""
    return Cost(lut=outputs)


def _chunks(bits: int, port: int) -> int:
    """Slices of a signed operand on a `port`-bit signed multiplier input:
    the top slice keeps the sign, the others give up a bit to stay unsigned."""
    return 1 if bits <= port else 1 + math.ceil((bits - port) / (port - 1))


def multiplier(a_bits: int, b_bits: int) -> Cost:
    """A5: Vitis HLS maps a multiply with both operands wider than 4 bits to
    DSP48E2 slices (27 x 18 signed), splitting wider operands into slices and
    summing the partial products in the DSP cascade, plus one LUT per result
    bit when more than one DSP is needed. Narrower ones become LUT logic."""
    a, b = max(a_bits, b_bits), min(a_bits, b_bits)
    if b <= 4:
        return Cost(lut=a * b / 2 + a)
    tiles = min(_chunks(a, 27) * _chunks(b, 18), _chunks(b, 27) * _chunks(a, 18))
    return Cost(dsp=tiles, lut=0 if tiles == 1 else a + b)


_BRAM18_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
LUTRAM_MAX_BITS = 1024


def memory(depth: int, width: int) -> Cost:
    """A6: one array partition. Up to LUTRAM_MAX_BITS it is distributed RAM
    (a LUT holds 64 x 1); above, BRAM18s in their best aspect ratio (ports of
    1x16K ... 36x512). Vitis HLS's own heuristic is close to this; RAM_1P,
    since the engines never read and write a tile buffer in the same cycle."""
    if depth * width <= LUTRAM_MAX_BITS:
        return Cost(lut=math.ceil(depth / 64) * width)
    return Cost(bram18=min(math.ceil(width / w) * math.ceil(depth / d) for w, d in _BRAM18_SHAPES))


# --------------------------------------------------------------------------- AXI adapters


@dataclass(frozen=True)
class Bundle:
    name: str
    read: bool
    write: bool
    width: int  # bits of the widest port in the bundle
    read_burst: int = 16
    write_burst: int = 16
    outstanding: int = 16


def m_axi(b: Bundle) -> Cost:
    """A7: a Vitis HLS m_axi adapter: 64-bit address registers and burst
    logic per channel (about 300 LUT / 400 FF for reads, 350 / 500 for writes
    over a 200 / 250 base), plus the data FIFO UG1399 describes for each
    direction: num_outstanding x max_burst_length words of the port width."""
    c = Cost(lut=200 + 2 * b.width, ff=250 + 4 * b.width)
    if b.read:
        c = c + Cost(lut=300, ff=400) + memory(b.outstanding * b.read_burst, b.width)
    if b.write:
        c = c + Cost(lut=350, ff=500) + memory(b.outstanding * b.write_burst, b.width)
    return c


def s_axilite(words: int) -> Cost:
    """A8: the control adapter: one 32-bit register per word, a read-data
    multiplexer over all words and per-word write decode."""
    return Cost(ff=32 * words + 60, lut=32 * math.ceil(words / 4) + 2 * words + 60)


def control_fsm(loops: int) -> Cost:
    """A9: the generated FSM, loop counters and handshakes: ~80 LUT / 90 FF
    per loop level plus a fixed 200 / 200."""
    return Cost(lut=200 + 80 * loops, ff=200 + 90 * loops)


# --------------------------------------------------------------------------- engines


def _shell(bundles: list[Bundle], lite_words: int, loops: int) -> dict[str, Cost]:
    parts = {f"m_axi {b.name}": m_axi(b) for b in bundles}
    parts["s_axilite control"] = s_axilite(lite_words)
    parts["control FSM"] = control_fsm(loops)
    return parts


def _int_parts(R: int, C: int, TK: int, p: dict, bundles: list[Bundle]) -> dict[str, Cost]:
    a, w, acc, wide = p["a_bits"], p["w_bits"], p["acc_bits"], p["wide_bits"]
    span_bits = clog2(TK + R + C)
    parts: dict[str, Cost] = {}
    # systolic.h MAC_R/MAC_C: one multiply-accumulate per PE per cycle, with the
    # operand shift registers a_reg/w_reg and the accumulator in fabric (the
    # drain and ZERO_R loops read and clear it, so it cannot live in the DSP).
    pe = multiplier(a, w) + reg(a + w + acc) + mux(acc, 2)
    parts["PE array"] = pe * (R * C)
    # FEED (SHIFT_A / FEED_W): per edge row/column, the index t - r, the
    # live-window compare and the zero injection.
    feed_row = adder(span_bits) + comparator(span_bits) * 2 + mux(a, 2)
    feed_col = adder(span_bits) + comparator(span_bits) * 2 + mux(w, 2)
    parts["edge feed"] = feed_row * R + feed_col * C
    # a_tile[R][TK] / w_tile[C][TK], partitioned on the first dimension.
    parts["tile buffers"] = memory(TK, a) * R + memory(TK, w) * C
    # LOAD_A / LOAD_W / DRAIN_R address arithmetic: (m0 + r) * K + k0 style
    # 32 x 32 -> 64-bit products, one per loop, and the 64-bit adds around them.
    parts["address generation"] = (multiplier(32, 32) + adder(64) * 2 + reg(64)) * 3
    # DRAIN_R: CC requant units (DRAIN_R's inner loop is unrolled): the row
    # select over R accumulators, bias add, acc * multiplier (32 x 32), the
    # rounding term 1 << (s - 1), the arithmetic shift, two clamps and the
    # raw-output select, with ~3 pipeline stages of the 64-bit product.
    requant = (
        mux(acc, R)
        + adder(acc)
        + multiplier(acc, 32)
        + decoder(wide)
        + adder(wide)
        + barrel_shift(wide, clog2(p["max_shift"] + 1))
        + comparator(wide) * 2
        + mux(32, 2) * 3
        + reg(3 * wide + 32)
    )
    parts["requant (per column)"] = requant * C
    parts["cycle counter"] = adder(64) + reg(64)
    parts.update(_shell(bundles, p["lite_words"], loops=11))
    return parts


def _pot_parts(R: int, C: int, TK: int, p: dict, bundles: list[Bundle]) -> dict[str, Cost]:
    """Follows hls/include/termshift/gemm_pot.h and bac_pe.h loop by loop."""
    a, acc, sb, b = p["a_bits"], p["acc_bits"], p["shift_bits"], p["w_bits"]
    wdec = 2 + sb  # a decoded pot_weight in flight: nonzero, sign, shift
    span_bits = clog2(TK + R + C)
    parts: dict[str, Cost] = {}
    # bac_pe inside systolic.h's MAC: the 9-bit activation shifted left by
    # 0..23 into 32 bits, zeroed for the zero code, added or subtracted (the
    # sign drives the adder's subtract input). Registers as the INT8 PE, with
    # the decoded weight in place of the int8 code. No multiplier.
    pe = barrel_shift(acc, sb) + mux(acc, 2) + adder(acc) + mux(acc, 2) + reg(a + wdec + acc)
    parts["PE array (shift-add)"] = pe * (R * C)
    # SHIFT_A / FEED_W: the INT8 array's edge logic.
    feed_row = adder(span_bits) + comparator(span_bits) * 2 + mux(a, 2)
    feed_col = adder(span_bits) + comparator(span_bits) * 2 + mux(wdec, 2)
    parts["edge feed"] = feed_row * R + feed_col * C
    # a_row[TK] (burst buffer), a_tile[R][TK] (gathered at the kept k),
    # w_tile[C][TK] (decoded weights), klist[TK] (kept offsets, 16 bits).
    parts["tile buffers"] = memory(TK, a) * (R + 1) + memory(TK, wdec) * C + memory(TK, 16)
    # pot_stream_read: the 64-bit bit buffer, a 32-bit word inserted at
    # `have` (0..31), the extract-and-shift by n <= 8, the have/next counters;
    # decode_pot: field mask, |q| <= emax + 1 compare, emax + 1 - |q|.
    reader = barrel_shift(64, 5) + barrel_shift(64, 4) + decoder(8) + adder(6) + adder(64) + reg(64 + 6 + 64)
    decode = mux(b, 2) + comparator(sb + 1) + adder(sb + 1)
    parts["weight stream reader"] = reader + decode + adder(span_bits) + reg(span_bits)  # + kept counter
    parts["address generation"] = (multiplier(32, 32) + adder(64) * 2 + reg(64)) * 3
    parts["requant (per column)"] = _int_parts(1, 1, TK, p, [])["requant (per column)"] * C
    parts["cycle counter"] = adder(64) + reg(64)
    # s_axilite: the INT8 top's words + bits and emax.
    parts.update(_shell(bundles, p["lite_words"] + 2, loops=13))
    return parts


def _tr_parts(R: int, C: int, TK: int, p: dict, bundles: list[Bundle]) -> dict[str, Cost]:
    """Follows hls/include/termshift/gemm_tr.h, tr_systolic.h, tr_pe.h and tr_terms.h loop by loop."""
    acc, GM, TD, TB = p["acc_bits"], p["max_group"], p["data_terms"], p["term_buf"]
    code = 5  # a data term code: +-(exponent + 1), exponent 0..8
    word = 9  # a weight term word in flight: exponent, sign, index, valid
    parts: dict[str, Cost] = {}
    # tr_pe: the cell picks its activation's TD term codes out of the row's
    # group register (a GM-way mux), then per lane an exponent add (3 + 4 bits),
    # the sign XOR and a one-hot decode of the 16 possible +-2^e, an adder tree
    # over the lanes (values < 2^17) and the accumulate. Registers: the weight
    # term moving down and the accumulator (fabric: drained and cleared).
    lane = adder(4) + decoder(16) + Cost(lut=1)
    pe = mux(TD * code, GM) + lane * TD + adder(17) * (TD - 1) + adder(acc) + mux(acc, 2) + reg(word + acc)
    parts["PE array (term-pair cells)"] = pe * (R * C)
    # LATCH: each row's group register (GM x TD codes) loads from its buffer
    # banks when the row's schedule enters a new group; SHIFT moves the row's
    # group index down with the weight terms.
    parts["row group registers"] = (reg(GM * TD * code) + reg(2 * 16) + comparator(16)) * R
    # FEED: per column, the slot < count compare, the term-buffer read and the
    # conventional mode's bit term (|w| >> bit, sign); one j * slots + slot
    # address for all columns.
    feed_col = comparator(8) + mux(word, 2) + barrel_shift(8, 3) + adder(8)
    parts["edge feed"] = feed_col * C + multiplier(8, 8) + adder(12) * 2 + reg(8 + 12 + 12)
    # LOAD_A: one encoder + top-k selector, pipelined, one activation a cycle:
    # the two-bits-per-step pass (per position ~3 LUTs for the three encodings
    # and 2 state bits), the selector's running count and budget compare per
    # position, and packing kept terms into TD lanes (9:1 muxes of a code).
    encoder = Cost(lut=9 * 3, ff=9 * 2) + (adder(4) + comparator(4)) * 9 + mux(code, 9) * TD + reg(TD * code)
    parts["HESE encoder + top-k selector"] = encoder
    # a_terms[R][TK + GM][TD], banked cyclically by GM so a group latches in
    # one cycle; w_buf[C][TB] term words; cnt[C][TK] counts; the schedule's
    # live-group list and step counts.
    depth = -(-(TK + GM) // GM)
    parts["tile buffers"] = (memory(depth, TD * code) * (R * GM) + memory(TB, 8) * C + memory(TK, 8) * C
                             + memory(TK, 16) + memory(TK, 8))
    # SCHEDULE: the max over the tile's column counts and the running total.
    parts["schedule"] = comparator(8) * C + mux(8, C) + adder(16) + reg(32)
    parts["address generation"] = (multiplier(32, 32) + adder(64) * 2 + reg(64)) * 4
    parts["requant (per column)"] = _int_parts(1, 1, TK, p, [])["requant (per column)"] * C
    parts["cycle counter"] = adder(64) + reg(64)
    # Two more m_axi pointers (Wt, Wn: 3 words each) and the six mode registers.
    parts.update(_shell(bundles, p["lite_words"] + 12, loops=15))
    return parts


def _teq_parts(R: int, C: int, TK: int, p: dict, bundles: list[Bundle]) -> dict[str, Cost]:
    """Follows hls/include/termshift/gemm_teq.h and teq_counters.h loop by loop."""
    cnt, tab, acc = p["count_bits"], p["table_bits"], p["acc_bits"]
    wm, am = p["w_mag"], p["a_mag"]
    nb = wm + am - 1
    e = clog2(am)  # exponent index |q| - 1 of an activation (the wider operand)
    span_bits = clog2(TK + R + C)
    parts: dict[str, Cost] = {}

    def counter_bank(depth: int) -> Cost:
        # BIND_STORAGE ram_s2p impl=lutram: RAM64X1D (one read-write and one
        # read port) is 2 LUTs per 64 x 1; the read-modify-write adder and the
        # bypass mux for back-to-back hits on one counter sit beside it.
        return Cost(lut=2 * math.ceil(depth / 64) * cnt) + adder(cnt) + mux(cnt, 2)

    # teq_pe: the exponent-sum address, the sign product, three counter banks
    # (each at most one increment per cycle); the decoded operands moving
    # right/down (exponent + 2-bit sign each way).
    pe = adder(e + 1) + Cost(lut=2) + counter_bank(nb) + counter_bank(wm) + counter_bank(am) + reg(2 * (e + 2))
    parts["PE array (exp-sum counters)"] = pe * (R * C)
    # SHIFT_A / FEED_W as the INT8 array, plus teq_decode (|q| - 1, sign) per edge.
    feed = adder(span_bits) + comparator(span_bits) * 2 + adder(e + 1) + mux(e + 2, 2)
    parts["edge feed + decode"] = feed * (R + C)
    # a_tile[R][TK], w_tile[C][TK] (8-bit codes), lut_reg[256] x 8, tab[n_tables] x 16.
    parts["tile buffers"] = memory(TK, 8) * (R + C) + memory(256, 8) + memory(nb + wm + am, tab)
    # teq_unpack_row: 16-bit window, byte insert at `have` (< 8: 3 shift bits),
    # extract-and-shift by w_bits (3 bits), sign extension.
    parts["weight unpacker"] = barrel_shift(16, 3) * 2 + adder(5) + mux(8, 2) + reg(16 + 5 + 64)
    # RECON_J per column: the bank select over R rows x 3 banks, the count x
    # entry product (20 x 16: one DSP), the accumulate, the index arithmetic.
    recon = mux(cnt, 3 * R) + multiplier(cnt, tab) + adder(acc) + adder(9) * 3 + reg(cnt + tab + acc)
    parts["reconstruction (per column)"] = recon * C
    # LOAD_A / LOAD_W / DRAIN_R addresses, and the packed row size K * w_bits.
    parts["address generation"] = (multiplier(32, 32) + adder(64) * 2 + reg(64)) * 4
    parts["requant (per column)"] = _int_parts(1, 1, TK, p, [])["requant (per column)"] * C
    parts["cycle counter"] = adder(64) + reg(64)
    # s_axilite: the INT8 top's words + the tables and lut pointers (3 words
    # each) + w_bits, lw, la.
    parts.update(_shell(bundles, p["lite_words"] + 9, loops=17))
    return parts


def _bfp_parts(R: int, C: int, TK: int, p: dict, bundles: list[Bundle]) -> dict[str, Cost]:
    """Follows hls/include/termshift/gemm_bfp.h and bfp_pe.h loop by loop."""
    a, q, blk, acc, e = p["a_bits"], p["m_bits"], p["blk_bits"], p["acc_bits"], p["exp_bits"]
    sh = clog2(p["max_align"] + 1)
    min_block = p["min_block"]
    span_bits = clog2(TK + R + C)
    parts: dict[str, Cost] = {}
    # bfp_pe: a 9 x m mantissa multiply into the 24-bit block sum (one DSP),
    # and on a block's last value the 48-bit alignment shift (the << 16 is
    # wiring) and accumulate. Registers: the operands with their last flag and
    # shift, the block sum and the accumulator (fabric: drained and cleared).
    pe = (
        multiplier(a, q)
        + adder(blk)
        + mux(blk, 2)
        + barrel_shift(acc, sh)
        + adder(acc)
        + mux(acc, 2)
        + reg(a + q + 1 + sh + blk + acc)
    )
    parts["PE array (block dot)"] = pe * (R * C)
    # FEED_W also forms last = (k & mask) == mask || k + 1 == k_len and picks
    # d_tile[c][k >> log2 B]; SHIFT_A as the INT8 array.
    feed_row = adder(span_bits) + comparator(span_bits) * 2 + mux(a, 2)
    feed_col = (adder(span_bits) + comparator(span_bits) * 4 + mux(q, 2)
                + barrel_shift(span_bits, 3) + mux(sh, TK // min_block))
    parts["edge feed"] = feed_row * R + feed_col * C
    # a_tile[R][TK], q_tile[C][TK], d_tile[C][TK / 4], partitioned on the first dimension.
    parts["tile buffers"] = memory(TK, a) * R + memory(TK, q) * C + memory(TK // min_block, sh) * C
    # bfp_unpack_slice: 16-bit bit buffer, byte insert at nbits (<< by 4
    # bits), field extract (>> width, mask), sign extension, the exponent's
    # distance to the anchor clamped to [0, 47], field/block counters.
    unpack = (
        barrel_shift(16, 4) * 2
        + decoder(8)
        + adder(4) * 2
        + adder(9)
        + comparator(9) * 2
        + mux(q, 2)
        + adder(span_bits) * 3
        + reg(16 + 4 + 3 * span_bits)
    )
    parts["weight unpacker"] = unpack
    # LOAD_A, LOAD_W (row base (n0 + c) * row_bytes and the slice's bit offset
    # (k0 >> log2 B) * block_bits) and DRAIN_R: 32 x 32 products with 64-bit
    # adds; row_bytes itself is computed once from K, B, m, e.
    parts["address generation"] = (multiplier(32, 32) + adder(64) * 2 + reg(64)) * 4 + adder(40) * 2 + reg(64)
    # DRAIN_R per column: the INT8 engine's requant unit on the 32-bit result
    # (its R:1 select and bias add included), widened by the accumulator's 16
    # guard bits in the select, plus the 48-bit rounding add.
    requant_int = _int_parts(1, 1, TK, {**p, "acc_bits": 32, "w_bits": q}, [])["requant (per column)"]
    parts["requant (per column)"] = (mux(acc - 32, R) + adder(acc) + requant_int) * C
    parts["anchor registers"] = reg(e) * C
    parts["cycle counter"] = adder(64) + reg(64)
    # s_axilite: the INT8 top's words + the eref pointer (3) + block_log2, m_bits, e_bits.
    parts.update(_shell(bundles, p["lite_words"] + 6, loops=13))
    return parts


# The INT8 top's interface (hls/top/gemm_int.cpp) as tree_bundles() reads it;
# used when the tree is not at hand and for the engines that have no top yet.
DEFAULT_BUNDLES = [
    Bundle("gmem_a", read=True, write=False, width=8, read_burst=256),
    Bundle("gmem_w", read=True, write=False, width=8, read_burst=256),
    Bundle("gmem_p", read=True, write=False, width=32),
    Bundle("gmem_c", read=True, write=True, width=32, write_burst=256),
]

_COMMON = {"acc_bits": 32, "wide_bits": 64, "max_shift": 62, "lite_words": 24}
MODELS = {
    "int": (_int_parts, {"a_bits": 9, "w_bits": 8}, False),
    "pot": (_pot_parts, {"a_bits": 9, "w_bits": 6, "shift_bits": 5}, False),
    "tr": (_tr_parts, {"a_bits": 9, "w_bits": 8, "max_group": 16, "data_terms": 8, "term_buf": 2048}, False),
    "teq": (_teq_parts, {"a_bits": 8, "w_bits": 7, "count_bits": 20, "table_bits": 16, "w_mag": 64, "a_mag": 127},
            False),
    "bfp": (_bfp_parts, {"a_bits": 9, "m_bits": 8, "blk_bits": 24, "acc_bits": 48, "exp_bits": 8, "max_align": 47,
                         "min_block": 4}, False),
}


def estimate(
    engine: str, rows: int, cols: int, tile_k: int = 256, *, bundles: list[Bundle] | None = None, **params
) -> dict:
    """Resources of one engine with a rows x cols array fed tile_k deep.

    `params` override the model's widths (a_bits, w_bits, acc_bits, ... as
    listed in MODELS); unknown names are an error. Returns totals (LUT, FF,
    DSP, BRAM18, BRAM36, URAM), a per-component breakdown, and whether the
    model is provisional (no HLS source for that engine yet).
    """
    if engine not in MODELS:
        raise ValueError(f"no resource model for engine '{engine}' (have: {', '.join(MODELS)})")
    for name, value in (("rows", rows), ("cols", cols), ("tile_k", tile_k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    fn, defaults, provisional = MODELS[engine]
    p = {**_COMMON, **defaults}
    unknown = set(params) - set(p)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) for engine '{engine}': {', '.join(sorted(unknown))} (have: {', '.join(sorted(p))})"
        )
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{k} must be a positive integer, got {v!r}")
    p.update(params)
    parts = fn(rows, cols, tile_k, p, bundles if bundles is not None else DEFAULT_BUNDLES)
    total = Cost()
    for c in parts.values():
        total = total + c
    out = {"engine": engine, "rows": rows, "cols": cols, "tile_k": tile_k, "params": p, "provisional": provisional}
    out.update(total.as_dict())
    out["BRAM36"] = out["BRAM18"] / 2
    out["breakdown"] = {k: v.as_dict() for k, v in parts.items()}
    return out


# --------------------------------------------------------------------------- overlay shell


def smartconnect(n_si: int) -> Cost:
    """A10: one SmartConnect with n_si masters into one HP port, including the
    32/8 -> 128-bit width conversion: ~700 LUT / 1000 FF + 500 / 800 per SI."""
    return Cost(lut=700 + 500 * n_si, ff=1000 + 800 * n_si)


def axi_interconnect(n_mi: int) -> Cost:
    """A11: the control AXI interconnect: 128-bit AXI4 from HPM0_FPD down to
    32-bit AXI-lite (protocol and width converters) and a 1 x n crossbar."""
    return Cost(lut=1200 + 150 * n_mi, ff=1500 + 150 * n_mi)


def estimate_overlay(engines: list[dict]) -> dict:
    """Engines (each an `estimate()` result) plus the shell of the ZCU104
    block design: one SmartConnect per HP port used, the control
    interconnect and the reset block. The PS itself is hard silicon."""
    n = len(engines)
    per_hp = {0: n, 1: n, 2: n, 3: n}  # gmem_a, gmem_w, gmem_c, the rest
    shell = {f"SmartConnect HP{hp}": smartconnect(k) for hp, k in per_hp.items() if k}
    shell["AXI interconnect (control)"] = axi_interconnect(n)
    shell["proc_sys_reset"] = Cost(lut=20, ff=40)
    total = Cost()
    for c in shell.values():
        total = total + c
    shell_row = total.as_dict()
    shell_row["BRAM36"] = shell_row["BRAM18"] / 2
    rows = {"shell": {**shell_row, "breakdown": {k: v.as_dict() for k, v in shell.items()}}}
    sums = {r: 0.0 for r in ("LUT", "FF", "DSP", "BRAM18", "URAM")}
    for e in engines:
        for r in sums:
            sums[r] += e[r]
    for r in sums:
        sums[r] += rows["shell"][r]
    sums["BRAM36"] = sums["BRAM18"] / 2
    return {"engines": engines, "shell": rows["shell"], "total": sums, "utilization": utilization(sums)}


def utilization(totals: dict) -> dict:
    """Percent of the XCZU7EV used, per resource."""
    return {r: 100.0 * totals[r] / DEVICE[r] for r in RESOURCES}


# --------------------------------------------------------------------------- the tree


def tree_bundles(root: Path, engine: str) -> list[Bundle] | None:
    """The m_axi bundles declared by hls/top/gemm_<engine>.cpp, or None if the
    top is not there: direction from const-ness, width from the element type,
    burst lengths from the pragma."""
    from termshift.hls import check

    path = Path(root) / "hls" / "top" / f"gemm_{engine}.cpp"
    if not path.is_file():
        return None
    unit = check.Unit(str(path), check.lex(path.read_text()))
    check.walk(unit)
    funcs = [f for f in unit.funcs if f.name == f"gemm_{engine}"]
    if not funcs:
        return None
    func = funcs[0]
    params = {p.name: p for p in func.params}
    acc: dict[str, dict] = {}
    a, b = func.body
    for pr in unit.lexed.pragmas:
        if not a < pr.pos <= b:
            continue
        directive, positional, opts = check._pragma_options(pr.text)
        if directive != "interface" or (opts.get("mode") or positional) != "m_axi":
            continue
        prm = params.get(opts.get("port", ""))
        if prm is None:
            continue
        d = acc.setdefault(opts.get("bundle", "gmem"), {"read": False, "write": False, "width": 8, "rb": 16, "wb": 16})
        # A const pointer is only read. A non-const one may be read and
        # written as far as the interface says; counting both channels is the
        # conservative choice (HLS drops a channel the body never uses).
        const = "const" in prm.type_text.split()
        d["read"] = True
        d["write"] = d["write"] or not const
        d["width"] = max(d["width"], _type_bits(prm.type_text))
        d["rb"] = max(d["rb"], int(opts.get("max_read_burst_length", 16)))
        d["wb"] = max(d["wb"], int(opts.get("max_write_burst_length", 16)))
    out = [
        Bundle(n, read=d["read"], write=d["write"], width=d["width"], read_burst=d["rb"], write_burst=d["wb"])
        for n, d in acc.items()
    ]
    return sorted(out, key=lambda x: x.name)


_TYPE_BITS = {"char": 8, "short": 16, "int": 32, "long": 64, "float": 32, "double": 64}


def _type_bits(type_text: str) -> int:
    """Bit width of a pointer's element type (stdint or builtin); 32 if unknown."""
    for token in type_text.replace("*", " ").replace("&", " ").split():
        m = re.match(r"^u?int(8|16|32|64)_t$", token)
        if m:
            return int(m.group(1))
        if token in _TYPE_BITS:
            return _TYPE_BITS[token]
    return 32


# --------------------------------------------------------------------------- csynth reports


def parse_csynth_xml(path: Path) -> dict:
    """Totals from a Vitis HLS csynth.xml (solution/syn/report/csynth.xml):
    AreaEstimates/Resources, with DSP48E accepted for older releases."""
    root = ET.parse(path).getroot()
    res = root.find("AreaEstimates/Resources")
    if res is None:
        raise ValueError(f"{path}: no AreaEstimates/Resources section")

    def get(*names: str) -> int:
        for n in names:
            node = res.find(n)
            if node is not None and node.text and node.text.strip().isdigit():
                return int(node.text.strip())
        return 0

    out = {
        "LUT": get("LUT"),
        "FF": get("FF"),
        "DSP": get("DSP", "DSP48E"),
        "BRAM18": get("BRAM_18K"),
        "URAM": get("URAM"),
    }
    out["BRAM36"] = out["BRAM18"] / 2
    return out


def compare(model: dict, report: dict) -> list[tuple[str, float, float, float | None]]:
    """(resource, model, report, model / report) rows."""
    rows = []
    for r in ("LUT", "FF", "DSP", "BRAM18", "URAM"):
        m, h = float(model[r]), float(report[r])
        rows.append((r, m, h, (m / h) if h else None))
    return rows


# --------------------------------------------------------------------------- CLI


def _fmt(n: float) -> str:
    return f"{n:,.1f}" if n != int(n) else f"{int(n):,}"


def format_table(overlay: dict) -> str:
    head = f"{'':30s}" + "".join(f"{r:>11s}" for r in RESOURCES)
    lines = [f"Resource model vs {DEVICE['name']} ({DEVICE['part']})", head]
    for e in overlay["engines"]:
        label = f"gemm_{e['engine']} {e['rows']}x{e['cols']}x{e['tile_k']}" + (" *" if e["provisional"] else "")
        lines.append(f"{label:30s}" + "".join(f"{_fmt(e[r]):>11s}" for r in RESOURCES))
    sh = overlay["shell"]
    lines.append(f"{'AXI shell':30s}" + "".join(f"{_fmt(sh[r]):>11s}" for r in RESOURCES))
    lines.append(f"{'total':30s}" + "".join(f"{_fmt(overlay['total'][r]):>11s}" for r in RESOURCES))
    lines.append(f"{'available':30s}" + "".join(f"{DEVICE[r]:>11,}" for r in RESOURCES))
    lines.append(f"{'used %':30s}" + "".join(f"{overlay['utilization'][r]:>10.1f}%" for r in RESOURCES))
    if any(e["provisional"] for e in overlay["engines"]):
        lines.append("* provisional: no HLS source for this engine yet; model written from its format description")
    lines.append("BRAM36 counts 18 Kb halves / 2. Assumptions: docs/resources.md.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="termshift hls resources",
        description="Analytical LUT/FF/DSP/BRAM model of the GEMM engines vs the ZCU104's XCZU7EV.",
    )
    parser.add_argument(
        "--engine",
        action="append",
        help=f"engine model ({', '.join(MODELS)}); repeatable; default: every engine in the tree",
    )
    parser.add_argument("--all-models", action="store_true", help="every format's model, each at the default 8x8x256")
    parser.add_argument("--rows", type=int, help="array rows (default: the engine header's GEMM_<E>_ROWS, else 8)")
    parser.add_argument("--cols", type=int, help="array columns (default: header, else 8)")
    parser.add_argument("--tile-k", type=int, help="reduction tile depth (default: header, else 256)")
    parser.add_argument("--root", type=Path, help="repository root (default: found from the current directory)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument(
        "--compare", type=Path, metavar="CSYNTH_XML", help="compare one engine's model with a Vitis HLS csynth.xml"
    )
    args = parser.parse_args(argv)
    from termshift.hls.engines import discover, find_root, read_config

    root = args.root
    if root is None:
        try:
            root = find_root()
        except ValueError:
            root = None
    try:
        if args.all_models:
            names = list(MODELS)
        elif args.engine:
            names = args.engine
        else:
            names = [e for e in (discover(root) if root else []) if e in MODELS] or ["int"]
        ests = []
        for name in names:
            cfg = None
            if root is not None and not args.all_models and (Path(root) / "hls" / "top" / f"gemm_{name}.h").is_file():
                cfg = read_config(root, name)
            rows = args.rows if args.rows is not None else (cfg.rows if cfg else 8)
            cols = args.cols if args.cols is not None else (cfg.cols if cfg else 8)
            tile_k = args.tile_k if args.tile_k is not None else (cfg.tile_k if cfg else 256)
            bundles = tree_bundles(root, name) if root is not None else None
            ests.append(estimate(name, rows, cols, tile_k, bundles=bundles))
    except ValueError as exc:
        print(f"termshift hls resources: error: {exc}", file=sys.stderr)
        return 2
    if args.compare:
        if len(ests) != 1:
            print("termshift hls resources: error: --compare needs exactly one --engine", file=sys.stderr)
            return 2
        try:
            report = parse_csynth_xml(args.compare)
        except (OSError, ET.ParseError, ValueError) as exc:
            print(f"termshift hls resources: error: {exc}", file=sys.stderr)
            return 2
        rows = compare(ests[0], report)
        if args.json:
            print(
                json.dumps({"model": {r: m for r, m, _, _ in rows}, "report": {r: h for r, _, h, _ in rows}}, indent=2)
            )
        else:
            print(f"gemm_{ests[0]['engine']}: model vs {args.compare}")
            for r, m, h, ratio in rows:
                print(
                    f"  {r:7s} model {_fmt(m):>9s}  csynth {_fmt(h):>9s}  ratio {('%.2f' % ratio) if ratio else '-':>6s}"
                )
        return 0
    overlay = estimate_overlay(ests)
    if args.json:
        print(json.dumps(overlay, indent=2))
    else:
        print(format_table(overlay))
    return 0


if __name__ == "__main__":
    sys.exit(main())
