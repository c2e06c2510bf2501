"""`teq` on models: the GemmFormat of the TEQ engine, lowering with per-layer
calibration activations, the adaptive per-layer width search, evaluation, and
the premise report over a model's tensors. docs/formats/teq.md is the spec.

Payload of a GEMM node: {"w": (N, ceil(K*n/8)) uint8 packed n-bit weight
codes, "lut": (256,) int8 input byte -> activation code, "p_table",
"w_table", "a_table": int16 fixed-point tables, "bits": [n], "params":
[base, alpha_w, beta_w, alpha_a, beta_a, unit, a_signed, rmae_w, rmae_a]}.

How a TEQ layer keeps the GemmFormat contract (nn/gemm_formats.py):
activations arrive as the usual uint8/int8 uniform codes with scale s_in; the
*engine* maps each byte to a TEQ code through `lut` (fitted on the codes the
calibration batch produces), so nothing changes between layers. The int32
result counts units of s_in * unit, where `unit` is the tables' fixed-point
step in (weight x input-code) units, so s_w[n] = unit for every channel and
the graph's usual dequantization acc * s_in * s_w and requantization hold.

Fitting a layer needs that layer's calibration activations, which the
GemmFormat interface (`quantize_weights(w2d, spec)`) does not pass. Until
lower.py hands them over (docs/formats/teq.md, section 10, gives the change),
`lower_teq` supplies them: it records every GEMM input of the float model on
the calibration batch and the input scales the INT8 lowering derives (the
same for every format), then runs the shared `lower` with them in a context.
"""

from __future__ import annotations

import contextvars
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from termshift.backends.base import Backend, GemmResult
from termshift.backends.engine_teq import TEQ_ENGINE, teq_cycles
from termshift.formats import FormatSpec, gptq, parse, teq, uniform

PARAMS = ("base", "alpha_w", "beta_w", "alpha_a", "beta_a", "unit", "a_signed", "rmae_w", "rmae_a")


@dataclass
class LayerInput:
    """What fitting one GEMM layer needs besides its weights."""

    name: str
    w2d: np.ndarray  # float weights as the lowering reshapes them (N, K)
    x: np.ndarray  # float input activations of the calibration batch
    s_in: float  # scale of the uniform input codes
    signed: bool  # input codes are int8 (else uint8)
    # The GEMM's input rows (M, K) when x is not already that (conv: im2col
    # patches), or a function that makes them: only round=gptq needs them.
    rows: object = None
    _gram: np.ndarray | None = field(default=None, repr=False)

    @property
    def codes(self) -> np.ndarray:
        return teq.activation_codes(self.x, self.s_in, self.signed)

    @property
    def gram(self) -> np.ndarray:
        """Second moments (K, K) of the GEMM's input rows (`round=gptq`'s weighting)."""
        if self._gram is None:
            k = self.w2d.shape[1]
            rows = self.rows() if callable(self.rows) else self.rows
            rows = np.asarray(self.x) if rows is None else np.asarray(rows)
            if rows.ndim != 2 or rows.shape[1] != k:
                raise ValueError(f"{self.name}: teq round=gptq needs the GEMM's input rows (M, {k}); the "
                                 f"calibration input has shape {rows.shape} (pass x_rows, e.g. conv patches)")
            self._gram = gptq.input_gram(rows)
        return self._gram


@dataclass
class _Session:
    inputs: list
    widths: list | None = None
    beta: bool = False
    cache: dict = field(default_factory=dict)  # (layer, bits, beta) -> (payload, s_w)
    loss: str = "rmae"  # the spec's fit= option
    per_channel: bool = False  # granularity=channel
    rounding: str = "nearest"  # the spec's round= option
    calls: int = 0
    last_bits: int = 0


_SESSION: contextvars.ContextVar = contextvars.ContextVar("teq_lowering", default=None)


