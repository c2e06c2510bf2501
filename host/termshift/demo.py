"""`termshift demo`: the README's main job.

Trains (or loads from cache) the MLP on Fashion-MNIST when it is installed,
else on scikit-learn digits; evaluates float and INT formats on the reference
and C-sim backends over the whole test set; proves the two backends return
identical integers; prints a table; writes a JSON report, a PNG plot of
accuracy vs modeled energy, and the INT8 compiled-model artifact the board
loads.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from termshift.atomic import write_bytes_atomic, write_json_atomic
from termshift.evaluate import evaluate_image_model, main_op
from termshift.formats import short

FORMATS = ("float", "int:bits=8", "pot:bits=4", "tr:bits=4,group=16,budget=12,data_terms=3", "bfp:block=8,mantissa=3",
           "teq:bits=4")


# C-sim of the non-uniform engines simulates them term by term / shift by
# shift, so the demo checks them on the first images of the test set (the full
# set for INT8); `termshift agree --model M --format F` runs any of them in full.
CSIM_SAMPLES_OTHER_FORMATS = 1000


def check_backends_agree(model_name: str, dataset: str, fmt: str, build: str = "fast",
                         limit: int | None = None) -> dict:
    """Run the test set (or its first `limit` samples) through reference and C-sim; compare every engine output."""
    from termshift.backends import get_backend
    from termshift.nn.datasets import load_image_data
    from termshift.nn.lower import lower
    from termshift.nn.train import trained_model

    data = load_image_data(dataset)
    graph = lower(trained_model(model_name, data, quiet=True), data.calibration(), fmt)
    x = data.x_test if limit is None else data.x_test[:limit]
    t0 = time.perf_counter()
    ref = graph.run(x, get_backend("reference"), keep_raw=True)
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    sim = graph.run(x, get_backend("csim", build=build), keep_raw=True)
    t_sim = time.perf_counter() - t0
    compared = sum(v.size for v in ref.raw.values())
    mismatches = sum(int(np.count_nonzero(ref.raw[k] != sim.raw[k])) for k in ref.raw)
    return {"format": fmt, "samples": int(len(x)), "engine_outputs_compared": int(compared),
            "mismatches": mismatches, "reference_seconds": t_ref, f"csim_{build}_seconds": t_sim,
            "cycles_equal": ref.cycles == sim.cycles, "graph": graph, "data": data}


def plot(rows: list[dict], path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for r in rows:
        e = r["total"]["energy_j"] * 1e6
        ax.scatter(e, 100 * r["accuracy"], s=40)
        ax.annotate(r["format"].split(",")[0], (e, 100 * r["accuracy"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("modeled energy per inference (uJ, Horowitz 45 nm, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{rows[0]['model'].upper()} on {rows[0]['dataset']}: accuracy vs energy")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())


def run_demo(out_dir: Path, dataset: str = "auto", model: str = "mlp", formats=FORMATS) -> dict:
    from termshift.nn.artifact import save_artifact

    out_dir = Path(out_dir)
    rows = []
    for fmt in formats:
        backends = ("torch",) if fmt == "float" else ("reference", "csim") if fmt == "int:bits=8" else ("reference",)
        for be in backends:
            r = evaluate_image_model(model, fmt, "reference" if be == "torch" else be, dataset=dataset)
            rows.append(r)
    agree = check_backends_agree(model, dataset, "int:bits=8")
    graph, data = agree.pop("graph"), agree.pop("data")
    others = []
    for fmt in formats:
        if fmt in ("float", "int:bits=8"):
            continue
        a = check_backends_agree(model, dataset, fmt, limit=CSIM_SAMPLES_OTHER_FORMATS)
        a.pop("graph"), a.pop("data")
        others.append(a)
    expected = graph.run(data.x_test[:16], __import__("termshift.backends", fromlist=["get_backend"]).get_backend("reference"))
    artifact = save_artifact(graph, out_dir / f"{model}-int8.tsm",
                             expected={"input": data.x_test[:16], "output": expected.output})
    report = {"model": model, "dataset": rows[0]["dataset"], "rows": rows, "backends_agree": agree,
              "backends_agree_other_formats": others, "artifact": str(artifact)}
    write_json_atomic(out_dir / "demo.json", report)
    plot([r for r in rows if r["backend"] in ("torch", "reference")], out_dir / "accuracy_vs_energy.png")
    return report


def format_demo(report: dict) -> str:
    lines = [f"termshift demo: {report['model'].upper()} on {report['dataset']} (full test set)", "",
             f"{'format':<36} {'backend':<11} {'accuracy':>8} {'ops/inf (main op)':>26} {'weights KiB':>11} "
             f"{'cycles':>9} {'energy uJ':>10}",
             "-" * 116]
    for r in report["rows"]:
        t = r["total"]
        # Each format's own arithmetic op (macs, shift_adds, term_pairs, ...): a MAC
        # column would read 0 for the formats that have none.
        kind, count = main_op(t["ops"])
        lines.append(f"{short(r['format']):<36} {r['backend']:<11} {100 * r['accuracy']:>7.2f}% {kind + ' ' + format(count, ','):>26} "
                     f"{t['weight_bits'] / 8192:>11.1f} {t['cycles']:>9,} {t['energy_j'] * 1e6:>10.3f}")
    a = report["backends_agree"]
    verdict = "IDENTICAL" if a["mismatches"] == 0 and a["cycles_equal"] else f"{a['mismatches']} MISMATCHES"
    lines += ["", f"reference vs C-sim ({a['format']}, {a['samples']} test images): {a['engine_outputs_compared']:,} "
                  f"engine outputs compared, {verdict} "
                  f"(reference {a['reference_seconds']:.2f} s, C-sim fast {a['csim_fast_seconds']:.2f} s)",
              f"artifact for the board: {report['artifact']}"]
    for a in report.get("backends_agree_other_formats", []):
        verdict = "IDENTICAL" if a["mismatches"] == 0 and a["cycles_equal"] else f"{a['mismatches']} MISMATCHES"
        lines.append(f"reference vs C-sim ({a['format']}, first {a['samples']} test images): "
                     f"{a['engine_outputs_compared']:,} engine outputs compared, {verdict}")
    return "\n".join(lines)
