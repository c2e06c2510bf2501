"""MiniLM in every weight format, on a tiny random encoder (2 layers, hidden 32):
reference == C-sim on every engine output per format, the cost rows each
format's own cost function gives, the activation clip modes (deterministic,
computed from the calibration sentences only), teq's calibration inputs, and
the per-Linear teq / bfp searches. No data files needed."""

from __future__ import annotations

import numpy as np
import pytest
from termshift.formats import parse
from termshift.energy.model import summarize
from termshift.nn import minilm, minilm_quant, minilm_search, wordpiece
from termshift.nn.gemm_formats import gemm_format
from termshift.nn.minilm_model import Encoder, MiniLMConfig, linear_names

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "un", "##aff", "##able", "aff", "!", ",", "cafe", "##s", "a",
         "miss", "bennet", "said", "she", "was", "not", "at", "all", "."]
CFG = MiniLMConfig(hidden=32, heads=2, layers=2, intermediate=64, vocab=len(VOCAB), max_positions=64)
FORMATS = ["int:bits=8", "int:bits=4", "pot:bits=4", "pot:bits=3", "pot:bits=3,round=gptq", "tr:bits=8,group=8,budget=10,data_terms=3",
           "bfp:block=16,mantissa=4", "teq:bits=4", "teq:bits=4,fit=mse,granularity=channel",
           "teq:widths=" + "/".join(["5", "4", "6"] * 4)]
OP_KEYS = {"int": "macs", "pot": "shift_adds", "tr": "term_pairs", "bfp": "bfp_pp_rows", "teq": "teq_pairs"}


