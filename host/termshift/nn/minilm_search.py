"""Per-Linear format choices for MiniLM: the adaptive ``teq`` widths and the
``bfp:search`` (block, mantissa) plan, judged by the mean cosine of the
sentence embeddings to fp32 on *search sentences* (never the held-out ones).

Both searches reuse the image models' algorithms through their generic cores:
``gemm_teq.greedy_widths`` (alone / repair / descend over widths 3..7) and
``search.bfp.search`` (proxy -> Pareto frontier -> binary search and greedy
descent, each step confirmed by a real evaluation). What is MiniLM-specific
lives here: the search sentences, a plan runner, the quality targets and the
proxy statistics.

* Search sentences: :data:`SEARCH_SENTENCES` (bfp) or :data:`TEQ_SEARCH_SENTENCES`
  (teq) evenly spaced sentences of the Austen ``train`` split that are not calibration sentences (the held-out
  ``test`` split is never looked at).
* ``teq`` target: mean cosine >= 1 - :data:`TEQ_TOL` (float minus 0.01, as
  the image search takes float accuracy minus 1 point). When even every
  Linear at 7 bits misses it (8-bit input codes and 7-bit TEQ activations
  cost MiniLM more than that), the target becomes the all-7-bit cosine minus
  :data:`TEQ_TOL`, and the result says so (``reference = "teq-7"``).
  Candidates run on ``gemm_teq``'s float surrogate (it differs from the
  engine only by the tables' rounding); the final figures come from the engine.
* ``bfp`` target: mean cosine >= INT8's (same activation clip) minus
  :data:`BFP_TOL`, as search/bfp.py takes INT8 accuracy minus a tolerance;
  checks run on the reference backend. Proxy per Linear and candidate: the
  second-order proxy of search/bfp.py with the sampled calibration rows as
  the input moments, ``1/2 * sum_rows ||dW x||^2 / rows``, and (no loss
  gradient in the numpy encoder) the output gradient energy replaced by one
  over the layer's mean output energy, i.e. the relative output noise power.
  Costs: bits moved and modeled energy of one :data:`~termshift.nn.minilm.COST_TOKENS`
  -token call from ``BfpGemm.cost``. The best uniform setting (smallest
  mantissa per block size meeting the target, the cheapest of those) seeds
  the descent and is reported beside the plan.

The plan runner runs all search sentences as one batch, layer by layer, and
caches the hidden states after each transformer layer by the choices of that
layer's and the earlier layers' Linears, so plans sharing their first layers
share that work.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from termshift.formats import teq
from termshift.nn.gemm_formats import gemm_format
from termshift.nn.minilm_model import Encoder, linear_names, short_name
from termshift.nn.minilm_quant import Calibration, build_node, input_codes

SEARCH_SENTENCES = 16  # bfp: each real check runs the engine GEMMs on these
TEQ_SEARCH_SENTENCES = 8  # teq: its search makes hundreds of surrogate evaluations
TEQ_TOL = 0.01
BFP_TOL = 0.005
BFP_METRIC = "bits"


def search_sentences(n: int = SEARCH_SENTENCES, n_calib: int | None = None) -> list[str]:
    """``n`` evenly spaced train-split sentences that are not calibration sentences."""
    from termshift.nn.minilm import N_CALIB, _split_sentences, calibration_sentences

    taken = set(calibration_sentences(N_CALIB if n_calib is None else n_calib))
    pool = [s for s in _split_sentences("train") if s not in taken]
    idx = np.linspace(0, len(pool) - 1, min(n, len(pool))).round().astype(int)
    return [pool[i] for i in idx]


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    from termshift.nn.minilm import cosine

    return float(cosine(a, b).mean())


class PlanRunner:
    """Mean cosine to fp32 of a plan (one choice per Linear, model order);
    ``node_of(i, choice)`` builds Linear i's (GEMM node, input smoothing) for a choice."""

    def __init__(self, encoder: Encoder, texts: list[str], node_of, backend, a_bits: int = 8):
        self.encoder, self.node_of, self.backend, self.a_bits = encoder, node_of, backend, a_bits
        self.names = linear_names(encoder.cfg)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.batch = encoder.tokenizer.batch(list(texts))
        self.ref = encoder.pool(encoder.hidden_states(self.batch), self.batch.lengths)
        self.x0 = encoder.embed(self.batch)
        self.per_layer = len(self.names) // encoder.cfg.layers
        self.nodes: dict = {}
        self.cache: dict = {}
        self.memo: dict = {}
        self.seconds = 0.0

    def node(self, i: int, choice):
        if (i, choice) not in self.nodes:
            self.nodes[(i, choice)] = self.node_of(i, choice)
        return self.nodes[(i, choice)]

    def _linear(self, plan: tuple):
        def linear(name, x):
            i = self.index[name]
            node, inv_t = self.node(i, plan[i])
            a = input_codes(x, node, inv_t, self.a_bits)
            out = gemm_format(node.fmt).run(self.backend, a, node).out
            return (out * (node.s_in * np.asarray(node.s_w, np.float64))).astype(np.float32)

        return linear

    def cosine(self, plan) -> float:
        plan = tuple(plan)
        if plan not in self.memo:
            t0 = time.perf_counter()
            x, linear = self.x0, self._linear(plan)
            for layer in range(self.encoder.cfg.layers):
                key = plan[:self.per_layer * (layer + 1)]
                if key not in self.cache:
                    self.cache[key] = self.encoder.layer(layer, x, self.batch, linear)
                x = self.cache[key]
            self.memo[plan] = _cos(self.ref, self.encoder.pool(x, self.batch.lengths))
            self.seconds += time.perf_counter() - t0
        return self.memo[plan]


