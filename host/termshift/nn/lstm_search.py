"""Per-GEMM format choices for the LSTM language model: the adaptive `teq`
widths and the `bfp:search` (block, mantissa) plan, judged by bits per
character on validation text (never the test split).

Both searches reuse the image models' algorithms through their generic cores:
`gemm_teq.greedy_widths` (alone / repair / descend over widths 3..7) and
`search.bfp.search` (second-order proxy -> Pareto frontier -> binary search
and greedy descent confirmed by real evaluations). What is LSTM-specific
lives here: the validation streams, a plan runner, and the proxy statistics.

Validation: the `valid` split after the calibration chunk (the first
CALIB_TOKENS characters, which set every scale), SEARCH_CHARS characters
in SEARCH_STREAMS streams. Quality target: bits/char at most
(1 + tol) x the reference's (float for teq, as the image search takes float
accuracy; INT8 for bfp, as search/bfp.py takes INT8), tol = 1 % relative.

The plan runner evaluates the recurrence layer by layer instead of step by
step: layer l over all T steps needs only layer l-1's h codes over all steps,
so each layer's input GEMM runs once with M = streams x T (GEMM rows are
independent: the same integers as T calls), and the h code sequence after
GEMMs 0..2l+1 is cached by the choices made for them, so plans sharing their
first layers share that work.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from termshift.formats import parse, teq, uniform
from termshift.nn.gemm_formats import gemm_format
from termshift.nn.lstm_quant import (
    LSTMParams,
    QuantLSTM,
    cell,
    float_forward,
    gemm_names,
    quantize_lstm,
)

SEARCH_CHARS = 20_000  # validation characters each candidate is scored on
# Many short streams: an engine call costs about the same at M = 25 and M = 256
# on the reference backend (its time goes to per-call weight handling), and the
# recurrence makes one call per step, so candidates are scored over 256 streams
# of 78 scored steps after 50 warm-up steps rather than the test protocol's
# 128 streams after 100.
SEARCH_STREAMS, SEARCH_WARMUP, SEARCH_MIN_STREAM = 256, 50, 50
TOLERANCE = 0.01  # relative bits/char allowance


def validation_streams(corpus, vocab, chars: int = SEARCH_CHARS):
    """Streams over the valid split after the calibration chunk."""
    from termshift.nn.lstm import (
        CALIB_TOKENS,
        CALIBRATION_SPLIT,
        encode_chars,
        eval_streams,
    )

    ids = encode_chars(corpus.split(CALIBRATION_SPLIT)[CALIB_TOKENS:], vocab)
    if len(ids) < 300:
        ids = encode_chars(corpus.split(CALIBRATION_SPLIT), vocab)  # tiny corpora (tests): no held-back part left
    return eval_streams(ids, chars, SEARCH_STREAMS, SEARCH_WARMUP, SEARCH_MIN_STREAM)


def streams_bpc(logits: np.ndarray, streams) -> float:
    """Bits/char of logits (B, T, V) over a Streams' scored positions."""
    from termshift.nn.lstm import nll_sum

    w = streams.warmup
    return nll_sum(logits[:, w:], streams.targets[:, w:]) / streams.tokens / np.log(2)


def float_bpc(params: LSTMParams, streams) -> float:
    logits, _ = float_forward(params, streams.inputs)
    return streams_bpc(logits, streams)