def quantize_layer(w2d: np.ndarray, bits: int, inp: LayerInput, beta: bool, loss: str = "rmae",
                   per_channel: bool = False, rounding: str = "nearest") -> tuple[dict, np.ndarray]:
    """Fit (shared base, per-tensor alpha/beta), quantize and tabulate one layer.

    `loss`: the fit objective (`teq.fit_layer`). `per_channel` (beta = 0 only):
    after the layer fit, each weight row n gets its own alpha_n on the shared
    base; the tables keep the tensor fit's alpha_w, so row n's integer sums
    count units of unit * alpha_n / alpha_w, which is its s_w[n]: the engine
    and its tables are unchanged, only the host's per-channel scales move.
    `rounding`: "nearest" level, or "gptq" (`teq.gptq_round` on the fitted
    grids, weighted by the layer's calibration inputs)."""
    if per_channel and beta:
        raise ValueError("teq granularity=channel needs beta=off (the weight bank's table is per tensor)")
    if rounding not in ("nearest", "gptq"):
        raise ValueError(f"teq round must be nearest or gptq, got {rounding!r}")
    fit = teq.fit_layer(w2d, inp.codes, bits, inp.signed, beta, loss)
    wp, ap = fit.w.params, fit.a.params
    tables = teq.layer_tables(wp, ap)
    w64 = np.asarray(w2d, np.float64)
    s_w = np.full(w2d.shape[0], tables.unit)
    alphas = np.full(w2d.shape[0], wp.alpha)
    if per_channel:
        for n, row in enumerate(w64):
            alphas[n] = teq.fit_tensor(teq.Magnitudes(row), wp.base, wp.levels, False, True, loss).params.alpha
        s_w = tables.unit * alphas / wp.alpha
    if rounding == "gptq":
        # Row n's grid is alphas[n] times this one (beta scales with it: per tensor, alphas are all alpha_w).
        unit = teq.TeqParams(1.0, wp.beta / wp.alpha, wp.base, wp.levels, True)
        codes = teq.gptq_round(w64, alphas, unit, inp.gram)
    elif per_channel:
        codes = np.stack([teq.quantize(row, teq.TeqParams(a, 0.0, wp.base, wp.levels, True))
                          for row, a in zip(w64, alphas, strict=True)])
    else:
        codes = teq.quantize(w64, wp)
    deq = np.stack([teq.dequantize(c, teq.TeqParams(a, wp.beta, wp.base, wp.levels, True))
                    for c, a in zip(codes, alphas, strict=True)])
    rmae_w = teq.rmae(w64, deq)
    payload = {
        "w": teq.pack_codes(codes, bits),
        "lut": teq.activation_lut(ap, inp.signed),
        "p_table": tables.p, "w_table": tables.w, "a_table": tables.a,
        "bits": np.array([bits], np.int64),
        "params": np.array([wp.base, wp.alpha, wp.beta, ap.alpha, ap.beta, tables.unit, float(inp.signed),
                            rmae_w, fit.a.rmae]),
    }
    return payload, s_w


def layer_params(payload: dict) -> tuple[teq.TeqParams, teq.TeqParams]:
    """The weight and activation grids a payload was built from."""
    p = dict(zip(PARAMS, payload["params"]))
    bits = int(payload["bits"][0])
    signed = bool(p["a_signed"])
    wp = teq.TeqParams(p["alpha_w"], p["beta_w"], p["base"], teq.n_levels(bits, True), True)
    ap = teq.TeqParams(p["alpha_a"], p["beta_a"], p["base"], teq.n_levels(bits, signed), signed)
    return wp, ap


