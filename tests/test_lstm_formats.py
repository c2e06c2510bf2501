"""The LSTM in every weight format: reference == C-sim on every int32 engine
output of a tiny random LSTM, per-format cost rows, calibration samples for
teq, the layer-major plan runner of the searches == the step loop, the
generic width search, and clear errors. Tiny random weights; fast."""

from __future__ import annotations

import numpy as np
import pytest
from termshift.backends import get_backend
from termshift.formats import parse
from termshift.nn import lstm, lstm_quant, lstm_search
from termshift.nn.gemm_teq import greedy_widths

FORMATS = ["int:bits=8", "int:bits=5,granularity=tensor", "pot:bits=4", "pot:bits=3,rounding=log", "pot:bits=3,round=gptq",
           "tr", "tr:bits=4,group=8,budget=5,data_terms=2,encoding=binary", "bfp", "bfp:block=8,mantissa=4",
           "teq:bits=4", "teq:widths=3/4/5/6/7,beta=on"]


def random_params(seed=0, vocab=11, embed=8, hidden=(16, 12)) -> lstm_quant.LSTMParams:
    rng = np.random.default_rng(seed)
    layers, width = [], embed
    for h in hidden:
        layers.append(lstm_quant.LSTMLayerParams(rng.normal(0, 0.4, (4 * h, width)), rng.normal(0, 0.4, (4 * h, h)),
                                                 rng.normal(0, 0.2, 4 * h), rng.normal(0, 0.2, 4 * h)))
        width = h
    return lstm_quant.LSTMParams(rng.normal(0, 1.0, (vocab, embed)), layers, rng.normal(0, 0.5, (vocab, width)),
                                 rng.normal(0, 0.1, vocab))


@pytest.fixture(scope="module")
def model():
    params = random_params()
    calib = np.random.default_rng(1).integers(0, params.vocab, (6, 64))
    return params, lstm_quant.calibrate(params, calib)


@pytest.fixture(scope="module")
def ids(model):
    return np.random.default_rng(2).integers(0, model[0].vocab, (3, 9))


def test_calibration_keeps_bounded_samples_of_every_gemm_input(model):
    params, stats = model
    s = stats["samples"]
    assert sorted(s) == ["h1", "h2", "x"]
    # 6 streams, steps 0, 16, 32, 48 of 64 sampled.
    assert s["x"].shape == (24, 8) and s["h1"].shape == (24, 16) and s["h2"].shape == (24, 12)
    assert np.abs(s["h1"]).max() <= stats["h1"] and np.abs(s["x"]).max() <= stats["x"]
    big = lstm_quant.calibrate(params, np.zeros((300, 16 * 20), np.int64))
    assert len(big["samples"]["x"]) == lstm_quant.SAMPLE_ROWS


@pytest.mark.parametrize("fmt", FORMATS)
def test_reference_and_csim_agree_in_every_format(model, ids, fmt, reference):
    params, stats = model
    qm = lstm_quant.quantize_lstm(params, stats, fmt)
    assert all(parse(n.fmt).name == parse(fmt).name for n in qm.gemm_nodes())
    sim = get_backend("csim", build="fast")
    st_r = st_s = None
    for chunk in (ids[:, :4], ids[:, 4:]):
        r = qm.run(chunk, reference, st_r, keep_raw=True)
        s = qm.run(chunk, sim, st_s, keep_raw=True)
        assert sorted(r.raw) == ["decoder", "lstm1_hh", "lstm1_ih", "lstm2_hh", "lstm2_ih"]
        for name in r.raw:
            assert r.raw[name].dtype == np.int32
            np.testing.assert_array_equal(r.raw[name], s.raw[name], err_msg=f"{fmt} {name}")
        np.testing.assert_array_equal(r.logits, s.logits)
        assert r.cycles == s.cycles and all(v > 0 for v in r.cycles.values())
        st_r, st_s = r.state, s.state
    assert np.isfinite(r.logits).all()
    acts = 5 if fmt.startswith("int:bits=5") else 8
    assert qm.bits == acts and np.abs(r.state.h[0]).max() <= 2 ** (acts - 1) - 1


