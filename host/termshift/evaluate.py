"""`termshift eval`: what a number format does to a model's quality, compute
and energy. One function per model family; each returns the same report shape:

    {"model", "dataset", "format", "backend", <metric>: value, "metric": name,
     "layers": [per-layer rows], "total": {ops, bits, cycles, energy_j, ...}}

The float baseline is the torch model itself, costed with fp32 MACs and 32-bit
operands on the same layer shapes.
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
        "model": model_name, "dataset": data.name, "format": "float" if fmt == "float" else str(spec),
        "backend": backend_name, "metric": "accuracy", "accuracy": acc, "samples": int(len(y)),
        "seconds": time.perf_counter() - t0, **summary,
    }


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


def format_report(r: dict) -> str:
    t = r["total"]
    ops = ", ".join(f"{k}={v:,}" for k, v in t["ops"].items())
    metric = r["metric"]
    lines = [f"{r['model']} on {r['dataset']} | format {r['format']} | backend {r['backend']}",
             f"  {metric}: {r[metric]:.4f} ({r.get('samples', '?')} samples)",
             f"  per inference: {ops}; weights {t['weight_bits'] / 8 / 1024:.1f} KiB at {t['bits_per_weight']:.2f} b/w; "
             f"cycles {t['cycles']:,} ({t['latency_s'] * 1e6:.1f} us at {t['clock_hz'] / 1e6:.0f} MHz); "
             f"energy {t['energy_j'] * 1e6:.3f} uJ (compute {t['compute_j'] * 1e6:.3f}, DRAM {t['dram_j'] * 1e6:.3f}, SRAM {t['sram_j'] * 1e6:.3f})"]
    for L in r["layers"]:
        op_txt = ", ".join(f"{k}={L[k]:,}" for k in ("macs", "fp32_macs", "compares", "fp32_compares", "adds") if k in L)
        lines.append(f"    {L['name']:<10} {L['kind']:<8} {op_txt:<22} cycles {L['cycles']:>9,}  {L['energy_j'] * 1e9:>10.2f} nJ")
    return "\n".join(lines)