class TeqGemm:
    """`teq`: packed exponent codes on the exponent-sum counter engine."""

    name = "teq"
    engine = "teq"
    _last_bits = float("nan")  # width of the layer quantized last (lower() asks for it right after)

    def quantize_layer(self, w2d: np.ndarray, spec: FormatSpec, x: np.ndarray, s_in: float, signed: bool,
                       index: int, x_rows=None) -> tuple[dict, np.ndarray]:
        """GEMM layer `index` (0-based, model order) fitted to its float
        calibration input `x`, whose uniform codes have scale `s_in`: the
        lowering hook docs/formats/teq.md section 10 proposes for lower.py."""
        spec = resolve(spec)
        if spec["widths"]:
            widths = [int(w) for w in spec["widths"].split("/")]
            if not 0 <= index < len(widths):
                raise ValueError(f"{spec}: no width for GEMM layer #{index} ({len(widths)} given)")
            bits = widths[index]
        elif spec["bits"] == "adaptive":
            raise ValueError("teq (adaptive) needs the per-layer widths: run termshift.nn.gemm_teq.search_widths "
                             "(or evaluate_teq), or give teq:bits=N / teq:widths=a/b/...")
        else:
            bits = int(spec["bits"])
        self._last_bits = float(bits)
        inp = LayerInput(f"gemm{index}", w2d, np.asarray(x), float(s_in), bool(signed), x_rows)
        return quantize_layer(w2d, bits, inp, spec["beta"] == "on", spec["fit"], teq.per_channel(spec), spec["round"])

    def needs_calibration(self, spec: FormatSpec) -> bool:
        return True  # the activation grid is fitted to the layer's inputs

    def quantize_weights(self, w2d: np.ndarray, spec: FormatSpec) -> tuple[dict, np.ndarray]:
        s = _SESSION.get()
        if s is None:
            raise ValueError("the teq format fits each layer to its calibration activations, which "
                             "quantize_weights(w2d, spec) is not given: lower with "
                             "termshift.nn.gemm_teq.lower_teq(model, calibration, spec)")
        i = s.calls
        if i >= len(s.inputs) or s.inputs[i].w2d.shape != w2d.shape or not np.array_equal(s.inputs[i].w2d, w2d):
            raise RuntimeError(f"teq lowering: GEMM #{i} does not match the recorded calibration layers")
        s.calls += 1
        bits = s.widths[i]
        self._last_bits = float(bits)
        key = (i, bits, s.beta)
        if key not in s.cache:
            s.cache[key] = quantize_layer(w2d, bits, s.inputs[i], s.beta, s.loss, s.per_channel, s.rounding)
        payload, s_w = s.cache[key]
        return dict(payload), s_w.copy()

    def weight_bits(self, spec: FormatSpec) -> float:
        return self._last_bits

    def run(self, backend, a2d: np.ndarray, node):
        surrogate = getattr(backend, "teq_surrogate", None)
        if surrogate is not None:
            return surrogate(a2d, node)
        p = node.payload
        return backend.run("teq", a=a2d, w=p["w"], k=node.k, w_bits=int(p["bits"][0]), lut=p["lut"],
                           p_table=p["p_table"], w_table=p["w_table"], a_table=p["a_table"], bias=node.bias,
                           requant=node.requant)

    def cost(self, node, m: int, in_elems: int, out_elems: int):
        from termshift.nn.graph import LayerCost

        p = node.payload
        bits = int(p["bits"][0])
        n, k = node.n_out, node.k
        lw, la = p["w_table"].size, p["a_table"].size
        banks = int(np.any(p["w_table"])) + int(np.any(p["a_table"]))
        n_recon = (la + lw - 1) + (lw if np.any(p["w_table"]) else 0) + (la if np.any(p["a_table"]) else 0)
        g = TEQ_ENGINE
        tiles = -(-m // g.rows) * -(-n // g.cols)
        # A zero weight code moves no counter (its PE is gated), as PoT skips zero weights;
        # zero activation codes are data-dependent and charged as if they counted.
        nonzero_w = int(np.count_nonzero(teq.unpack_codes(p["w"], k, bits)))
        # LOAD_A looks up each live row's bytes once per column tile (dead rows load zeros).
        ops = {"teq_pairs": m * nonzero_w, "teq_recons": m * n * n_recon, "teq_lut_reads": -(-n // g.cols) * m * k}
        if banks:
            ops["teq_bank_incs"] = banks * m * nonzero_w
        if node.requant is not None:
            ops["requants"] = m * n
        return LayerCost(
            name=node.name, kind=node.kind, ops=ops, weight_count=n * k, bias_count=n,
            act_in_count=in_elems, act_out_count=out_elems,
            sram_a_reads=tiles * k * g.rows, sram_w_reads=tiles * k * g.cols,
            cycles=teq_cycles(g, m, n, k, n_recon), bits_per_weight=float(bits), bits_per_activation=float(bits),
            weight_storage_bits=float(bits), act_storage_bits=8.0,
            out_storage_bits=32.0 if node.requant is None else 8.0,
        )


# ----------------------------------------------------------------------------- lowering


def layer_inputs(model, calibration: np.ndarray) -> list[LayerInput]:
    """Every GEMM layer's float input on the calibration batch, with the scale
    and signedness of the uniform codes the INT8 lowering gives it."""
    import torch

    from termshift.nn.graph import GemmNode, QuantizeInput
    from termshift.nn.im2col import conv_patches
    from termshift.nn.lower import float_ops, lower

    calib = np.asarray(calibration, np.float32)
    graph = lower(model, calib, "int:bits=8")
    scales, signed, state = [], [], None
    for node in graph.nodes:
        if isinstance(node, QuantizeInput):
            state = node.signed
        elif isinstance(node, GemmNode):
            scales.append(node.s_in)
            signed.append(state)
            if node.requant is not None:
                state = not (node.requant.lo >= 0 and node.requant.hi <= 255)  # graph.GemmNode's output dtype
    ops = [op for op in float_ops(model) if op.kind in ("linear", "conv2d")]
    captured: dict = {}

    def keeper(i: int):
        def hook(module, args):
            captured.setdefault(i, args[0].numpy().copy())  # returns None: the input is not replaced
        return hook

    hooks = [op.module.register_forward_pre_hook(keeper(i)) for i, op in enumerate(ops)]
    try:
        with torch.no_grad():
            model.eval()
            model(torch.from_numpy(calib))
    finally:
        for h in hooks:
            h.remove()
    out = []
    for i, op in enumerate(ops):
        w = op.module.weight.detach().double().numpy()
        out.append(LayerInput(op.name, w.reshape(w.shape[0], -1), captured[i], float(scales[i]), bool(signed[i]),
                              conv_patches(op.module, captured[i]) if op.kind == "conv2d" else None))
    return out


def resolve(spec: str | FormatSpec) -> FormatSpec:
    spec = parse(spec) if isinstance(spec, str) else spec
    if spec.name != "teq":
        raise ValueError(f"expected a teq spec, got {spec}")
    return spec


def _spec_for(widths: list[int], beta: bool, loss: str = "rmae", per_channel: bool = False,
              rounding: str = "nearest") -> FormatSpec:
    # every option spelled out: the spec's defaults must not decide what the caller asked for
    extra = f",fit={loss},granularity={'channel' if per_channel else 'tensor'},round={rounding}"
    return parse(f"teq:widths={'/'.join(map(str, widths))},beta={'on' if beta else 'off'}{extra}")


def _session_for(inputs: list, spec: FormatSpec) -> _Session:
    return _Session(inputs, beta=spec["beta"] == "on", loss=spec["fit"], per_channel=teq.per_channel(spec),
                    rounding=spec["round"])


def _lower_with(session: _Session, model, calib: np.ndarray, widths: list[int]):
    from termshift.nn.lower import lower

    session.widths, session.calls = list(widths), 0
    token = _SESSION.set(session)
    try:
        graph = lower(model, calib, _spec_for(widths, session.beta, session.loss, session.per_channel,
                                              session.rounding))
    finally:
        _SESSION.reset(token)
    graph.meta["teq_widths"] = list(widths)
    return graph


def lower_teq(model, calibration: np.ndarray, spec: str | FormatSpec = "teq:bits=4", widths: list[int] | None = None,
              inputs: list[LayerInput] | None = None):
    """Quantize `model` to a QuantGraph in a `teq` spec with fixed widths
    (bits=N or widths=...), or with `widths` found by `search_widths`."""
    spec = resolve(spec)
    calib = np.asarray(calibration, np.float32)
    inputs = inputs if inputs is not None else layer_inputs(model, calib)
    if widths is None:
        widths = teq.layer_widths(spec, len(inputs))
        if widths is None:
            raise ValueError("teq (adaptive) needs the per-layer widths: run search_widths(model, data) "
                             "or evaluate_teq(...), or give teq:bits=N / teq:widths=a/b/...")
    if len(widths) != len(inputs) or any(w not in teq.BITS for w in widths):
        raise ValueError(f"widths must be {len(inputs)} integers in 3..7, got {widths}")
    return _lower_with(_session_for(inputs, spec), model, calib, widths)


# ----------------------------------------------------------------------------- float surrogate


class SurrogateBackend(Backend):
    """For the width search only: each TEQ GEMM as one float32 product of the
    dequantized grids, divided by the table unit and rounded, then the exact
    bias and requant stage. It differs from the engine only by the tables'
    rounding (half a unit per entry); final figures never come from it."""

    name = "teq-surrogate"

    def run(self, engine: str, **operands) -> GemmResult:
        raise ValueError("the surrogate only runs teq nodes through TeqGemm.run")

    def teq_surrogate(self, a2d: np.ndarray, node) -> GemmResult:
        wp, ap = layer_params(node.payload)
        bits = int(node.payload["bits"][0])
        va = teq.dequantize(node.payload["lut"], ap).astype(np.float32)[a2d.view(np.uint8)]  # byte -> value
        vw = teq.dequantize(teq.unpack_codes(node.payload["w"], node.k, bits), wp).astype(np.float32)
        unit = float(node.payload["params"][PARAMS.index("unit")])
        acc = np.rint((va @ vw.T).astype(np.float64) / unit).astype(np.int64) + node.bias.astype(np.int64)
        out = acc if node.requant is None else uniform.requantize(acc, node.requant)
        return GemmResult(out.astype(np.int32), 0)


# ----------------------------------------------------------------------------- adaptive widths


@dataclass
class SearchResult:
    widths: list
    val_accuracy: float
    float_val_accuracy: float
    avg_bits: float
    evaluations: int
    seconds: float
    fit_seconds: float
    trace: list  # (phase, widths, accuracy) per evaluation


VALIDATION_SAMPLES = 5000
# Of the 1-point tolerance, the share the search holds back on validation:
# the validation images are training images, on which quantization loses
# less than on the test set (the CNN's 5/4/3/3/4 plan: -0.74 points on
# validation, -1.09 on test), so plans are accepted at float - (tol - margin).
VALIDATION_MARGIN = 0.005


class _CandidateRunner:
    """Runs width candidates on the surrogate without re-lowering: a GEMM
    node depends only on its own layer's width (input and output scales are
    the same for every width), so the model is lowered once per width and a
    candidate picks each layer's node; the output after each layer is cached
    by the widths up to it, so candidates sharing a prefix share its work."""

    def __init__(self, session: _Session, model, calib: np.ndarray, x: np.ndarray):
        from termshift.nn.graph import GemmNode

        self.graphs = {bits: _lower_with(session, model, calib, [bits] * len(session.inputs)) for bits in teq.BITS}
        nodes = self.graphs[teq.BITS.start].nodes
        first = next(i for i, nd in enumerate(nodes) if isinstance(nd, GemmNode))
        starts = [i for i, nd in enumerate(nodes) if isinstance(nd, GemmNode)] + [len(nodes)]
        self.head = nodes[:first]
        self.segments = [(a, b) for a, b in zip(starts[:-1], starts[1:])]
        self.x = x
        self.cache: dict = {}
        self.backend = SurrogateBackend()

    def output(self, widths: list[int]) -> np.ndarray:
        from termshift.nn.graph import RunContext

        ctx = RunContext(self.backend)
        if () not in self.cache:
            h = self.x
            for node in self.head:
                h = node.run(h, ctx)
            self.cache[()] = h
        h = self.cache[()]
        for i, (a, b) in enumerate(self.segments):
            key = tuple(widths[:i + 1])
            if key not in self.cache:
                for node in self.graphs[widths[i]].nodes[a:b]:
                    h = node.run(h, ctx)
                self.cache[key] = h
            h = self.cache[key]
        return h


def greedy_widths(score, target: float, counts: list, levels: range = teq.BITS) -> list[int]:
    """The per-layer width search of `search_widths`, for any model: `score(widths,
    phase)` is the quality of one candidate (higher is better; memoize it, the
    search asks again for candidates it has seen), `target` the least score
    accepted, `counts` each layer's weight count (what a bit of width costs).

    1. Alone: for each layer, the smallest width that keeps the target with
       every other layer at the top width.
    2. Repair: start from those minima; while below the target, widen the
       layer whose +1 bit buys the most score per weight bit added.
    3. Descend: visiting layers by weight count (largest first), narrow one by
       1 bit when the target still holds; repeat until a full pass changes
       nothing.
    """
    top = levels.stop - 1
    n = len(counts)
    widths = []
    for i in range(n):
        best = top
        for bits in range(top - 1, levels.start - 1, -1):
            trial = [top] * n
            trial[i] = bits
            if score(trial, "alone") < target:
                break
            best = bits
        widths.append(best)
    while score(widths, "repair") < target and any(w < top for w in widths):
        here = score(widths, "repair")
        options = []
        for i in range(n):
            if widths[i] < top:
                trial = list(widths)
                trial[i] += 1
                options.append(((score(trial, "repair") - here) / counts[i], score(trial, "repair"), i))
        widths[max(options)[2]] += 1
    changed = score(widths, "descend") >= target
    while changed:
        changed = False
        for i in sorted(range(n), key=lambda j: -counts[j]):
            if widths[i] > levels.start:
                trial = list(widths)
                trial[i] -= 1
                if score(trial, "descend") >= target:
                    widths, changed = trial, True
    return widths


def search_widths(model, data, beta: bool = False, tol: float = 0.01, val_samples: int = VALIDATION_SAMPLES,
                  inputs: list[LayerInput] | None = None, quiet: bool = True, fit: str = "rmae",
                  per_channel: bool = False, rounding: str = "nearest", margin: float = VALIDATION_MARGIN
                  ) -> SearchResult:
    """Smallest per-layer widths (3..7) whose validation accuracy stays within
    `tol` of float (docs/formats/teq.md, section 7); `fit`, `per_channel`,
    `rounding`: the spec's fit=, granularity=channel and round= options;
    `margin`: of `tol`, what is held back on validation (`VALIDATION_MARGIN`). Validation is the last
    `val_samples` training images (the test set is never looked at); every
    candidate runs on the float surrogate; no retraining. The search itself
    is `greedy_widths` (alone, repair, descend), with accuracy as the score.
    """
    from termshift.nn.train import float_accuracy

    t0 = time.perf_counter()
    calib = np.asarray(data.calibration(), np.float32)
    xv, yv = data.x_train[-val_samples:], data.y_train[-val_samples:]
    f_acc = float_accuracy(model, xv, yv)[0]
    target = f_acc - (tol - margin)
    inputs = inputs if inputs is not None else layer_inputs(model, calib)
    session = _Session(inputs, beta=beta, loss=fit, per_channel=per_channel, rounding=rounding)
    counts = [inp.w2d.size for inp in inputs]
    t_fit = time.perf_counter()
    for i in range(len(inputs)):  # every layer at every width, timed on its own
        for bits in teq.BITS:
            session.cache[(i, bits, beta)] = quantize_layer(inputs[i].w2d, bits, inputs[i], beta, fit, per_channel,
                                                            rounding)
    fit_seconds = time.perf_counter() - t_fit
    runner = _CandidateRunner(session, model, calib, xv)
    memo: dict = {}
    trace: list = []

    def acc(widths: list[int], phase: str) -> float:
        key = tuple(widths)
        if key not in memo:
            memo[key] = float((runner.output(list(widths)).argmax(1) == yv).mean())
            trace.append((phase, list(widths), memo[key]))
            if not quiet:
                print(f"teq search {phase:<8} {'/'.join(map(str, widths))}: {100 * memo[key]:.2f}% "
                      f"(target {100 * target:.2f}%)", file=sys.stderr)
        return memo[key]

    widths = greedy_widths(acc, target, counts)
    avg = float(np.dot(widths, counts) / np.sum(counts))
    return SearchResult(widths, acc(widths, "final"), f_acc, avg, len(memo), time.perf_counter() - t0, fit_seconds,
                        trace)


# ----------------------------------------------------------------------------- evaluation


def evaluate_teq(model_name: str, fmt: str = "teq", backend: str = "reference", dataset: str = "auto",
                 build: str = "fast", limit: int | None = None, quiet: bool = True, search: SearchResult | None = None
                 ) -> dict:
    """`termshift eval`'s report for a teq spec (adaptive widths searched first),
    plus the widths, the search and the per-layer fits."""
    from termshift.backends import get_backend
    from termshift.energy.model import summarize
    from termshift.nn.datasets import load_image_data
    from termshift.nn.train import trained_model

    spec = resolve(fmt)
    data = load_image_data(dataset)
    model = trained_model(model_name, data, quiet=quiet)
    calib = np.asarray(data.calibration(), np.float32)
    inputs = layer_inputs(model, calib)
    widths = teq.layer_widths(spec, len(inputs))
    if widths is None:
        search = search or search_widths(model, data, beta=spec["beta"] == "on", inputs=inputs, quiet=quiet,
                                         fit=spec["fit"], per_channel=teq.per_channel(spec),
                                         rounding=spec["round"])
        widths = search.widths
    t_fit = time.perf_counter()
    graph = lower_teq(model, calib, spec, widths=widths, inputs=inputs)
    fit_seconds = time.perf_counter() - t_fit
    x, y = data.x_test, data.y_test
    if limit is not None:
        x, y = x[:limit], y[:limit]
    be = get_backend(backend, **({"build": build} if backend == "csim" else {}))
    t0 = time.perf_counter()
    run = graph.run(x, be)
    seconds = time.perf_counter() - t0
    fits = []
    for node in graph.gemm_nodes():
        p = dict(zip(PARAMS, node.payload["params"]))
        args = teq.GemmTeqArgs(np.zeros((1, node.k), np.uint8), node.payload["w"], node.k, int(node.payload["bits"][0]),
                               node.payload["lut"], node.payload["p_table"], node.payload["w_table"],
                               node.payload["a_table"], node.bias, node.requant)
        fits.append({"name": node.name, "bits": args.w_bits, "k": node.k, "n": node.n_out, "n_recon": args.n_recon,
                     **{k: float(v) for k, v in p.items()}})
    report = {
        "model": model_name, "dataset": data.name, "format": fmt if isinstance(fmt, str) else str(spec),
        "graph_format": graph.fmt,
        "backend": backend if backend != "csim" else f"csim-{build}", "metric": "accuracy",
        "accuracy": float((run.output.argmax(1) == y).mean()), "samples": int(len(y)), "seconds": seconds,
        "widths": list(widths), "fits": fits, "fit_seconds": fit_seconds, **summarize(graph.costs()),
    }
    if search is not None:
        report["search"] = {k: getattr(search, k) for k in ("widths", "val_accuracy", "float_val_accuracy",
                                                             "avg_bits", "evaluations", "seconds", "fit_seconds")}
    return report


def model_tensors(model, calibration: np.ndarray) -> dict:
    """{name: (values, signed)} for `teq.premise_report`: every GEMM layer's
    float weights and the uniform input codes its engine call receives."""
    out = {}
    for inp in layer_inputs(model, calibration):
        out[f"{inp.name}.weight"] = (inp.w2d, True)
        out[f"{inp.name}.input"] = (inp.codes, inp.signed)
    return out