def test_cost_rows_follow_each_format(model):
    params, stats = model
    shapes = {"lstm1_ih": (64, 8), "lstm1_hh": (64, 16), "lstm2_ih": (48, 16), "lstm2_hh": (48, 12),
              "decoder": (11, 12)}
    macs = {k: n * kk for k, (n, kk) in shapes.items()}
    for fmt in FORMATS:
        qm = lstm_quant.quantize_lstm(params, stats, fmt)
        rows = {c.name: c for c in qm.costs()}
        assert list(rows) == list(shapes)
        assert [c.kind for c in rows.values()] == ["lstm"] * 4 + ["linear"]
        name = parse(fmt).name
        for k, c in rows.items():
            n, kk = shapes[k]
            assert (c.weight_count, c.bias_count, c.act_in_count, c.act_out_count) == (n * kk, n, kk, n), fmt
            assert c.out_storage_bits == 32.0 and "requants" not in c.ops and c.cycles > 0
            if name == "int":
                assert c.ops == {"macs": macs[k]}
            elif name == "pot":
                assert set(c.ops) == {"shift_adds"} and 0 < c.ops["shift_adds"] <= macs[k]
            elif name == "tr":
                b_w = parse(fmt)["bits"]
                assert c.ops["conventional_term_pairs"] == macs[k] * b_w * 8
                assert 0 < c.ops["term_pairs"] < c.ops["conventional_term_pairs"]
            elif name == "bfp":
                assert c.ops["bfp_block_adds"] == macs[k] and c.ops["bfp_pp_rows"] == macs[k] * parse(fmt)["mantissa"]
            else:
                assert {"teq_pairs", "teq_recons", "teq_lut_reads"} <= set(c.ops) and "macs" not in c.ops
        widths = [c.bits_per_weight for c in rows.values()]
        if fmt.startswith("teq:widths"):
            assert widths == [3.0, 4.0, 5.0, 6.0, 7.0]
        elif name in ("int", "pot"):
            assert widths == [float(parse(fmt)["bits"])] * 5
    # `int` rows are exactly the shape-only rows the float baseline re-costs.
    q8 = lstm_quant.quantize_lstm(params, stats, "int:bits=8")
    assert q8.costs() == lstm_quant.lstm_costs(params.vocab, params.embed, [16, 12], 8)


def test_formats_needing_more_than_weights_fail_clearly(model):
    params, stats = model
    bare = {k: v for k, v in stats.items() if k != "samples"}
    with pytest.raises(ValueError, match=r"lstm1_ih: .*pass x_calib.*stats\['samples'\]\['x'\]"):
        lstm_quant.quantize_lstm(params, bare, "teq:bits=4")
    lstm_quant.quantize_lstm(params, bare, "pot:bits=4")  # weights-only formats need no samples
    with pytest.raises(ValueError, match="teq \\(adaptive\\) needs per-GEMM widths"):
        lstm_quant.quantize_lstm(params, stats, "teq")
    with pytest.raises(ValueError, match="bfp:search chooses"):
        lstm_quant.quantize_lstm(params, stats, "bfp:search=on")
    with pytest.raises(ValueError, match="unknown format 'float'"):
        lstm_quant.quantize_lstm(params, stats, "float")
    with pytest.raises(ValueError, match="plan must give one spec per GEMM"):
        lstm_quant.quantize_lstm(params, stats, "bfp", plan=["bfp"] * 3)
    with pytest.raises(ValueError, match="teq:widths=3/4: widths lists 2 layers|no width for GEMM layer #2"):
        lstm_quant.quantize_lstm(params, stats, "teq:widths=3/4")


def test_mixed_plan_puts_each_spec_on_its_gemm(model, ids, reference):
    params, stats = model
    plan = ["bfp:block=4,mantissa=3", "bfp:block=16,mantissa=5", "bfp", "bfp:block=8,mantissa=2", "bfp:block=32,mantissa=6"]
    qm = lstm_quant.quantize_lstm(params, stats, "bfp:search=on", plan=plan)
    assert [n.fmt for n in qm.gemm_nodes()] == [str(parse(p)) for p in plan]
    sim = get_backend("csim", build="fast")
    r, s = qm.run(ids, reference, keep_raw=True), qm.run(ids, sim, keep_raw=True)
    for name in r.raw:
        np.testing.assert_array_equal(r.raw[name], s.raw[name])


@pytest.mark.parametrize("fmt", ["int:bits=6", "tr", "teq:bits=5"])
def test_layer_major_plan_runner_equals_the_step_loop(model, fmt, reference):
    """The searches score plans layer by layer (one input GEMM over all steps);
    the integers and so the bits/char must equal QuantLSTM.run's."""
    params, stats = model
    text = np.random.default_rng(3).integers(0, params.vocab, 700)
    st = lstm.eval_streams(text, streams=4, warmup=20, min_stream=50)
    qm = lstm_quant.quantize_lstm(params, stats, fmt)
    runner = lstm_search.PlanRunner({0: qm}, st, reference)
    assert runner.bpc((0,) * 5) == lstm.bits_per_char(lstm.quant_step(qm, reference), st, chunk=10 ** 6)
    # Mixed choices: plan (a, b, ...) takes GEMM i from models[plan[i]].
    q2 = lstm_quant.quantize_lstm(params, stats, "int:bits=6" if fmt != "int:bits=6" else "int:bits=7")
    if q2.bits == qm.bits:
        runner = lstm_search.PlanRunner({0: qm, 1: q2}, st, reference)
        mixed = lstm_quant.QuantLSTM(qm.fmt, qm.bits, qm.embedding, qm.s_x,
                                     [lstm_quant.QLSTMLayer(qm.layers[0].ih, q2.layers[0].hh), q2.layers[1]],
                                     qm.decoder)
        assert runner.bpc((0, 1, 1, 1, 0)) == lstm.bits_per_char(lstm.quant_step(mixed, reference), st, chunk=10 ** 6)


