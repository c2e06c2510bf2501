"""`termshift eval`: what a number format does to a model's quality, compute
and energy. One function per model family; each returns the same report shape:

    {"model", "dataset", "format", "backend", <metric>: value, "metric": name,
     "layers": [per-layer rows], "total": {ops, bits, cycles, energy_j, ...}}

The float baseline is the torch model itself, costed with fp32 MACs and 32-bit
operands on the same layer shapes. `bfp:search` first runs the per-layer BFP
search (termshift.search.bfp.search_model: selection on validation images
taken from the training set, on the reference backend) and then evaluates the
plan it picked; the report adds the plan and the search's figures.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from termshift.energy.model import summarize
from termshift.formats import parse
from termshift.nn.graph import LayerCost

IMAGE_MODELS = ("mlp", "cnn")
MODELS = ("mlp", "cnn", "lstm", "minilm")

_FLOAT_OPS = {"macs": "fp32_macs", "compares": "fp32_compares", "adds": "fp32_adds"}


def float_costs(costs: list[LayerCost]) -> list[LayerCost]:
    """The same layers at fp32: ops become fp32 ops, every operand 32 bits,
    no requant, no engine cycles (there is no float engine)."""
    out = []
    for c in costs:
        ops = {_FLOAT_OPS.get(k, k): v for k, v in c.ops.items() if k != "requants"}
        bits = {k: 32.0 if getattr(c, k) else 0.0 for k in ("bits_per_weight", "bits_per_activation", "weight_storage_bits",
                                                             "act_storage_bits", "out_storage_bits")}
        out.append(dataclasses.replace(c, ops=ops, cycles=0, **bits))
    return out


def evaluate_image_model(model_name: str, fmt: str, backend: str = "reference", dataset: str = "auto",
                         build: str = "fast", limit: int | None = None, quiet: bool = False) -> dict:
    """Accuracy, ops, bits, cycles and energy of an image classifier in `fmt`."""
    from termshift.backends import get_backend
    from termshift.nn.datasets import load_image_data
    from termshift.nn.lower import lower
    from termshift.nn.train import float_accuracy, trained_model

    if model_name not in IMAGE_MODELS:
        raise ValueError(f"{model_name!r} is not an image model ({', '.join(IMAGE_MODELS)})")
    data = load_image_data(dataset)
    model = trained_model(model_name, data, quiet=quiet)
    x, y = data.x_test, data.y_test
    if limit is not None:
        x, y = x[:limit], y[:limit]
    # Shapes and op counts come from the INT8 lowering even for float.
    spec = parse("int:bits=8") if fmt == "float" else parse(fmt)
    extra: dict = {}
    if spec.name == "bfp" and spec["search"] == "on":
        graph, extra = _bfp_search_graph(model, data, spec)
    else:
        graph = lower(model, data.calibration(), spec)
    t0 = time.perf_counter()
    if fmt == "float":
        acc, _ = float_accuracy(model, x, y)
        summary = summarize(float_costs(graph.costs()))
        backend_name = "torch"
    else:
        be = get_backend(backend, **({"build": build} if backend == "csim" else {}))
        run = graph.run(x, be)
        acc = float((run.output.argmax(1) == y).mean())
        summary = summarize(graph.costs())
        backend_name = backend if backend != "csim" else f"csim-{build}"
    return {
        "model": model_name, "dataset": data.name, "format": "float" if fmt == "float" else graph.fmt if extra else str(spec),
        "backend": backend_name, "metric": "accuracy", "accuracy": acc, "samples": int(len(y)),
        "seconds": time.perf_counter() - t0, **extra, **summary,
    }


def _bfp_search_graph(model, data, spec) -> tuple:
    """The graph of the plan `bfp:search` picks, and what the report adds about it."""
    from termshift.formats import bfp
    from termshift.search.bfp import search_model

    # The search picks block, mantissa and exponent width per layer, so any
    # other setting in the same spec would be silently ignored: refuse it.
    fixed = {k: spec[k] for k in ("block", "mantissa", "e_bits", "preset") if spec[k] != bfp.SPEC[k].default}
    if fixed:
        shown = ", ".join(f"{k}={v}" for k, v in fixed.items())
        raise ValueError(f"bfp:search chooses block, mantissa and exponent width per layer; "
                         f"it cannot be combined with {shown}")
    ms = search_model(model, data)
    ev, res = ms.evaluator, ms.result
    plan = {}
    for li, j in enumerate(res.plan):
        p = ev.candidates[j]
        plan[ev.layers[li].stats.name] = {"block": p.block, "mantissa": p.mantissa, "e_bits": p.e_bits,
                                          "spec": p.spec()}
    extra = {"plan": plan, "bfp_search": {
        "met_target": bool(res.met_target), "validation_images": int(sum(len(y) for y in ev.y)),
        "int8_val_accuracy": float(ms.int8_val), "val_accuracy": float(ev.accuracy(res.plan)),
        "real_checks": len(res.steps), "seconds": float(ms.seconds)}}
    return ms.graph(), extra


def evaluate(model_name: str, fmt: str, backend: str = "reference", **kw) -> dict:
    if model_name in IMAGE_MODELS and str(fmt).startswith("teq"):
        from termshift.nn.gemm_teq import evaluate_teq

        return evaluate_teq(model_name, fmt, backend, **kw)
    if model_name in IMAGE_MODELS:
        return evaluate_image_model(model_name, fmt, backend, **kw)
    if model_name == "lstm":
        from termshift.nn.lstm import evaluate_lstm

        return evaluate_lstm(fmt, backend, **kw)
    if model_name == "minilm":
        from termshift.nn.minilm import evaluate_minilm

        return evaluate_minilm(fmt, backend, **kw)
    raise ValueError(f"unknown model {model_name!r}; choose one of {', '.join(MODELS)}")


# The op that carries each format's arithmetic, in the order a report names
# them: MACs (int), shift-adds (pot), term pairs (tr), mantissa partial-product
# rows (bfp: they scale with m, a block MAC does not), exponent-sum pairs (teq),
# then fp32 MACs, the float baseline's, last: a model that mixes host float
# work with engine GEMMs (MiniLM) is named by its engine op.
MAIN_OPS = ("macs", "shift_adds", "term_pairs", "bfp_pp_rows", "teq_pairs", "fp32_macs")
# Ops around the GEMM (requantization, pooling, host functions): listed last.
_AUX_OPS = ("requants", "compares", "adds", "fp32_compares", "fp32_adds", "fp32_funcs")


def ordered_ops(ops: dict) -> dict:
    """Nonzero op counts, the format's main op first, then the engine's other
    ops in the energy table's order, then requant/pooling/host ops."""
    from termshift.energy.table import OPS_PJ

    rank = {k: i for i, k in enumerate((*MAIN_OPS, *[k for k in OPS_PJ if k not in MAIN_OPS and k not in _AUX_OPS],
                                        *_AUX_OPS))}
    return {k: ops[k] for k in sorted((k for k in ops if ops[k]), key=lambda k: (rank.get(k, len(rank)), k))}


