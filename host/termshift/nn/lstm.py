"""The LSTM language model on Jane Austen's novels, character level: corpus
and vocabulary, the held-out evaluation streams, bits-per-character scoring,
and `evaluate_lstm` (what `termshift eval --model lstm` runs).

Splits are the data module's (termshift.data.austen: by chapter, ~81/9/9 %):
the model trains on *train*, every activation scale is calibrated on the
start of *valid*, and bits per character are reported on *test*.

The torch model and its training live in lstm_model.py; the numpy
quantized model and its execution on an engine backend in lstm_quant.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from termshift.nn.lstm_quant import (
    LSTMParams,
    QuantLSTM,
    calibrate,
    check_ids,
    gemm_names,
    lstm_costs,
    quantize_lstm,
)

CALIBRATION_SPLIT = "valid"
EVAL_SPLIT = "test"
CALIB_TOKENS = 65_536  # from the start of the calibration split, cut into CALIB_STREAMS rows
CALIB_STREAMS = 64
EVAL_STREAMS = 128  # test streams run side by side: the M of every gate GEMM
WARMUP = 100  # steps each stream runs unscored, so no scored character starts without context
MIN_STREAM = 200  # scored steps per stream at least (short `limit` runs use fewer streams)


@dataclass(frozen=True)
class CharCorpus:
    """A text split three ways; `name` keys the model cache."""

    name: str
    train: str
    valid: str
    test: str

    def split(self, name: str) -> str:
        return {"train": self.train, "valid": self.valid, "test": self.test}[name]


def load_corpus(dataset=None) -> CharCorpus:
    """None, "auto" or "austen": the Austen novels (termshift.data.austen); or a CharCorpus."""
    if isinstance(dataset, CharCorpus):
        return dataset
    if dataset in (None, "auto", "austen"):
        from termshift.data.austen import austen_corpus

        c = austen_corpus(level="char")
        return CharCorpus("austen", c["train"], c["valid"], c["test"])
    raise ValueError(f"the LSTM is trained on the Austen novels: dataset must be 'austen' or 'auto', got {dataset!r}")


def char_vocab(train_text: str) -> list[str]:
    """Characters of the training text by descending count, after <unk> (id 0) for unseen ones."""
    from termshift.data.austen import UNK, build_vocab

    if not train_text:
        raise ValueError("the training text is empty")
    return list(build_vocab(train_text, specials=(UNK,)))


def encode_chars(text: str, vocab: list[str]) -> np.ndarray:
    index = {ch: i for i, ch in enumerate(vocab)}
    return np.fromiter((index.get(ch, 0) for ch in text), np.int64, len(text))


@dataclass(frozen=True)
class Streams:
    """Held-out text cut into B contiguous streams run side by side. Each has
    `warmup` unscored steps (the text just before its scored part), then
    `scored` scored steps."""

    inputs: np.ndarray  # (B, warmup + scored) ids
    targets: np.ndarray  # (B, warmup + scored) next ids
    warmup: int

    @property
    def tokens(self) -> int:
        return self.targets.shape[0] * (self.targets.shape[1] - self.warmup)


def eval_streams(ids: np.ndarray, limit: int | None = None, streams: int = EVAL_STREAMS, warmup: int = WARMUP,
                 min_stream: int = MIN_STREAM) -> Streams:
    """Score ids[warmup + 1:] (at most `limit` of them, fewer if they do not split evenly into streams)."""
    n = len(ids) - 1 - warmup
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        n = min(n, int(limit))
    if n < 1:
        raise ValueError(f"the held-out text has {len(ids)} tokens, too few to score after {warmup} warm-up steps")
    b = max(1, min(streams, n // min_stream))
    t = n // b
    # Stream k scores targets warmup + k*t + 1 .. warmup + (k+1)*t; its warm-up
    # steps re-read the end of stream k-1's text (the first stream's, the text's start).
    idx = np.arange(b)[:, None] * t + np.arange(warmup + t)[None, :]
    return Streams(ids[idx], ids[idx + 1], warmup)


StepFn = Callable[[np.ndarray, object], tuple]  # (ids (B, t), state) -> (logits (B, t, V), state)


def bits_per_char(step: StepFn, streams: Streams, chunk: int = 100) -> float:
    """Mean -log2 p(target) over the scored positions, state carried across chunks."""
    state = None
    total = 0.0
    steps = streams.inputs.shape[1]
    for a in range(0, steps, chunk):
        logits, state = step(streams.inputs[:, a:a + chunk], state)
        lo = max(streams.warmup - a, 0)
        if lo >= logits.shape[1]:
            continue
        total += nll_sum(logits[:, lo:], streams.targets[:, a + lo:a + logits.shape[1]])
    return total / streams.tokens / math.log(2)


def nll_sum(logits: np.ndarray, targets: np.ndarray) -> float:
    """Sum of -ln p(target) under log-softmax(logits) (..., V), in float64."""
    m = logits.max(axis=-1, keepdims=True)
    lse = m[..., 0] + np.log(np.exp(logits - m).sum(axis=-1))
    return float((lse - np.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]).sum())


def calibration_streams(corpus: CharCorpus, vocab: list[str]) -> np.ndarray:
    """(CALIB_STREAMS, T) ids from the start of the calibration split, never the test split."""
    ids = encode_chars(corpus.split(CALIBRATION_SPLIT)[:CALIB_TOKENS], vocab)
    b = max(1, min(CALIB_STREAMS, len(ids) // 16))
    t = len(ids) // b
    if t < 1:
        raise ValueError(f"the {CALIBRATION_SPLIT} split is empty: nothing to calibrate on")
    return ids[:b * t].reshape(b, t)


def quant_step(qm: QuantLSTM, backend) -> StepFn:
    def step(ids, state):
        run = qm.run(ids, backend, state)
        return run.logits, run.state

    return step


def quantized_model(params: LSTMParams, corpus: CharCorpus, vocab: list[str], fmt, plan: list | None = None) -> QuantLSTM:
    return quantize_lstm(params, calibrate(params, calibration_streams(corpus, vocab)), fmt, plan=plan)


def needs_search(spec) -> bool:
    """Whether a spec asks for per-GEMM choices made by a search (lstm_search)."""
    return ((spec.name == "teq" and spec["bits"] == "adaptive" and not spec["widths"])
            or (spec.name == "bfp" and spec["search"] == "on"))


def searched_model(params: LSTMParams, corpus: CharCorpus, vocab: list[str], spec, quiet: bool = True,
                   stats: dict | None = None) -> tuple[QuantLSTM, dict]:
    """The QuantLSTM of `spec`, running its per-GEMM search first when it asks
    for one (adaptive teq, bfp:search=on) on validation text; the second value
    describes the search ({} when none ran)."""
    from termshift.nn import lstm_search

    stats = stats if stats is not None else calibrate(params, calibration_streams(corpus, vocab))
    if not needs_search(spec):
        return quantize_lstm(params, stats, spec), {}
    val = lstm_search.validation_streams(corpus, vocab)
    if spec.name == "teq":
        from termshift.formats.teq import option_suffix

        options = option_suffix(spec, ("fit", "granularity", "round"))
        r = lstm_search.search_teq_widths(params, stats, val, beta=spec["beta"] == "on", quiet=quiet,
                                          options=options)
        qm = quantize_lstm(params, stats, f"{r.spec},beta={spec['beta']}{options}")
        return qm, {"widths": r.widths, "search": {
            "avg_bits": r.avg_bits, "val_bits_per_char": r.val_bpc, "float_val_bits_per_char": r.float_val_bpc,
            "target_bits_per_char": r.target_bpc, "evaluations": r.evaluations, "seconds": r.seconds,
            "validation_chars": val.tokens}}
    r = lstm_search.search_bfp(params, stats, val, calibration_streams(corpus, vocab)[:, :201], quiet=quiet)
    qm = quantize_lstm(params, stats, spec, plan=r.plan)
    return qm, {"plan": dict(zip(gemm_names(len(params.layers)), r.plan)), "search": {
        "met_target": r.met_target, "val_bits_per_char": r.val_bpc, "int8_val_bits_per_char": r.int8_val_bpc,
        "target_bits_per_char": r.target_bpc, "best_uniform": r.uniform, "real_checks": r.real_checks,
        "seconds": r.seconds, "validation_chars": val.tokens}}


def evaluate_lstm(fmt: str, backend: str = "reference", build: str = "fast", dataset=None, limit: int | None = None,
                  quiet: bool = False, recipe: dict | None = None) -> dict:
    """Bits per character on the held-out split, and per-token ops, bits,
    cycles and energy, of the LSTM in `fmt` ("float": the torch model; any
    spec of nn/gemm_formats.py: the quantized model on `backend`; adaptive
    teq and bfp:search=on run their per-GEMM search on validation text first
    and report what it chose). `limit` caps the scored characters; `recipe`
    overrides training settings (lstm_model.RECIPE)."""
    from termshift.backends import get_backend
    from termshift.energy.model import summarize
    from termshift.evaluate import float_costs
    from termshift.formats import parse
    from termshift.nn.gemm_formats import gemm_format
    from termshift.nn.lstm_model import export_params, torch_logits, trained_lstm

    # Reject a bad format or backend before training for minutes.
    spec = None if fmt == "float" else parse(fmt)
    if spec is not None:
        gemm_format(spec)
    be = None if spec is None else get_backend(backend, **({"build": build} if backend == "csim" else {}))
    corpus = load_corpus(dataset)
    vocab = char_vocab(corpus.train)
    model = trained_lstm(corpus.name, encode_chars(corpus.train, vocab), vocab, recipe, quiet=quiet)
    params = export_params(model)
    streams = eval_streams(encode_chars(corpus.split(EVAL_SPLIT), vocab), limit)
    hidden = [L.hidden for L in params.layers]
    extra: dict = {}
    if spec is None:
        t0 = time.perf_counter()
        bpc = bits_per_char(lambda ids, st: torch_logits(model, ids, st), streams)
        summary = summarize(float_costs(lstm_costs(params.vocab, params.embed, hidden, 8)))
        backend_name, fmt_name = "torch", "float"
    else:
        qm, extra = searched_model(params, corpus, vocab, spec, quiet=quiet,
                                   stats=calibrate(params, calibration_streams(corpus, vocab)))
        t0 = time.perf_counter()
        bpc = bits_per_char(quant_step(qm, be), streams)
        summary = summarize(qm.costs())
        backend_name, fmt_name = backend if backend != "csim" else f"csim-{build}", qm.fmt
    return {
        "model": "lstm", "dataset": corpus.name, "format": fmt_name, "backend": backend_name,
        "metric": "bits_per_char", "bits_per_char": bpc, "samples": streams.tokens,
        "seconds": time.perf_counter() - t0, **summary, **extra,
    }


def check_backends_agree_lstm(fmt: str = "int:bits=8", build: str = "fast", dataset=None, limit: int | None = None,
                              quiet: bool = False, recipe: dict | None = None, chunk: int = 100) -> dict:
    """Run the held-out streams on the reference and C-sim backends side by
    side and compare every int32 engine output (each layer's gate GEMM at every
    step, the decoder) and the logits; the counts say how much was compared.
    Any format (a searched one searches first, on the reference backend);
    `limit` scores fewer test characters (C-sim of tr runs ~70x slower than INT8)."""
    from termshift.backends import get_backend
    from termshift.formats import parse
    from termshift.nn.lstm_model import export_params, trained_lstm

    ref, sim = get_backend("reference"), get_backend("csim", build=build)
    corpus = load_corpus(dataset)
    vocab = char_vocab(corpus.train)
    model = trained_lstm(corpus.name, encode_chars(corpus.train, vocab), vocab, recipe, quiet=quiet)
    qm, _ = searched_model(export_params(model), corpus, vocab, parse(fmt), quiet=quiet)
    streams = eval_streams(encode_chars(corpus.split(EVAL_SPLIT), vocab), limit)
    compared = mismatches = 0
    cycles_equal = logits_equal = True
    seconds = {"reference": 0.0, "csim": 0.0}
    st_r = st_s = None
    for a in range(0, streams.inputs.shape[1], chunk):
        ids = streams.inputs[:, a:a + chunk]
        t0 = time.perf_counter()
        r = qm.run(ids, ref, st_r, keep_raw=True)
        t1 = time.perf_counter()
        s = qm.run(ids, sim, st_s, keep_raw=True)
        seconds["reference"] += t1 - t0
        seconds["csim"] += time.perf_counter() - t1
        for name, out in r.raw.items():
            compared += out.size
            mismatches += int((out != s.raw[name]).sum())
        cycles_equal &= r.cycles == s.cycles
        logits_equal &= bool(np.array_equal(r.logits, s.logits))
        st_r, st_s = r.state, s.state
    return {"model": "lstm", "dataset": corpus.name, "format": qm.fmt, "build": build,
            "tokens": int(streams.inputs.size), "scored_tokens": streams.tokens,
            "engine_outputs_compared": compared, "mismatches": mismatches, "cycles_equal": cycles_equal,
            "logits_equal": logits_equal, "reference_seconds": seconds["reference"],
            f"csim_{build}_seconds": seconds["csim"]}


__all__ = ["CharCorpus", "Streams", "bits_per_char", "calibration_streams", "char_vocab", "check_backends_agree_lstm",
           "check_ids", "encode_chars", "eval_streams", "evaluate_lstm", "load_corpus", "needs_search", "nll_sum",
           "quantized_model", "searched_model"]
