"""The LSTM language model in numpy: float64 host execution, calibration,
quantization in any GEMM format (nn/gemm_formats.py: int, pot, tr, bfp,
teq), the quantized step loop on an engine backend, and the per-token cost
rows. No torch here (this is what a board-side host runs).

Every engine GEMM is a graph GEMM node (graph.quantize_gemm) that its
format runs and costs (gemm_format(node.fmt).run / .cost), so the LSTM takes
each format exactly as the lowered image models do. Activations are signed
codes: B bits for `int:bits=B`, 8 bits for every other format.

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

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from termshift.backends.base import Backend
from termshift.checks import as_float_array
from termshift.formats import FormatSpec, parse, uniform
from termshift.nn.gemm_formats import gemm_format
from termshift.nn.graph import LayerCost, QLinear, quantize_gemm

# Activation code width of every format but `int:bits=B` (lower.ACT_BITS;
# not imported from there because lower.py needs torch and this module must not).
ACT_BITS = 8


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


SAMPLE_EVERY = 16  # calibration keeps the GEMM inputs of every 16th step: 4 096 rows from 64 x 1 024 ids
SAMPLE_ROWS = 4096  # at most this many rows per quantization point


def float_forward(params: LSTMParams, ids, state: FloatState | None = None,
                  stats: dict | None = None, step0: int = 0) -> tuple[np.ndarray, FloatState]:
    """Float64 numpy forward over (B, T) ids -> logits (B, T, V) and the final state.

    With `stats`, records the largest |value| at every point the quantized
    model quantizes ("x" = looked-up embeddings, "h1", "h2", ...): the
    calibration; and under stats["samples"] the same points' float values at
    every SAMPLE_EVERY-th step (counted from `step0`), at most SAMPLE_ROWS
    rows each: the GEMM inputs formats fitted to activations (teq) need.
    "x" feeds lstm1_ih, "hL" feeds lstmL_hh (one step later) and lstm(L+1)_ih
    or the decoder; the state at step 0 is not sampled.
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
    samples = None if stats is None else stats.setdefault("samples", {})

    def keep(key, value):
        rows = samples.setdefault(key, [])
        if sum(len(r) for r in rows) < SAMPLE_ROWS:
            rows.append(value[:SAMPLE_ROWS - sum(len(r) for r in rows)].copy())

    for t in range(steps):
        x = x_all[:, t]
        sample = samples is not None and (step0 + t) % SAMPLE_EVERY == 0
        if sample:
            keep("x", x)
        for l in range(len(params.layers)):
            pre = np.concatenate([x, h[l]], axis=1) @ w_cat[l].T + b_cat[l]
            h[l], c[l] = cell(pre, c[l])
            if stats is not None:
                stats[f"h{l + 1}"] = max(stats.get(f"h{l + 1}", 0.0), float(np.abs(h[l]).max()))
                if sample:
                    keep(f"h{l + 1}", h[l])
            x = h[l]
        top[:, t] = x
    if stats is not None:
        stats["x"] = max(stats.get("x", 0.0), float(np.abs(x_all).max()))
    return top @ params.dec_w.T + params.dec_b, FloatState(h, c)


def calibrate(params: LSTMParams, streams, chunk: int = 200) -> dict:
    """max |activation| at every quantization point over calibration streams
    (B, T) of ids, and (under "samples") a bounded sample of the float values
    there: {"x": (R, E), "h1": (R, H), ...}."""
    streams = check_ids(streams, params.vocab)
    stats: dict = {}
    state = None
    for start in range(0, streams.shape[1], chunk):
        _, state = float_forward(params, streams[:, start:start + chunk], state, stats, step0=start)
    stats["samples"] = {k: np.concatenate(v) for k, v in stats["samples"].items()}
    return stats


def gemm_names(n_layers: int) -> list[str]:
    """The engine GEMMs in model order (the `index` a per-layer format counts by)."""
    return [f"lstm{l + 1}_{g}" for l in range(n_layers) for g in ("ih", "hh")] + ["decoder"]


