"""The `tr` format on whole models: lowering through its GemmFormat, reference
== C-sim on every engine output, the term-pair cost accounting `eval`
reports, the energy table entries and the board artifact round trip."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from termshift.backends import get_backend
from termshift.energy import table
from termshift.evaluate import evaluate_image_model
from termshift.formats import parse, tr
from termshift.nn.artifact import load_artifact, save_artifact
from termshift.nn.datasets import load_image_data
from termshift.nn.gemm_formats import gemm_format
from termshift.nn.lower import lower
from termshift.nn.train import trained_model

SPEC = "tr:bits=4,group=8,budget=6,data_terms=3"


@pytest.fixture(scope="module")
def digits():
    return load_image_data("digits")


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def graph(request, digits):
    model = trained_model(request.param, digits, quiet=True)
    return lower(model, digits.calibration(), SPEC)


def test_reference_and_csim_agree_on_every_engine_output(graph, digits):
    x = digits.x_test[:40]
    ref = graph.run(x, get_backend("reference"), keep_raw=True)
    for build in ("fast", "exact"):
        sim = graph.run(x, get_backend("csim", build=build), keep_raw=True)
        assert ref.raw.keys() == sim.raw.keys() and ref.raw
        for name in ref.raw:
            assert_array_equal(sim.raw[name], ref.raw[name])
        assert sim.cycles == ref.cycles


def test_payload_follows_the_spec(graph):
    spec = parse(SPEC)
    for node in graph.gemm_nodes():
        n_groups = -(-node.k // spec["group"])
        assert node.payload["terms"].shape == (node.n_out, n_groups, spec["budget"])
        assert node.payload["counts"].max() <= spec["budget"]
        assert node.w_bits == tr.packed_weight_bits(spec["group"], spec["budget"])


def test_cost_reports_both_term_pair_counts(graph):
    spec = parse(SPEC)
    shape = tuple(graph.input_shape)
    for node in graph.nodes:
        cost = node.cost(shape)
        if node.kind in ("linear", "conv2d"):
            m = 1 if node.kind == "linear" else int(np.prod(node.out_shape(shape)[1:]))
            macs = m * node.n_out * node.k
            assert cost.ops["conventional_term_pairs"] == macs * spec["bits"] * 8
            assert cost.ops["term_pairs"] == m * int(node.payload["counts"].sum()) * spec["data_terms"]
            # Never more than the budget allows: MACs x data_terms x budget / group (ragged groups aside).
            assert cost.ops["term_pairs"] <= m * node.n_out * -(-node.k // spec["group"]) * spec["budget"] * spec["data_terms"]
            assert "macs" not in cost.ops
        shape = node.out_shape(shape)


def test_eval_reports_term_pairs_and_charges_only_the_executed_ones(digits):
    r = evaluate_image_model("mlp", SPEC, "reference", dataset="digits", quiet=True)
    ops = r["total"]["ops"]
    assert ops["conventional_term_pairs"] > 10 * ops["term_pairs"] > 0
    assert r["accuracy"] > 0.85
    compute_pj = sum(n * table.op_energy_pj(k) for k, n in ops.items())
    assert r["total"]["compute_j"] == pytest.approx(compute_pj * 1e-12)
    assert table.OPS_PJ["conventional_term_pairs"] == 0.0
    assert table.OPS_PJ["term_pairs"] == table.PRIMITIVES_PJ["int8_add"] + table.PRIMITIVES_PJ["int32_add"]


def test_data_terms_are_truncated_for_real(digits):
    model = trained_model("mlp", digits, quiet=True)
    accs, pairs = [], []
    for td in (1, 8):
        g = lower(model, digits.calibration(), f"tr:bits=8,group=1,budget=8,data_terms={td},encoding=binary")
        out = g.run(digits.x_test, get_backend("reference")).output
        accs.append(float((out.argmax(1) == digits.y_test).mean()))
        pairs.append(sum(c.ops["term_pairs"] for c in g.costs()))
    assert pairs[1] == 8 * pairs[0]
    assert accs[1] > accs[0]  # one term per activation loses accuracy on digits


def test_artifact_round_trip(graph, digits, tmp_path):
    x = digits.x_test[:8]
    want = graph.run(x, get_backend("reference")).output
    path = save_artifact(graph, tmp_path / "tr.tsm", expected={"input": x, "output": want})
    loaded, expected = load_artifact(path)
    assert loaded.fmt == graph.fmt
    assert_array_equal(loaded.run(x, get_backend("csim")).output, expected["output"])


def test_gemm_format_is_registered():
    gf = gemm_format("tr:bits=4")
    assert gf.engine == "tr" and gf.name == "tr"


def _row(kind, fmt, acc, pairs, conv):
    return {"kind": kind, "format": str(parse(fmt)), "accuracy": acc, "term_pairs": pairs,
            "conventional_term_pairs": conv, "cycles": 1, "energy_j": 1e-6, "bits_per_weight": 4.0}


def test_results_summary_picks_the_cheapest_setting_within_the_margin(tmp_path):
    from termshift.nn import tr_results

    conv8 = tr_results.conventional_spec(8)
    report = {"model": "mlp", "dataset": "digits", "samples": 10, "rows": [
        _row("conventional", tr_results.conventional_spec(4), 0.880, 400, 4000),
        _row("conventional", conv8, 0.900, 900, 8000),
        _row("tr", "tr:bits=4,group=16,budget=12,data_terms=3", 0.898, 200, 4000),  # within 0.3 pt
        _row("tr", "tr:bits=4,group=16,budget=8,data_terms=2", 0.896, 100, 4000),  # 0.4 pt below: out
        _row("tr", "tr:bits=4,group=8,budget=6,data_terms=2", 0.881, 50, 4000)]}
    s = tr_results.summarize(report)
    assert s["conventional_8bit"] == {"accuracy": 0.9, "term_pairs": 8000}
    assert s["best_tr_within_margin"]["term_pairs"] == 200 and s["best_tr_within_margin"]["reduction"] == 40
    same = {x["conventional"]: x for x in s["same_accuracy"]}
    assert same[str(parse(tr_results.conventional_spec(4)))]["tr_term_pairs"] == 50
    report["summary"] = s
    tr_results.plot(report, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_runs_and_checks_nothing_by_time():
    from termshift.nn import tr_results

    r = tr_results.bench_term_reveal(values=2**14, repeats=1)
    assert r["values"] == 2**14 and r["term_reveal_values_per_s"] > 0 and r["int8_quantize_values_per_s"] > 0
