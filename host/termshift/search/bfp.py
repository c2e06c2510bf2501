"""Per-layer BFP precision search: for every Linear/Conv2d layer pick a block
size B and a mantissa width m so that the model meets an accuracy target with
the fewest bits moved (or the least modeled energy) per inference.

The algorithm (docs/formats/bfp.md, "Per-layer search"):

1. Statistics, once: one forward/backward pass of the float model over the
   calibration split gives, per layer, the second moment of its inputs
   S = E[x x^T] (im2col patches for a convolution) and the output-gradient
   energy F[n] = E[sum over positions of (dLoss/dy_n)^2].
2. Proxy: quantizing W to candidate c adds dW = deq(c(W)) - W, whose expected
   loss increase to second order (Fisher approximation, noise independent of
   the gradient) is  L_l(c) = 1/2 * sum_n F[n] * dW_n S dW_n^T.  This is the
   measured counterpart of the BFP inner-product error bounds of Soloveychik
   et al. (2022): the same per-block rounding noise, weighted by what the
   layer's output matters to the loss instead of by a worst case.
3. Frontier: costs and proxies add over layers, so the exact Pareto frontier
   of (total cost, total proxy) over all per-layer combinations comes from
   merging the per-layer frontiers (each merge keeps only non-dominated sums).
4. Confirm: binary search along the frontier (candidates and plans thinned
   to cost steps of 0.5 % of the cost range), by cost, for the cheapest plan
   whose real accuracy (the integer graph on the reference backend, over
   the validation split) is at least the INT8 graph's minus a tolerance;
   then greedy descent: lower one layer to one of its next three cheaper
   frontier candidates while the real accuracy still meets the target (and, when no
   single move passes, one layer one step cheaper with another one step
   dearer, if that still saves), until nothing passes or the time budget
   runs out. Each check runs the split in chunks and stops early once the
   paired difference to INT8's predictions is 3 standard errors from the
   threshold.
5. Hold-out confirmation (when a second split is given): the descent keeps
   the cheapest plan that passed, so a plan near the threshold is more
   likely kept when its validation score is high by chance (the paired
   standard error is 0.1-0.15 points on 10 000 images, as large as the
   tolerance). The plans the descent accepted are re-checked, cheapest
   first, against the same reference on images no step chose with, and the
   first that still meets the target is the answer.

The candidate space is every block size in bfp.BLOCKS, every mantissa width
2..8 and every exponent width 4..8 the format allows, per layer
(SEARCH_CANDIDATES; CANDIDATES, the E8M0 subset, is the uniform grid the
comparison sweeps). A narrower exponent
only changes what it clamps (section 2, step 4): where no block of a layer
leaves its range the quantized weights equal the E8M0 ones, so the proxy is
computed once per distinct dequantized weight matrix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field

import numpy as np

from termshift.formats import bfp, parse, uniform
from termshift.formats.uniform import Requant

# The E8M0 grid: the uniform settings the comparison sweeps, and the default of
# the LSTM and MiniLM searches, which build one model per candidate.
CANDIDATES = tuple(bfp.BfpParams(b, m, 8) for b in bfp.BLOCKS for m in range(2, 9))
E_BITS = (8, 7, 6, 5, 4)
# What the image search chooses from: E8M0 first, so SEARCH_CANDIDATES[:len(CANDIDATES)]
# is CANDIDATES index for index and a plan over CANDIDATES means the same here.
SEARCH_CANDIDATES = tuple(bfp.BfpParams(b, m, e) for e in E_BITS for b in bfp.BLOCKS for m in range(2, 9))
METRICS = ("bits", "energy")
JUMP = 3  # descent tries each layer's next 1..JUMP cheaper frontier candidates


# --------------------------------------------------------------------------- statistics and proxy


@dataclass
class LayerStats:
    """What the proxy needs from one GEMM layer of the float model."""

    name: str
    weight: np.ndarray  # (N, K) float64, torch layout (conv: c, kh, kw)
    bias: np.ndarray  # (N,)
    second_moment: np.ndarray  # (K, K): E[x x^T] over samples and positions
    fisher: np.ndarray  # (N,): E over samples of sum over positions of (dL/dy_n)^2


def layer_statistics(model, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> list[LayerStats]:
    """One forward/backward pass of the float model (cross-entropy with the
    true labels) collecting every GEMM layer's input moments and output
    gradient energies."""
    import torch
    from torch import nn

    from termshift.nn.im2col import im2col
    from termshift.nn.lower import _pair, float_ops

    gemms = [op for op in float_ops(model) if op.kind in ("linear", "conv2d")]
    k_of = {op.name: op.module.weight[0].numel() for op in gemms}
    moments = {op.name: np.zeros((k_of[op.name], k_of[op.name])) for op in gemms}
    fisher = {op.name: np.zeros(op.module.weight.shape[0]) for op in gemms}
    positions = {op.name: 0 for op in gemms}
    captured: dict = {}

    def hook(name):
        def fn(module, inputs, output):
            output.retain_grad()
            captured[name] = (inputs[0].detach(), output)
        return fn

    handles = [op.module.register_forward_hook(hook(op.name)) for op in gemms]
    model.eval()
    try:
        for i in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size], np.float32))
            yb = torch.from_numpy(np.asarray(y[i:i + batch_size], np.int64))
            captured.clear()
            model.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb, reduction="sum")  # per-sample gradients
            loss.backward()
            for op in gemms:
                inp, out = captured[op.name]
                g2 = out.grad.double() ** 2
                if op.kind == "conv2d":
                    m = op.module
                    # The graph's own im2col: one row per output position, patches in (c, kh, kw) order.
                    rows = im2col(inp.numpy(), _pair(m.kernel_size), _pair(m.stride), _pair(m.padding))
                    fisher[op.name] += g2.sum(dim=(0, 2, 3)).numpy()
                else:
                    rows = inp.reshape(inp.shape[0], -1).numpy()
                    fisher[op.name] += g2.sum(dim=0).numpy()
                # float32 products of one batch (a BLAS GEMM), summed over batches in float64.
                moments[op.name] += rows.T @ rows
                positions[op.name] += rows.shape[0]
    finally:
        for h in handles:
            h.remove()
    model.zero_grad()
    out = []
    for op in gemms:
        w = op.module.weight.detach().double().numpy()
        b = op.module.bias.detach().double().numpy() if op.module.bias is not None else np.zeros(w.shape[0])
        out.append(LayerStats(op.name, w.reshape(w.shape[0], -1), b, moments[op.name] / positions[op.name],
                              fisher[op.name] / len(x)))
    return out


def proxy_loss(stats: LayerStats, p: bfp.BfpParams, memo: dict | None = None) -> float:
    """Expected loss increase of quantizing this layer's weights with `p`.
    `memo` (one dict per layer) reuses the value for a candidate whose
    dequantized weights equal an earlier one's (an exponent narrower than the
    layer needs clamps nothing), skipping the K x K product."""
    exps, mant = bfp.quantize(stats.weight, p)
    deq = bfp.dequantize(exps, mant, p)
    key = hashlib.sha256(deq.tobytes()).digest() if memo is not None else None
    if key is not None and key in memo:
        return memo[key]
    dw = deq - stats.weight
    loss = float(0.5 * np.sum(stats.fisher[:, None] * (dw @ stats.second_moment) * dw))
    if key is not None:
        memo[key] = loss
    return loss


# --------------------------------------------------------------------------- plans on a graph


@dataclass
class Layer:
    """One GEMM node of the base graph with its float parameters and, per
    candidate, its cost (bits moved and modeled energy) and proxy."""

    index: int  # position in graph.nodes
    stats: LayerStats
    bits: np.ndarray  # (len(candidates),)
    energy: np.ndarray  # joules
    proxy: np.ndarray


def _in_shapes(graph) -> list[tuple]:
    shapes, shape = [], tuple(graph.input_shape)
    for node in graph.nodes:
        shapes.append(shape)
        shape = node.out_shape(shape)
    return shapes


def _gemm_indices(graph) -> list[int]:
    from termshift.nn.graph import GemmNode

    return [i for i, n in enumerate(graph.nodes) if isinstance(n, GemmNode)]


def requantize_node(node, stats: LayerStats, p: bfp.BfpParams):
    """`node` re-encoded in `p`: new payload and weight scales, the bias and the
    requant multipliers re-derived for them (activation scales, clamps and
    shapes unchanged), exactly what lower() produces for `p`."""
    payload = bfp.encode(stats.weight, p)
    s_w = bfp.row_scale(payload["eref"], p)
    bias = uniform.quantize_bias(stats.bias, node.s_in, s_w)
    rq = None
    if node.requant is not None:
        fixed = uniform.requant_params(node.s_in * s_w / node.s_out)
        rq = Requant(fixed.multiplier, fixed.shift, node.requant.lo, node.requant.hi)
    return dataclasses.replace(node, fmt=str(parse(p.spec())), payload=payload, s_w=s_w, bias=bias, requant=rq,
                               w_bits=p.bits_per_weight())


def layer_table(graph, stats: list[LayerStats], candidates=SEARCH_CANDIDATES) -> list[Layer]:
    """Per GEMM layer and candidate: bits moved, modeled energy and proxy."""
    from termshift.energy.model import layer_energy

    shapes = _in_shapes(graph)
    idx = _gemm_indices(graph)
    if [graph.nodes[i].name for i in idx] != [s.name for s in stats]:
        raise ValueError("the statistics do not belong to this graph's layers")
    layers = []
    for i, st in zip(idx, stats):
        bits, energy, proxy, memo = [], [], [], {}
        for p in candidates:
            c = dataclasses.replace(graph.nodes[i], fmt=p.spec()).cost(shapes[i])
            bits.append(c.weight_bits + c.act_in_bits + c.act_out_bits)
            energy.append(layer_energy(c)["energy_j"])
            proxy.append(proxy_loss(st, p, memo))
        layers.append(Layer(i, st, np.array(bits, float), np.array(energy), np.array(proxy)))
    return layers


def fixed_cost(graph, metric: str) -> float:
    """Cost of the non-GEMM nodes (pooling), the same for every plan."""
    from termshift.energy.model import layer_energy
    from termshift.nn.graph import GemmNode

    if metric == "bits":
        return 0.0
    shapes = _in_shapes(graph)
    total = 0.0
    for node, shape in zip(graph.nodes, shapes):
        if not isinstance(node, GemmNode):
            c = node.cost(shape)
            total += layer_energy(c)["energy_j"] if c is not None else 0.0
    return total


@dataclass(frozen=True)
class FrontierPoint:
    cost: float
    proxy: float
    plan: tuple  # candidate index per GEMM layer


def _prune(points: list[FrontierPoint]) -> list[FrontierPoint]:
    """Non-dominated points, by increasing cost (and so decreasing proxy)."""
    out: list[FrontierPoint] = []
    for pt in sorted(points, key=lambda q: (q.cost, q.proxy)):
        if not out or pt.proxy < out[-1].proxy:
            out.append(pt)
    return out


def thin(front: list[FrontierPoint], step: float) -> list[FrontierPoint]:
    """Frontier points at least `step` apart in cost, each the lowest-proxy
    point at its cost, cheapest first: a plan that saves less than `step` over
    a more accurate one is not worth a real evaluation."""
    out = [front[-1]]
    for pt in reversed(front[:-1]):
        if pt.cost <= out[-1].cost - step:
            out.append(pt)
    return out[::-1]


def layer_frontier(costs: np.ndarray, proxies: np.ndarray, step: float = 0.0) -> list[int]:
    """Candidate indices on one layer's own (cost, proxy) frontier, cheapest first."""
    own = _prune([FrontierPoint(float(c), float(q), (j,)) for j, (c, q) in enumerate(zip(costs, proxies))])
    return [pt.plan[0] for pt in thin(own, step)]