@dataclass
class QLSTMLayer:
    """One layer's gate GEMMs as graph GEMM nodes (any format; raw int32 out):
    x codes by W_ih plus b_ih (`ih`), and h_{t-1} codes by W_hh plus b_hh
    (`hh`); each int32 result dequantizes with its own unit."""

    ih: QLinear
    hh: QLinear

    @property
    def s_in(self) -> float:  # scale of the input codes (embedding or the layer below's h)
        return self.ih.s_in

    @property
    def s_h(self) -> float:  # scale of this layer's h codes
        return self.hh.s_in

    @property
    def hidden(self) -> int:
        return self.hh.k

    @property
    def input_size(self) -> int:
        return self.ih.k

    def pre_activations(self, acc_x: np.ndarray, acc_h: np.ndarray) -> np.ndarray:
        return acc_x * (self.s_in * self.ih.s_w) + acc_h * (self.s_h * self.hh.s_w)


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
    """The quantized LSTM language model; `run` drives an engine backend.
    `fmt` is the spec it was quantized with (per-GEMM specs, when a search
    chose them, are each node's `fmt`); `bits` is the activation code width."""

    fmt: str
    bits: int
    embedding: np.ndarray  # (V, E) float64: looked up on the host, then quantized with s_x
    s_x: float
    layers: list  # QLSTMLayer
    decoder: QLinear
    calibration: dict = field(default_factory=dict)

    @property
    def vocab(self) -> int:
        return self.embedding.shape[0]

    @property
    def hidden(self) -> int:
        return self.layers[-1].hidden

    def gemm_nodes(self) -> list[QLinear]:
        """Every engine GEMM in model order (gemm_names)."""
        return [g for L in self.layers for g in (L.ih, L.hh)] + [self.decoder]

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

        def gemm(node, a):
            res = gemm_format(node.fmt).run(backend, a, node)
            cycles[node.name] = cycles.get(node.name, 0) + res.cycles
            if keep_raw:
                raw.setdefault(node.name, []).append(res.out)
            return res.out

        top = np.empty((b, steps, self.hidden), np.int8)
        for t in range(steps):
            x = x_codes[:, t]
            for l, L in enumerate(self.layers):
                acc_x = gemm(L.ih, x)
                acc_h = gemm(L.hh, h[l])
                hf, c[l] = cell(L.pre_activations(acc_x, acc_h), c[l])
                h[l] = uniform.quantize(hf, L.s_h, self.bits, signed=True)
                x = h[l]
            top[:, t] = x
        out = gemm(self.decoder, top.reshape(b * steps, self.hidden))
        if keep_raw:
            raw = {k: np.stack(v) for k, v in raw.items()}
            raw["decoder"] = raw["decoder"][0]
        logits = (out * (self.decoder.s_in * self.decoder.s_w)).reshape(b, steps, self.vocab)
        return LSTMRun(logits, QState(h, c), cycles, raw)

    def costs(self) -> list[LayerCost]:
        """One token (batch 1, M = 1) on the engine, each GEMM costed by its
        own format (lstm_costs lists what the host does and is not charged)."""
        rows = []
        for node in self.gemm_nodes():
            c = gemm_format(node.fmt).cost(node, 1, node.k, node.n_out)
            rows.append(c if node.name == "decoder" else dataclasses.replace(c, kind="lstm"))
        return rows


def quantize_lstm(params: LSTMParams, stats: dict, fmt: str | FormatSpec = "int:bits=8",
                  plan: list | None = None) -> QuantLSTM:
    """Quantize `params` in any GEMM format of nn/gemm_formats.py, with
    activation scales from `stats` (see `calibrate`). `int:bits=B` quantizes
    activations to B bits, every other format to signed 8-bit codes
    (lower.ACT_BITS). `plan`: one spec per GEMM (model order, gemm_names)
    overriding `fmt`, as the per-layer searches produce. Formats fitted to
    their inputs (teq) take them from stats["samples"]."""
    spec = parse(fmt) if isinstance(fmt, str) else fmt
    gemm_format(spec)  # an unknown format fails here, before any work
    names = gemm_names(len(params.layers))
    if plan is None:
        _check_fixed(spec)
        specs = [spec] * len(names)
    else:
        if len(plan) != len(names):
            raise ValueError(f"plan must give one spec per GEMM ({', '.join(names)}), got {len(plan)}")
        specs = [parse(p) if isinstance(p, str) else p for p in plan]
        for p in specs:
            _check_fixed(p)
    bits = spec["bits"] if spec.name == "int" else ACT_BITS
    need = ["x"] + [f"h{l + 1}" for l in range(len(params.layers))]
    missing = [k for k in need if k not in stats]
    if missing:
        raise ValueError(f"calibration statistics lack {missing}; run calibrate() on the calibration split")
    scale = {k: uniform.activation_scale(np.asarray(stats[k]), bits, signed=True) for k in need}
    samples = stats.get("samples", {})

    def node(i, w, b, key):
        try:
            q = quantize_gemm(names[i], w, b, scale[key], specs[i], x_calib=samples.get(key), in_signed=True,
                              index=i, requant=None, a_bits=bits)
        except ValueError as e:
            raise ValueError(f"LSTM GEMM {names[i]}: {e}" + ("" if key in samples else
                             f" (calibrate() keeps them under stats['samples'][{key!r}])")) from None
        if specs[i].name == "int":
            uniform.check_accumulator(q.k, False, int(np.abs(q.bias.astype(np.int64)).max()))
        return q

    layers = []
    key_in = "x"
    for l, L in enumerate(params.layers):
        key_h = f"h{l + 1}"
        layers.append(QLSTMLayer(node(2 * l, L.w_ih, L.b_ih, key_in), node(2 * l + 1, L.w_hh, L.b_hh, key_h)))
        key_in = key_h
    dec = node(len(names) - 1, params.dec_w, params.dec_b, key_in)
    return QuantLSTM(str(spec), bits, params.embedding.copy(), scale["x"], layers, dec,
                     calibration={k: float(stats[k]) for k in need})


