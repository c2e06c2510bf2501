"""The LSTM language model in numpy: float64 host execution, calibration,
INT quantization, the quantized step loop on an engine backend, and the
per-token cost rows. No torch here (this is what a board-side host runs).

Execution split (docs/models/lstm.md):

- host, float64: embedding lookup, quantizing the looked-up row to signed
  codes, dequantizing the gate GEMMs' int32 results and adding them,
  sigmoid/tanh, the cell update c = f*c + i*g and h = o*tanh(c), quantizing h
  back to signed codes, log-softmax of the logits. The cell state c stays
  float64 and is never quantized.
- engine: per layer and time step two GEMMs over every stream of the batch
  (M = streams, N = 4H, gate order i, f, g, o as torch stores them), both with
  requant=None (raw int32 out): x_t codes by W_ih codes plus b_ih (K = I),
  and h_{t-1} codes by W_hh codes plus b_hh (K = H), each bias in its own
  GEMM's accumulator units, exactly torch's two Linear maps; then the decoder GEMM
  h2 codes -> logits, also raw int32, dequantized on the host.

Why two GEMMs rather than one over [x_t | h_{t-1}]: one GEMM has one unit per
accumulator, so either x and h share an activation scale (embeddings reach
4.4 while h stays inside (-1, 1): h loses two bits of its code range) or the
scale ratio is folded into a shared per-row weight scale of
[W_ih * s_x | W_hh * s_h] (then layer 1's W_hh gets codes 3.2x coarser than on
its own, median over rows). Measured on 20 000 valid characters (bits/char; float 1.674):

    bits   two GEMMs   one GEMM, folded   one GEMM, shared scale
    8      1.675       1.675              1.676
    6      1.681       1.688              1.693
    5      1.696       1.736              1.769
    4      1.791       2.083              2.191

Two GEMMs also keep each weight matrix quantized on its own, like any Linear
layer, which is the contract every format's GEMM keeps (per-tensor input
scale, per-channel weight scale; termshift.nn.gemm_formats). The price: a
second engine call per layer and step (+12 % array cycles per token at
H = 256, from the extra fill/drain) and 4H float adds on the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from termshift.backends.base import Backend
from termshift.backends.cycle_model import INT_ENGINE, gemm_cycles
from termshift.checks import as_float_array
from termshift.formats import FormatSpec, parse, uniform
from termshift.nn.graph import LayerCost


@dataclass
class LSTMLayerParams:
    """One torch nn.LSTM layer in float64: w_ih (4H, I), w_hh (4H, H), b_ih, b_hh (4H,)."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray

    @property
    def hidden(self) -> int:
        return self.w_hh.shape[0] // 4

    @property
    def input_size(self) -> int:
        return self.w_ih.shape[1]


@dataclass
class LSTMParams:
    """Float weights of embedding -> stacked LSTM -> Linear decoder."""

    embedding: np.ndarray  # (V, E)
    layers: list  # LSTMLayerParams, bottom first
    dec_w: np.ndarray  # (V, H)
    dec_b: np.ndarray  # (V,)

    def __post_init__(self):
        self.embedding = as_float_array(self.embedding, "embedding")
        if self.embedding.ndim != 2 or 0 in self.embedding.shape:
            raise ValueError(f"embedding must be a non-empty (vocab, embed) matrix, got shape {self.embedding.shape}")
        if not self.layers:
            raise ValueError("an LSTM needs at least one layer")
        width = self.embedding.shape[1]
        for i, L in enumerate(self.layers, 1):
            for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
                setattr(L, name, as_float_array(getattr(L, name), f"layer {i} {name}"))
            h = L.w_hh.shape[0] // 4 if L.w_hh.ndim == 2 else 0
            want = {"w_ih": (4 * h, width), "w_hh": (4 * h, h), "b_ih": (4 * h,), "b_hh": (4 * h,)}
            for name, shape in want.items():
                if getattr(L, name).shape != shape or h < 1:
                    raise ValueError(f"layer {i} {name} has shape {getattr(L, name).shape}, expected {shape} "
                                     f"(input {width}, hidden {h})")
            width = h
        self.dec_w = as_float_array(self.dec_w, "decoder weight")
        self.dec_b = as_float_array(self.dec_b, "decoder bias")
        if self.dec_w.shape != (self.vocab, width) or self.dec_b.shape != (self.vocab,):
            raise ValueError(f"decoder must map hidden {width} to vocab {self.vocab}: got weight {self.dec_w.shape}, "
                             f"bias {self.dec_b.shape}")

    @property
    def vocab(self) -> int:
        return self.embedding.shape[0]

    @property
    def embed(self) -> int:
        return self.embedding.shape[1]

    @property
    def hidden(self) -> int:
        return self.layers[-1].hidden


