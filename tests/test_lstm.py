"""The LSTM language model: numpy float path == torch, quantized execution on
the reference and C-sim backends (identical int32 gate outputs at every step,
identical logits), INT8 vs float, calibration isolation, per-token costs,
seeded cached training, and clear errors. Tiny synthetic corpus and model."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from termshift.backends import get_backend
from termshift.backends.cycle_model import INT_ENGINE, gemm_cycles
from termshift.energy.model import summarize
from termshift.evaluate import evaluate, float_costs
from termshift.nn import lstm, lstm_model, lstm_quant

RECIPE = {"embed": 8, "hidden": 24, "batch": 8, "seq": 25, "epochs": 2, "lr": 1e-2, "lr_final": 1e-3}
USER_CACHE = os.environ.get("TERMSHIFT_CACHE")  # where fetched data lives; the tests train into a temporary one
WORDS = ["the", "sense", "and", "pride", "of", "emma", "was", "not", "a", "lady", "her", "mr", "darcy"]


def synthetic_text(n_words: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    words = rng.choice(WORDS, n_words)
    return " ".join(w + ("." if k % 9 == 8 else "") for k, w in enumerate(words))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The tiny model's ops are too small to share between threads; on a busy
    # 2-core machine two threads spin against each other and run 10x slower.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("cache")
        mp.setenv("TERMSHIFT_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def corpus():
    # "Z" occurs only in test: it must encode as <unk>.
    return lstm.CharCorpus("synthetic", synthetic_text(4000, 1), synthetic_text(500, 2), synthetic_text(500, 3) + " Z")


@pytest.fixture(scope="module")
def trained(cache, corpus):
    vocab = lstm.char_vocab(corpus.train)
    model = lstm_model.trained_lstm(corpus.name, lstm.encode_chars(corpus.train, vocab), vocab, RECIPE, quiet=True)
    params = lstm_model.export_params(model)
    qm = lstm.quantized_model(params, corpus, vocab, "int:bits=8")
    return vocab, model, params, qm


@pytest.fixture(scope="module")
def test_ids(corpus, trained):
    vocab = trained[0]
    return lstm.encode_chars(corpus.test[:6 * 50], vocab).reshape(6, 50)


def test_numpy_float_forward_matches_torch(trained, test_ids):
    _, model, params, _ = trained
    ours, st = lstm_quant.float_forward(params, test_ids[:, :30])
    ours2, _ = lstm_quant.float_forward(params, test_ids[:, 30:], st)
    theirs, _ = lstm_model.torch_logits(model, test_ids)
    # torch runs in float32; the numpy path in float64.
    np.testing.assert_allclose(np.concatenate([ours, ours2], axis=1), theirs, atol=1e-5)


@pytest.mark.parametrize("build", ["fast", "exact"])
def test_reference_and_csim_give_identical_integers(trained, test_ids, reference, build):
    qm = trained[3]
    sim = get_backend("csim", build=build)
    state_r = state_s = None
    for chunk in (test_ids[:, :20], test_ids[:, 20:]):  # state carried across calls too
        r = qm.run(chunk, reference, state_r, keep_raw=True)
        s = qm.run(chunk, sim, state_s, keep_raw=True)
        assert sorted(r.raw) == ["decoder", "lstm1_hh", "lstm1_ih", "lstm2_hh", "lstm2_ih"]
        for layer in ("lstm1_ih", "lstm1_hh", "lstm2_ih", "lstm2_hh"):
            assert r.raw[layer].shape == (chunk.shape[1], chunk.shape[0], 4 * qm.hidden)
            assert r.raw[layer].dtype == np.int32
            for t in range(chunk.shape[1]):
                np.testing.assert_array_equal(r.raw[layer][t], s.raw[layer][t], err_msg=f"{layer} step {t}")
        np.testing.assert_array_equal(r.raw["decoder"], s.raw["decoder"])
        np.testing.assert_array_equal(r.logits, s.logits)
        assert r.cycles == s.cycles
        state_r, state_s = r.state, s.state
        for hr, hs in zip(state_r.h, state_s.h):
            np.testing.assert_array_equal(hr, hs)


class CountingBackend:
    """Wraps the reference and records every engine call's shape."""

    def __init__(self):
        self.inner = get_backend("reference")
        self.calls = []

    def run(self, engine, a, w, bias=None, requant=None):
        assert engine == "int"
        self.calls.append((a.shape[0], w.shape[0], a.shape[1], a.dtype, requant))
        return self.inner.gemm_int(a, w, bias, requant)