def pareto_frontier(costs: list[np.ndarray], proxies: list[np.ndarray], step: float = 0.0) -> list[FrontierPoint]:
    """The frontier of (sum of costs, sum of proxies) over all per-layer
    choices: a sum is non-dominated only if built from non-dominated partial
    sums, so merging the layers' own frontiers one by one is exact (step 0).
    With step > 0 each layer's and the merged frontier keep points `step` apart."""
    front = [FrontierPoint(0.0, 0.0, ())]
    for c, q in zip(costs, proxies):
        own = layer_frontier(c, q, step)
        front = _prune([FrontierPoint(f.cost + c[j], f.proxy + q[j], f.plan + (j,)) for f in front for j in own])
    return thin(front, step)


# --------------------------------------------------------------------------- real evaluation


class PlanEvaluator:
    """Real accuracy of a plan (one candidate per GEMM layer): the integer
    graph on a backend over a labeled split, taken in chunks.

    Plans that share their first layers share those layers' outputs (a prefix
    cache per chunk). `meets` decides "accuracy >= reference - tolerance"
    chunk by chunk and stops early once the paired difference to the
    reference's predictions is z standard errors away from the threshold; its
    final answer on the whole split is exact."""

    def __init__(self, graph, layers: list[Layer], x: np.ndarray, y: np.ndarray, backend,
                 candidates=SEARCH_CANDIDATES, chunk: int = 2000, cache_bytes: int = 1 << 30):
        from termshift.nn.graph import RunContext

        self.graph, self.layers, self.candidates = graph, layers, candidates
        self.ctx = RunContext(backend)
        y = np.asarray(y)
        bounds = range(0, len(y), chunk)
        self.y = [y[i:i + chunk] for i in bounds]
        self.x0 = [graph.nodes[0].run(np.asarray(x[i:i + chunk], np.float64), self.ctx) for i in bounds]
        self.reference_pred: list | None = None
        self._pos = {lay.index: li for li, lay in enumerate(layers)}
        self._nodes: dict = {}
        self._cache: dict = {}
        self._cache_bytes, self._used = cache_bytes, 0
        self._correct: dict[tuple, list] = {}  # plan -> per-chunk correctness, as far as evaluated
        self.seconds = 0.0
        self.chunks_run = 0

    def node(self, layer: int, j: int):
        key = (layer, j)
        if key not in self._nodes:
            lay = self.layers[layer]
            self._nodes[key] = requantize_node(self.graph.nodes[lay.index], lay.stats, self.candidates[j])
        return self._nodes[key]

    def graph_of(self, plan: tuple):
        """The QuantGraph of a plan (per-node specs in each node's fmt)."""
        from termshift.nn.graph import QuantGraph

        nodes = list(self.graph.nodes)
        for li, j in enumerate(plan):
            nodes[self.layers[li].index] = self.node(li, j)
        meta = {"plan": {self.layers[li].stats.name: self.candidates[j].spec() for li, j in enumerate(plan)}}
        return QuantGraph(nodes, self.graph.input_shape, "bfp:search=on", meta)

    def set_reference(self, graph) -> float:
        """Run the reference graph (INT8) whose predictions `meets` pairs
        with; returns its accuracy. Both graphs must quantize the input alike."""
        if graph.nodes[0] != self.graph.nodes[0]:
            raise ValueError("the reference graph quantizes its input differently from the searched graph")
        self.reference_pred = [_run_nodes(graph.nodes[1:], x0, self.ctx).argmax(1) for x0 in self.x0]
        return float(np.mean(np.concatenate([p == y for p, y in zip(self.reference_pred, self.y)])))

    def _chunk(self, plan: tuple, c: int) -> np.ndarray:
        t0 = time.perf_counter()
        h, key = self.x0[c], (c,)
        last = len(self.graph.nodes) - 1
        for i, node in enumerate(self.graph.nodes[1:], start=1):
            li = self._pos.get(i)
            key = key + ((plan[li],) if li is not None else (None,))
            if key in self._cache:
                h = self._cache[key]
                continue
            h = (self.node(li, plan[li]) if li is not None else node).run(h, self.ctx)
            if i < last and self._used + h.nbytes <= self._cache_bytes:
                self._cache[key] = h
                self._used += h.nbytes
        self.seconds += time.perf_counter() - t0
        self.chunks_run += 1
        return h.argmax(1) == self.y[c]

    def _correct_upto(self, plan: tuple, n_chunks: int) -> list:
        done = self._correct.setdefault(plan, [])
        while len(done) < n_chunks:
            done.append(self._chunk(plan, len(done)))
        return done[:n_chunks]

    def accuracy(self, plan: tuple) -> float:
        """Accuracy over the whole split."""
        return float(np.mean(np.concatenate(self._correct_upto(tuple(plan), len(self.y)))))

    def meets(self, plan: tuple, tolerance: float, z: float = 3.0) -> bool:
        """Whether accuracy(plan) >= accuracy(reference) - tolerance over the
        whole split, deciding early when the paired difference is clear."""
        if self.reference_pred is None:
            raise ValueError("call set_reference() before meets()")
        plan = tuple(plan)
        for c in range(1, len(self.y) + 1):
            correct = np.concatenate(self._correct_upto(plan, c))
            ref = np.concatenate([p == y for p, y in zip(self.reference_pred[:c], self.y[:c])])
            # In images: correct answers gained over the reference plus the allowance.
            margin = int(correct.sum()) - int(ref.sum()) + round(tolerance * correct.size, 9)
            if c == len(self.y):
                return margin >= 0
            if abs(margin) > z * np.sqrt(max(1, int(np.count_nonzero(correct != ref)))):
                return margin > 0
        return False


