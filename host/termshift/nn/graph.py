"""The quantized graph: a chain of integer nodes that runs on any backend.

numpy only (this is what the board loads). A graph starts with a
`QuantizeInput` node (float -> codes), passes integer codes between nodes, and
its last GEMM node dequantizes to float (logits). Every GEMM node calls the
backend's engine, so the reference and C-sim backends see identical operands
and must return identical integers.

Per-inference cost (ops, bits moved, cycles) is computed analytically from the
node shapes at batch 1 (`cost`), so it does not depend on how a run was batched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from termshift.backends.base import Backend
from termshift.checks import as_float_array
from termshift.formats import uniform
from termshift.formats.uniform import Requant
from termshift.nn.gemm_formats import gemm_format
from termshift.nn.im2col import col2im_output, conv_output_size, im2col


@dataclass
class LayerCost:
    """What one inference (batch 1) costs in one node: element counts, the
    format's bits per element (reported), and the bits each element occupies in
    memory and on the wires (what energy is charged for: the INT engine moves
    every code in an 8-bit container whatever the format's width). Keeping
    counts and widths apart lets the same shapes be re-costed at fp32."""

    name: str
    kind: str
    ops: dict = field(default_factory=dict)  # e.g. {"macs": 1234, "requants": 10}
    weight_count: int = 0
    bias_count: int = 0
    act_in_count: int = 0
    act_out_count: int = 0
    sram_a_reads: int = 0  # activation elements read from the on-chip tile buffers
    sram_w_reads: int = 0  # weight elements read from the on-chip tile buffers
    cycles: int = 0
    bits_per_weight: float = 0.0  # the format's width
    bits_per_activation: float = 0.0
    weight_storage_bits: float = 0.0  # what one weight occupies when moved
    act_storage_bits: float = 0.0
    out_storage_bits: float = 0.0  # 32 when the int32 accumulator leaves raw
    bias_storage_bits: float = 32.0

    @property
    def weight_bits(self) -> int:
        return int(round(self.weight_count * self.weight_storage_bits + self.bias_count * self.bias_storage_bits))

    @property
    def act_in_bits(self) -> int:
        return int(round(self.act_in_count * self.act_storage_bits))

    @property
    def act_out_bits(self) -> int:
        return int(round(self.act_out_count * self.out_storage_bits))

    @property
    def sram_bits(self) -> int:
        return int(round(self.sram_a_reads * self.act_storage_bits + self.sram_w_reads * self.weight_storage_bits))


@dataclass
class RunContext:
    backend: Backend
    cycles: dict = field(default_factory=dict)  # node name -> engine cycles of this run
    raw: dict = field(default_factory=dict)  # node name -> int32 engine output (when kept)
    keep_raw: bool = False


class Node:
    """Base of every graph node; subclasses are dataclasses whose first field is `name`."""

    kind = "node"

    def out_shape(self, in_shape: tuple) -> tuple:
        return in_shape

    def run(self, x: np.ndarray, ctx: RunContext) -> np.ndarray:
        raise NotImplementedError

    def cost(self, in_shape: tuple) -> LayerCost | None:
        return None

    def params(self) -> dict:
        """JSON-able attributes (arrays are handled separately)."""
        return {}

    def arrays(self) -> dict:
        return {}


@dataclass
class QuantizeInput(Node):
    """Float input -> activation codes with a calibrated per-tensor scale."""

    name: str
    scale: float
    bits: int = 8
    signed: bool = False
    kind = "quantize_input"

    def run(self, x, ctx):
        return uniform.quantize(x, self.scale, self.bits, self.signed)

    def params(self):
        return {"scale": self.scale, "bits": self.bits, "signed": self.signed}


@dataclass
class GemmNode(Node):
    """Shared by Linear and Conv2d: the format's weight payload (for `int`,
    {"w": int8 (N, K)}), int32 bias, per-channel weight scales, and how the
    int32 result leaves: requantized to codes, or dequantized to float. The
    format's GemmFormat (nn/gemm_formats.py) runs and costs the call."""

    name: str
    fmt: str
    payload: dict  # format-specific weight arrays, each with N rows
    bias: np.ndarray  # (N,) int32
    k: int  # reduction length of the GEMM
    s_in: float  # scale of the input codes
    s_w: np.ndarray  # (N,) weight scales
    requant: Requant | None  # None: last layer, dequantize to float
    s_out: float = 1.0  # scale of the output codes when requantized
    w_bits: float = 8  # the format's bits per weight (reported)
    a_bits: int = 8

    @property
    def n_out(self) -> int:
        return int(self.bias.shape[0])

    def _gemm(self, a2d: np.ndarray, ctx: RunContext) -> np.ndarray:
        res = gemm_format(self.fmt).run(ctx.backend, a2d, self)
        ctx.cycles[self.name] = ctx.cycles.get(self.name, 0) + res.cycles
        if ctx.keep_raw:
            ctx.raw[self.name] = res.out
        if self.requant is None:
            return res.out.astype(np.float64) * (self.s_in * self.s_w)
        out_dtype = np.uint8 if self.requant.lo >= 0 and self.requant.hi <= 255 else np.int8
        return res.out.astype(out_dtype)

    def _gemm_cost(self, m: int, in_elems: int, out_elems: int) -> LayerCost:
        return gemm_format(self.fmt).cost(self, m, in_elems, out_elems)

    def params(self):
        p = {"fmt": self.fmt, "s_in": self.s_in, "s_out": self.s_out, "w_bits": self.w_bits, "a_bits": self.a_bits,
             "k": self.k, "payload": sorted(self.payload), "requant": None}
        if self.requant is not None:
            p["requant"] = {"shift": self.requant.shift, "lo": self.requant.lo, "hi": self.requant.hi}
        return p

    def arrays(self):
        a = {f"payload_{k}": v for k, v in self.payload.items()}
        a.update(bias=self.bias, s_w=np.asarray(self.s_w, np.float64))
        if self.requant is not None:
            a["multiplier"] = self.requant.multiplier
        return a


