"""`python -m termshift.nn.teq_results`: the TEQ results printed side by side
(docs/formats/teq.md, section 12): float, INT8 and TEQ (adaptive widths with
beta off and on, fixed widths) on each model's test set, modeled energy vs the
INT8 MAC engine, and the premise report of each model's tensors.
"""

from __future__ import annotations

import time

import numpy as np

from termshift.formats import teq
from termshift.nn.gemm_teq import evaluate_teq, model_tensors



_DOT_OPS = ("macs", "teq_pairs", "teq_bank_incs", "teq_recons", "teq_lut_reads")


def dot_energy_pj(ops: dict) -> float:
    """Energy of the GEMM arithmetic alone (MACs, or the TEQ pairs, bank
    increments, reconstructions and input lookups): the paper's 66% figure
    compares this part; requant, pooling, SRAM and DRAM are left out."""
    from termshift.energy.table import op_energy_pj

    return sum(n * op_energy_pj(k) for k, n in ops.items() if k in _DOT_OPS)


def dot_product_energy_j(report: dict) -> float:
    return dot_energy_pj(report["total"]["ops"]) * 1e-12


def layer_breakdown(teq_row: dict, int_row: dict) -> list[str]:
    """Per layer: reduction length, width, reconstruction steps per output and
    the dot-product energy per inference next to the INT8 engine's."""
    lines = []
    int_layers = {L["name"]: L for L in int_row["layers"]}
    fits = {f["name"]: f for f in teq_row.get("fits", [])}
    for L in teq_row["layers"]:
        if L["name"] not in fits:
            continue
        i8 = dot_energy_pj(int_layers[L["name"]])
        t = dot_energy_pj(L)
        f = fits[L["name"]]
        lines.append(f"    {L['name']:<6} K={f['k']:<5} {f['bits']} bits  {f['n_recon']:>3} reconstruction steps/output  "
                     f"RMAE w {f['rmae_w']:.3f} a {f['rmae_a']:.3f}  dot {t:>10.1f} pJ vs INT8 {i8:>10.1f} pJ "
                     f"({(1 - t / i8) * 100:+.1f}% saved)")
    return lines


def backends_agree(model_name: str, spec: str, dataset: str = "auto", exact_samples: int = 500) -> dict:
    """Every engine output of the whole test set through the numpy reference
    and the fast C-sim, and of the first `exact_samples` images through the
    exact (ap_types) C-sim: counts of outputs compared and of mismatches."""
    from termshift.backends import get_backend
    from termshift.nn.datasets import load_image_data
    from termshift.nn.gemm_teq import lower_teq
    from termshift.nn.train import trained_model

    data = load_image_data(dataset)
    graph = lower_teq(trained_model(model_name, data, quiet=True), data.calibration(), spec)
    out = {"spec": spec}
    for build, x in (("fast", data.x_test), ("exact", data.x_test[:exact_samples])):
        ref = graph.run(x, get_backend("reference"), keep_raw=True)
        sim = graph.run(x, get_backend("csim", build=build), keep_raw=True)
        out[build] = {"samples": int(len(x)), "outputs": int(sum(v.size for v in ref.raw.values())),
                      "mismatches": int(sum(np.count_nonzero(ref.raw[k] != sim.raw[k]) for k in ref.raw)),
                      "cycles_equal": ref.cycles == sim.cycles}
    return out


def teq_results(models=("mlp", "cnn"), backend: str = "csim", build: str = "fast", dataset: str = "auto",
                limit: int | None = None, fixed=(4, 5), quiet: bool = True, options: str = "") -> dict:
    """Float, INT8 and TEQ (adaptive with beta off and on, and fixed widths)
    on each model's test set, with the premise report of its tensors;
    `options`: spec text added to every teq row, e.g. "fit=rmae,granularity=tensor"
    (the defaults before they changed, docs/formats/teq.md section 12)."""
    from termshift.evaluate import evaluate_image_model
    from termshift.nn.datasets import load_image_data
    from termshift.nn.train import trained_model

    out = {}
    for name in models:
        rows = [evaluate_image_model(name, "float", dataset=dataset, limit=limit, quiet=quiet),
                evaluate_image_model(name, "int:bits=8", backend, dataset=dataset, build=build, limit=limit,
                                     quiet=quiet)]
        for fmt in ["teq", "teq:beta=on"] + [f"teq:bits={b}" for b in fixed]:
            if options:
                fmt += ("," if ":" in fmt else ":") + options
            rows.append(evaluate_teq(name, fmt, backend, dataset=dataset, build=build, limit=limit, quiet=quiet))
        data = load_image_data(dataset)
        t0 = time.perf_counter()
        premise = teq.premise_report(model_tensors(trained_model(name, data, quiet=True), data.calibration()))
        premise["seconds"] = time.perf_counter() - t0
        widths = "/".join(map(str, rows[2]["widths"]))
        agree_spec = f"teq:widths={widths}" + ("," + options if options else "")
        out[name] = {"rows": rows, "premise": premise, "agree": backends_agree(name, agree_spec, dataset)}
    return out