def teq_tensors(params: LSTMParams, stats: dict) -> dict:
    """{name: (values, signed)} for ``teq.premise_report``: every GEMM's float
    weights and the signed 8-bit input codes its engine calls receive (the
    sampled calibration inputs); a layer's h feeds two GEMMs and is listed once."""
    from termshift.formats import teq

    names = gemm_names(len(params.layers))
    samples = stats.get("samples", {})
    out: dict = {}
    weights = []
    for l, L in enumerate(params.layers):
        weights += [(L.w_ih, "x" if l == 0 else f"h{l}"), (L.w_hh, f"h{l + 1}")]
    weights.append((params.dec_w, f"h{len(params.layers)}"))
    for name, (w, key) in zip(names, weights, strict=True):
        out[f"{name}.weight"] = (np.asarray(w, np.float64), True)
        if key not in samples:
            raise ValueError(f"calibration statistics lack the sampled inputs {key!r}; run calibrate()")
        if f"{key}.input" not in out:
            s_in = uniform.activation_scale(np.asarray(stats[key]), ACT_BITS, signed=True)
            out[f"{key}.input"] = (teq.activation_codes(samples[key], s_in, True), True)
    return out


def _check_fixed(spec: FormatSpec) -> None:
    """Reject the specs that ask for a per-layer search (run by termshift.nn.lstm_search)."""
    if spec.name == "teq" and spec["bits"] == "adaptive" and not spec["widths"]:
        raise ValueError("teq (adaptive) needs per-GEMM widths: run termshift.nn.lstm_search.search_teq_widths "
                         "(evaluate_lstm does), or give teq:bits=N / teq:widths=a/b/c/d/e")
    if spec.name == "bfp" and spec["search"] == "on":
        raise ValueError("bfp:search chooses (block, mantissa) per GEMM: run termshift.nn.lstm_search.search_bfp "
                         "(evaluate_lstm does) and pass its plan")


def lstm_costs(vocab: int, embed: int, hidden: list, bits: int) -> list[LayerCost]:
    """What one token costs on the INT engine (`int:bits=B` shapes; the
    float baseline re-costs these rows at fp32): two gate GEMMs per layer
    (M=1, N=4H, K=I and K=H) and the decoder GEMM (M=1, N=V, K=H), all raw
    int32 out. A quantized model's own rows (QuantLSTM.costs) come from its
    format's cost function, which for `int` gives exactly these.

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


def _gemm_row(name: str, kind: str, n: int, k: int, bits: int) -> LayerCost:
    """One INT engine GEMM at batch 1 (M = 1), raw int32 out: IntGemm.cost of a node of that shape."""
    zero = QLinear(name=name, fmt=f"int:bits={bits}", payload={"w": np.zeros((n, k), np.int8)},
                   bias=np.zeros(n, np.int32), k=k, s_in=1.0, s_w=np.ones(n), requant=None, w_bits=bits, a_bits=bits)
    return dataclasses.replace(gemm_format("int").cost(zero, 1, k, n), kind=kind)