def _run_nodes(nodes, h, ctx):
    for node in nodes:
        h = node.run(h, ctx)
    return h


# --------------------------------------------------------------------------- the search


@dataclass
class SearchResult:
    plan: tuple  # candidate index per GEMM layer
    cost: float
    met_target: bool
    frontier: list  # FrontierPoint, cheapest first (thinned)
    steps: list = field(default_factory=list)  # (phase, plan, cost, met) in evaluation order
    seconds: float = 0.0


def plan_cost(layers: list[Layer], plan: tuple, metric: str, fixed: float = 0.0) -> float:
    return fixed + sum(float(getattr(lay, metric)[j]) for lay, j in zip(layers, plan))


def search(layers: list[Layer], evaluator: PlanEvaluator, tolerance: float, metric: str = "bits",
           time_budget: float = 60.0, fixed: float = 0.0, resolution: float = 0.005, starts: tuple = (),
           confirm: PlanEvaluator | None = None) -> SearchResult:
    """The cheapest plan found whose validation accuracy is at least the
    reference's minus `tolerance` (a fraction, 0.002 = 0.2 points): steps 3-5.
    `resolution`: candidates and plans are kept at least that fraction of the
    whole cost range apart. `starts`: further plans to descend from when they
    meet the target (the comparison passes the best uniform setting).
    `confirm`: an evaluator on a held-out split, its reference set like
    `evaluator`'s; the answer is then the cheapest plan the descent accepted
    that also meets the target there (step 5, not limited by the time budget)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if confirm is not None and confirm.reference_pred is None:
        raise ValueError("call set_reference() on the confirmation evaluator before search()")
    t0 = time.perf_counter()
    costs = [getattr(lay, metric) for lay in layers]
    span = sum(float(c.max() - c.min()) for c in costs)
    step = resolution * span
    front = pareto_frontier(costs, [lay.proxy for lay in layers], step)
    own = [layer_frontier(c, lay.proxy, step) for c, lay in zip(costs, layers)]
    steps = []

    def meets(phase, plan):
        ok = evaluator.meets(plan, tolerance)
        steps.append((phase, tuple(plan), plan_cost(layers, plan, metric, fixed), ok))
        return ok

    def out_of_time():
        return time.perf_counter() - t0 > time_budget

    def cost(plan):
        return plan_cost(layers, plan, metric, fixed)

    def descend(plan: list) -> list:
        """Greedy descent on each layer's own (thinned) frontier, biggest
        saving first: one layer one to JUMP steps cheaper; when no such move
        passes, one layer one step cheaper and another one step dearer, if
        that still saves. Returns every plan it accepted, the seed first."""
        path = [plan]
        improved = True
        while improved and not out_of_time():
            improved = False
            cheaper = [[c for c in own[li] if costs[li][c] < costs[li][j]] for li, j in enumerate(plan)]
            dearer = [[c for c in own[li] if costs[li][c] > costs[li][j]] for li, j in enumerate(plan)]
            moves = [(costs[li][j] - costs[li][c], ((li, c),))
                     for li, j in enumerate(plan) for c in cheaper[li][-JUMP:]]
            for li, j in enumerate(plan):
                for lj, k in enumerate(plan):
                    if lj != li and cheaper[li] and dearer[lj]:
                        down, up = cheaper[li][-1], dearer[lj][0]
                        saving = costs[li][j] - costs[li][down] - (costs[lj][up] - costs[lj][k])
                        if saving > 0:
                            moves.append((saving - span, ((li, down), (lj, up))))  # after every single move
            for _, change in sorted(moves, key=lambda mv: -mv[0]):
                if out_of_time():
                    break
                trial = list(plan)
                for li, j in change:
                    trial[li] = j
                if meets("descent" if len(change) == 1 else "exchange", trial):
                    plan, improved = trial, True
                    path.append(plan)
                    break
        return path

    def confirmed(path: list) -> list | None:
        """The cheapest plan of a descent path that meets the target on the hold-out split."""
        for plan in reversed(path):
            ok = confirm.meets(plan, tolerance)
            steps.append(("confirm", tuple(plan), cost(plan), ok))
            if ok:
                return plan
        return None

    # Binary search for the cheapest frontier point that meets the target; the
    # most accurate plan is checked only if nothing cheaper meets it.
    lo, hi = 0, len(front) - 1
    while lo < hi and not out_of_time():
        mid = (lo + hi) // 2
        if meets("frontier", front[mid].plan):
            hi = mid
        else:
            lo = mid + 1
    found = hi < len(front) - 1 or meets("frontier", front[hi].plan)
    seeds = ([list(front[hi].plan)] if found else []) + [list(st) for st in starts if meets("start", st)]
    if not seeds:
        best = front[-1].plan
        return SearchResult(best, cost(best), False, front, steps, time.perf_counter() - t0)
    paths = [descend(seed) for seed in sorted(seeds, key=cost)]
    if confirm is None:
        best = min((path[-1] for path in paths), key=cost)
        return SearchResult(tuple(best), cost(best), True, front, steps, time.perf_counter() - t0)
    kept = [plan for plan in map(confirmed, paths) if plan is not None]
    if not kept:
        best = front[-1].plan
        return SearchResult(best, cost(best), False, front, steps, time.perf_counter() - t0)
    best = min(kept, key=cost)
    return SearchResult(tuple(best), cost(best), True, front, steps, time.perf_counter() - t0)


def search_budget(layers: list[Layer], evaluator: PlanEvaluator, budget: float, metric: str = "bits",
                  candidates: int = 8, fixed: float = 0.0, resolution: float = 0.005) -> tuple:
    """The most accurate plan found within a cost budget: the proxy ranks the
    frontier, the `candidates` lowest-proxy plans under the budget are
    evaluated for real, the best validation accuracy wins (the cheaper on a tie)."""
    costs = [getattr(lay, metric) for lay in layers]
    step = resolution * sum(float(c.max() - c.min()) for c in costs)
    front = pareto_frontier(costs, [lay.proxy for lay in layers], step)
    fits = [pt for pt in front if pt.cost + fixed <= budget]
    if not fits:
        raise ValueError(f"no plan costs {budget:.4g} or less; the cheapest costs {front[0].cost + fixed:.4g}")
    tried = fits[-candidates:]
    return max(tried, key=lambda pt: (evaluator.accuracy(pt.plan), -pt.cost)).plan


def best_under_budget(front: list[FrontierPoint], budget: float) -> FrontierPoint:
    """The frontier plan with the lowest proxy whose cost fits the budget."""
    fits = [pt for pt in front if pt.cost <= budget]
    if not fits:
        raise ValueError(f"no plan costs {budget:.4g} or less; the cheapest costs {front[0].cost:.4g}")
    return fits[-1]


def bitq_score(accuracy: float, dm: float, dm_max: float) -> float:
    """BitQ's selection rule (Xu et al. 2024): (100 - acc%)/100 + 0.2 * DM/DM_max."""
    return (100.0 - 100.0 * accuracy) / 100.0 + 0.2 * dm / dm_max


