"""How each number format puts a Linear/Conv2d GEMM on its engine.

A `GemmFormat` knows four things about its format: how to quantize a float
weight matrix into the engine's payload (plus per-channel scales), its bits
per weight, how to run one GEMM call on a backend, and what one call costs. Graph nodes hold the
payload and look their format up here by the spec's name, so a new format
plugs into lowering, execution, artifacts and costing by registering one
object in `GEMM_FORMATS` (one line) from its own module.

A format whose weights also depend on the layer's calibration inputs adds
`quantize_layer(w2d, spec, x, s_in, signed, index, x_rows=None)` (x: the
layer's float calibration inputs, x_rows: its GEMM input rows or a function
making them, for convolutions) and `needs_calibration(spec)`; lowering
calls it whenever it has the inputs (graph.quantize_gemm). `teq` always
needs them, `pot` with `round=gptq`.

The contract every format keeps: activations enter as int8/uint8 codes with a
per-tensor scale s_in; the engine returns int32 that equals
round(a . w / (s_in * s_w[n])) in accumulator units, i.e. dequantizes as
acc * s_in * s_w[n]; requantization (bias, multiplier, shift, clamp) is the
engine's shared last stage (docs/formats/int.md, section 5).
"""

from __future__ import annotations

import importlib

import numpy as np

from termshift.backends.cycle_model import INT_ENGINE, gemm_cycles
from termshift.formats import FormatSpec, uniform


class IntGemm:
    """`int`: int8 weight codes on the INT8 MAC engine."""

    name = "int"
    engine = "int"

    def quantize_weights(self, w2d: np.ndarray, spec: FormatSpec) -> tuple[dict, np.ndarray]:
        s_w = np.broadcast_to(uniform.weight_scale(w2d, spec["bits"], spec["granularity"]), (w2d.shape[0],)).copy()
        return {"w": uniform.quantize(w2d, s_w, spec["bits"], True)}, s_w

    def weight_bits(self, spec: FormatSpec) -> float:
        return float(spec["bits"])

    def run(self, backend, a2d: np.ndarray, node):
        return backend.run("int", a=a2d, w=node.payload["w"], bias=node.bias, requant=node.requant)

    def cost(self, node, m: int, in_elems: int, out_elems: int):
        from termshift.nn.graph import LayerCost

        n, k = node.payload["w"].shape
        g = INT_ENGINE
        ops = {"macs": m * n * k}
        if node.requant is not None:
            ops["requants"] = m * n
        # Each output tile reads a rows x K slice of A and a cols x K slice of W.
        tiles = -(-m // g.rows) * -(-n // g.cols)
        return LayerCost(
            name=node.name, kind=node.kind, ops=ops, weight_count=n * k, bias_count=n,
            act_in_count=in_elems, act_out_count=out_elems,
            sram_a_reads=tiles * k * g.rows, sram_w_reads=tiles * k * g.cols,
            cycles=gemm_cycles(g, m, n, k), bits_per_weight=float(node.w_bits),
            bits_per_activation=float(node.a_bits), weight_storage_bits=8.0, act_storage_bits=8.0,
            out_storage_bits=32.0 if node.requant is None else 8.0,
        )


# Format name -> module path and attribute of its GemmFormat (imported on first use).
GEMM_FORMATS = {
    "int": ("termshift.nn.gemm_formats", "IntGemm"),
    "pot": ("termshift.nn.gemm_pot", "PotGemm"),
    "bfp": ("termshift.nn.gemm_bfp", "BfpGemm"),
    "tr": ("termshift.nn.gemm_tr", "TrGemm"),
    "teq": ("termshift.nn.gemm_teq", "TeqGemm"),
}

_cache: dict = {}


def gemm_format(fmt: str | FormatSpec):
    """The GemmFormat for a spec string or parsed spec."""
    name = fmt.name if isinstance(fmt, FormatSpec) else str(fmt).partition(":")[0].strip().lower()
    if name not in GEMM_FORMATS:
        raise ValueError(f"format {name!r} has no engine lowering yet; available: {', '.join(GEMM_FORMATS)}")
    if name not in _cache:
        module, attr = GEMM_FORMATS[name]
        _cache[name] = getattr(importlib.import_module(module), attr)()
    return _cache[name]