def test_two_gate_gemms_per_layer_and_step(trained, test_ids):
    qm = trained[3]
    be = CountingBackend()
    b, t = test_ids[:, :7].shape
    run = qm.run(test_ids[:, :7], be)
    h, e, v = qm.hidden, qm.embedding.shape[1], qm.vocab
    i8 = np.dtype(np.int8)
    gates = [(b, 4 * h, e, i8, None), (b, 4 * h, h, i8, None), (b, 4 * h, h, i8, None), (b, 4 * h, h, i8, None)]
    assert be.calls == gates * t + [(b * t, v, h, i8, None)]  # every call raw int32 (requant None)
    assert run.cycles == {"lstm1_ih": t * gemm_cycles(INT_ENGINE, b, 4 * h, e),
                          "lstm1_hh": t * gemm_cycles(INT_ENGINE, b, 4 * h, h),
                          "lstm2_ih": t * gemm_cycles(INT_ENGINE, b, 4 * h, h),
                          "lstm2_hh": t * gemm_cycles(INT_ENGINE, b, 4 * h, h),
                          "decoder": gemm_cycles(INT_ENGINE, b * t, v, h)}


def test_gate_gemms_dequantize_to_the_float_pre_activations(trained, test_ids, reference):
    """W_ih and W_hh are each quantized per row on their own, the biases in
    their GEMM's accumulator units; from the codes the host reconstructs
    W_ih x + b_ih + W_hh h + b_hh to within the rounding bounds."""
    _, _, params, qm = trained
    for L, Q in zip(params.layers, qm.layers):
        for w, wq, s_w, b, bq, s_a in ((L.w_ih, Q.ih.payload["w"], Q.ih.s_w, L.b_ih, Q.ih.bias, Q.s_in),
                                       (L.w_hh, Q.hh.payload["w"], Q.hh.s_w, L.b_hh, Q.hh.bias, Q.s_h)):
            assert (np.abs(wq * s_w[:, None] - w) <= s_w[:, None] / 2 * (1 + 1e-9)).all()
            assert (np.abs(wq).max(axis=1) == 127).all()  # every row uses its full code range
            assert (np.abs(bq * (s_a * s_w) - b) <= s_a * s_w / 2 * (1 + 1e-9)).all()
    rng = np.random.default_rng(5)
    Q, L = qm.layers[1], params.layers[1]
    xq = rng.integers(-127, 128, (4, Q.input_size)).astype(np.int8)
    hq = rng.integers(-127, 128, (4, Q.hidden)).astype(np.int8)
    pre = Q.pre_activations(reference.gemm_int(xq, Q.ih.payload["w"], Q.ih.bias).out, reference.gemm_int(hq, Q.hh.payload["w"], Q.hh.bias).out)
    want = (xq * Q.s_in) @ L.w_ih.T + L.b_ih + (hq * Q.s_h) @ L.w_hh.T + L.b_hh
    bound = (Q.s_in * np.abs(xq).sum(1)[:, None] * Q.ih.s_w + Q.s_h * np.abs(hq).sum(1)[:, None] * Q.hh.s_w) / 2
    assert (np.abs(pre - want) <= bound + Q.s_in * Q.ih.s_w + Q.s_h * Q.hh.s_w).all()