def main_op(ops: dict) -> tuple[str, int]:
    """(kind, count) of the format's main op in an op dict; ("none", 0) if it has none."""
    for k in MAIN_OPS:
        if ops.get(k):
            return k, ops[k]
    return "none", 0


def layer_ops(row: dict) -> dict:
    """The op counts of one per-layer report row (summarize() spreads a layer's
    ops into its row, next to its other figures): every key the energy table
    prices, ordered as ordered_ops."""
    from termshift.energy.table import OPS_PJ

    return ordered_ops({k: row[k] for k in OPS_PJ if k in row})


def _figure(v) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    return f"{v:,}" if isinstance(v, int) else f"{v:.4g}"


def _plan_entry(p) -> str:
    if isinstance(p, dict) and {"block", "mantissa"} <= set(p):
        return f"B={p['block']} m={p['mantissa']}"
    return str(p)


def _search_lines(r: dict) -> list[str]:
    """What a searched format adds to a report (any model family): the search's
    own figures, then the per-layer choice it made (bfp plan, teq widths)."""
    lines = []
    for key in ("bfp_search", "search"):
        s = r.get(key)
        if not isinstance(s, dict):
            continue
        if {"val_accuracy", "int8_val_accuracy"} <= set(s):  # bfp:search on an image model
            lines.append(f"  bfp search: validation {100 * s['val_accuracy']:.2f} % vs INT8 {100 * s['int8_val_accuracy']:.2f} % "
                         f"on {s['validation_images']} training images held out as validation, target "
                         f"{'met' if s['met_target'] else 'NOT met'}, {s['real_checks']} real checks, {s['seconds']:.1f} s")
        else:
            shown = ", ".join(f"{k} {_figure(v)}" for k, v in s.items() if not isinstance(v, (dict, list, tuple)))
            lines.append(f"  {key.replace('_', ' ')}: {shown}")
    if isinstance(r.get("widths"), (list, tuple)):
        lines.append("  per-layer widths (bits): " + "/".join(map(str, r["widths"])))
    if isinstance(r.get("plan"), dict):
        lines.append("  per-layer plan: " + ", ".join(f"{name} {_plan_entry(p)}" for name, p in r["plan"].items()))
    return lines


def format_report(r: dict) -> str:
    t = r["total"]
    ops = ", ".join(f"{k}={v:,}" for k, v in ordered_ops(t["ops"]).items())
    metric = r["metric"]
    lines = [f"{r['model']} on {r['dataset']} | format {r['format']} | backend {r['backend']}",
             f"  {metric}: {r[metric]:.4f} ({r.get('samples', '?')} samples)",
             f"  per inference: {ops}; weights {t['weight_bits'] / 8 / 1024:.1f} KiB at {t['bits_per_weight']:.2f} b/w; "
             f"cycles {t['cycles']:,} ({t['latency_s'] * 1e6:.1f} us at {t['clock_hz'] / 1e6:.0f} MHz); "
             f"energy {t['energy_j'] * 1e6:.3f} uJ (compute {t['compute_j'] * 1e6:.3f}, DRAM {t['dram_j'] * 1e6:.3f}, SRAM {t['sram_j'] * 1e6:.3f})"]
    lines += _search_lines(r)
    for L in r["layers"]:
        op_txt = ", ".join(f"{k}={v:,}" for k, v in layer_ops(L).items())
        lines.append(f"    {L['name']:<10} {L['kind']:<8} cycles {L['cycles']:>9,}  {L['energy_j'] * 1e9:>10.2f} nJ  {op_txt}")
    return "\n".join(lines)
