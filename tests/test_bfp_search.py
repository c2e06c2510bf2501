"""The per-layer BFP search: exact frontier, proxy, plans that equal what
lower() builds, the real-accuracy checks, the search itself, BitQ's rule and
the comparison command (on a tiny model so the file stays fast)."""

import dataclasses
import itertools
import json

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from torch import nn

from termshift.formats import bfp
from termshift.nn.lower import lower
from termshift.search import bfp as sb


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 24), nn.ReLU(), nn.Linear(24, 3)).eval()


@pytest.fixture(scope="module")
def setup():
    model = tiny_model()
    rng = np.random.default_rng(0)
    x = rng.random((300, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).argmax(1).numpy()  # labels the float model gets right
    base = lower(model, x, "bfp:preset=mxint8")
    stats = sb.layer_statistics(model, x, y, batch_size=128)
    layers = sb.layer_table(base, stats)
    return model, x, y, base, stats, layers


def test_frontier_is_exact_against_brute_force():
    rng = np.random.default_rng(1)
    costs = [rng.integers(1, 50, 6).astype(float) for _ in range(3)]
    proxies = [rng.random(6) for _ in range(3)]
    front = sb.pareto_frontier(costs, proxies)
    every = [(sum(c[j] for c, j in zip(costs, plan)), sum(q[j] for q, j in zip(proxies, plan)))
             for plan in itertools.product(range(6), repeat=3)]
    for pt in front:  # nothing beats a frontier point on both counts
        assert not any(c <= pt.cost and q < pt.proxy - 1e-12 for c, q in every)
    for c, q in every:  # everything is matched or beaten by a frontier point
        assert any(pt.cost <= c and pt.proxy <= q + 1e-12 for pt in front)
    assert [pt.cost for pt in front] == sorted(pt.cost for pt in front)


def test_thinning_keeps_steps_and_the_most_accurate_point():
    front = [sb.FrontierPoint(float(c), 100.0 - c, (c,)) for c in range(0, 100, 3)]
    thinned = sb.thin(front, 10.0)
    assert thinned[-1] == front[-1]
    assert all(b.cost - a.cost >= 10 for a, b in zip(thinned, thinned[1:]))
    assert sb.layer_frontier(np.array([5.0, 1.0, 3.0, 2.0]), np.array([0.1, 0.9, 0.2, 0.5])) == [1, 3, 2, 0]


def test_uniform_plan_is_what_lower_builds(setup, reference):
    model, x, _, base, stats, layers = setup
    ev = sb.PlanEvaluator(base, layers, x, np.zeros(len(x), int), reference)
    for p in (bfp.BfpParams(16, 4, 8), bfp.BfpParams(4, 2, 8)):
        want = lower(model, x, p.spec())
        got = ev.graph_of(sb.uniform_plan(layers, p))
        for a, b in zip(want.gemm_nodes(), got.gemm_nodes()):
            assert a.fmt == b.fmt
            assert_array_equal(a.payload["w"], b.payload["w"])
            assert_array_equal(a.bias, b.bias)
            assert_array_equal(a.s_w, b.s_w)
            if a.requant is not None:
                assert_array_equal(a.requant.multiplier, b.requant.multiplier)
                assert (a.requant.shift, a.requant.lo, a.requant.hi) == (b.requant.shift, b.requant.lo, b.requant.hi)
        assert_array_equal(want.run(x, reference).output, got.run(x, reference).output)


def test_statistics_match_a_direct_computation(setup):
    model, x, y, _, stats, _ = setup
    assert [s.name for s in stats] == ["conv1", "fc1", "fc2"]
    xt = torch.from_numpy(x)
    h = model[:5](xt)  # fc1's input... and output, with the gradient of the summed loss
    h.retain_grad()
    out = model[5:](h)
    nn.functional.cross_entropy(out, torch.from_numpy(y), reduction="sum").backward()
    fc1_in = model[:4](xt).detach().double().numpy()
    np.testing.assert_allclose(stats[1].second_moment, fc1_in.T @ fc1_in / len(x), rtol=1e-5)
    np.testing.assert_allclose(stats[1].fisher, (h.grad.double() ** 2).sum(0).numpy() / len(x), rtol=1e-4, atol=1e-12)
    assert stats[0].second_moment.shape == (9, 9) and stats[0].weight.shape == (4, 9)


def test_proxy_is_zero_when_the_weights_are_representable_and_grows_with_fewer_bits(setup):
    st = setup[4][1]
    grid = sb.LayerStats("g", np.array([[0.5, -0.25, 0.125, 1.0]]), np.zeros(1), np.eye(4), np.ones(1))
    assert sb.proxy_loss(grid, bfp.BfpParams(4, 6, 8)) == 0.0
    losses = [sb.proxy_loss(st, bfp.BfpParams(16, m, 8)) for m in range(2, 9)]
    assert all(a > b for a, b in zip(losses, losses[1:]))


def test_layer_costs_follow_the_format(setup):
    _, _, _, base, _, layers = setup
    j4, j8 = sb.CANDIDATES.index(bfp.BfpParams(16, 4, 8)), sb.CANDIDATES.index(bfp.BfpParams(16, 8, 8))
    fc1 = layers[1]
    p = bfp.BfpParams(16, 4, 8)
    # weights packed + anchors + int32 bias + activations in (64) and out (24), 8 bits each
    assert fc1.bits[j4] == 24 * (p.row_bytes(64) * 8 + 8) + 24 * 32 + 64 * 8 + 24 * 8
    assert fc1.bits[j4] < fc1.bits[j8] and fc1.energy[j4] < fc1.energy[j8]
    assert sb.fixed_cost(base, "bits") == 0.0 and sb.fixed_cost(base, "energy") > 0


def test_evaluator_accuracy_equals_running_the_graph(setup, reference):
    _, x, y, base, _, layers = setup
    ev = sb.PlanEvaluator(base, layers, x, y, reference, chunk=128)
    plan = (sb.CANDIDATES.index(bfp.BfpParams(8, 3, 8)),) * 3
    want = float((ev.graph_of(plan).run(x, reference).output.argmax(1) == y).mean())
    assert ev.accuracy(plan) == want
    other = plan[:2] + (sb.CANDIDATES.index(bfp.BfpParams(4, 8, 8)),)  # shares conv1 and fc1 with `plan`
    assert ev.accuracy(other) == float((ev.graph_of(other).run(x, reference).output.argmax(1) == y).mean())


def test_meets_decides_like_the_full_split_without_early_stops(setup, reference):
    _, x, y, base, _, layers = setup
    ev = sb.PlanEvaluator(base, layers, x, y, reference, chunk=100)
    with pytest.raises(ValueError, match="set_reference"):
        ev.meets((0, 0, 0), 0.01)
    ref_acc = ev.set_reference(lower(setup[0], x, "int:bits=8"))
    for p in (bfp.BfpParams(4, 8, 8), bfp.BfpParams(128, 2, 8), bfp.BfpParams(32, 3, 8)):
        plan = sb.uniform_plan(layers, p)
        for tol in (0.0, 0.01, 0.05):
            assert ev.meets(plan, tol, z=np.inf) == (ev.accuracy(plan) >= ref_acc - tol - 1e-12)


def test_search_meets_its_target_and_saves(setup, reference):
    _, x, y, base, _, layers = setup
    ev = sb.PlanEvaluator(base, layers, x, y, reference, chunk=150)
    ev.set_reference(lower(setup[0], x, "int:bits=8"))
    res = sb.search(layers, ev, 0.02, "bits", time_budget=30)
    top = sb.plan_cost(layers, res.frontier[-1].plan, "bits")
    assert res.met_target and ev.meets(res.plan, 0.02)
    assert res.cost <= top and res.cost == sb.plan_cost(layers, res.plan, "bits")
    assert res.steps and all(ph in ("frontier", "start", "descent", "exchange") for ph, *_ in res.steps)
    top_plan = sb.uniform_plan(layers, bfp.BfpParams(4, 8, 8))
    seeded = sb.search(layers, ev, 0.02, "bits", time_budget=30, starts=(top_plan,))
    assert seeded.met_target and ("start", top_plan) in [(ph, pl) for ph, pl, *_ in seeded.steps]
    assert seeded.cost <= res.cost  # the frontier seed is descended the same way, the extra start can only help
    e = sb.search(layers, ev, 0.02, "energy", time_budget=30, fixed=sb.fixed_cost(base, "energy"))
    assert e.met_target and e.cost > 0
    with pytest.raises(ValueError, match="metric must be one of"):
        sb.search(layers, ev, 0.02, "latency")


def test_bitq_rule_and_budget():
    assert sb.bitq_score(0.9, 50.0, 100.0) == pytest.approx(0.1 + 0.1)
    # The rule trades 1 point of accuracy for 5 % of DM_max.
    assert sb.bitq_score(0.89, 45.0, 100.0) == pytest.approx(sb.bitq_score(0.9, 50.0, 100.0))
    front = [sb.FrontierPoint(1.0, 3.0, (0,)), sb.FrontierPoint(2.0, 2.0, (1,)), sb.FrontierPoint(4.0, 1.0, (2,))]
    assert sb.best_under_budget(front, 3.0).plan == (1,)
    with pytest.raises(ValueError, match="no plan costs 0.5 or less"):
        sb.best_under_budget(front, 0.5)


def test_comparison_command_writes_report_and_plot(tmp_path, capsys):
    from termshift.search import bfp_cli

    out = tmp_path / "bfp"
    assert bfp_cli.main(["--model", "mlp", "--dataset", "digits", "--val", "200", "--test-limit", "40",
                         "--time-budget", "10", "--out", str(out)]) == 0
    report = json.loads((out / "bfp_search.json").read_text())["reports"][0]
    assert (out / "bfp_search.png").read_bytes()[:4] == b"\x89PNG"
    assert "| best uniform BFP |" in (out / "bfp_search.md").read_text()
    rows = report["rows"]
    assert set(rows) == {"int8", "optimizer", "optimizer_int8_target", "best_uniform", "best_uniform_narrow_e", "bitq",
                         "optimizer_at_bitq_dm"}
    assert rows["best_uniform_narrow_e"]["bits"] <= rows["best_uniform"]["bits"]
    assert len(report["uniform"]) == len(sb.CANDIDATES) and report["test_images"] == 40
    # Within the tolerance of the best uniform's validation accuracy (an early accept may leave it a few images short).
    assert rows["optimizer"]["val"] >= rows["best_uniform"]["val"] - 0.002 - 0.03
    assert rows["optimizer"]["bits"] <= max(u["bits"] for u in report["uniform"])
    assert rows["optimizer_at_bitq_dm"]["bits"] <= rows["bitq"]["bits"]
    assert report["saving_vs_best_uniform"] == pytest.approx(1 - rows["optimizer"]["bits"] / rows["best_uniform"]["bits"])
    text = capsys.readouterr().out
    assert "per-layer BFP vs uniform vs BitQ" in text and "less bits moved than the best uniform" in text


def test_comparison_command_rejects_bad_arguments(capsys):
    from termshift.search import bfp_cli

    with pytest.raises(SystemExit):
        bfp_cli.main(["--val", "0"])
    assert "must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bfp_cli.main(["--confirm", "-1"])
    assert "--confirm must be 0 or more" in capsys.readouterr().err
    with pytest.raises(ValueError, match="image models"):
        bfp_cli.compare_model("lstm")


def test_search_under_a_budget_stays_within_it(setup, reference):
    _, x, y, base, _, layers = setup
    ev = sb.PlanEvaluator(base, layers, x, y, reference, chunk=150)
    lo = sb.plan_cost(layers, sb.uniform_plan(layers, bfp.BfpParams(128, 2, 8)), "bits")
    hi = sb.plan_cost(layers, sb.uniform_plan(layers, bfp.BfpParams(4, 8, 8)), "bits")
    budget = (lo + hi) / 2
    plan = sb.search_budget(layers, ev, budget, "bits", candidates=4)
    assert sb.plan_cost(layers, plan, "bits") <= budget
    # It is the best of the plans it evaluated for real.
    assert ev.accuracy(plan) == max(ev.accuracy(p) for p in ev._correct)
    with pytest.raises(ValueError, match="no plan costs"):
        sb.search_budget(layers, ev, lo / 10, "bits")


def test_candidates_add_narrow_exponents_after_the_uniform_grid():
    n = len(sb.CANDIDATES)
    assert sb.SEARCH_CANDIDATES[:n] == sb.CANDIDATES and all(p.e_bits == 8 for p in sb.CANDIDATES)
    assert {p.e_bits for p in sb.SEARCH_CANDIDATES} == set(range(4, 9))
    assert len(set(sb.SEARCH_CANDIDATES)) == len(sb.SEARCH_CANDIDATES) == 5 * n


def test_narrow_exponent_proxy_is_reused_only_when_nothing_is_clamped(setup):
    _, _, _, _, stats, layers = setup
    fc1 = layers[1]
    for b, m in ((8, 3), (32, 5)):
        j8 = sb.SEARCH_CANDIDATES.index(bfp.BfpParams(b, m, 8))
        for e in range(4, 8):
            p = bfp.BfpParams(b, m, e)
            same = np.array_equal(bfp.dequantize(*bfp.quantize(fc1.stats.weight, p), p),
                                  bfp.dequantize(*bfp.quantize(fc1.stats.weight, bfp.BfpParams(b, m, 8)),
                                                 bfp.BfpParams(b, m, 8)))
            j = sb.SEARCH_CANDIDATES.index(p)
            assert (fc1.proxy[j] == fc1.proxy[j8]) == same
            assert fc1.proxy[j] == pytest.approx(sb.proxy_loss(fc1.stats, p))  # the memo changes nothing
            assert fc1.bits[j] <= fc1.bits[j8]  # rows are padded to whole bytes
        assert fc1.bits[sb.SEARCH_CANDIDATES.index(bfp.BfpParams(b, m, 4))] < fc1.bits[j8]
    # Weights spanning 2^-12 .. 2^-1 in one layer: 4-bit exponents (bias 7) clamp the small blocks.
    st = stats[1]
    w = st.weight.copy()
    w[:, : w.shape[1] // 2] *= 2.0**-12
    small = dataclasses.replace(st, weight=w)
    p4, p8 = bfp.BfpParams(8, 4, 4), bfp.BfpParams(8, 4, 8)
    assert sb.proxy_loss(small, p4, {}) > sb.proxy_loss(small, p8, {})


def test_narrowest_lossless_exponent_gives_the_same_graph_outputs(setup, reference):
    model, x, _, base, _, layers = setup
    ev = sb.PlanEvaluator(base, layers, x, np.zeros(len(x), int), reference)
    for p in (bfp.BfpParams(8, 3, 8), bfp.BfpParams(32, 6, 8)):
        q = sb.narrowest_lossless(layers, p)
        assert (q.block, q.mantissa) == (p.block, p.mantissa) and q.e_bits < 8
        narrower = bfp.BfpParams(p.block, p.mantissa, q.e_bits - 1)
        if q.e_bits > 4:  # one bit less clamps something in some layer
            assert not all(np.array_equal(bfp.dequantize(*bfp.quantize(l.stats.weight, narrower), narrower),
                                          bfp.dequantize(*bfp.quantize(l.stats.weight, p), p)) for l in layers)
        a, b = sb.uniform_plan(layers, p), sb.uniform_plan(layers, q)
        assert_array_equal(ev.graph_of(a).run(x, reference).output, ev.graph_of(b).run(x, reference).output)
        assert sb.plan_cost(layers, b, "bits") <= sb.plan_cost(layers, a, "bits")


def test_confirmation_keeps_the_cheapest_accepted_plan_that_holds_out(setup, reference):
    model, x, y, base, _, layers = setup
    int8 = lower(model, x, "int:bits=8")
    ev = sb.PlanEvaluator(base, layers, x[:150], y[:150], reference, chunk=50)
    ev.set_reference(int8)
    plain = sb.search(layers, ev, 0.02, "bits", time_budget=30)
    # The same split as the confirmation changes nothing: the answer already met the target there.
    same = sb.PlanEvaluator(base, layers, x[:150], y[:150], reference, chunk=50)
    same.set_reference(int8)
    again = sb.search(layers, ev, 0.02, "bits", time_budget=30, confirm=same)
    assert again.plan == plain.plan and again.met_target
    assert [st for st in again.steps if st[0] == "confirm"] == [("confirm", plain.plan, plain.cost, True)]
    # A hold-out split labeled with INT8's own answers: INT8 scores 100 %, so only
    # plans that nearly agree with it pass; the answer is an accepted plan that does.
    x_h = x[150:]
    y_h = int8.run(x_h, reference).output.argmax(1)
    held = sb.PlanEvaluator(base, layers, x_h, y_h, reference, chunk=50)
    assert held.set_reference(int8) == 1.0
    res = sb.search(layers, ev, 0.02, "bits", time_budget=30, confirm=held)
    accepted = {pl for ph, pl, _, ok in res.steps if ok and ph != "confirm"}
    confirms = [(pl, ok) for ph, pl, _, ok in res.steps if ph == "confirm"]
    assert confirms and all(held.meets(pl, 0.02) == ok for pl, ok in confirms)
    if res.met_target:
        assert res.plan in accepted and held.accuracy(res.plan) >= 1.0 - 0.02 - 1e-12
        assert res.cost >= plain.cost
    else:
        assert not any(ok for _, ok in confirms)
    with pytest.raises(ValueError, match="confirmation evaluator"):
        sb.search(layers, ev, 0.02, "bits", time_budget=30,
                  confirm=sb.PlanEvaluator(base, layers, x_h, y_h, reference, chunk=50))


def test_confirm_split_is_disjoint_from_validation():
    from termshift.nn.datasets import ImageData

    xs = np.arange(100, dtype=np.float32).reshape(100, 1, 1, 1)
    data = ImageData("toy", xs, np.arange(100), xs[:5], np.arange(5))
    xc, yc = sb.confirm_split(data, 30, 50)
    assert_array_equal(yc, np.arange(20, 70))
    xc, yc = sb.confirm_split(data, 30, 500)  # as many as there are
    assert_array_equal(yc, np.arange(0, 70))
    assert sb.confirm_split(data, 30, 0) is None and sb.confirm_split(data, 100, 10) is None


def test_best_uniform_is_the_cheapest_passing_setting_per_block_search():
    # Quality rises with the mantissa; each block size needs a different one.
    cands = [bfp.BfpParams(b, m, 8) for b in (4, 32) for m in range(2, 9)]
    need = {4: 5, 32: 7}
    bits = np.array([p.mantissa + 8 / p.block for p in cands])
    layers = [sb.Layer(i, None, bits, bits, bits) for i in range(3)]
    asked = []

    def ok(j):
        asked.append(j)
        return cands[j].mantissa >= need[cands[j].block]

    j, cost = sb.best_uniform(layers, cands, ok)
    assert cands[j] == bfp.BfpParams(4, 5, 8) and cost == pytest.approx(3 * (5 + 2))
    assert len(asked) < len(cands)  # binary search, not a sweep
    assert sb.best_uniform(layers, cands, lambda j: False) is None