def test_int8_matches_float_within_tolerance(trained, test_ids, reference):
    """Stated tolerance: INT8 logits within 0.15 of float (they span about -7..7
    here; measured 0.06) and bits per character within 0.005 of float on the
    same streams (measured 0.0001)."""
    _, model, _, qm = trained
    flt, _ = lstm_model.torch_logits(model, test_ids)
    q = qm.run(test_ids, reference).logits
    assert np.abs(q - flt).max() < 0.15
    st = lstm.eval_streams(test_ids.reshape(-1), streams=3, warmup=10, min_stream=50)
    bf = lstm.bits_per_char(lambda x, s: lstm_model.torch_logits(model, x, s), st)
    bq = lstm.bits_per_char(lstm.quant_step(qm, reference), st)
    assert bf < 3.0  # the tiny model did learn something (uniform over the alphabet is ~4.2)
    assert abs(bq - bf) < 0.005


def test_calibration_never_touches_the_test_split(corpus, trained, monkeypatch):
    vocab, _, params, qm = trained
    seen = []
    real = lstm.calibrate
    monkeypatch.setattr(lstm, "calibrate", lambda p, streams: seen.append(streams.copy()) or real(p, streams))
    lstm.evaluate_lstm("int:bits=8", dataset=corpus, recipe=RECIPE, quiet=True)
    assert len(seen) == 1
    used = "".join(vocab[i] for i in seen[0].reshape(-1))
    assert corpus.valid.startswith(used) and len(used) > 0.9 * min(len(corpus.valid), lstm.CALIB_TOKENS)
    # Replacing the test split changes no scale and no code.
    other = lstm.CharCorpus(corpus.name, corpus.train, corpus.valid, synthetic_text(500, 99))
    qm2 = lstm.quantized_model(params, other, vocab, "int:bits=8")
    assert qm2.calibration == qm.calibration and qm2.s_x == qm.s_x
    for a, b in zip(qm.layers, qm2.layers):
        np.testing.assert_array_equal(a.ih.payload["w"], b.ih.payload["w"])
        np.testing.assert_array_equal(a.hh.payload["w"], b.hh.payload["w"])


def test_costs_per_token_follow_the_formulas(trained):
    _, _, params, qm = trained
    v, e, h = params.vocab, params.embed, params.hidden
    rows = {c.name: c for c in qm.costs()}
    assert list(rows) == ["lstm1_ih", "lstm1_hh", "lstm2_ih", "lstm2_hh", "decoder"]
    shapes = (("lstm1_ih", 4 * h, e), ("lstm1_hh", 4 * h, h), ("lstm2_ih", 4 * h, h), ("lstm2_hh", 4 * h, h),
              ("decoder", v, h))
    for name, n, k in shapes:
        c = rows[name]
        assert c.ops == {"macs": n * k}  # raw int32 out: no requant
        assert c.cycles == gemm_cycles(INT_ENGINE, 1, n, k)
        assert (c.weight_count, c.bias_count, c.act_in_count, c.act_out_count) == (n * k, n, k, n)
        assert c.bits_per_weight == c.bits_per_activation == 8.0
        assert c.weight_bits == n * k * 8 + n * 32 and c.act_out_bits == n * 32
        tiles = math.ceil(n / INT_ENGINE.cols)
        assert (c.sram_a_reads, c.sram_w_reads) == (tiles * k * INT_ENGINE.rows, tiles * k * INT_ENGINE.cols)


def test_report_shape_and_float_vs_int(corpus, trained):
    qm = trained[3]
    keys = {"model", "dataset", "format", "backend", "metric", "bits_per_char", "samples", "seconds", "layers", "total"}
    flt = evaluate("lstm", "float", dataset=corpus, recipe=RECIPE, quiet=True, limit=400)
    ref = evaluate("lstm", "int:bits=8", "reference", dataset=corpus, recipe=RECIPE, quiet=True, limit=400)
    sim = evaluate("lstm", "int:bits=8", "csim", dataset=corpus, recipe=RECIPE, quiet=True, limit=400)
    for r in (flt, ref, sim):
        assert set(r) == keys and r["model"] == "lstm" and r["metric"] == "bits_per_char" and r["samples"] <= 400
    assert (flt["backend"], ref["backend"], sim["backend"]) == ("torch", "reference", "csim-fast")
    assert ref["format"] == "int:bits=8,granularity=channel" and flt["format"] == "float"
    assert ref["bits_per_char"] == sim["bits_per_char"]
    assert abs(ref["bits_per_char"] - flt["bits_per_char"]) < 0.005
    assert ref["total"] == summarize(qm.costs())["total"]
    assert flt["total"] == summarize(float_costs(qm.costs()))["total"]
    macs = sum(c.ops["macs"] for c in qm.costs())
    assert ref["total"]["ops"] == {"macs": macs} and flt["total"]["ops"] == {"fp32_macs": macs}
    assert flt["total"]["cycles"] == 0 and ref["total"]["energy_j"] < flt["total"]["energy_j"]


