"""The BFP precision comparison: the per-layer optimizer (termshift.search.bfp)
against the best uniform (block, mantissa) and BitQ's selection rule, on the
image models, with a table, a JSON report and a plot of accuracy vs bits
moved and vs modeled energy.

    python -m termshift.search.bfp_cli --model cnn --model mlp --out out/bfp

Protocol (docs/formats/bfp.md, section 9): every selection is made on the
validation split (the last --val training images, never test data); every
reported accuracy is on the test set.

- best uniform: the cheapest of the 42 uniform (E8M0) settings whose
  validation accuracy is at least INT8's minus --tolerance points, and the
  same with every setting at its narrowest lossless exponent (same
  accuracies, fewer bits);
- optimizer: the cheapest plan it confirms within --tolerance points of the
  best uniform's validation accuracy (equal accuracy), descending from its
  frontier and from the best uniform setting, confirmed on the --confirm
  training images before the validation ones, timed from its statistics to
  its last real check; also the plan it finds against INT8's
  accuracy minus the tolerance (what `bfp:search` does alone);
- BitQ: the lowest (100 - acc)/100 + 0.2 DM/DM_max over one candidate list
  evaluated on the validation split (the uniform grid, the optimizer's proxy
  frontier and every plan it checked), and the most accurate entry of the
  same list within BitQ's pick's DM, for an equal-DM comparison.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

from termshift.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic
from termshift.search import bfp as sb

IMAGE_MODELS = ("mlp", "cnn")


def _graph_figures(graph, x, y, backend) -> dict:
    from termshift.energy.model import summarize

    t = summarize(graph.costs())["total"]
    acc = float((graph.run(x, backend).output.argmax(1) == y).mean())
    return {"accuracy": acc, "bits": int(t["weight_bits"] + t["activation_bits"]), "energy_j": t["energy_j"],
            "weight_bits": int(t["weight_bits"]), "bits_per_weight": t["bits_per_weight"]}


def _plan_specs(ev: sb.PlanEvaluator, plan: tuple) -> dict:
    return {ev.layers[li].stats.name: ev.candidates[j].label() for li, j in enumerate(plan)}


def compare_model(model_name: str, dataset: str = "auto", metric: str = "bits", tolerance: float = 0.2,
                  n_val: int = 10000, time_budget: float = 60.0, backend: str = "reference",
                  test_limit: int | None = None, n_confirm: int = 20000, log=print) -> dict:
    """Run the whole comparison on one image model; returns the report dict."""
    from termshift.backends import get_backend
    from termshift.nn.datasets import load_image_data
    from termshift.nn.lower import lower
    from termshift.nn.train import float_accuracy, trained_model

    if model_name not in IMAGE_MODELS:
        raise ValueError(f"the BFP comparison runs on image models ({', '.join(IMAGE_MODELS)}), got {model_name!r}")
    if metric not in sb.METRICS:
        raise ValueError(f"metric must be one of {', '.join(sb.METRICS)}, got {metric!r}")
    data = load_image_data(dataset)
    model = trained_model(model_name, data, quiet=True)
    be = get_backend(backend)
    xt, yt = data.x_test[:test_limit], data.y_test[:test_limit]

    # The INT8-target search (what `bfp:search` does on its own), timed by search_model.
    ms = sb.search_model(model, data, tolerance, metric, n_val, time_budget, backend, n_confirm)
    ev, layers, fixed = ms.evaluator, ms.layers, ms.fixed
    int8_graph = lower(model, data.calibration(), "int:bits=8")
    n_val = sum(len(y) for y in ev.y)
    target = ms.int8_val - tolerance / 100
    log(f"[{model_name}] INT8 validation accuracy {100 * ms.int8_val:.2f} %, target {100 * target:.2f} % "
        f"({n_val} validation images, metric {metric})")
    log(f"[{model_name}] search against INT8 - {tolerance} points: {ms.seconds:.1f} s, plan "
        f"{_plan_specs(ev, ms.result.plan)}, validation {100 * ev.accuracy(ms.result.plan):.2f} %")

    # --- uniform grid on the validation split, checked against the same target
    uni = []
    for j, p in enumerate(sb.CANDIDATES):
        plan = sb.uniform_plan(layers, p)
        uni.append({"label": p.label(), "plan": plan, "val": ev.accuracy(plan), "meets": ev.meets(plan, tolerance / 100),
                    "cost": sb.plan_cost(layers, plan, metric, fixed), "bits": sb.plan_cost(layers, plan, "bits")})
    meeting = [u for u in uni if u["meets"]]
    best_uni = min(meeting, key=lambda u: u["cost"]) if meeting else max(uni, key=lambda u: u["val"])
    # The same grid with every setting at its narrowest lossless exponent: the
    # same integers out of the graph (so the same accuracies and checks), fewer
    # bits; the baseline that separates per-layer choice from exponent width.
    for u in uni:
        q = sb.narrowest_lossless(layers, sb.CANDIDATES[u["plan"][0]])
        u["narrow"] = sb.uniform_plan(layers, q)
        u["narrow_cost"] = sb.plan_cost(layers, u["narrow"], metric, fixed)
    best_uni_e = min(meeting, key=lambda u: u["narrow_cost"]) if meeting else best_uni

    # --- the optimizer at equal accuracy: within --tolerance points of the best
    # uniform's validation accuracy (paired with its predictions), timed from its statistics on
    # (a fresh evaluator, so nothing the first search or the sweep ran is reused).
    t0 = time.perf_counter()
    stats = sb.layer_statistics(model, data.calibration(), data.y_train[-len(data.calibration()):])
    layers = sb.layer_table(ev.graph, stats)
    ev2 = sb.PlanEvaluator(ev.graph, layers, data.x_train[-n_val:], data.y_train[-n_val:], be)
    t_setup = time.perf_counter() - t0
    ev2.set_reference(ev2.graph_of(best_uni["plan"]))  # the target: not timed
    held = sb.confirm_split(data, n_val, n_confirm)
    conf = None
    if held is not None:
        conf = sb.PlanEvaluator(ev.graph, layers, *held, be, cache_bytes=1 << 28)
        conf.set_reference(conf.graph_of(best_uni["plan"]))
    t1 = time.perf_counter()
    res = sb.search(layers, ev2, tolerance / 100, metric, max(1.0, time_budget - t_setup), fixed,
                    starts=(best_uni["plan"],), confirm=conf)
    search_s = t_setup + time.perf_counter() - t1
    opt_val = ev2.accuracy(res.plan)
    log(f"[{model_name}] search at the best uniform's accuracy ({best_uni['label']}, {100 * best_uni['val']:.2f} % "
        f"- {tolerance} points, {'met' if res.met_target else 'NOT met'}): "
        f"{search_s:.1f} s ({t_setup:.1f} s statistics and proxy, {len(res.steps)} real checks, frontier of "
        f"{len(res.frontier)} plans); plan {_plan_specs(ev, res.plan)}, validation {100 * opt_val:.2f} %")

    # --- BitQ's rule on one candidate list, every entry evaluated on the whole
    # validation split: the uniform grid, the proxy frontier and every plan
    # either search checked. The optimizer's answer at BitQ's DM is the most
    # accurate entry of the same list within that DM.
    pool = {u["plan"]: u["val"] for u in uni}
    for plan in [pt.plan for pt in ms.result.frontier] + [st[1] for st in ms.result.steps + res.steps]:
        pool.setdefault(plan, ev.accuracy(plan))
    dm = {plan: sb.plan_cost(layers, plan, "bits") for plan in pool}
    dm_max = max(dm.values())
    bitq_plan = min(pool, key=lambda pl: sb.bitq_score(pool[pl], dm[pl], dm_max))
    at_bitq = max((pl for pl in pool if dm[pl] <= dm[bitq_plan]), key=lambda pl: (pool[pl], -dm[pl]))

    # --- test set
    def on_test(plan):
        return _graph_figures(ev.graph_of(plan), xt, yt, be)

    float_acc, _ = float_accuracy(model, xt, yt)
    rows = {
        "int8": {**_graph_figures(int8_graph, xt, yt, be), "val": ms.int8_val},
        "best_uniform": {**on_test(best_uni["plan"]), "val": best_uni["val"], "plan": best_uni["label"]},
        "best_uniform_narrow_e": {**on_test(best_uni_e["narrow"]), "val": ev.accuracy(best_uni_e["narrow"]),
                                  "plan": ev.candidates[best_uni_e["narrow"][0]].label()},
        "optimizer": {**on_test(res.plan), "val": opt_val, "plan": _plan_specs(ev, res.plan)},
        "optimizer_int8_target": {**on_test(ms.result.plan), "val": ev.accuracy(ms.result.plan),
                                  "plan": _plan_specs(ev, ms.result.plan)},
        "bitq": {**on_test(bitq_plan), "val": pool[bitq_plan], "plan": _plan_specs(ev, bitq_plan),
                 "score": sb.bitq_score(pool[bitq_plan], dm[bitq_plan], dm_max)},
        "optimizer_at_bitq_dm": {**on_test(at_bitq), "val": ev.accuracy(at_bitq), "plan": _plan_specs(ev, at_bitq)},
    }
    grid = []
    for u in uni:
        grid.append({"label": u["label"], "val": u["val"], **on_test(u["plan"])})
    key = "bits" if metric == "bits" else "energy_j"
    saving = 1.0 - rows["optimizer"][key] / rows["best_uniform"][key]
    saving_e = 1.0 - rows["optimizer"][key] / rows["best_uniform_narrow_e"][key]
    report = {
        "model": model_name, "dataset": data.name, "metric": metric, "tolerance_points": tolerance,
        "validation_images": n_val, "confirm_images": 0 if conf is None else sum(len(y) for y in conf.y),
        "hold_out": None if conf is None else {"optimizer": conf.accuracy(res.plan),
                                               "best_uniform": conf.accuracy(best_uni["plan"])},
        "test_images": int(len(yt)), "target_val_accuracy": target,
        "float_test_accuracy": float_acc, "search_seconds": search_s, "search_evaluations": len(res.steps),
        "frontier_size": len(res.frontier), "met_target": res.met_target, "rows": rows, "uniform": grid,
        "saving_vs_best_uniform": saving, "saving_vs_best_uniform_narrow_e": saving_e, "int8_target_search_seconds": ms.seconds,
        "steps": [{"phase": ph, "plan": _plan_specs(ev, pl), "cost": c, "meets": ok} for ph, pl, c, ok in res.steps],
    }
    log(format_report(report))
    return report


def format_report(r: dict) -> str:
    unit = "bits moved" if r["metric"] == "bits" else "energy"
    lines = [f"{r['model'].upper()} on {r['dataset']}: per-layer BFP vs uniform vs BitQ "
             f"(selection on {r['validation_images']} validation images, target {100 * r['target_val_accuracy']:.2f} %; "
             f"test set {r['test_images']} images; float {100 * r['float_test_accuracy']:.2f} %)",
             f"{'configuration':<22} {'val %':>7} {'test %':>7} {'bits/inf':>11} {'b/weight':>8} {'energy uJ':>10}  plan"]
    for name, row in r["rows"].items():
        plan = row.get("plan", "")
        plan = plan if isinstance(plan, str) else " ".join(f"{k}:{v}" for k, v in plan.items())
        val = f"{100 * row['val']:7.2f}" if "val" in row else f"{'':>7}"
        lines.append(f"{name:<22} {val} {100 * row['accuracy']:7.2f} {row['bits']:>11,} {row['bits_per_weight']:8.2f} "
                     f"{row['energy_j'] * 1e6:10.3f}  {plan}")
    lines.append(f"optimizer: {100 * r['saving_vs_best_uniform']:.1f} % less {unit} than the best uniform setting "
                 f"({100 * r['saving_vs_best_uniform_narrow_e']:.1f} % at its narrowest lossless exponent); "
                 f"search {r['search_seconds']:.1f} s, {r['search_evaluations']} real evaluations, "
                 f"frontier {r['frontier_size']} plans")
    return "\n".join(lines)


_ROW_NAMES = {"int8": "INT8 (int:bits=8)", "best_uniform": "best uniform BFP",
              "best_uniform_narrow_e": "best uniform, narrowest lossless exponent",
              "optimizer": "optimizer, within tol of best uniform", "optimizer_int8_target": "optimizer, INT8 - tol",
              "bitq": "BitQ rule", "optimizer_at_bitq_dm": "optimizer at BitQ's DM"}


def format_markdown(reports: list[dict]) -> str:
    """The reports as Markdown tables (what docs/results/bfp.md shows)."""
    out = []
    for r in reports:
        t = r["rows"]
        out += [f"### {r['model'].upper()} on {r['dataset']}", "",
                f"Validation: {r['validation_images']} images, target {100 * r['target_val_accuracy']:.2f} % "
                f"(INT8 {100 * t['int8']['val']:.2f} % - {r['tolerance_points']} points); test: {r['test_images']} "
                f"images; float model {100 * r['float_test_accuracy']:.2f} % on test"
                + (f"; hold-out confirmation on {r['confirm_images']} training images before the validation ones "
                   f"(optimizer {100 * r['hold_out']['optimizer']:.2f} %, best uniform "
                   f"{100 * r['hold_out']['best_uniform']:.2f} % there)." if r.get("hold_out") else "."), "",
                "| configuration | plan | val % | test % | bits moved / inference | bits / weight | energy uJ |",
                "|---|---|---|---|---|---|---|"]
        for key, row in t.items():
            plan = row.get("plan", "")
            plan = plan if isinstance(plan, str) else ", ".join(f"{k} {v}" for k, v in plan.items())
            out.append(f"| {_ROW_NAMES.get(key, key)} | {plan} | {100 * row['val']:.2f} | {100 * row['accuracy']:.2f} | "
                       f"{row['bits']:,} | {row['bits_per_weight']:.2f} | {row['energy_j'] * 1e6:.2f} |")
        out += ["", f"Optimizer vs best uniform: {100 * r['saving_vs_best_uniform']:.1f} % fewer "
                    f"{'bits moved' if r['metric'] == 'bits' else 'joules'} "
                    f"({100 * r['saving_vs_best_uniform_narrow_e']:.1f} % against the best uniform at its narrowest "
                    f"lossless exponent); search {r['search_seconds']:.1f} s "
                    f"({r['search_evaluations']} real checks, frontier {r['frontier_size']} plans); the INT8-target "
                    f"search alone took {r['int8_target_search_seconds']:.1f} s.", "",
                f"<details><summary>all {len(r['uniform'])} uniform settings</summary>", "",
                "| setting | val % | test % | bits moved | energy uJ |", "|---|---|---|---|---|"]
        for g in sorted(r["uniform"], key=lambda g: g["bits"]):
            out.append(f"| {g['label']} | {100 * g['val']:.2f} | {100 * g['accuracy']:.2f} | {g['bits']:,} | "
                       f"{g['energy_j'] * 1e6:.2f} |")
        out += ["", "</details>", ""]
    return "\n".join(out)


def plot(reports: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(reports), 2, figsize=(11, 4.2 * len(reports)), dpi=110, squeeze=False)
    marks = {"int8": ("k", "X", "INT8"), "best_uniform": ("tab:blue", "o", "best uniform"),
             "bitq": ("tab:green", "^", "BitQ rule"), "optimizer_at_bitq_dm": ("tab:orange", "s", "optimizer at BitQ's DM"),
             "optimizer_int8_target": ("tab:purple", "D", "optimizer, INT8 - tol target"),
             "optimizer": ("tab:red", "*", "optimizer at best uniform's accuracy")}
    for row, r in zip(axes, reports):
        for ax, key, scale, label in ((row[0], "bits", 1e-6, "bits moved per inference (Mbit)"),
                                      (row[1], "energy_j", 1e6, "modeled energy per inference (uJ)")):
            grid = r["uniform"]
            for m in range(2, 9):
                pts = [g for g in grid if g["label"].endswith(f"m{m}")]
                ax.scatter([g[key] * scale for g in pts], [100 * g["accuracy"] for g in pts], s=14, alpha=0.6,
                           label=f"uniform m={m}" if key == "bits" else None)
            for name, (color, marker, text) in marks.items():
                g = r["rows"][name]
                # BitQ's triangle is drawn large so an equal pick of the optimizer (a square) stays visible on it.
                size = {"*": 110, "^": 150}.get(marker, 55)
                ax.scatter([g[key] * scale], [100 * g["accuracy"]], c=color, marker=marker, s=size,
                           edgecolors="k", linewidths=0.5, zorder=5, label=text if key == "bits" else None)
            lo = min(100 * r["rows"]["int8"]["accuracy"] - 3, 100 * r["rows"]["bitq"]["accuracy"] - 1)
            ax.set_ylim(lo, 100 * max(g["accuracy"] for g in grid) + 0.6)
            ax.set_xlabel(label)
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(f"{r['model'].upper()} on {r['dataset']}")
            ax.grid(True, alpha=0.3)
        row[0].legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="termshift bfp-search", description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--model", action="append", choices=IMAGE_MODELS, help="repeatable; default: mlp and cnn")
    parser.add_argument("--dataset", default="auto", help="fashion-mnist, digits or auto")
    parser.add_argument("--metric", default="bits", choices=sb.METRICS, help="what the optimizer minimizes")
    parser.add_argument("--tolerance", type=float, default=0.2, help="points below INT8's validation accuracy allowed")
    parser.add_argument("--val", type=int, default=10000, help="validation images (the last N training images)")
    parser.add_argument("--confirm", type=int, default=20000,
                        help="hold-out images (just before the validation ones) the answer is confirmed on; 0: none")
    parser.add_argument("--time-budget", type=float, default=60.0, help="seconds for the optimizer")
    parser.add_argument("--backend", default="reference", choices=("reference", "csim"))
    parser.add_argument("--test-limit", type=int, help="score only the first N test images")
    parser.add_argument("--out", type=Path, default=Path("out/bfp"))
    args = parser.parse_args(argv)
    if args.confirm < 0:
        parser.error("--confirm must be 0 or more")
    if args.val < 1 or (args.test_limit is not None and args.test_limit < 1) or args.time_budget <= 0:
        parser.error("--val, --test-limit and --time-budget must be positive")
    try:
        reports = [compare_model(m, args.dataset, args.metric, args.tolerance, args.val, args.time_budget,
                                 args.backend, args.test_limit, args.confirm) for m in (args.model or list(IMAGE_MODELS))]
    except (ValueError, ImportError, OSError) as exc:
        print(f"bfp-search: error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "bfp_search.json", {"reports": reports})
    write_text_atomic(args.out / "bfp_search.md", format_markdown(reports))
    plot(reports, args.out / "bfp_search.png")
    print(f"wrote {args.out / 'bfp_search.json'}, {args.out / 'bfp_search.md'} and {args.out / 'bfp_search.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
