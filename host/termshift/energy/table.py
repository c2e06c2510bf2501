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
    "fp32_adds": PRIMITIVES_PJ["fp32_add"],
}

DRAM_PJ_PER_BIT = PRIMITIVES_PJ["dram_read_64b"] / 64
SRAM_PJ_PER_BIT = PRIMITIVES_PJ["sram_8kb_read_64b"] / 64

CLOCK_HZ = 200e6  # the overlay's engine clock (cycles -> seconds)


def op_energy_pj(kind: str) -> float:
    try:
        return OPS_PJ[kind]
    except KeyError:
        raise KeyError(f"no energy for op kind {kind!r}; known: {', '.join(sorted(OPS_PJ))}") from None