def test_training_is_seeded_cached_and_shows_progress(cache, corpus, trained, capsys):
    vocab, model, _, _ = trained
    ids = lstm.encode_chars(corpus.train, vocab)
    files = list((cache / "models").glob("lstm-synthetic-*.pt"))
    assert len(files) == 1
    small = {**RECIPE, "hidden": 8, "epochs": 1}
    again = lstm_model.trained_lstm(corpus.name, ids, vocab, small, use_cache=False)
    err = capsys.readouterr().err
    assert "training lstm on synthetic" in err and "bits/char" in err and "trained in" in err
    fresh = lstm_model.trained_lstm(corpus.name, ids, vocab, small, quiet=True, use_cache=False)
    for a, b in zip(again.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)  # same seed, same weights
    assert len(list((cache / "models").glob("lstm-synthetic-*.pt"))) == 2  # another recipe, another key
    cached = lstm_model.trained_lstm(corpus.name, ids, vocab, RECIPE, quiet=True)
    for a, b in zip(model.state_dict().values(), cached.state_dict().values()):
        assert torch.equal(a, b)


def test_eval_streams_score_each_token_once():
    ids = np.arange(5000)
    st = lstm.eval_streams(ids, limit=1234, streams=4, warmup=10, min_stream=100)
    assert st.tokens == 1232 and st.inputs.shape == (4, 10 + 308)
    np.testing.assert_array_equal(st.targets, st.inputs + 1)
    np.testing.assert_array_equal(np.sort(st.targets[:, st.warmup:].reshape(-1)), np.arange(11, 11 + 1232))
    assert lstm.eval_streams(ids, limit=50, streams=128).inputs.shape[0] == 1  # short runs: one stream


def test_unseen_characters_encode_as_unk(corpus, trained):
    vocab = trained[0]
    assert vocab[0] == "<unk>" and "Z" not in vocab
    assert lstm.encode_chars("Z a", vocab)[0] == 0


def test_bad_inputs_give_clear_errors(trained, corpus, reference):
    _, model, params, qm = trained
    ids = np.zeros((2, 3), np.int64)
    with pytest.raises(ValueError, match=rf"token id 999 at \(0, 1\) is outside the vocabulary \[0, {qm.vocab}\)"):
        qm.run(np.array([[1, 999, 2], [0, 0, 0]]), reference)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        lstm_model.torch_logits(model, np.array([[-1]]))
    with pytest.raises(TypeError, match="token ids must be integers"):
        qm.run(ids.astype(np.float32), reference)
    emb = params.embedding.copy()
    emb[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"embedding contains 1 non-finite value\(s\) \(NaN first at index \(3, 2\)\)"):
        lstm_quant.LSTMParams(emb, params.layers, params.dec_w, params.dec_b)
    with pytest.raises(ValueError, match="layer 2 w_hh has shape"):
        bad = [params.layers[0], lstm_quant.LSTMLayerParams(params.layers[1].w_ih, params.layers[1].w_hh[:, :-1],
                                                            params.layers[1].b_ih, params.layers[1].b_hh)]
        lstm_quant.LSTMParams(params.embedding, bad, params.dec_w, params.dec_b)
    with pytest.raises(ValueError, match="unknown format 'fp8'"):
        lstm.evaluate_lstm("fp8", dataset=corpus, recipe=RECIPE, quiet=True)
    with pytest.raises(ValueError, match="bits=9 is out of range"):
        lstm.evaluate_lstm("int:bits=9", dataset=corpus, recipe=RECIPE, quiet=True)
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        lstm.evaluate_lstm("int:bits=8", "gpu", dataset=corpus, recipe=RECIPE, quiet=True)
    with pytest.raises(ValueError, match="dataset must be 'austen'"):
        lstm.evaluate_lstm("float", dataset="mnist", quiet=True)
    with pytest.raises(ValueError, match="unknown LSTM recipe key"):
        lstm.evaluate_lstm("float", dataset=corpus, recipe={"hiden": 3}, quiet=True)
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        lstm.evaluate_lstm("float", dataset=corpus, recipe=RECIPE, quiet=True, limit=0)
    with pytest.raises(ValueError, match="calibration statistics lack"):
        lstm_quant.quantize_lstm(params, {"x": 1.0}, "int:bits=8")
    with pytest.raises(ValueError, match="state holds 6 streams but ids have 2"):
        qm.run(ids, reference, qm.initial_state(6))