@dataclass
class QLinear(GemmNode):
    kind = "linear"

    def out_shape(self, in_shape):
        return (self.n_out,)

    def run(self, x, ctx):
        if x.ndim != 2 or x.shape[1] != self.k:
            raise ValueError(f"{self.name}: expects (batch, {self.k}) input, got {x.shape}")
        return self._gemm(x, ctx)

    def cost(self, in_shape):
        return self._gemm_cost(1, self.k, self.n_out)


@dataclass
class QConv2d(GemmNode):
    in_channels: int = 1
    kernel: tuple = (3, 3)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    kind = "conv2d"

    def out_shape(self, in_shape):
        c, h, w = in_shape
        return (self.n_out, conv_output_size(h, self.kernel[0], self.stride[0], self.padding[0]),
                conv_output_size(w, self.kernel[1], self.stride[1], self.padding[1]))

    def run(self, x, ctx):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self.name}: expects (batch, {self.in_channels}, H, W) input, got {x.shape}")
        _, ho, wo = self.out_shape(x.shape[1:])
        cols = im2col(x, self.kernel, self.stride, self.padding)
        return col2im_output(self._gemm(cols, ctx), x.shape[0], ho, wo)

    def cost(self, in_shape):
        cout, ho, wo = self.out_shape(in_shape)
        return self._gemm_cost(ho * wo, int(np.prod(in_shape)), cout * ho * wo)

    def params(self):
        p = super().params()
        p.update(in_channels=self.in_channels, kernel=list(self.kernel), stride=list(self.stride), padding=list(self.padding))
        return p


@dataclass
class ReLU(Node):
    name: str
    kind = "relu"

    def run(self, x, ctx):
        return np.maximum(x, 0).astype(x.dtype)


@dataclass
class Flatten(Node):
    name: str
    kind = "flatten"

    def out_shape(self, in_shape):
        return (int(np.prod(in_shape)),)

    def run(self, x, ctx):
        return x.reshape(x.shape[0], -1)