def best_uniform(layers: list[Layer], candidates, ok, metric: str = "bits") -> tuple[int, float] | None:
    """(candidate index, plan cost) of the cheapest uniform setting for which
    `ok(j)` holds (every layer at candidates[j]), or None. Per block size the
    smallest passing mantissa is found by binary search (quality rises with the
    mantissa), after checking that the widest passes at all."""
    n = len(layers)
    best = None
    for block in sorted({p.block for p in candidates}):
        js = sorted((j for j, p in enumerate(candidates) if p.block == block), key=lambda j: candidates[j].mantissa)
        lo, hi = 0, len(js) - 1
        if not ok(js[hi]):
            continue
        while lo < hi:
            mid = (lo + hi) // 2
            if ok(js[mid]):
                hi = mid
            else:
                lo = mid + 1
        cost = plan_cost(layers, (js[hi],) * n, metric)
        if best is None or cost < best[1]:
            best = (js[hi], cost)
    return best


def uniform_plan(layers: list[Layer], p: bfp.BfpParams, candidates=SEARCH_CANDIDATES) -> tuple:
    return (candidates.index(p),) * len(layers)


def narrowest_lossless(layers: list[Layer], p: bfp.BfpParams, candidates=SEARCH_CANDIDATES) -> bfp.BfpParams:
    """The narrowest exponent width (among the candidates) at which `p` quantizes
    every layer exactly as `p` does: the same uniform (B, m) setting, the same
    integers out of the graph, fewer bits. The comparison's fair uniform
    baseline once the search may narrow exponents."""
    best = p
    for q in candidates:
        if (q.block, q.mantissa) != (p.block, p.mantissa) or q.e_bits >= best.e_bits:
            continue
        if all(np.array_equal(bfp.dequantize(*bfp.quantize(lay.stats.weight, q), q),
                              bfp.dequantize(*bfp.quantize(lay.stats.weight, p), p)) for lay in layers):
            best = q
    return best