def test_lower_bits_still_run(trained, test_ids, corpus, reference):
    vocab, _, params, _ = trained
    q4 = lstm.quantized_model(params, corpus, vocab, "int:bits=4,granularity=tensor")
    L = q4.layers[0]
    assert np.abs(L.ih.payload["w"]).max() == np.abs(L.hh.payload["w"]).max() == 7 and L.ih.s_w.size == L.hh.s_w.size == 4 * params.hidden
    assert len(set(L.ih.s_w)) == 1  # per tensor: one scale
    assert np.isfinite(q4.run(test_ids[:, :10], reference).logits).all()


def test_real_austen_corpus_when_installed(monkeypatch):
    from termshift.data.austen import find_austen_dir

    if USER_CACHE is None:
        monkeypatch.delenv("TERMSHIFT_CACHE", raising=False)
    else:
        monkeypatch.setenv("TERMSHIFT_CACHE", USER_CACHE)
    if find_austen_dir() is None:
        pytest.skip("Austen data not installed (python -m termshift.data fetch austen); synthetic tests cover the rest")
    c = lstm.load_corpus("auto")
    vocab = lstm.char_vocab(c.train)
    assert c.name == "austen" and len(vocab) == 82 and vocab[:3] == ["<unk>", " ", "e"]
    assert (lstm.encode_chars(c.test, vocab) > 0).all()  # every test character was seen in training
    st = lstm.eval_streams(lstm.encode_chars(c.test, vocab))
    assert st.inputs.shape[0] == lstm.EVAL_STREAMS and len(c.test) - 1 - lstm.WARMUP - st.tokens < lstm.EVAL_STREAMS


def test_eval_in_other_formats(corpus, trained):
    """Any format through the evaluate entry point; adaptive teq searches its
    widths on validation text first and says what it chose."""
    from termshift.formats import parse

    ref = evaluate("lstm", "pot:bits=4", "reference", dataset=corpus, recipe=RECIPE, quiet=True, limit=300)
    sim = evaluate("lstm", "pot:bits=4", "csim", dataset=corpus, recipe=RECIPE, quiet=True, limit=300)
    assert ref["format"] == str(parse("pot:bits=4")) and ref["bits_per_char"] == sim["bits_per_char"]
    assert set(ref["total"]["ops"]) == {"shift_adds"} and ref["samples"] <= 300
    ad = evaluate("lstm", "teq", "reference", dataset=corpus, recipe=RECIPE, quiet=True, limit=300)
    assert ad["format"].startswith("teq:bits=adaptive,widths=") and len(ad["widths"]) == 5
    s = ad["search"]
    assert s["val_bits_per_char"] <= s["target_bits_per_char"] == pytest.approx(1.01 * s["float_val_bits_per_char"])
    assert [r["bits_per_weight"] for r in ad["layers"]] == [float(w) for w in ad["widths"]]