def weight_counts(encoder: Encoder) -> list[int]:
    return [int(encoder.w[n + ".weight"].size) for n in linear_names(encoder.cfg)]


# --------------------------------------------------------------------------- teq


@dataclass
class TeqSearch:
    widths: list
    avg_bits: float  # weighted by weight count
    val_cosine: float  # on the float surrogate, search sentences
    top_cosine: float  # every Linear at 7 bits, same
    target: float
    reference: str  # "float" (target 1 - tol) or "teq-7" (the all-7-bit cosine - tol)
    evaluations: int
    seconds: float
    trace: list = field(default_factory=list)  # (phase, widths, cosine)

    def summary(self) -> dict:
        return {k: getattr(self, k) for k in ("widths", "avg_bits", "val_cosine", "top_cosine", "target",
                                              "reference", "evaluations", "seconds")}


def search_teq_widths(encoder: Encoder, calib: Calibration, texts: list[str] | None = None, act: str = "max",
                      smooth: float | None = None, beta: bool = False, tol: float = TEQ_TOL,
                      quiet: bool = True, options: str = "") -> TeqSearch:
    """Smallest per-Linear teq widths whose search-sentence cosine meets the
    target of the module docstring (candidates on the float surrogate);
    ``options``: further spec text for every candidate, e.g. ",fit=mse"."""
    from termshift.nn.gemm_teq import SurrogateBackend, greedy_widths

    t0 = time.perf_counter()
    texts = search_sentences(TEQ_SEARCH_SENTENCES) if texts is None else list(texts)
    names = linear_names(encoder.cfg)
    suffix = (",beta=on" if beta else "") + options

    def node_of(i, bits):
        return build_node(encoder, calib, i, f"teq:bits={bits}{suffix}", act, smooth)

    runner = PlanRunner(encoder, texts, node_of, SurrogateBackend())
    top = teq.BITS.stop - 1
    top_cos = runner.cosine((top,) * len(names))
    target, reference = (1.0 - tol, "float") if top_cos >= 1.0 - tol else (top_cos - tol, f"teq-{top}")
    trace: list = []

    def score(widths, phase):
        new = tuple(widths) not in runner.memo
        v = runner.cosine(widths)
        if new:
            trace.append((phase, list(widths), v))
            if not quiet:
                print(f"teq search {phase:<8} {'/'.join(map(str, widths))}: cosine {v:.4f} (target {target:.4f})",
                      file=sys.stderr)
        return v

    counts = weight_counts(encoder)
    widths = greedy_widths(score, target, counts)
    avg = float(np.dot(widths, counts) / np.sum(counts))
    return TeqSearch(widths, avg, runner.cosine(widths), top_cos, target, reference, len(runner.memo),
                     time.perf_counter() - t0, trace)


# --------------------------------------------------------------------------- bfp


@dataclass
class BfpSearch:
    specs: list  # one bfp spec per Linear (model order)
    cost: float  # the metric's total over the Linears, per COST_TOKENS-token sentence
    met_target: bool
    val_cosine: float
    int8_cosine: float
    target: float
    uniform: dict | None  # the best uniform setting meeting the target: spec, cost, val_cosine
    uniform_checked: list  # (spec, val_cosine) of every uniform setting evaluated
    real_checks: int
    seconds: float

    def summary(self) -> dict:
        return {"plan": list(self.specs), **{k: getattr(self, k) for k in (
            "cost", "met_target", "val_cosine", "int8_cosine", "target", "uniform", "real_checks", "seconds")}}


class _CosineEvaluator:
    """What search.bfp.search asks of an evaluator: does a plan meet the target?"""

    def __init__(self, runner: PlanRunner, reference: float):
        self.runner, self.reference = runner, reference

    def meets(self, plan: tuple, tolerance: float) -> bool:
        return self.runner.cosine(plan) >= self.reference - tolerance


