"""`tr` on the TR engine: the GemmFormat that lowering, graph execution,
artifacts and costing use for term-revealed weights.

Payload: {"terms": (N, n_groups, budget) uint8 term words, "counts": (N,
n_groups) uint8}, as formats.tr.weight_payload builds them from the base
sign-magnitude quantization s_w = max|w| / 2^(bits-1). The engine returns
sum_k a'[k] * w'[n, k] with w' the revealed codes and a' the activations cut
to `data_terms` terms, so the int32 accumulator is in units of s_in * s_w[n]
(the GemmFormat contract of nn/gemm_formats.py).

Cost: `term_pairs` (what TR mode issues: every kept weight term against the
data_terms slots of its activation), `conventional_term_pairs` (MACs x b_w x
b_x, the paper's conventional count, reported for comparison, not executed),
`term_encodes` (activations through the engine's encoder: once per column
tile, as the engine reloads A) and `requants`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from termshift.backends.engine_tr import TR_ENGINE, tr_cycles
from termshift.formats import FormatSpec, parse, tr

# Bits of one buffered activation: max_data_terms lanes of a 5-bit term code.
ENCODED_ACT_BITS = tr.MAX_DATA_TERMS * 5


@lru_cache(maxsize=256)
def _spec(fmt: str) -> FormatSpec:
    return parse(fmt)


class TrGemm:
    """`tr`: term-revealed weights (offline) and truncated data (in hardware) on the TR engine."""

    name = "tr"
    engine = "tr"

    def quantize_weights(self, w2d: np.ndarray, spec: FormatSpec) -> tuple[dict, np.ndarray]:
        return tr.weight_payload(w2d, spec["bits"], spec["group"], spec["budget"], spec["encoding"],
                                 spec["granularity"])

    def weight_bits(self, spec: FormatSpec) -> float:
        return tr.packed_weight_bits(spec["group"], spec["budget"])

    def run(self, backend, a2d: np.ndarray, node):
        spec = _spec(node.fmt)
        return backend.run("tr", a=a2d, terms=node.payload["terms"], counts=node.payload["counts"],
                           group=spec["group"], data_terms=spec["data_terms"], encoding=spec["encoding"],
                           bias=node.bias, requant=node.requant)

    def cost(self, node, m: int, in_elems: int, out_elems: int):
        from termshift.nn.graph import LayerCost

        spec = _spec(node.fmt)
        counts = node.payload["counts"]
        n, k = counts.shape[0], node.k
        g = TR_ENGINE
        col_tiles = -(-n // g.cols)
        tiles = -(-m // g.rows) * col_tiles
        ops = {"term_pairs": tr.term_pairs(counts, spec["data_terms"], m),
               "conventional_term_pairs": tr.conventional_term_pairs(m, n, k, spec["bits"], node.a_bits),
               "term_encodes": m * k * col_tiles}
        if node.requant is not None:
            ops["requants"] = m * n
        return LayerCost(
            name=node.name, kind=node.kind, ops=ops, weight_count=n * k, bias_count=n,
            act_in_count=in_elems, act_out_count=out_elems,
            # Each tile latches its rows' encoded activations (ENCODED_ACT_BITS
            # wide, counted in 8-bit units) and its columns' term lists.
            sram_a_reads=tiles * k * g.rows * ENCODED_ACT_BITS // 8, sram_w_reads=tiles * k * g.cols,
            cycles=tr_cycles(m, counts, spec["group"], node.payload["terms"].shape[2]),
            bits_per_weight=float(node.w_bits), bits_per_activation=float(node.a_bits),
            weight_storage_bits=tr.weight_storage_bits(spec["group"], node.payload["terms"].shape[2]),
            act_storage_bits=8.0, out_storage_bits=32.0 if node.requant is None else 8.0,
        )
