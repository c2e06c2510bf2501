"""`pot` on the PoT (BAC) engine: the GemmFormat that lowering, graph
execution, artifacts and costing use for power-of-two weights.

Payload: {"w": (N, K) int8 signed exponent codes}. The engine's shift for the
top level, emax = formats.pot.layer_emax(bits, K), follows from the spec and
the node's K, so it is recomputed, not stored. With s[n] the top level of
channel n, the weight is sign * s[n] * 2^-(|q|-1) and the engine adds
sign * a << (emax + 1 - |q|), so the int32 accumulator counts units of
s_in * s[n] * 2^-emax exactly: s_w[n] = s[n] * 2^-emax is what this format
reports (the GemmFormat contract of nn/gemm_formats.py).
"""

from __future__ import annotations

import numpy as np

from termshift.backends.engine_pot import POT_ENGINE, pot_gemm_cycles
from termshift.formats import FormatSpec, gptq, parse, pot


class PotGemm:
    """`pot`: b-bit power-of-two weight codes on the BAC engine, zero k-groups skipped."""

    name = "pot"
    engine = "pot"

    def layer(self, w2d: np.ndarray, spec: FormatSpec, gram=None) -> pot.Layer:
        return pot.quantize_layer(w2d, spec["bits"], spec["rounding"], spec["granularity"], spec["scale"],
                                  spec["sparsity"], group=POT_ENGINE.cols, gram=gram)

    def needs_calibration(self, spec: FormatSpec) -> bool:
        return spec["round"] == "gptq"

    def quantize_weights(self, w2d: np.ndarray, spec: FormatSpec) -> tuple[dict, np.ndarray]:
        if self.needs_calibration(spec):
            raise ValueError(f"{spec}: round=gptq needs the layer's calibration inputs (graph.quantize_gemm "
                             "with x_calib; lowering, the LSTM and MiniLM pass them)")
        layer = self.layer(w2d, spec)
        return {"w": layer.codes}, layer.acc_scale

    def quantize_layer(self, w2d: np.ndarray, spec: FormatSpec, x: np.ndarray, s_in: float, signed: bool,
                       index: int, x_rows=None) -> tuple[dict, np.ndarray]:
        """As quantize_weights; with round=gptq the codes are rounded with
        error feedback through the layer's input rows (x, or x_rows for a
        convolution's patches)."""
        gram = None
        if self.needs_calibration(spec):
            rows = x_rows() if callable(x_rows) else x_rows
            rows = np.asarray(x if rows is None else rows)
            if rows.ndim != 2 or rows.shape[1] != w2d.shape[1]:
                raise ValueError(f"pot round=gptq needs the GEMM's input rows (M, {w2d.shape[1]}), got "
                                 f"shape {rows.shape}")
            gram = gptq.input_gram(rows)
        layer = self.layer(w2d, spec, gram)
        return {"w": layer.codes}, layer.acc_scale

    def weight_bits(self, spec: FormatSpec) -> float:
        return float(spec["bits"])

    def run(self, backend, a2d: np.ndarray, node):
        bits = parse(node.fmt)["bits"]
        return backend.run("pot", a=a2d, w=node.payload["w"], bits=bits, emax=pot.layer_emax(bits, node.k),
                           bias=node.bias, requant=node.requant)

    def cost(self, node, m: int, in_elems: int, out_elems: int):
        from termshift.nn.graph import LayerCost

        codes = node.payload["w"]
        n, k = codes.shape
        g = POT_ENGINE
        bits = parse(node.fmt)["bits"]
        counts = pot.group_counts(codes, g.cols, g.tile_k)
        # Only nonzero codes switch a PE; a zero inside a kept k-group holds its slot but is gated.
        ops = {"shift_adds": m * int(np.count_nonzero(codes))}
        if node.requant is not None:
            ops["requants"] = m * n
        kept = -(-m // g.rows) * int(counts.sum())  # array steps with data, over all row tiles
        return LayerCost(
            name=node.name, kind=node.kind, ops=ops, weight_count=n * k, bias_count=n,
            act_in_count=in_elems, act_out_count=out_elems,
            sram_a_reads=kept * g.rows, sram_w_reads=kept * g.cols,
            cycles=pot_gemm_cycles(g, m, counts), bits_per_weight=float(node.w_bits),
            bits_per_activation=float(node.a_bits),
            weight_storage_bits=pot.stream_bits(codes, bits, g.cols, g.tile_k) / (n * k),
            act_storage_bits=8.0, out_storage_bits=32.0 if node.requant is None else 8.0,
        )