class PlanRunner:
    """Bits/char of a plan (one choice per GEMM, model order) given a
    `models` map choice -> QuantLSTM quantized with that choice for every
    GEMM (a GEMM's node does not depend on the other GEMMs' choices: every
    activation scale comes from calibration)."""

    def __init__(self, models: dict, streams, backend):
        self.models, self.streams, self.backend = models, streams, backend
        any_model = next(iter(models.values()))
        self.bits, self.s_x = any_model.bits, any_model.s_x
        self.x = uniform.quantize(any_model.embedding[streams.inputs], self.s_x, self.bits, signed=True)
        self.n_layers = len(any_model.layers)
        self._cache: dict = {}
        self.memo: dict = {}
        self.seconds = 0.0

    def _gemm(self, node, a):
        return gemm_format(node.fmt).run(self.backend, a, node).out

    def _layer(self, l: int, ch_ih, ch_hh, x: np.ndarray) -> np.ndarray:
        ih, hh = self.models[ch_ih].layers[l].ih, self.models[ch_hh].layers[l].hh
        b, steps, k = x.shape
        acc_x = self._gemm(ih, x.reshape(b * steps, k)).reshape(b, steps, -1) * (ih.s_in * ih.s_w)
        h = np.zeros((b, hh.k), np.int8)
        c = np.zeros((b, hh.k))
        out = np.empty((b, steps, hh.k), np.int8)
        for t in range(steps):
            hf, c = cell(acc_x[:, t] + self._gemm(hh, h) * (hh.s_in * hh.s_w), c)
            h = out[:, t] = uniform.quantize(hf, hh.s_in, self.bits, signed=True)
        return out

    def bpc(self, plan: tuple) -> float:
        plan = tuple(plan)
        if plan in self.memo:
            return self.memo[plan]
        t0 = time.perf_counter()
        h = self.x
        for l in range(self.n_layers):
            key = plan[:2 * l + 2]
            if key not in self._cache:
                self._cache[key] = self._layer(l, plan[2 * l], plan[2 * l + 1], h)
            h = self._cache[key]
        dec = self.models[plan[-1]].decoder
        b, steps, k = h.shape
        logits = (self._gemm(dec, h.reshape(b * steps, k)) * (dec.s_in * dec.s_w)).reshape(b, steps, -1)
        self.memo[plan] = streams_bpc(logits, self.streams)
        self.seconds += time.perf_counter() - t0
        return self.memo[plan]


def weight_counts(params: LSTMParams) -> list[int]:
    return [w.size for L in params.layers for w in (L.w_ih, L.w_hh)] + [params.dec_w.size]


# --------------------------------------------------------------------------- teq


def _surrogate():
    """gemm_teq's float surrogate with each node's dequantized grids kept:
    the recurrence calls every gate GEMM once per step, and unpacking and
    dequantizing the weights per call cost more than the product itself."""
    from termshift.backends.base import GemmResult
    from termshift.nn.gemm_teq import PARAMS, SurrogateBackend, layer_params

    class CachedSurrogate(SurrogateBackend):
        def __init__(self):
            self._grids: dict = {}

        def teq_surrogate(self, a2d, node):
            key = id(node.payload["w"])
            if key not in self._grids:
                wp, ap = layer_params(node.payload)
                bits = int(node.payload["bits"][0])
                va = teq.dequantize(node.payload["lut"], ap).astype(np.float32)
                vw = teq.dequantize(teq.unpack_codes(node.payload["w"], node.k, bits), wp).astype(np.float32)
                self._grids[key] = (node, va, np.ascontiguousarray(vw.T),
                                    float(node.payload["params"][PARAMS.index("unit")]))
            _, va, vwt, unit = self._grids[key]
            acc = np.rint((va[a2d.view(np.uint8)] @ vwt).astype(np.float64) / unit).astype(np.int64)
            acc += node.bias.astype(np.int64)
            out = acc if node.requant is None else uniform.requantize(acc, node.requant)
            return GemmResult(out.astype(np.int32), 0)

    return CachedSurrogate()


@dataclass
class TeqSearch:
    widths: list
    avg_bits: float  # weighted by weight count
    val_bpc: float  # on the float surrogate
    float_val_bpc: float
    target_bpc: float
    evaluations: int
    seconds: float
    trace: list = field(default_factory=list)  # (phase, widths, bpc)

    @property
    def spec(self) -> str:
        return f"teq:widths={'/'.join(map(str, self.widths))}"


