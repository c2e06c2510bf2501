"""`teq` on a model: lowering with calibration activations, reference ==
C-sim on whole graphs, costing, artifacts, the width search and the
premise report (the scikit-learn digits MLP: always installed, trains in
seconds and is cached)."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from termshift.energy.table import OPS_PJ
from termshift.formats import teq
from termshift.nn import gemm_teq


@pytest.fixture(scope="module")
def digits():
    from termshift.nn.datasets import load_image_data
    from termshift.nn.train import trained_model

    data = load_image_data("digits")
    return data, trained_model("mlp", data, quiet=True)


@pytest.fixture(scope="module")
def graph4(digits):
    data, model = digits
    return gemm_teq.lower_teq(model, data.calibration(), "teq:bits=4")


def test_layer_inputs_match_the_int8_lowering(digits):
    from termshift.nn.lower import lower

    data, model = digits
    inputs = gemm_teq.layer_inputs(model, data.calibration())
    nodes = list(lower(model, data.calibration(), "int:bits=8").gemm_nodes())
    assert [i.name for i in inputs] == [n.name for n in nodes] == ["fc1", "fc2", "fc3"]
    assert [i.s_in for i in inputs] == [n.s_in for n in nodes]
    assert [i.signed for i in inputs] == [False, False, False]  # pixels, then ReLU outputs
    assert inputs[0].x.shape == (len(data.calibration()), 64)


def test_graph_payload_and_contract(graph4, digits):
    data, _ = digits
    for node in graph4.gemm_nodes():
        p = node.payload
        assert int(p["bits"][0]) == 4 and node.w_bits == 4.0
        wp, ap = gemm_teq.layer_params(p)
        assert wp.base == ap.base and wp.beta == 0.0 and ap.beta == 0.0  # beta=off by default
        assert not np.any(p["w_table"]) and not np.any(p["a_table"])
        # granularity=auto (the default) is per-channel with beta=off: row n's
        # s_w is the table unit scaled by alpha_n / alpha_w, so the rows differ
        assert np.all(node.s_w > 0) and len(np.unique(node.s_w)) > 1
        codes = teq.unpack_codes(p["w"], node.k, 4)
        assert np.abs(codes).max() <= 7
    x = data.x_test[:64]
    from termshift.backends import get_backend

    run = graph4.run(x, get_backend("reference"), keep_raw=True)
    assert (run.output.argmax(1) == data.y_test[:64]).mean() > 0.8


def test_reference_and_csim_agree_on_the_whole_graph(digits, reference, csim_fast, csim_exact):
    data, model = digits
    graph = gemm_teq.lower_teq(model, data.calibration(), "teq:widths=5/3/4,beta=on")
    assert any(np.any(n.payload["w_table"]) or np.any(n.payload["a_table"]) for n in graph.gemm_nodes())
    x = data.x_test[:200]
    want = graph.run(x, reference, keep_raw=True)
    for be in (csim_fast, csim_exact):
        got = graph.run(x, be, keep_raw=True)
        for name in want.raw:
            assert_array_equal(got.raw[name], want.raw[name])
        assert got.cycles == want.cycles


def test_surrogate_differs_only_by_table_rounding(digits, graph4, reference):
    import dataclasses

    data, _ = digits
    codes = graph4.nodes[0].run(data.x_test[:100], None).reshape(100, -1)  # the uniform input bytes, flattened
    node = dataclasses.replace(list(graph4.gemm_nodes())[0], requant=None)  # raw int32 out
    fmt = gemm_teq.TeqGemm()
    exact = fmt.run(reference, codes, node).out.astype(np.int64)
    sur = fmt.run(gemm_teq.SurrogateBackend(), codes, node).out
    # each pair's p-table entry is rounded by at most half a unit; float32 adds a little
    assert 0 < np.abs(sur - exact).max() <= 0.5 * node.k + 8


def test_costs(graph4):
    costs = {c.name: c for c in graph4.costs()}
    node = list(graph4.gemm_nodes())[0]
    c = costs[node.name]
    nonzero = int(np.count_nonzero(teq.unpack_codes(node.payload["w"], node.k, 4)))
    assert c.ops["teq_pairs"] == nonzero and "teq_bank_incs" not in c.ops
    assert c.ops["teq_recons"] == node.n_out * (15 + 7 - 1)
    assert c.ops["teq_lut_reads"] == -(-node.n_out // 8) * node.k
    assert c.bits_per_weight == 4.0 and c.weight_storage_bits == 4.0
    assert all(kind in OPS_PJ for cost in costs.values() for kind in cost.ops)


def test_artifact_roundtrip(tmp_path, graph4, digits, reference):
    from termshift.nn.artifact import load_artifact, save_artifact

    data, _ = digits
    x = data.x_test[:20]
    path = save_artifact(graph4, tmp_path / "teq.tsm")
    loaded, _ = load_artifact(path)
    assert_array_equal(loaded.run(x, reference).output, graph4.run(x, reference).output)


def test_lowering_errors(digits, reference):
    from termshift.formats import parse
    from termshift.nn.gemm_formats import gemm_format
    from termshift.nn.lower import lower

    data, model = digits
    # The generic lowering reaches teq through GemmFormat.quantize_layer and
    # builds the same graph as lower_teq; quantize_weights alone cannot.
    x = data.x_test[:50]
    generic = lower(model, data.calibration(), "teq:bits=4")
    direct = gemm_teq.lower_teq(model, data.calibration(), "teq:bits=4")
    assert_array_equal(generic.run(x, reference).output, direct.run(x, reference).output)
    with pytest.raises(ValueError, match="lower_teq"):
        gemm_format("teq").quantize_weights(np.ones((2, 2)), parse("teq:bits=4"))
    with pytest.raises(ValueError, match="needs the per-layer widths"):
        gemm_teq.lower_teq(model, data.calibration(), "teq")
    with pytest.raises(ValueError, match="widths must be 3 integers"):
        gemm_teq.lower_teq(model, data.calibration(), "teq", widths=[4, 4])
    with pytest.raises(ValueError, match="expected a teq spec"):
        gemm_teq.lower_teq(model, data.calibration(), "int:bits=8")


def test_width_search_meets_its_target(digits):
    data, model = digits
    r = gemm_teq.search_widths(model, data, tol=0.01)
    target = r.float_val_accuracy - (0.01 - gemm_teq.VALIDATION_MARGIN)  # part of the point held back
    assert len(r.widths) == 3 and all(w in teq.BITS for w in r.widths)
    assert r.val_accuracy >= target
    counts = [64 * 512, 512 * 512, 512 * 10]
    assert r.avg_bits == pytest.approx(np.dot(r.widths, counts) / sum(counts))
    # descend stopped: narrowing any single layer further misses the target (or hits 3 bits)
    evaluated = {tuple(w): a for _, w, a in r.trace}
    for i, w in enumerate(r.widths):
        if w > teq.BITS.start:
            trial = list(r.widths)
            trial[i] -= 1
            assert evaluated[tuple(trial)] < target


def test_premise_report_over_a_model(digits):
    data, model = digits
    tensors = gemm_teq.model_tensors(model, data.calibration())
    assert list(tensors) == ["fc1.weight", "fc1.input", "fc2.weight", "fc2.input", "fc3.weight", "fc3.input"]
    r = teq.premise_report(tensors, bits=(4,))
    assert len(r["rows"]) == 6 and 0.0 <= r["share"][4] <= 1.0
    assert all(row["rmae_exp"] > 0 and row["rmae_uniform"] > 0 for row in r["rows"])
    from termshift.nn.teq_results import format_premise

    lines = format_premise(r)
    assert f"4 bits {100 * r['share'][4]:.0f}% of 6 tensors" in lines[0] and len(lines) == 7
    assert lines[1].split()[0] == "fc1.weight" and f"{r['rows'][0]['rmae_exp']:.3f}/" in lines[1]


def test_lowering_hook_gives_the_same_layer(digits, graph4):
    data, model = digits
    inp = gemm_teq.layer_inputs(model, data.calibration())[1]
    fmt = gemm_teq.TeqGemm()
    payload, s_w = fmt.quantize_layer(inp.w2d, "teq:widths=3/4/3", inp.x, inp.s_in, inp.signed, 1)
    node = list(graph4.gemm_nodes())[1]
    for key in node.payload:
        assert_array_equal(payload[key], node.payload[key])
    assert_array_equal(s_w, node.s_w)
    assert fmt.weight_bits(None) == 4.0
    with pytest.raises(ValueError, match="no width for GEMM layer #3"):
        fmt.quantize_layer(inp.w2d, "teq:widths=3/4/3", inp.x, inp.s_in, inp.signed, 3)
    with pytest.raises(ValueError, match="needs the per-layer widths"):
        fmt.quantize_layer(inp.w2d, "teq", inp.x, inp.s_in, inp.signed, 0)


def test_fit_and_granularity_options_reach_the_image_lowering(digits, reference, csim_fast):
    # fit=mse / granularity=channel change only the host's fit and per-channel
    # scales: the graph keeps them in its spec, rows get their own s_w, and the
    # C-sim engine still matches the reference bit for bit. They are the
    # defaults; fit=rmae,granularity=tensor (the old ones) keeps s_w = table unit.
    data, model = digits
    graph = gemm_teq.lower_teq(model, data.calibration(), "teq:bits=4,fit=mse,granularity=channel")
    assert "fit=mse" in graph.fmt and "granularity=channel" in graph.fmt
    default = gemm_teq.lower_teq(model, data.calibration(), "teq:bits=4")
    assert default.fmt == graph.fmt
    plain = gemm_teq.lower_teq(model, data.calibration(), "teq:bits=4,fit=rmae,granularity=tensor")
    assert "fit=rmae" in plain.fmt and "granularity=tensor" in plain.fmt
    for node, dflt, base in zip(graph.gemm_nodes(), default.gemm_nodes(), plain.gemm_nodes(), strict=True):
        assert_array_equal(dflt.s_w, node.s_w)
        assert_array_equal(dflt.payload["w"], node.payload["w"])
        assert np.unique(node.s_w).size > 1
        unit = base.payload["params"][gemm_teq.PARAMS.index("unit")]
        assert_array_equal(base.s_w, np.full(base.n_out, unit))  # s_w = table unit: acc * s_in * s_w is real
    x = data.x_test[:100]
    want = graph.run(x, reference, keep_raw=True)
    got = graph.run(x, csim_fast, keep_raw=True)
    for name in want.raw:
        assert_array_equal(got.raw[name], want.raw[name])
    acc = (want.output.argmax(1) == data.y_test[:100]).mean()
    assert acc >= (plain.run(x, reference).output.argmax(1) == data.y_test[:100]).mean() - 0.1


def test_gptq_rounding_on_a_convolution_uses_its_patches(reference, csim_fast):
    # round=gptq weighs a conv's rounding errors by its im2col patches: the
    # generic lower() (patches made on demand) and lower_teq (patches recorded
    # with the calibration inputs) give the same graph, the codes differ from
    # nearest rounding, and the engine still matches the reference exactly.
    import torch
    from torch import nn

    from termshift.nn.im2col import conv_patches
    from termshift.nn.lower import lower

    torch.manual_seed(7)
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 8 * 8, 4)).eval()
    rng = np.random.default_rng(2)
    # 2x2 blocks of equal pixels: neighbouring patch entries are correlated, so feedback has somewhere to go
    calib = np.kron(rng.normal(size=(64, 2, 4, 4)), np.ones((1, 1, 2, 2))).astype(np.float32)
    inputs = gemm_teq.layer_inputs(model, calib)
    assert inputs[0].rows.shape == (64 * 8 * 8, 18) and inputs[1].rows is None
    assert_array_equal(inputs[0].rows, conv_patches(model[0], calib))
    via_lower = lower(model, calib, "teq:widths=4/4")
    via_teq = gemm_teq.lower_teq(model, calib, "teq:widths=4/4")
    nearest = gemm_teq.lower_teq(model, calib, "teq:widths=4/4,round=nearest")
    for a, b, c in zip(via_lower.gemm_nodes(), via_teq.gemm_nodes(), nearest.gemm_nodes(), strict=True):
        assert_array_equal(a.payload["w"], b.payload["w"])
        assert_array_equal(a.s_w, b.s_w)
        assert not np.array_equal(a.payload["w"], c.payload["w"])
    x = rng.normal(size=(16, 2, 8, 8)).astype(np.float32)
    want = via_lower.run(x, reference, keep_raw=True)
    got = via_lower.run(x, csim_fast, keep_raw=True)
    for name in want.raw:
        assert_array_equal(got.raw[name], want.raw[name])
    assert got.cycles == want.cycles
