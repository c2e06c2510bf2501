"""Per-operation energies, 45 nm, 0.9 V, from M. Horowitz, "Computing's energy
problem (and what we can do about it)", ISSCC 2014, Figure 1.1.9.

Each entry is the cost of one operation in picojoules, composed from the
paper's primitives where an engine op is more than one primitive (a MAC is a
multiply plus an accumulator add). The paper gives DRAM as 1.3-2.6 nJ per
64-bit access; we take the midpoint. SRAM is its 8 KB bank (10 pJ per 64-bit
read), the size of one engine tile buffer. Formats added later append their
native ops here (shift-add, term pair, counter increment, block MAC) with the
composition written next to each.
"""

from __future__ import annotations

SOURCE = "M. Horowitz, Computing's energy problem (and what we can do about it), ISSCC 2014, 45 nm, 0.9 V"

# Primitives (pJ), as printed in the paper.
PRIMITIVES_PJ = {
    "int8_add": 0.03,
    "int32_add": 0.1,
    "int8_mult": 0.2,
    "int32_mult": 3.1,
    "fp16_add": 0.4,
    "fp16_mult": 1.1,
    "fp32_add": 0.9,
    "fp32_mult": 3.7,
    "sram_8kb_read_64b": 10.0,
    "dram_read_64b": (1.3e3 + 2.6e3) / 2,
}

# Engine ops (pJ per op) -> composition of primitives.
OPS_PJ = {
    "macs": PRIMITIVES_PJ["int8_mult"] + PRIMITIVES_PJ["int32_add"],  # 8x8 multiply + 32-bit accumulate
    "fp32_macs": PRIMITIVES_PJ["fp32_mult"] + PRIMITIVES_PJ["fp32_add"],
    "requants": PRIMITIVES_PJ["int32_mult"] + PRIMITIVES_PJ["int32_add"],  # acc * M + rounding, shift is wiring
    "compares": PRIMITIVES_PJ["int8_add"],  # max-pool comparator ~ an 8-bit add
    "adds": PRIMITIVES_PJ["int32_add"],  # avg-pool accumulation
    "fp32_compares": PRIMITIVES_PJ["fp32_add"],
    # exp/erf/reciprocal/rsqrt on the host: range reduction + a degree-6 Horner
    # polynomial, about 8 fp32 multiply-adds.
    "fp32_funcs": 8 * (PRIMITIVES_PJ["fp32_mult"] + PRIMITIVES_PJ["fp32_add"]),
    "fp32_adds": PRIMITIVES_PJ["fp32_add"],
    # pot (docs/formats/pot.md): barrel shift of the activation (charged as an int32 add: <= 3 mux levels x 15
    # bits, fewer gates than a 32-bit adder) + the int32 accumulate, whose add/subtract input applies the sign.
    "shift_adds": PRIMITIVES_PJ["int32_add"] + PRIMITIVES_PJ["int32_add"],
    # bfp (docs/formats/bfp.md): a 9 x m mantissa multiply is m of the 8 partial-product rows of an int8
    # multiplier; the block sum is a 24-bit add; aligning a block into the 48-bit accumulator is a 48-bit add.
    "bfp_pp_rows": PRIMITIVES_PJ["int8_mult"] / 8,
    "bfp_block_adds": PRIMITIVES_PJ["int32_add"] * 24 / 32,
    "bfp_align_adds": PRIMITIVES_PJ["int32_add"] * 48 / 32,
    # tr (docs/formats/tr.md): a term pair is an exponent add (<= 4 bits, charged as an 8-bit add; the sign XOR is
    # one gate) + merging the one-hot +-2^e into the 32-bit accumulator (an int32 add). An activation through the
    # encoder is a two-bit-per-step pass over 8 bits plus a top-t priority select: two 8-bit adds.
    "term_pairs": PRIMITIVES_PJ["int8_add"] + PRIMITIVES_PJ["int32_add"],
    "term_encodes": 2 * PRIMITIVES_PJ["int8_add"],
    # tr: the paper's conventional count (MACs x b_w x b_x), reported next to term_pairs for comparison; the TR
    # mode does not execute it, so it is charged nothing (charging it would count the same layer twice).
    "conventional_term_pairs": 0.0,
    # teq (docs/formats/teq.md, section 11): a pair is an exponent add (<= 7 bits, an 8-bit add) + one increment
    # of a 20-bit signed counter (an int32 add scaled by width, 20/32); each beta bank in use adds one more
    # increment; a reconstruction step multiplies a 20-bit count by a 16-bit table entry (an int8 multiply scaled
    # by the bit product, 320/64, as int32/int8 = 15.5 ~ 16 in the paper) and adds it to the int32 accumulator; the
    # input-byte lookup reads a 256 x 7-bit table (the 8 KB SRAM read per bit scaled by sqrt(256 B / 8 KB), 8 bits).
    "teq_pairs": PRIMITIVES_PJ["int8_add"] + PRIMITIVES_PJ["int32_add"] * 20 / 32,
    "teq_bank_incs": PRIMITIVES_PJ["int32_add"] * 20 / 32,
    "teq_recons": PRIMITIVES_PJ["int8_mult"] * (20 * 16) / (8 * 8) + PRIMITIVES_PJ["int32_add"],
    "teq_lut_reads": PRIMITIVES_PJ["sram_8kb_read_64b"] / 64 * 8 * (256 / 8192) ** 0.5,
}

DRAM_PJ_PER_BIT = PRIMITIVES_PJ["dram_read_64b"] / 64
SRAM_PJ_PER_BIT = PRIMITIVES_PJ["sram_8kb_read_64b"] / 64

CLOCK_HZ = 200e6  # the overlay's engine clock (cycles -> seconds)


def op_energy_pj(kind: str) -> float:
    try:
        return OPS_PJ[kind]
    except KeyError:
        raise KeyError(f"no energy for op kind {kind!r}; known: {', '.join(sorted(OPS_PJ))}") from None