def check_ids(ids, vocab: int) -> np.ndarray:
    """Token ids as an int64 (streams, steps) array, every id inside the vocabulary."""
    arr = np.asarray(ids)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"token ids must be integers, got dtype {arr.dtype}")
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"token ids must be a non-empty (streams, steps) array, got shape {arr.shape}")
    bad = (arr < 0) | (arr >= vocab)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"token id {int(arr[idx])} at {idx} is outside the vocabulary [0, {vocab}) "
                         f"({int(bad.sum())} id(s) out of range)")
    return arr.astype(np.int64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warning for large |x|, unlike 1 / (1 + exp(-x)).
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def cell(pre: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM cell update from gate pre-activations (B, 4H) in torch's i, f, g, o order."""
    i, f, g, o = np.split(pre, 4, axis=1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


@dataclass
class FloatState:
    h: list  # float64 (B, H) per layer
    c: list


def float_forward(params: LSTMParams, ids, state: FloatState | None = None,
                  stats: dict | None = None) -> tuple[np.ndarray, FloatState]:
    """Float64 numpy forward over (B, T) ids -> logits (B, T, V) and the final state.

    With `stats`, records the largest |value| at every point the INT model
    quantizes ("x" = looked-up embeddings, "h1", "h2", ...): the calibration.
    """
    ids = check_ids(ids, params.vocab)
    b, steps = ids.shape
    if state is None:
        state = FloatState([np.zeros((b, L.hidden)) for L in params.layers], [np.zeros((b, L.hidden)) for L in params.layers])
    h, c = list(state.h), list(state.c)
    x_all = params.embedding[ids]
    w_cat = [np.concatenate([L.w_ih, L.w_hh], axis=1) for L in params.layers]
    b_cat = [L.b_ih + L.b_hh for L in params.layers]
    top = np.empty((b, steps, params.hidden))
    for t in range(steps):
        x = x_all[:, t]
        for l in range(len(params.layers)):
            pre = np.concatenate([x, h[l]], axis=1) @ w_cat[l].T + b_cat[l]
            h[l], c[l] = cell(pre, c[l])
            if stats is not None:
                stats[f"h{l + 1}"] = max(stats.get(f"h{l + 1}", 0.0), float(np.abs(h[l]).max()))
            x = h[l]
        top[:, t] = x
    if stats is not None:
        stats["x"] = max(stats.get("x", 0.0), float(np.abs(x_all).max()))
    return top @ params.dec_w.T + params.dec_b, FloatState(h, c)


def calibrate(params: LSTMParams, streams, chunk: int = 200) -> dict:
    """max |activation| at every quantization point over calibration streams (B, T) of ids."""
    streams = check_ids(streams, params.vocab)
    stats: dict = {}
    state = None
    for start in range(0, streams.shape[1], chunk):
        _, state = float_forward(params, streams[:, start:start + chunk], state, stats)
    return stats


@dataclass
class QLSTMLayer:
    """One layer's gate GEMMs: x codes by w_x (4H, I) plus b_x, and h codes by
    w_h (4H, H) plus b_h; each int32 result dequantizes with its own unit."""

    w_x: np.ndarray
    s_wx: np.ndarray  # (4H,) per-channel scales of w_x
    b_x: np.ndarray  # (4H,) int32 b_ih in units of s_in * s_wx
    w_h: np.ndarray
    s_wh: np.ndarray
    b_h: np.ndarray  # (4H,) int32 b_hh in units of s_h * s_wh
    s_in: float  # scale of the input codes (embedding or the layer below's h)
    s_h: float  # scale of this layer's h codes

    @property
    def hidden(self) -> int:
        return self.w_h.shape[1]

    @property
    def input_size(self) -> int:
        return self.w_x.shape[1]

    def pre_activations(self, acc_x: np.ndarray, acc_h: np.ndarray) -> np.ndarray:
        return acc_x * (self.s_in * self.s_wx) + acc_h * (self.s_h * self.s_wh)


@dataclass
class QState:
    h: list  # int8 codes (B, H) per layer
    c: list  # float64 (B, H) per layer


@dataclass
class LSTMRun:
    logits: np.ndarray  # (B, T, V) float64
    state: QState
    cycles: dict  # GEMM name -> engine cycles over this run (as the backend reported them)
    raw: dict = field(default_factory=dict)  # "lstm1_ih", "lstm1_hh", ... -> (T, B, 4H) int32; "decoder" -> (B*T, V)


@dataclass
class QuantLSTM:
    """The INT-quantized LSTM language model; `run` drives an engine backend."""

    fmt: str
    bits: int
    embedding: np.ndarray  # (V, E) float64: looked up on the host, then quantized with s_x
    s_x: float
    layers: list  # QLSTMLayer
    dec_w: np.ndarray  # (V, H) codes
    dec_bias: np.ndarray  # (V,) int32
    dec_s_w: np.ndarray  # (V,)
    calibration: dict = field(default_factory=dict)

    @property
    def vocab(self) -> int:
        return self.embedding.shape[0]

    @property
    def hidden(self) -> int:
        return self.layers[-1].hidden

    def initial_state(self, streams: int) -> QState:
        return QState([np.zeros((streams, L.hidden), np.int8) for L in self.layers],
                      [np.zeros((streams, L.hidden)) for L in self.layers])

    def run(self, ids, backend: Backend, state: QState | None = None, keep_raw: bool = False) -> LSTMRun:
        """Logits for (B, T) token ids; state carries h codes and c across calls."""
        ids = check_ids(ids, self.vocab)
        b, steps = ids.shape
        state = state or self.initial_state(b)
        if state.h[0].shape[0] != b:
            raise ValueError(f"state holds {state.h[0].shape[0]} streams but ids have {b}")
        h, c = list(state.h), list(state.c)
        x_codes = uniform.quantize(self.embedding[ids], self.s_x, self.bits, signed=True)
        cycles: dict = {}
        raw: dict = {}

        def gemm(name, a, w, bias):
            res = backend.gemm_int(a, w, bias, None)
            cycles[name] = cycles.get(name, 0) + res.cycles
            if keep_raw:
                raw.setdefault(name, []).append(res.out)
            return res.out

        top = np.empty((b, steps, self.hidden), np.int8)
        for t in range(steps):
            x = x_codes[:, t]
            for l, L in enumerate(self.layers):
                acc_x = gemm(f"lstm{l + 1}_ih", x, L.w_x, L.b_x)
                acc_h = gemm(f"lstm{l + 1}_hh", h[l], L.w_h, L.b_h)
                hf, c[l] = cell(L.pre_activations(acc_x, acc_h), c[l])
                h[l] = uniform.quantize(hf, L.s_h, self.bits, signed=True)
                x = h[l]
            top[:, t] = x
        res = backend.gemm_int(top.reshape(b * steps, self.hidden), self.dec_w, self.dec_bias, None)
        cycles["decoder"] = res.cycles
        if keep_raw:
            raw = {k: np.stack(v) for k, v in raw.items()}
            raw["decoder"] = res.out
        logits = (res.out * (self.layers[-1].s_h * self.dec_s_w)).reshape(b, steps, self.vocab)
        return LSTMRun(logits, QState(h, c), cycles, raw)

    def costs(self) -> list[LayerCost]:
        e = self.embedding.shape[1]
        return lstm_costs(self.vocab, e, [L.hidden for L in self.layers], self.bits)


def quantize_lstm(params: LSTMParams, stats: dict, fmt: str | FormatSpec = "int:bits=8") -> QuantLSTM:
    """INT-quantize `params` with activation scales from `stats` (see `calibrate`)."""
    spec = parse(fmt) if isinstance(fmt, str) else fmt
    if spec.name != "int":
        raise ValueError(f"the LSTM runs in 'float' or 'int:bits=B'; format {spec.name!r} has no LSTM lowering yet")
    bits, gran = spec["bits"], spec["granularity"]
    need = ["x"] + [f"h{l + 1}" for l in range(len(params.layers))]
    missing = [k for k in need if k not in stats]
    if missing:
        raise ValueError(f"calibration statistics lack {missing}; run calibrate() on the calibration split")
    scale = {k: uniform.activation_scale(np.asarray(stats[k]), bits, signed=True) for k in need}

    def weights(w):
        s_w = np.broadcast_to(uniform.weight_scale(w, bits, gran), (w.shape[0],)).copy()
        return uniform.quantize(w, s_w, bits, signed=True), s_w

    layers = []
    s_in = scale["x"]
    for l, L in enumerate(params.layers):
        s_h = scale[f"h{l + 1}"]
        (w_x, s_wx), (w_h, s_wh) = weights(L.w_ih), weights(L.w_hh)
        b_x, b_h = uniform.quantize_bias(L.b_ih, s_in, s_wx), uniform.quantize_bias(L.b_hh, s_h, s_wh)
        for w, bq in ((w_x, b_x), (w_h, b_h)):
            uniform.check_accumulator(w.shape[1], False, int(np.abs(bq.astype(np.int64)).max()))
        layers.append(QLSTMLayer(w_x, s_wx, b_x, w_h, s_wh, b_h, s_in, s_h))
        s_in = s_h
    dec_w, dec_s_w = weights(params.dec_w)
    dec_bias = uniform.quantize_bias(params.dec_b, s_in, dec_s_w)
    return QuantLSTM(str(spec), bits, params.embedding.copy(), scale["x"], layers, dec_w, dec_bias, dec_s_w,
                     calibration={k: float(stats[k]) for k in need})


def _gemm_row(name: str, kind: str, n: int, k: int, bits: int) -> LayerCost:
    """One engine GEMM at batch 1 (M = 1), raw int32 out; tile reads counted as graph.GemmNode counts them."""
    g = INT_ENGINE
    tiles = -(-1 // g.rows) * -(-n // g.cols)
    return LayerCost(name=name, kind=kind, ops={"macs": n * k}, weight_count=n * k, bias_count=n,
                     act_in_count=k, act_out_count=n, sram_a_reads=tiles * k * g.rows, sram_w_reads=tiles * k * g.cols,
                     cycles=gemm_cycles(g, 1, n, k), bits_per_weight=float(bits), bits_per_activation=float(bits),
                     weight_storage_bits=8.0, act_storage_bits=8.0, out_storage_bits=32.0)


def lstm_costs(vocab: int, embed: int, hidden: list, bits: int) -> list[LayerCost]:
    """What one token costs on the engine: two gate GEMMs per layer
    (M=1, N=4H, K=I and K=H) and the decoder GEMM (M=1, N=V, K=H), all raw int32 out.

    Host work is not costed: the embedding row read (E float32 values, about
    0.03 % of the bits the engine moves per token at E=64, H=256) and, per
    layer, 8H dequantizing multiplies and 4H adds of the two GEMM results,
    3H sigmoids, 2H tanh, the cell's 3H multiply-adds and H quantizations of h.
    """
    rows = []
    width = embed
    for l, h in enumerate(hidden):
        rows.append(_gemm_row(f"lstm{l + 1}_ih", "lstm", 4 * h, width, bits))
        rows.append(_gemm_row(f"lstm{l + 1}_hh", "lstm", 4 * h, h, bits))
        width = h
    rows.append(_gemm_row("decoder", "linear", vocab, width, bits))
    return rows
