"""Rolls per-layer costs (graph.LayerCost) up into modeled energy per inference.

energy = sum over op kinds of count * pJ(op)          (compute)
       + (weight + activation in/out bits) * DRAM pJ/bit (every layer streams its
         weights and activations from DRAM once per inference, batch 1)
       + on-chip tile-buffer bits read * SRAM pJ/bit
"""

from __future__ import annotations

from termshift.energy.table import CLOCK_HZ, DRAM_PJ_PER_BIT, SRAM_PJ_PER_BIT, op_energy_pj


def layer_energy(cost) -> dict:
    compute = sum(n * op_energy_pj(kind) for kind, n in cost.ops.items())
    dram_bits = cost.weight_bits + cost.act_in_bits + cost.act_out_bits
    dram = dram_bits * DRAM_PJ_PER_BIT
    sram = cost.sram_bits * SRAM_PJ_PER_BIT
    total = compute + dram + sram
    return {"compute_j": compute * 1e-12, "dram_j": dram * 1e-12, "sram_j": sram * 1e-12, "energy_j": total * 1e-12}


def summarize(costs) -> dict:
    """Per-layer rows and whole-model totals with plainly named figures."""
    layers = []
    totals = {"ops": {}, "weight_bits": 0, "activation_bits": 0, "cycles": 0, "energy_j": 0.0,
              "compute_j": 0.0, "dram_j": 0.0, "sram_j": 0.0}
    weight_count = act_count = 0
    weighted_w_bits = weighted_a_bits = 0.0
    for c in costs:
        e = layer_energy(c)
        row = {"name": c.name, "kind": c.kind, **c.ops, "weight_bits": c.weight_bits,
               "activation_bits": c.act_in_bits + c.act_out_bits, "cycles": c.cycles,
               "bits_per_weight": c.bits_per_weight, "bits_per_activation": c.bits_per_activation, **e}
        layers.append(row)
        for k, v in c.ops.items():
            totals["ops"][k] = totals["ops"].get(k, 0) + v
        totals["weight_bits"] += c.weight_bits
        totals["activation_bits"] += c.act_in_bits + c.act_out_bits
        totals["cycles"] += c.cycles
        for k in ("energy_j", "compute_j", "dram_j", "sram_j"):
            totals[k] += e[k]
        if c.weight_count:
            weight_count += c.weight_count
            weighted_w_bits += c.weight_count * c.bits_per_weight
        if c.act_in_count and c.bits_per_activation:
            act_count += c.act_in_count
            weighted_a_bits += c.act_in_count * c.bits_per_activation
    totals["bits_per_weight"] = weighted_w_bits / weight_count if weight_count else 0.0
    totals["bits_per_activation"] = weighted_a_bits / act_count if act_count else 0.0
    totals["latency_s"] = totals["cycles"] / CLOCK_HZ
    totals["clock_hz"] = CLOCK_HZ
    return {"layers": layers, "total": totals}