def _texts(rng, n):
    words = VOCAB[4:]
    return [" ".join(rng.choice(words, size=rng.integers(3, 12))) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(7)
    h, f = CFG.hidden, CFG.intermediate
    w = {"embeddings.word_embeddings.weight": rng.normal(0, 1, (CFG.vocab, h)),
         "embeddings.position_embeddings.weight": rng.normal(0, 0.3, (CFG.max_positions, h)),
         "embeddings.token_type_embeddings.weight": rng.normal(0, 0.1, (2, h)),
         "embeddings.LayerNorm.weight": np.ones(h), "embeddings.LayerNorm.bias": np.zeros(h)}
    for i in range(CFG.layers):
        p = f"encoder.layer.{i}"
        for sub, (n, k) in {"attention.self.query": (h, h), "attention.self.key": (h, h),
                            "attention.self.value": (h, h), "attention.output.dense": (h, h),
                            "intermediate.dense": (f, h), "output.dense": (h, f)}.items():
            w[f"{p}.{sub}.weight"] = rng.normal(0, 1 / np.sqrt(k), (n, k))
            w[f"{p}.{sub}.bias"] = rng.normal(0, 0.1, n)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[f"{p}.{ln}.weight"] = 1 + rng.normal(0, 0.1, h)
            w[f"{p}.{ln}.bias"] = rng.normal(0, 0.1, h)
    w = {k: v.astype(np.float32) for k, v in w.items()}
    enc = Encoder(CFG, w, wordpiece.WordPieceTokenizer({t: i for i, t in enumerate(VOCAB)}, 64))
    calib_texts, held = _texts(rng, 12), _texts(rng, 3)
    return enc, minilm_quant.calibrate(enc, calib_texts, max_rows=64), calib_texts, held


@pytest.mark.parametrize("fmt", FORMATS)
def test_reference_equals_csim_per_format(tiny, fmt, reference, csim_fast):
    enc, calib, _, held = tiny
    model = minilm_quant.QuantizedMiniLM.from_spec(enc, calib, fmt)
    emb_r, run_r = model.encode(held, reference, keep_raw=True)
    emb_c, run_c = model.encode(held, csim_fast, keep_raw=True)
    assert len(run_r.calls) == len(run_c.calls) == 6 * CFG.layers
    for (name_r, a_r, out_r), (name_c, a_c, out_c) in zip(run_r.calls, run_c.calls, strict=True):
        assert name_r == name_c
        np.testing.assert_array_equal(a_r, a_c)
        assert out_r.dtype == out_c.dtype == np.int32
        np.testing.assert_array_equal(out_r, out_c, err_msg=f"{fmt} {name_r}")
    assert run_r.cycles == run_c.cycles and all(v > 0 for v in run_r.cycles.values())
    np.testing.assert_array_equal(emb_r, emb_c)
    # The quantized model tracks the float one (a loose check that the scales are wired right).
    assert minilm.cosine(enc.encode(held), emb_r).mean() > (0.8 if "bits=3" in fmt or "bits=4" in fmt else 0.9)


@pytest.mark.parametrize("fmt", FORMATS)
def test_cost_rows_come_from_each_format(tiny, fmt):
    enc, calib, _, _ = tiny
    model = minilm_quant.QuantizedMiniLM.from_spec(enc, calib, fmt)
    t = 32
    rows = minilm.minilm_costs("int", model.a_bits, tokens=t, model=model)
    engine = [r for r in rows if r.kind == "linear"]
    assert [r.name for r in engine] == [model.nodes[n].name for n in linear_names(CFG)]
    kind = fmt.split(":")[0]
    for r, name in zip(engine, linear_names(CFG), strict=True):
        node = model.nodes[name]
        want = gemm_format(node.fmt).cost(node, t, t * node.k, t * node.n_out)
        assert r == want and OP_KEYS[kind] in r.ops and r.cycles > 0
        assert r.out_storage_bits == 32.0  # raw int32 leaves every engine: the host dequantizes
    if kind == "tr":
        assert all("conventional_term_pairs" in r.ops for r in engine)
        assert engine[0].ops["conventional_term_pairs"] == t * engine[0].weight_count * 8 * 8
    if kind in ("int", "pot") and "bits=8" not in fmt:
        assert all(r.bits_per_weight == parse(fmt.split(",")[0])["bits"] for r in engine)
    if kind == "teq":
        assert all(r.weight_storage_bits == model.nodes[n].payload["bits"][0] for r, n in zip(engine, linear_names(CFG)))
    total = summarize(rows)["total"]
    assert total["ops"][OP_KEYS[kind]] == sum(r.ops[OP_KEYS[kind]] for r in engine)


def test_teq_needs_calibration_inputs(tiny):
    enc, calib, _, _ = tiny
    bare = minilm_quant.Calibration(calib.absmax, {}, calib.sentences, calib.tokens, calib.stride)
    with pytest.raises(ValueError, match="x_calib"):
        minilm_quant.QuantizedMiniLM.from_spec(enc, bare, "teq:bits=4")
    with pytest.raises(ValueError, match="per-Linear widths"):
        minilm_quant.QuantizedMiniLM.from_spec(enc, calib, "teq")
    # Formats that do not fit activations are fine without the rows.
    minilm_quant.QuantizedMiniLM.from_spec(enc, bare, "pot:bits=4")


def test_calibration_rows_are_the_strided_float_inputs(tiny):
    enc, calib, calib_texts, _ = tiny
    seen = {}

    def record(name, x):
        seen.setdefault(name, []).append(x)
        return (x @ enc.w[name + ".weight"].T + enc.w[name + ".bias"]).astype(np.float32)

    enc.encode(calib_texts, linear=record)
    assert calib.stride > 1 and calib.tokens == sum(len(enc.tokenizer.encode(t)) for t in calib_texts)
    for name in linear_names(CFG):
        full = np.concatenate(seen[name])
        np.testing.assert_array_equal(calib.rows[name], full[::calib.stride])
        assert calib.absmax[name] == float(np.abs(full).max())
    names = linear_names(CFG)
    assert calib.rows[names[0]] is calib.rows[names[1]] is calib.rows[names[2]]  # Q, K, V share one input


@pytest.mark.parametrize("mode", ["max", "mse", "rmse", "p99.9"])
def test_clip_modes_are_deterministic_and_use_calibration_only(tiny, mode):
    enc, calib, calib_texts, held = tiny
    again = minilm_quant.calibrate(enc, calib_texts, max_rows=64)  # a fresh calibration of the same sentences
    other = minilm_quant.calibrate(enc, calib_texts[:6] + held, max_rows=64)
    for name in linear_names(CFG):
        c = minilm_quant.clip_value(enc, calib, name, mode)
        assert c == minilm_quant.clip_value(enc, again, name, mode)
        assert 0 < c <= calib.absmax[name] and (mode != "max" or c == calib.absmax[name])
        if mode in ("mse", "rmse"):
            assert c >= calib.absmax[name] / 2 ** 5.5
    model = minilm_quant.QuantizedMiniLM.from_spec(enc, calib, "int:bits=8", act=mode)
    model2 = minilm_quant.QuantizedMiniLM.from_spec(enc, again, "int:bits=8", act=mode)
    assert all(model.nodes[n].s_in == model2.nodes[n].s_in for n in linear_names(CFG))
    # Other sentences give other scales: the scales depend on the calibration set alone.
    model3 = minilm_quant.QuantizedMiniLM.from_spec(enc, other, "int:bits=8", act=mode)
    assert any(model.nodes[n].s_in != model3.nodes[n].s_in for n in linear_names(CFG))


def test_clip_mse_never_scores_worse_than_max(tiny):
    enc, calib, _, _ = tiny
    name = linear_names(CFG)[5]  # FFN out: GELU inputs
    c = minilm_quant.clip_value(enc, calib, name, "mse")
    w = enc.w[name + ".weight"]
    x = calib.rows[name]

    def err(clip):
        s = minilm_quant.act_scale(clip, 8)
        d = minilm_quant.uniform.quantize(x, s, 8, True) * s - x
        return float(np.square(d @ w.T).sum())

    assert err(c) <= err(calib.absmax[name]) * (1 + 1e-9)


def test_act_option_parsing():
    assert minilm.split_act("tr:bits=8,act=rmse,group=8") == ("tr:bits=8,group=8", "rmse")
    assert minilm.split_act("onnx-int8,act=p99.99") == ("onnx-int8", "p99.99")
    assert minilm.split_act("pot:bits=4") == ("pot:bits=4", None)
    assert minilm.parse_minilm_format("pot:bits=3,act=max")[0] == "pot"
    assert minilm.parse_minilm_format("bfp:search=on")[1]["search"] == "on"
    with pytest.raises(ValueError, match="act="):
        minilm.split_act("int:bits=8,act=median")
    with pytest.raises(ValueError, match=r"\(0, 100\]"):
        minilm.split_act("int:bits=8,act=p0")


def test_teq_width_search_meets_its_target(tiny):
    enc, calib, calib_texts, _ = tiny
    res = minilm_search.search_teq_widths(enc, calib, texts=calib_texts[:2], tol=0.05)
    assert len(res.widths) == 6 * CFG.layers and all(3 <= w <= 7 for w in res.widths)
    assert res.val_cosine >= res.target and res.reference in ("float", "teq-7")
    assert min(res.widths) <= res.avg_bits <= max(res.widths)
    model = minilm_quant.QuantizedMiniLM.from_spec(enc, calib, "teq", widths=res.widths)
    assert [int(model.nodes[n].payload["bits"][0]) for n in linear_names(CFG)] == res.widths


def test_bfp_plan_search_meets_its_target(tiny):
    enc, calib, calib_texts, _ = tiny
    res = minilm_search.search_bfp_plan(enc, calib, texts=calib_texts[:4], tol=0.01, time_budget=5.0,
                                        candidates=[c for c in minilm_search_candidates() if c.block in (8, 16)])
    assert len(res.specs) == 6 * CFG.layers and res.met_target and res.val_cosine >= res.target
    assert res.uniform is not None and res.cost <= res.uniform["cost"]
    model = minilm_quant.QuantizedMiniLM.from_spec(enc, calib, "bfp:search=on", layer_specs=res.specs)
    assert [model.nodes[n].fmt for n in linear_names(CFG)] == [str(minilm_quant.parse(s)) for s in res.specs]


def minilm_search_candidates():
    from termshift.search.bfp import CANDIDATES

    return CANDIDATES


def test_smoothing_keeps_the_product_and_runs_exactly(tiny, reference, csim_fast):
    enc, calib, _, held = tiny
    model = minilm_quant.QuantizedMiniLM.from_spec(enc, calib, "tr:bits=8,group=8,budget=10,data_terms=4",
                                                  act="rmse", smooth=0.5)
    names = linear_names(CFG)
    assert sorted(model.inv_smooth) == sorted(n for n in names if n.endswith(("query", "key", "value", "intermediate.dense")))
    np.testing.assert_array_equal(model.inv_smooth[names[0]], model.inv_smooth[names[2]])  # Q, V share the input
    x = calib.rows[names[4]][:5]
    t = minilm_quant.smoothing(enc, calib, names[4], 0.5)
    w = enc.w[names[4] + ".weight"]
    np.testing.assert_allclose((x / t) @ (w * t).T, x @ w.T, rtol=1e-4, atol=1e-4)
    emb_r, run_r = model.encode(held, reference, keep_raw=True)
    emb_c, run_c = model.encode(held, csim_fast, keep_raw=True)
    for r, c in zip(run_r.calls, run_c.calls, strict=True):
        np.testing.assert_array_equal(r[2], c[2])
    np.testing.assert_array_equal(emb_r, emb_c)
    assert model.label.endswith(",act=rmse,smooth=0.5")


def test_smooth_option_parsing():
    assert minilm.split_options("int:bits=8,smooth=0.5,act=rmse") == ("int:bits=8", "rmse", 0.5)
    assert minilm.split_options("pot:bits=4,smooth=off")[2] == -1.0  # explicitly off
    assert minilm.split_options("float") == ("float", None, None)
    with pytest.raises(ValueError, match="smooth="):
        minilm.split_options("int:bits=8,smooth=2")


def test_teq_defaults_to_full_smoothing_and_others_to_half():
    assert minilm.default_smooth("teq") == 1.0
    assert minilm.default_smooth("int") == minilm.default_smooth("bfp") == minilm.DEFAULT_SMOOTH == 0.5


def test_teq_premise_tensors_are_the_engine_operands(tiny):
    # MiniLM's premise tensors: 36 weights as the format quantizes them
    # (smoothed), and each Linear's input codes as build_node's node sees them,
    # Q/K/V's shared input once per layer.
    from termshift.formats import teq

    enc, calib, _, _ = tiny
    t = minilm_quant.teq_tensors(enc, calib, act="rmse", smooth=1.0)
    names = linear_names(CFG)
    assert sum(k.endswith(".weight") for k in t) == len(names)
    assert sum(k.endswith(".input") for k in t) == 4 * CFG.layers
    node, inv_t = minilm_quant.build_node(enc, calib, 4, "int:bits=8", act="rmse", smooth=1.0)
    key = f"{node.name}.input"
    want = minilm_quant.input_codes(calib.rows[names[4]], node, inv_t, 8)
    np.testing.assert_array_equal(t[key][0], want)
    t0 = minilm_quant.smoothing(enc, calib, names[0], 1.0)
    np.testing.assert_allclose(t["L0.q.weight"][0], enc.w[names[0] + ".weight"] * t0)
    assert teq.premise_report(t, bits=(4,))["share"][4] >= 0
