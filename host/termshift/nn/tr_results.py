"""Term revealing results: accuracy vs term pairs, engine cycles per mode,
and the speed of `term_reveal` (docs/formats/tr.md, section 9).

    python -m termshift.nn.tr_results sweep --model mlp [--out out/tr]   # JSON + PNG plot
    python -m termshift.nn.tr_results cycles --model mlp                 # TR vs conventional mode
    python -m termshift.nn.tr_results bench                              # term_reveal vs INT8 quantize

`sweep` evaluates, on the reference backend over the whole test set, the
conventional baselines (the same sign-magnitude base quantization at 2..8
bits, every term kept, 8-bit data untruncated: cost MACs x b_w x 8) and a
grid of TR settings (4-bit base weights, groups of 8 and 16, several
budgets, 2..6 data terms, truncated for real in the engine's data path).
Every row reports the term pairs per inference both ways.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

from termshift.atomic import write_bytes_atomic, write_json_atomic

CONVENTIONAL_BITS = (2, 3, 4, 5, 6, 7, 8)
TR_GRID = {
    "mlp": {"bits": (4,), "group": (8, 16), "budget_per_16": (4, 6, 8, 10, 12, 14), "data_terms": (2, 3, 4, 5, 6)},
    # The CNN needs more than 4 base bits to come within 0.3 points of 8-bit
    # (its conventional 4-bit is already 0.5 below), so the grid adds 6 and 8.
    "cnn": {"bits": (4, 6, 8), "group": (8, 16), "budget_per_16": (8, 12, 16, 20), "data_terms": (2, 3)},
}
ACCURACY_MARGIN = 0.003  # "within 0.3 points of conventional 8-bit"


def conventional_spec(bits: int) -> str:
    """The base quantization with nothing revealed away: every binary term of
    the weights and all 8 data bits."""
    return f"tr:bits={bits},group=1,budget={bits},data_terms=8,encoding=binary"


def tr_specs(model: str) -> list[str]:
    grid = TR_GRID[model]
    out = []
    for bits in grid["bits"]:
        for group in grid["group"]:
            for b16 in grid["budget_per_16"]:
                budget = max(1, b16 * group // 16)
                for td in grid["data_terms"]:
                    out.append(f"tr:bits={bits},group={group},budget={budget},data_terms={td}")
    return out


def _row(kind: str, r: dict) -> dict:
    ops = r["total"]["ops"]
    return {"kind": kind, "format": r["format"], "accuracy": r["accuracy"], "term_pairs": ops["term_pairs"],
            "conventional_term_pairs": ops["conventional_term_pairs"], "cycles": r["total"]["cycles"],
            "energy_j": r["total"]["energy_j"], "bits_per_weight": r["total"]["bits_per_weight"]}


def run_sweep(model: str = "mlp", dataset: str = "fashion-mnist", limit: int | None = None,
              specs: list[str] | None = None, quiet: bool = False, previous: dict | None = None) -> dict:
    """Evaluate the conventional baselines and the TR grid; rows of a
    `previous` report of the same model, dataset and sample count are reused."""
    from termshift.evaluate import evaluate_image_model

    t0 = time.perf_counter()
    jobs = [("conventional", conventional_spec(b)) for b in CONVENTIONAL_BITS]
    jobs += [("tr", s) for s in (specs if specs is not None else tr_specs(model))]
    int8 = evaluate_image_model(model, "int:bits=8", "reference", dataset=dataset, limit=limit, quiet=True)
    rows = []
    if previous is not None:
        if (previous["model"], previous["dataset"], previous["samples"]) != (model, int8["dataset"], int8["samples"]):
            raise ValueError("the previous report is of another model, dataset or sample count")
        wanted = {str(_parse(s)) for _, s in jobs}
        rows = [r for r in previous["rows"] if r["format"] in wanted]
        done = {r["format"] for r in rows}
        jobs = [(k, s) for k, s in jobs if str(_parse(s)) not in done]
    for i, (kind, spec) in enumerate(jobs):
        r = evaluate_image_model(model, spec, "reference", dataset=dataset, limit=limit, quiet=True)
        rows.append(_row(kind, r))
        if not quiet:
            print(f"[{i + 1}/{len(jobs)}] {spec:<56} acc {100 * r['accuracy']:.2f}%  "
                  f"term pairs {rows[-1]['term_pairs']:,}", file=sys.stderr, flush=True)
    report = {"model": model, "dataset": int8["dataset"], "samples": int8["samples"],
              "int8": {"accuracy": int8["accuracy"], "cycles": int8["total"]["cycles"],
                       "energy_j": int8["total"]["energy_j"], "macs": int8["total"]["ops"]["macs"]},
              "rows": rows, "seconds": time.perf_counter() - t0}
    report["summary"] = summarize(report)
    return report


def summarize(report: dict) -> dict:
    """The best TR setting within the accuracy margin of conventional 8-bit,
    and the term-pair reduction it buys against that baseline."""
    conv = {r["format"]: r for r in report["rows"] if r["kind"] == "conventional"}
    base = conv[str(_parse(conventional_spec(8)))]
    ok = [r for r in report["rows"] if r["kind"] == "tr" and r["accuracy"] >= base["accuracy"] - ACCURACY_MARGIN]
    out = {"conventional_8bit": {"accuracy": base["accuracy"], "term_pairs": base["conventional_term_pairs"]}}
    if ok:
        best = min(ok, key=lambda r: r["term_pairs"])
        out["best_tr_within_margin"] = {**best, "reduction": base["conventional_term_pairs"] / best["term_pairs"]}
    tr_rows = [r for r in report["rows"] if r["kind"] == "tr"]
    top = max(tr_rows, key=lambda r: r["accuracy"]) if tr_rows else None
    if top:
        out["most_accurate_tr"] = {**top, "reduction": base["conventional_term_pairs"] / top["term_pairs"]}
    # For each conventional width, the cheapest TR setting at least as accurate.
    out["same_accuracy"] = []
    for c in sorted(conv.values(), key=lambda r: r["conventional_term_pairs"]):
        match = [r for r in tr_rows if r["accuracy"] >= c["accuracy"]]
        if match:
            m = min(match, key=lambda r: r["term_pairs"])
            out["same_accuracy"].append({"conventional": c["format"], "accuracy": c["accuracy"],
                                         "conventional_term_pairs": c["conventional_term_pairs"],
                                         "tr": m["format"], "tr_accuracy": m["accuracy"], "tr_term_pairs": m["term_pairs"],
                                         "reduction": c["conventional_term_pairs"] / m["term_pairs"]})
    return out


def _parse(text: str):
    from termshift.formats import parse

    return parse(text)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=120)
    conv = sorted((r for r in report["rows"] if r["kind"] == "conventional"), key=lambda r: r["conventional_term_pairs"])
    ax.plot([r["conventional_term_pairs"] for r in conv], [100 * r["accuracy"] for r in conv], "ks-",
            label="conventional (MACs x b_w x 8), b_w = 2..8")
    for r in conv:
        ax.annotate(f"{_parse(r['format'])['bits']}b", (r["conventional_term_pairs"], 100 * r["accuracy"]),
                    textcoords="offset points", xytext=(4, -10), fontsize=7)
    markers = {1: "x", 2: "v", 3: "o", 4: "s", 5: "D", 6: "^", 7: "P", 8: "*"}
    tr_rows = [(r, _parse(r["format"])) for r in report["rows"] if r["kind"] == "tr"]
    series = sorted({(p["bits"], p["group"]) for _, p in tr_rows})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (bits, group) in enumerate(series):
        color = colors[i % len(colors)]
        ax.scatter([], [], s=18, color=color, marker="o", label=f"TR {bits}-bit base, g={group}")
        for td, mk in markers.items():
            pts = [r for r, p in tr_rows if (p["bits"], p["group"], p["data_terms"]) == (bits, group, td)]
            if pts:
                ax.scatter([r["term_pairs"] for r in pts], [100 * r["accuracy"] for r in pts], s=18, color=color,
                           marker=mk, alpha=0.8)
    for td in sorted({p["data_terms"] for _, p in tr_rows}):
        ax.scatter([], [], s=18, color="grey", marker=markers[td], label=f"t_d = {td}")
    base = report["summary"]["conventional_8bit"]["accuracy"]
    ax.axhline(100 * (base - ACCURACY_MARGIN), color="grey", lw=0.8, ls="--", label="conventional 8-bit - 0.3 pt")
    ax.set_xscale("log")
    ax.set_xlabel("term pairs per inference (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(max(0, 100 * base - 12), 100 * base + 2)
    ax.set_title(f"{report['model'].upper()} on {report['dataset']}: accuracy vs term pairs")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, ncol=2, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())


# --------------------------------------------------------------------------- cycles


def engine_cycles(model: str, tr_spec: str, dataset: str = "fashion-mnist", batch: int = 8,
                  check_csim: bool = True) -> dict:
    """Per-inference engine cycles of `model`: TR mode at `tr_spec`, the same
    array in conventional mode (8-bit weights bit-serially), and the INT8
    engine, all from the cycle models at batch `batch` (a multiple of the
    array's 8 rows fills it); optionally one C-sim run confirming the TR count."""
    from termshift.backends import get_backend
    from termshift.backends.cycle_model import INT_ENGINE, gemm_cycles
    from termshift.backends.engine_tr import conventional_cycles
    from termshift.nn.datasets import load_image_data
    from termshift.nn.lower import lower
    from termshift.nn.train import trained_model

    data = load_image_data(dataset)
    net = trained_model(model, data, quiet=True)
    graph = lower(net, data.calibration(), tr_spec)
    layers = []
    shape = tuple(graph.input_shape)
    for node in graph.nodes:
        c = node.cost(shape)
        if c is not None and node.kind in ("linear", "conv2d"):
            m = c.cycles  # batch-1 TR cycles from the format's cost
            rows_per_inf = 1 if node.kind == "linear" else int(np.prod(node.out_shape(shape)[1:]))
            n, k = node.n_out, node.k
            mb = rows_per_inf * batch
            tr_c = _tr_node_cycles(node, mb)
            layers.append({"name": node.name, "M": mb, "N": n, "K": k, "tr": tr_c,
                           "conventional": conventional_cycles(mb, n, k, 8),
                           "int8_engine": gemm_cycles(INT_ENGINE, mb, n, k), "tr_batch1": m})
        shape = node.out_shape(shape)
    tot = {key: sum(L[key] for L in layers) for key in ("tr", "conventional", "int8_engine")}
    out = {"model": model, "dataset": data.name, "format": tr_spec, "batch": batch, "layers": layers,
           "per_inference": {k: v / batch for k, v in tot.items()},
           "speedup_vs_conventional": tot["conventional"] / tot["tr"], "speedup_vs_int8_engine": tot["int8_engine"] / tot["tr"]}
    if check_csim:
        x = data.x_test[:batch]
        sim = graph.run(x, get_backend("csim", build="fast"))
        ref = graph.run(x, get_backend("reference"))
        out["csim_cycles"] = int(sum(sim.cycles.values()))
        out["csim_equals_model"] = sim.cycles == ref.cycles and out["csim_cycles"] == tot["tr"]
        out["csim_equals_reference_outputs"] = bool(np.array_equal(sim.output, ref.output))
    return out


def _tr_node_cycles(node, m: int) -> int:
    from termshift.backends.engine_tr import tr_cycles
    from termshift.formats import parse

    spec = parse(node.fmt)
    return tr_cycles(m, node.payload["counts"], spec["group"], node.payload["terms"].shape[2])


# --------------------------------------------------------------------------- speed


def bench_term_reveal(values: int = 16 * 2**20, group: int = 16, budget: int = 8, repeats: int = 3,
                      seed: int = 0) -> dict:
    """term_reveal on `values` int8 codes vs uniform INT8 quantization of the
    same tensor (float64 -> int8), best of `repeats`, one process."""
    from termshift.formats import tr, uniform

    rng = np.random.default_rng(seed)
    x = rng.normal(size=values)
    s = uniform.weight_scale(x, 8, "tensor")
    q = uniform.quantize(x, s, 8)

    def best(fn):
        t = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
        return min(t)

    t_quant = best(lambda: uniform.quantize(x, s, 8))
    t_reveal = best(lambda: tr.term_reveal(q, group, budget, "hese"))
    t_data = best(lambda: tr.truncate_data(q, 3, "hese"))
    return {"values": values, "group": group, "budget": budget,
            "int8_quantize_values_per_s": values / t_quant, "term_reveal_values_per_s": values / t_reveal,
            "truncate_data_values_per_s": values / t_data, "term_reveal_slowdown": t_reveal / t_quant}


# --------------------------------------------------------------------------- CLI


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m termshift.nn.tr_results", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sweep", help="accuracy vs term pairs: conventional 2..8 bit vs a TR grid; JSON + PNG")
    s.add_argument("--model", default="mlp", choices=sorted(TR_GRID))
    s.add_argument("--dataset", default="fashion-mnist")
    s.add_argument("--limit", type=int)
    s.add_argument("--out", type=Path, default=Path("out/tr"))
    s.add_argument("--reuse", type=Path, help="a previous sweep JSON whose matching rows are kept, not re-run")
    c = sub.add_parser("cycles", help="engine cycles: TR mode vs conventional mode vs the INT8 engine")
    c.add_argument("--model", default="mlp", choices=sorted(TR_GRID))
    c.add_argument("--format", default=None, help="TR spec (default: the sweep's best within margin, else tr)")
    c.add_argument("--dataset", default="fashion-mnist")
    c.add_argument("--batch", type=int, default=8)
    b = sub.add_parser("bench", help="term_reveal on 16M int8 values vs INT8 quantization")
    b.add_argument("--values", type=int, default=16 * 2**20)
    args = p.parse_args(argv)
    if args.cmd == "sweep":
        previous = json.loads(args.reuse.read_text()) if args.reuse else None
        report = run_sweep(args.model, args.dataset, args.limit, previous=previous)
        write_json_atomic(args.out / f"{args.model}_sweep.json", report)
        plot(report, args.out / f"{args.model}_accuracy_vs_term_pairs.png")
        print(json.dumps(report["summary"], indent=1))
        print(f"wrote {args.out / f'{args.model}_sweep.json'} and {args.out / f'{args.model}_accuracy_vs_term_pairs.png'}")
    elif args.cmd == "cycles":
        fmt = args.format or "tr"
        print(json.dumps(engine_cycles(args.model, fmt, args.dataset, args.batch), indent=1))
    else:
        print(json.dumps(bench_term_reveal(args.values), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