def search_teq_widths(params: LSTMParams, stats: dict, streams, beta: bool = False, tol: float = TOLERANCE,
                      quiet: bool = True, options: str = "") -> TeqSearch:
    """Smallest per-GEMM teq widths whose validation bits/char is within
    `tol` (relative) of float, candidates run on gemm_teq's float surrogate
    (it differs from the engine only by the tables' rounding); `options`:
    further spec text for every candidate, e.g. ",fit=mse"."""
    from termshift.nn.gemm_teq import greedy_widths

    t0 = time.perf_counter()
    suffix = (",beta=on" if beta else "") + options
    models = {bits: quantize_lstm(params, stats, f"teq:bits={bits}{suffix}") for bits in teq.BITS}
    runner = PlanRunner(models, streams, _surrogate())
    f_bpc = float_bpc(params, streams)
    target = f_bpc * (1 + tol)
    trace: list = []

    def score(widths, phase):
        new = tuple(widths) not in runner.memo
        v = runner.bpc(tuple(widths))
        if new:
            trace.append((phase, list(widths), v))
            if not quiet:
                print(f"teq search {phase:<8} {'/'.join(map(str, widths))}: {v:.4f} bits/char "
                      f"(target {target:.4f})", file=sys.stderr)
        return -v

    counts = weight_counts(params)
    widths = greedy_widths(score, -target, counts)
    avg = float(np.dot(widths, counts) / np.sum(counts))
    return TeqSearch(widths, avg, runner.bpc(tuple(widths)), f_bpc, target, len(runner.memo),
                     time.perf_counter() - t0, trace)


# --------------------------------------------------------------------------- bfp


def lstm_statistics(params: LSTMParams, ids: np.ndarray) -> list:
    """search.bfp.LayerStats per GEMM (model order): the second moment of its
    float inputs and its output-gradient energy per scored character, from one
    forward/backward pass (float64 torch, summed cross-entropy) over ids (B, T).
    Both gate GEMMs of a layer see the same output gradient (dLoss/dpre)."""
    import torch

    from termshift.search.bfp import LayerStats

    def t(a):  # a leaf that asks for gradients, so every product below records them
        return torch.from_numpy(np.asarray(a, np.float64)).requires_grad_(True)

    ids = np.asarray(ids)
    b, steps = ids.shape
    inp = torch.from_numpy(ids[:, :-1].copy())
    tgt = torch.from_numpy(ids[:, 1:].copy())
    x = t(params.embedding)[inp]
    layer_in = [x]
    pres = []
    hs = []
    for L in params.layers:
        w_ih, w_hh, b_ih, b_hh = t(L.w_ih), t(L.w_hh), t(L.b_ih), t(L.b_hh)
        h = torch.zeros(b, L.hidden, dtype=torch.float64)
        c = torch.zeros_like(h)
        outs, prev, ps = [], [], []
        for s in range(steps - 1):
            prev.append(h)
            pre = layer_in[-1][:, s] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
            pre.retain_grad()
            ps.append(pre)
            i, f, g, o = pre.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        pres.append(ps)
        hs.append(torch.stack(prev, 1))
        layer_in.append(torch.stack(outs, 1))
    logits = layer_in[-1] @ t(params.dec_w).T + t(params.dec_b)
    logits.retain_grad()
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, params.vocab), tgt.reshape(-1), reduction="sum")
    loss.backward()
    n = b * (steps - 1)

    def moment(a):
        a = a.detach().reshape(-1, a.shape[-1]).numpy()
        return a.T @ a / len(a)

    out = []
    names = gemm_names(len(params.layers))
    for l, L in enumerate(params.layers):
        fisher = sum((p.grad ** 2).sum(0) for p in pres[l]).numpy() / n
        out.append(LayerStats(names[2 * l], L.w_ih, L.b_ih, moment(layer_in[l]), fisher))
        out.append(LayerStats(names[2 * l + 1], L.w_hh, L.b_hh, moment(hs[l]), fisher))
    out.append(LayerStats("decoder", params.dec_w, params.dec_b, moment(layer_in[-1]),
                          (logits.grad ** 2).sum((0, 1)).numpy() / n))
    return out


class _BpcEvaluator:
    """What search.bfp.search asks of an evaluator: does a plan meet the target?"""

    def __init__(self, runner: PlanRunner, reference_bpc: float):
        self.runner, self.reference_bpc = runner, reference_bpc

    def meets(self, plan: tuple, tolerance: float) -> bool:
        return self.runner.bpc(tuple(plan)) <= self.reference_bpc * (1 + tolerance)