@dataclass
class Pool2d(Node):
    """Max or average pooling on codes. Average: integer sum, then
    floor((sum + n // 2) / n), i.e. round half toward +infinity."""

    name: str
    mode: str = "max"
    kernel: tuple = (2, 2)
    stride: tuple = (2, 2)
    kind = "pool2d"

    def out_shape(self, in_shape):
        c, h, w = in_shape
        return (c, conv_output_size(h, self.kernel[0], self.stride[0], 0), conv_output_size(w, self.kernel[1], self.stride[1], 0))

    def run(self, x, ctx):
        kh, kw = self.kernel
        sh, sw = self.stride
        _, ho, wo = self.out_shape(x.shape[1:])
        win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :ho, :wo]
        if self.mode == "max":
            return np.ascontiguousarray(win.max(axis=(4, 5)))
        n = kh * kw
        total = win.astype(np.int64).sum(axis=(4, 5))
        return ((total + n // 2) // n).astype(x.dtype)

    def cost(self, in_shape):
        c, ho, wo = self.out_shape(in_shape)
        return LayerCost(self.name, self.kind, ops={"compares" if self.mode == "max" else "adds": c * ho * wo * self.kernel[0] * self.kernel[1]})  # on codes already in the engine's buffers

    def params(self):
        return {"mode": self.mode, "kernel": list(self.kernel), "stride": list(self.stride)}


def quantize_gemm(name: str, w2d: np.ndarray, b: np.ndarray | None, s_in: float, spec, *,
                  x_calib: np.ndarray | None = None, in_signed: bool = True, index: int = 0,
                  requant: Requant | None = None, s_out: float = 1.0, a_bits: int = 8,
                  x_rows=None) -> QLinear:
    """One float Linear (w2d (N, K), bias (N,)) as a GEMM node in any format of
    nn/gemm_formats.py, fed codes of scale `s_in`. Formats fitted to their
    calibration activations too (teq; pot with round=gptq) need `x_calib` (float inputs of this GEMM
    on the calibration data) and `index` (the GEMM's position in its model);
    where x_calib is not the GEMM's input rows (M, K) (a convolution's input),
    `x_rows` gives them, or a callable that makes them when a format asks.
    The same call serves the fx-lowered chains, the LSTM gates and MiniLM's Linears."""
    from termshift.formats import parse

    spec = parse(spec) if isinstance(spec, str) else spec
    gf = gemm_format(spec)
    w2d = np.asarray(w2d, np.float64)
    if hasattr(gf, "quantize_layer") and (x_calib is not None or gf.needs_calibration(spec)):
        if x_calib is None:
            raise ValueError(f"{name}: format {spec.name!r} fits each layer to its calibration activations; "
                             "pass x_calib (this GEMM's float inputs on the calibration data)")
        payload, s_w = gf.quantize_layer(w2d, spec, np.asarray(x_calib), s_in, in_signed, index, x_rows=x_rows)
    else:
        payload, s_w = gf.quantize_weights(w2d, spec)
    bias = np.zeros(w2d.shape[0]) if b is None else np.asarray(b, np.float64)
    bq = uniform.quantize_bias(bias, s_in, s_w)
    return QLinear(name=name, fmt=str(spec), payload=payload, bias=bq, k=w2d.shape[1], s_in=s_in, s_w=s_w,
                   requant=requant, s_out=s_out, w_bits=gf.weight_bits(spec), a_bits=a_bits)


NODE_TYPES = {cls.kind: cls for cls in (QuantizeInput, QLinear, QConv2d, ReLU, Flatten, Pool2d)}


@dataclass
class RunResult:
    output: np.ndarray  # float, (batch, ...)
    cycles: dict  # node name -> engine cycles over the whole run
    raw: dict  # node name -> int32 engine outputs (keep_raw=True)


@dataclass
class QuantGraph:
    """A chain of nodes with the per-sample input shape and the format it uses."""

    nodes: list
    input_shape: tuple
    fmt: str
    meta: dict = field(default_factory=dict)

    def run(self, x, backend: Backend, batch_size: int = 4096, keep_raw: bool = False) -> RunResult:
        x = as_float_array(x, "input")
        if x.shape[1:] != tuple(self.input_shape):
            raise ValueError(f"input must have shape (batch, {', '.join(map(str, self.input_shape))}), got {x.shape}")
        ctx = RunContext(backend, keep_raw=keep_raw)
        outs, raws = [], {}
        for start in range(0, x.shape[0], batch_size):
            h = x[start:start + batch_size]
            ctx.raw = {}
            for node in self.nodes:
                h = node.run(h, ctx)
            outs.append(h)
            for k, v in ctx.raw.items():
                raws.setdefault(k, []).append(v)
        return RunResult(np.concatenate(outs), ctx.cycles, {k: np.concatenate(v) for k, v in raws.items()})

    def gemm_nodes(self) -> Iterable[GemmNode]:
        return (n for n in self.nodes if isinstance(n, GemmNode))

    def costs(self) -> list[LayerCost]:
        shape = tuple(self.input_shape)
        out = []
        for node in self.nodes:
            c = node.cost(shape)
            if c is not None:
                out.append(c)
            shape = node.out_shape(shape)
        return out