# --------------------------------------------------------------------------- end to end


@dataclass
class ModelSearch:
    """A finished search on one model: the evaluator (which builds any plan's
    graph and caches every real check), the result and its timings."""

    evaluator: PlanEvaluator
    result: SearchResult
    layers: list
    int8_val: float  # the reference's validation accuracy the target is taken from
    fixed: float
    setup_seconds: float  # statistics, proxy table, evaluator
    seconds: float  # setup + the search itself (the INT8 reference run excluded: it is the target)

    def graph(self):
        return self.evaluator.graph_of(self.result.plan)


def confirm_split(data, n_val: int, n_confirm: int) -> tuple:
    """The hold-out split of step 5: the `n_confirm` training images just before
    the validation split (the last `n_val`), so no step chose with them (the
    calibration images are the last ones, inside the validation split)."""
    n_val = min(int(n_val), len(data.x_train))
    n_confirm = min(int(n_confirm), len(data.x_train) - n_val)
    if n_confirm <= 0:
        return None
    lo, hi = len(data.x_train) - n_val - n_confirm, len(data.x_train) - n_val
    return data.x_train[lo:hi], data.y_train[lo:hi]


def search_model(model, data, tolerance: float = 0.2, metric: str = "bits", n_val: int = 10000,
                 time_budget: float = 60.0, backend: str = "reference", n_confirm: int = 20000) -> ModelSearch:
    """Steps 1-5 on a trained image model and its ImageData: statistics on the
    calibration split, checks on the last `n_val` training images against
    INT8's validation accuracy minus `tolerance` points, the answer confirmed
    on the `n_confirm` images before them (0: no confirmation)."""
    from termshift.backends import get_backend
    from termshift.nn.lower import lower

    be = get_backend(backend)
    calib = data.calibration()
    n_val = min(int(n_val), len(data.x_train))
    int8 = lower(model, calib, "int:bits=8")
    base = lower(model, calib, "bfp:preset=mxint8")
    t0 = time.perf_counter()
    stats = layer_statistics(model, calib, data.y_train[-len(calib):])
    layers = layer_table(base, stats)
    fixed = fixed_cost(base, metric)
    ev = PlanEvaluator(base, layers, data.x_train[-n_val:], data.y_train[-n_val:], be)
    setup = time.perf_counter() - t0
    int8_val = ev.set_reference(int8)
    held = confirm_split(data, n_val, n_confirm)
    conf = None
    if held is not None:
        conf = PlanEvaluator(base, layers, *held, be, cache_bytes=1 << 28)
        conf.set_reference(int8)
    t1 = time.perf_counter()
    res = search(layers, ev, tolerance / 100, metric, max(1.0, time_budget - setup), fixed, confirm=conf)
    return ModelSearch(ev, res, layers, int8_val, fixed, setup, setup + time.perf_counter() - t1)