def _bfp_table(encoder: Encoder, calib: Calibration, act: str, smooth: float | None, candidates, tokens: int):
    """search.bfp.Layer per Linear: each candidate's cost from BfpGemm.cost and its proxy
    (on the weights and inputs the engine sees: smoothed ones where smoothing is on)."""
    import dataclasses

    from termshift.energy.model import layer_energy
    from termshift.formats import bfp
    from termshift.search.bfp import Layer, LayerStats

    layers = []
    for i, n in enumerate(linear_names(encoder.cfg)):
        base, inv_t = build_node(encoder, calib, i, candidates[0].spec(), act, smooth)
        t = 1.0 if inv_t is None else 1.0 / inv_t.astype(np.float64)
        w = encoder.w[n + ".weight"].astype(np.float64) * t
        x = calib.rows[n].astype(np.float64) / t
        y2 = float(np.square(x @ w.T).sum(1).mean())
        fisher = np.full(w.shape[0], 1.0 / max(y2, 1e-30))
        # The input moments stay implicit: the proxy below is ||dW x||^2 over the sampled rows x.
        stats = LayerStats(short_name(n), w, encoder.w[n + ".bias"].astype(np.float64), np.zeros((0, 0)), fisher)
        bits, energy, proxy = [], [], []
        for p in candidates:
            node = dataclasses.replace(base, fmt=p.spec())
            c = gemm_format(node.fmt).cost(node, tokens, tokens * node.k, tokens * node.n_out)
            bits.append(c.weight_bits + c.act_in_bits + c.act_out_bits)
            energy.append(layer_energy(c)["energy_j"])
            exps, mant = bfp.quantize(w, p)
            dw = bfp.dequantize(exps, mant, p) - w
            proxy.append(float(0.5 * np.square(x @ dw.T).sum(1).mean() * fisher[0]))
        layers.append(Layer(i, stats, np.array(bits, float), np.array(energy), np.array(proxy)))
    return layers


def search_bfp_plan(encoder: Encoder, calib: Calibration, texts: list[str] | None = None, act: str = "max",
                    smooth: float | None = None, metric: str = BFP_METRIC, tol: float = BFP_TOL, time_budget: float = 300.0,
                    backend: str = "reference", candidates=None, tokens: int | None = None,
                    quiet: bool = True) -> BfpSearch:
    """The cheapest per-Linear (block, mantissa) plan found whose search-sentence
    cosine is at least INT8's minus ``tol``, by search.bfp.search seeded with
    the best uniform setting (module docstring)."""
    from termshift.backends import get_backend
    from termshift.nn.minilm import COST_TOKENS
    from termshift.search.bfp import CANDIDATES, best_uniform, search, uniform_plan

    t0 = time.perf_counter()
    candidates = tuple(candidates or CANDIDATES)
    texts = search_sentences() if texts is None else list(texts)
    names = linear_names(encoder.cfg)
    n = len(names)
    be = get_backend(backend)
    layers = _bfp_table(encoder, calib, act, smooth, candidates, tokens or COST_TOKENS)
    metric_ok = metric in ("bits", "energy")
    if not metric_ok:
        raise ValueError(f"metric must be bits or energy, got {metric!r}")

    def node_of(i, j):
        return build_node(encoder, calib, i, "int:bits=8" if j is None else candidates[j].spec(), act, smooth)

    runner = PlanRunner(encoder, texts, node_of, be)
    int8 = runner.cosine((None,) * n)
    target = int8 - tol
    checked = []

    def uniform_ok(j):
        v = runner.cosine((j,) * n)
        checked.append((candidates[j].spec(), v))
        if not quiet:
            print(f"bfp uniform {candidates[j].spec()}: cosine {v:.4f} (target {target:.4f})", file=sys.stderr)
        return v >= target

    best = best_uniform(layers, candidates, uniform_ok, metric)
    starts = (uniform_plan(layers, candidates[best[0]], candidates),) if best else ()
    res = search(layers, _CosineEvaluator(runner, int8), tol, metric, time_budget, 0.0, starts=starts)
    uni = None if best is None else {"spec": candidates[best[0]].spec(), "cost": best[1],
                                     "val_cosine": runner.cosine((best[0],) * n)}
    return BfpSearch([candidates[j].spec() for j in res.plan], res.cost, bool(res.met_target), runner.cosine(res.plan),
                     int8, target, uni, checked, len(runner.memo), time.perf_counter() - t0)


__all__ = ["BfpSearch", "PlanRunner", "TeqSearch", "search_bfp_plan", "search_sentences", "search_teq_widths"]