@dataclass
class BfpSearch:
    plan: list  # one bfp spec per GEMM (model order)
    cost: float  # the metric's per-token total of the plan
    met_target: bool
    val_bpc: float
    int8_val_bpc: float
    target_bpc: float
    uniform: dict  # the best uniform setting meeting the target: spec, cost, val_bpc
    uniform_checked: list  # (spec, val_bpc) of every uniform setting evaluated
    real_checks: int
    seconds: float


def _table(params: LSTMParams, stats: dict, stat_rows: list, candidates, metric: str):
    """search.bfp.Layer per GEMM: each candidate's per-token cost (bits moved,
    modeled energy) from BfpGemm.cost, and its proxy."""
    from termshift.energy.model import layer_energy
    from termshift.search.bfp import Layer, proxy_loss

    models = {j: quantize_lstm(params, stats, p.spec()) for j, p in enumerate(candidates)}
    layers = []
    for i, st in enumerate(stat_rows):
        bits, energy, proxy = [], [], []
        for j, p in enumerate(candidates):
            node = models[j].gemm_nodes()[i]
            c = gemm_format(node.fmt).cost(node, 1, node.k, node.n_out)
            bits.append(c.weight_bits + c.act_in_bits + c.act_out_bits)
            energy.append(layer_energy(c)["energy_j"])
            proxy.append(proxy_loss(st, p))
        layers.append(Layer(i, st, np.array(bits, float), np.array(energy), np.array(proxy)))
    return layers, models


def search_bfp(params: LSTMParams, stats: dict, streams, stat_ids: np.ndarray, metric: str = "bits",
               tol: float = TOLERANCE, time_budget: float = 300.0, backend: str = "reference",
               candidates=None, quiet: bool = True) -> BfpSearch:
    """The cheapest per-GEMM (block, mantissa) plan found whose validation
    bits/char is within `tol` (relative) of INT8's, by search.bfp.search
    (proxy frontier, then real checks on `backend`), seeded with the best
    uniform setting; that setting (smallest mantissa per block size meeting
    the target, by binary search, the cheapest of those) is returned too."""
    from termshift.backends import get_backend
    from termshift.search.bfp import CANDIDATES, best_uniform, search, uniform_plan

    t0 = time.perf_counter()
    candidates = tuple(candidates or CANDIDATES)
    be = get_backend(backend)
    stat_rows = lstm_statistics(params, stat_ids)
    layers, models = _table(params, stats, stat_rows, candidates, metric)
    n = len(layers)
    int8 = PlanRunner({0: quantize_lstm(params, stats, "int:bits=8")}, streams, be).bpc((0,) * n)
    target = int8 * (1 + tol)
    runner = PlanRunner(models, streams, be)
    checked = []

    def uniform_ok(j):
        v = runner.bpc((j,) * n)
        checked.append((candidates[j].spec(), v))
        if not quiet:
            print(f"bfp uniform {candidates[j].spec()}: {v:.4f} bits/char (target {target:.4f})", file=sys.stderr)
        return v <= target

    best = best_uniform(layers, candidates, uniform_ok, metric)
    starts = (uniform_plan(layers, candidates[best[0]], candidates),) if best else ()
    res = search(layers, _BpcEvaluator(runner, int8), tol, metric, time_budget, 0.0, starts=starts)
    uni = None if best is None else {"spec": candidates[best[0]].spec(), "cost": best[1],
                                     "val_bpc": runner.bpc((best[0],) * n)}
    return BfpSearch([candidates[j].spec() for j in res.plan], res.cost, bool(res.met_target),
                     runner.bpc(res.plan), int8, target, uni, checked, len(runner.memo),
                     time.perf_counter() - t0)


def plan_model(params: LSTMParams, stats: dict, fmt: str, plan: list) -> QuantLSTM:
    """The QuantLSTM of a per-GEMM plan (its `fmt` says which search made it)."""
    return quantize_lstm(params, stats, parse(fmt), plan=plan)


__all__ = ["BfpSearch", "PlanRunner", "TeqSearch", "float_bpc", "lstm_statistics", "plan_model", "search_bfp",
           "search_teq_widths", "streams_bpc", "validation_streams"]