def test_greedy_widths_finds_the_cheapest_passing_widths():
    # Quality falls by (7 - w) * cost_i per layer; the target allows a total loss of 5.
    loss = [1.0, 0.5, 2.0]
    counts = [10, 100, 1]
    seen = []

    def score(widths, phase):
        seen.append(phase)
        return -sum((7 - w) * c for w, c in zip(widths, loss))

    widths = greedy_widths(score, -5.0, counts)
    assert score(widths, "check") >= -5.0
    # Alone: 3/3/5 (loss 10). Repair by loss bought back per weight: layer 3
    # twice (2 per weight), then layer 1 (0.1) before layer 2 (0.005): 4/3/7, loss 5.
    assert widths == [4, 3, 7]
    assert {"alone", "descend"} <= set(seen)


def test_teq_search_meets_its_target_on_validation_text(model):
    params, stats = model
    text = np.random.default_rng(4).integers(0, params.vocab, 900)
    st = lstm.eval_streams(text, streams=4, warmup=20, min_stream=50)
    r = lstm_search.search_teq_widths(params, stats, st, tol=0.02)
    assert len(r.widths) == 5 and all(3 <= w <= 7 for w in r.widths)
    assert r.val_bpc <= r.target_bpc == pytest.approx(r.float_val_bpc * 1.02)
    assert min(r.widths) <= r.avg_bits <= max(r.widths)
    assert r.spec == f"teq:widths={'/'.join(map(str, r.widths))}"


def test_bfp_search_meets_its_target_and_beats_or_ties_the_best_uniform(model):
    from termshift.formats import bfp

    params, stats = model
    text = np.random.default_rng(5).integers(0, params.vocab, 900)
    st = lstm.eval_streams(text, streams=4, warmup=20, min_stream=50)
    cands = [bfp.BfpParams(b, m, 8) for b in (8, 32) for m in (3, 5, 8)]
    r = lstm_search.search_bfp(params, stats, st, text[:400].reshape(4, 100), tol=0.02, candidates=cands,
                               time_budget=20.0)
    assert r.met_target and r.val_bpc <= r.target_bpc == pytest.approx(1.02 * r.int8_val_bpc)
    assert len(r.plan) == 5 and all(parse(p).name == "bfp" for p in r.plan)
    assert r.uniform is not None and r.cost <= r.uniform["cost"]
    qm = lstm_quant.quantize_lstm(params, stats, "bfp:search=on", plan=r.plan)
    assert [n.fmt for n in qm.gemm_nodes()] == [str(parse(p)) for p in r.plan]
    assert lstm_search.PlanRunner({0: qm}, st, get_backend("reference")).bpc((0,) * 5) == pytest.approx(r.val_bpc)


def test_teq_premise_tensors_are_the_engine_operands(model):
    # The LSTM's premise tensors: every GEMM's weights, and each distinct GEMM
    # input once, as the 8-bit codes quantize_lstm gives its engine calls.
    from termshift.formats import teq
    from termshift.nn.lstm_quant import teq_tensors

    params, stats = model
    t = teq_tensors(params, stats)
    assert list(t) == ["lstm1_ih.weight", "x.input", "lstm1_hh.weight", "h1.input", "lstm2_ih.weight",
                       "lstm2_hh.weight", "h2.input", "decoder.weight"]
    np.testing.assert_array_equal(t["decoder.weight"][0], params.dec_w)
    qm = lstm_quant.quantize_lstm(params, stats, "int:bits=8")
    codes = t["h1.input"][0]
    assert np.issubdtype(codes.dtype, np.integer) and 0 < np.abs(codes).max() <= 127
    np.testing.assert_array_equal(codes, teq.activation_codes(stats["samples"]["h1"], qm.layers[0].s_h, True))
    r = teq.premise_report(t, bits=(4,))
    assert len(r["rows"]) == 8 and 0 <= r["share"][4] <= 1