def format_results(results: dict) -> str:
    lines = []
    for name, r in results.items():
        rows = r["rows"]
        fl, i8 = rows[0], rows[1]
        e8, d8 = i8["total"]["energy_j"], dot_product_energy_j(i8)
        lines += [f"{name.upper()} on {fl['dataset']} ({fl['samples']} test images, backend {i8['backend']})",
                  f"{'format':<30} {'widths':<11} {'bits/w':>6} {'acc %':>6} {'d float':>7} {'energy uJ':>9} "
                  f"{'vs INT8':>7} {'dot uJ':>7} {'vs INT8':>7} {'cycles':>10} {'search s':>8} {'fit s':>6}",
                  "-" * 124]
        for row in rows:
            t = row["total"]
            dot = dot_product_energy_j(row)
            widths = "/".join(map(str, row.get("widths", []))) or "-"
            search = row.get("search", {})
            lines.append(
                f"{row['format'][:30]:<30} {widths:<11} {t['bits_per_weight']:>6.2f} {100 * row['accuracy']:>6.2f} "
                f"{100 * (row['accuracy'] - fl['accuracy']):>+7.2f} {t['energy_j'] * 1e6:>9.3f} "
                f"{(1 - t['energy_j'] / e8) * 100 if row is not fl else float('nan'):>6.1f}% "
                f"{dot * 1e6:>7.3f} {(1 - dot / d8) * 100 if dot else float('nan'):>6.1f}% {t['cycles']:>10,} "
                f"{search.get('seconds', float('nan')):>8.1f} {row.get('fit_seconds', float('nan')):>6.1f}")
        lines.append("  ('vs INT8': energy saved relative to the INT8 MAC engine; 'dot': GEMM arithmetic only)")
        lines.append(f"  per layer, {rows[2]['format']}:")
        lines += layer_breakdown(rows[2], i8)
        for build in ("fast", "exact"):
            a = r["agree"][build]
            verdict = "identical" if a["mismatches"] == 0 and a["cycles_equal"] else f"{a['mismatches']} MISMATCHES"
            lines.append(f"  reference vs C-sim {build} ({r['agree']['spec']}, {a['samples']} images): "
                         f"{a['outputs']:,} engine outputs, {verdict}")
        lines += format_premise(r["premise"])
        lines.append("")
    return "\n".join(lines)


def format_premise(p: dict, indent: str = "  ") -> list[str]:
    """The premise report's lines: the share per width, then each tensor's RMAEs."""
    shares = ", ".join(f"{b} bits {100 * v:.0f}%" for b, v in p["share"].items())
    lines = [f"{indent}premise: exponential grid beats uniform (RMAE, each fitted alone) on {shares} of "
             f"{len(p['rows']) // len(p['share'])} tensors"]
    by_tensor: dict = {}
    for row in p["rows"]:
        by_tensor.setdefault(row["tensor"], []).append(f"{row['rmae_exp']:.3f}/{row['rmae_uniform']:.3f}")
    for tensor, cells in by_tensor.items():
        lines.append(f"{indent}  {tensor:<16} RMAE exp/uniform at {'/'.join(str(b) for b in p['share'])} bits: "
                     + "  ".join(cells))
    return lines


def sequence_model_tensors(name: str) -> dict:
    """The premise report's tensors of the LSTM or MiniLM as teq's defaults
    quantize them: weights and the 8-bit input codes of every GEMM (MiniLM:
    smoothed with teq's default strength)."""
    if name == "lstm":
        from termshift.nn import lstm
        from termshift.nn.lstm_model import export_params, trained_lstm
        from termshift.nn.lstm_quant import calibrate, teq_tensors

        corpus = lstm.load_corpus("austen")
        vocab = lstm.char_vocab(corpus.train)
        model = trained_lstm(corpus.name, lstm.encode_chars(corpus.train, vocab), vocab, quiet=True)
        params = export_params(model)
        return teq_tensors(params, calibrate(params, lstm.calibration_streams(corpus, vocab)))
    if name == "minilm":
        from termshift.nn import minilm
        from termshift.nn.minilm_quant import teq_tensors

        return teq_tensors(minilm._encoder("fp32"), minilm._calibration("fp32", minilm.N_CALIB),
                           act=minilm.DEFAULT_ACT, smooth=minilm.default_smooth("teq"))
    raise ValueError(f"premise tensors: expected lstm or minilm, got {name!r}")


def sequence_premise(models=("lstm", "minilm"), bits=(3, 4, 5, 6)) -> dict:
    out = {}
    for name in models:
        t0 = time.perf_counter()
        report = teq.premise_report(sequence_model_tensors(name), bits)
        report["seconds"] = time.perf_counter() - t0
        out[name] = report
    return out


def main(argv=None) -> int:
    import argparse

    from termshift.atomic import write_json_atomic

    ap = argparse.ArgumentParser(description="TEQ results: accuracy, bits and modeled energy vs float and INT8.")
    ap.add_argument("--models", nargs="*", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    ap.add_argument("--premise", nargs="*", default=[], choices=["lstm", "minilm"],
                    help="also the premise report of these models' tensors (docs/formats/teq.md section 13)")
    ap.add_argument("--backend", default="csim", choices=["reference", "csim"])
    ap.add_argument("--dataset", default="auto")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N test images")
    ap.add_argument("--json", type=str, default=None, help="also write the results here")
    ap.add_argument("--options", default="",
                    help="spec text added to every teq row, e.g. fit=rmae,granularity=tensor (the old defaults)")
    args = ap.parse_args(argv)
    res = teq_results(tuple(args.models), args.backend, dataset=args.dataset, limit=args.limit,
                      options=args.options)
    print(format_results(res))
    if args.premise:
        res["premise"] = sequence_premise(tuple(args.premise))
        for name, p in res["premise"].items():
            print(f"{name.upper()} ({p['seconds']:.1f} s)")
            print("\n".join(format_premise(p)))
    if args.json:
        def plain(v):
            if isinstance(v, dict):
                return {str(k): plain(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            return v.item() if isinstance(v, np.generic) else v

        write_json_atomic(args.json, plain(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
