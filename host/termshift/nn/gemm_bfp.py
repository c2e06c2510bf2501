"""How the `bfp` format puts a Linear/Conv2d GEMM on the block floating point
engine: weight payload, scales, one engine call, and its cost.

Activations are not converted to BFP. They enter as the graph's 8-bit codes
with their per-tensor scale s_in (the GemmFormat contract), which is a BFP
block with one exponent for the whole tensor and 9-bit mantissas; the block
pair's exponent sum therefore only varies with the weight block, and the
engine aligns each block's integer dot by the weight exponent alone
(docs/formats/bfp.md, "Activations"). The weight scale of output channel n is
s_w[n] = 2^(eref[n] - bias - (m-2)): one accumulator unit of the row anchor.

Each node's `fmt` holds its own full spec, so a graph may mix (block,
mantissa) per layer (`termshift.search.bfp` builds such graphs).
"""

from __future__ import annotations

import numpy as np

from termshift.backends.engine_bfp import BFP_ENGINE, bfp_cycles
from termshift.formats import FormatSpec, bfp, parse


def node_params(node) -> bfp.BfpParams:
    return bfp.params_of(parse(node.fmt))


def weight_storage_bits(p: bfp.BfpParams, n: int, k: int) -> float:
    """Bits one weight occupies in memory: its packed row share (mantissa,
    exponent per block, byte padding) plus the row anchor byte."""
    return (n * (p.row_bytes(k) * 8 + 8)) / (n * k)


def layer_ops(p: bfp.BfpParams, m: int, n: int, k: int, requant: bool) -> dict:
    """Engine ops of one M x N x K call: per MAC a 9 x m mantissa multiply
    (m partial-product rows) and a 24-bit block add; per block and output one
    48-bit align-and-accumulate, plus the drain's rounding add."""
    ops = {"bfp_pp_rows": m * n * k * p.mantissa, "bfp_block_adds": m * n * k,
           "bfp_align_adds": m * n * (p.n_blocks(k) + 1)}
    if requant:
        ops["requants"] = m * n
    return ops


class BfpGemm:
    """`bfp`: packed BFP weight rows on the block-dot engine."""

    name = "bfp"
    engine = "bfp"

    def quantize_weights(self, w2d: np.ndarray, spec: FormatSpec) -> tuple[dict, np.ndarray]:
        if spec["search"] == "on":
            raise ValueError(
                "bfp:search chooses (block, mantissa) per layer from the model and its data, which one weight "
                "matrix does not carry: run `python -m termshift.search.bfp_cli` (or "
                "termshift.search.bfp.search_model) and lower with its per-layer specs")
        p = bfp.params_of(spec)
        payload = bfp.encode(w2d, p)
        return payload, bfp.row_scale(payload["eref"], p)

    def weight_bits(self, spec: FormatSpec) -> float:
        return bfp.params_of(spec).bits_per_weight()

    def run(self, backend, a2d: np.ndarray, node):
        p = node_params(node)
        return backend.run("bfp", a=a2d, w=node.payload["w"], eref=node.payload["eref"], block=p.block,
                           mantissa=p.mantissa, e_bits=p.e_bits, bias=node.bias, requant=node.requant)

    def cost(self, node, m: int, in_elems: int, out_elems: int):
        from termshift.nn.graph import LayerCost

        p = node_params(node)
        n, k = node.n_out, node.k
        g = BFP_ENGINE
        tiles = -(-m // g.rows) * -(-n // g.cols)
        return LayerCost(
            name=node.name, kind=node.kind, ops=layer_ops(p, m, n, k, node.requant is not None),
            weight_count=n * k, bias_count=n, act_in_count=in_elems, act_out_count=out_elems,
            sram_a_reads=tiles * k * g.rows, sram_w_reads=tiles * k * g.cols, cycles=bfp_cycles(m, n, k),
            bits_per_weight=p.bits_per_weight(), bits_per_activation=float(node.a_bits),
            weight_storage_bits=weight_storage_bits(p, n, k), act_storage_bits=8.0,
            out_storage_bits=32.0 if node.requant is None else 8.0,
        )
