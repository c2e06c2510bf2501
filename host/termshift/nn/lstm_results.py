"""The LSTM language model in every format: bits/char on the Austen test
split and per-character ops, cycles and modeled energy, with the per-GEMM
searches (adaptive teq widths, bfp:search plan) run on validation text.
docs/results/lstm.md is what it printed.

    python -m termshift.nn.lstm_results --chars 50000 --json out/lstm/results.json

Every quantized row runs on the reference backend (reference == C-sim is
checked separately: `termshift agree --model lstm --format F --limit N`).
`--chars N` scores the first N test characters as evaluate_lstm's `limit`
does (128 streams after 100 warm-up steps); the float row scores the same
streams. The JSON is rewritten after every row, so a long run can be
followed and an interrupted one keeps what it finished.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from termshift.atomic import write_json_atomic

POT = ["pot:bits=4", "pot:bits=4,rounding=log", "pot:bits=3", "pot:bits=3,rounding=log", "pot:bits=4,round=gptq",
       "pot:bits=3,round=gptq"]
# The TR settings: the conventional 8-bit product (every term of 8-bit
# weights and data: what "conventional" costs, MACs x 8 x 8 term pairs), the
# default (4-bit base weights), then 6- and 8-bit base weights with larger
# budgets per group of 16 and 4..5 data terms (4-bit bases lose > 10 % here).
TR = ["tr:bits=8,group=1,budget=8,data_terms=8,encoding=binary", "tr", "tr:bits=6,group=16,budget=20,data_terms=4",
      "tr:bits=6,group=16,budget=24,data_terms=5", "tr:bits=8,group=16,budget=24,data_terms=4"]
TEQ = ["teq:bits=4", "teq:bits=5"]
BFP_TIME_BUDGET = 240.0  # seconds of real checks after the uniform scan (search.bfp.search's budget)
# Uniform bfp on test: the default and one narrower mantissa; the search's
# uniform scan covers the whole candidate space on validation (JSON "uniform_checked").
BFP = ["bfp", "bfp:block=32,mantissa=5"]


def _row(name: str, spec: str, bpc: float, summary: dict, seconds: float, **extra) -> dict:
    t = summary["total"]
    return {"row": name, "format": spec, "bits_per_char": bpc, "ops": t["ops"], "cycles": t["cycles"],
            "energy_uj": t["energy_j"] * 1e6, "weight_bits": t["weight_bits"],
            "activation_bits": t["activation_bits"], "seconds": seconds, **extra}


def run(chars: int | None, out: Path | None, backend: str = "reference", searches: bool = True,
        only: set | None = None, quiet: bool = False) -> dict:
    from termshift.backends import get_backend
    from termshift.energy.model import summarize
    from termshift.evaluate import float_costs
    from termshift.nn import lstm, lstm_search
    from termshift.nn.lstm_model import export_params, torch_logits, trained_lstm
    from termshift.nn.lstm_quant import calibrate, lstm_costs, quantize_lstm

    t_all = time.perf_counter()
    be = get_backend(backend)
    corpus = lstm.load_corpus("austen")
    vocab = lstm.char_vocab(corpus.train)
    model = trained_lstm(corpus.name, lstm.encode_chars(corpus.train, vocab), vocab, quiet=True)
    params = export_params(model)
    stats = calibrate(params, lstm.calibration_streams(corpus, vocab))
    streams = lstm.eval_streams(lstm.encode_chars(corpus.split(lstm.EVAL_SPLIT), vocab), chars)
    report = {"chars": streams.tokens, "streams": int(streams.inputs.shape[0]), "backend": backend, "rows": [],
              "searches": {}}

    def save():
        report["seconds"] = time.perf_counter() - t_all
        if out is not None:
            write_json_atomic(out, report)

    def log(msg):
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    def quant_row(name, spec, qm, **extra):
        if only and name not in only and name != "int8":
            return
        t0 = time.perf_counter()
        bpc = lstm.bits_per_char(lstm.quant_step(qm, be), streams)
        r = _row(name, qm.fmt if spec is None else spec, bpc, summarize(qm.costs()), time.perf_counter() - t0, **extra)
        report["rows"].append(r)
        log(f"{name:<10} {r['format']:<60} {bpc:.4f} bits/char  {r['energy_uj']:.1f} uJ  {r['seconds']:.0f} s")
        save()

    if not only or "float" in only:  # (--only int8 ... skips it; int8 always runs: the ratios need it)
        t0 = time.perf_counter()
        bpc = lstm.bits_per_char(lambda ids, st: torch_logits(model, ids, st), streams)
        hidden = [L.hidden for L in params.layers]
        report["rows"].append(_row("float", "float", bpc, summarize(float_costs(lstm_costs(
            params.vocab, params.embed, hidden, 8))), time.perf_counter() - t0))
        log(f"float {bpc:.4f}")
        save()
    quant_row("int8", None, quantize_lstm(params, stats, "int:bits=8"))
    if searches:
        val = lstm_search.validation_streams(corpus, vocab)
        report["validation_chars"] = val.tokens
    if searches and (not only or "teq-adaptive" in only):
        r = lstm_search.search_teq_widths(params, stats, val, quiet=quiet)
        report["searches"]["teq"] = {"widths": r.widths, "avg_bits": r.avg_bits, "val_bpc": r.val_bpc,
                                     "float_val_bpc": r.float_val_bpc, "target_bpc": r.target_bpc,
                                     "evaluations": r.evaluations, "seconds": r.seconds}
        save()
        quant_row("teq-adaptive", None, quantize_lstm(params, stats, r.spec), avg_bits=r.avg_bits)
    if searches and (not only or "bfp-search" in only):
        ids = lstm.calibration_streams(corpus, vocab)[:, :201]
        r = lstm_search.search_bfp(params, stats, val, ids, quiet=quiet, time_budget=BFP_TIME_BUDGET)
        report["searches"]["bfp"] = {"plan": r.plan, "cost_bits": r.cost, "met_target": r.met_target,
                                     "val_bpc": r.val_bpc, "int8_val_bpc": r.int8_val_bpc, "target_bpc": r.target_bpc,
                                     "best_uniform": r.uniform, "uniform_checked": r.uniform_checked,
                                     "real_checks": r.real_checks, "seconds": r.seconds}
        save()
        if r.uniform is not None:
            quant_row("bfp-uniform", None, quantize_lstm(params, stats, r.uniform["spec"]))
        quant_row("bfp-search", None, quantize_lstm(params, stats, "bfp:search=on", plan=r.plan), plan=r.plan)
    # The uniform rows come after the searches, the long part.
    for group, specs in (("pot", POT), ("tr", TR), ("bfp", BFP), ("teq", TEQ)):  # teq's reference is the slowest
        for spec in specs:
            quant_row(group, None, quantize_lstm(params, stats, spec))
    save()
    return report


def table(report: dict) -> str:
    """The markdown table of docs/results/lstm.md."""
    from termshift.formats import parse

    rows = {r["row"]: r for r in report["rows"]}
    base = rows.get("int8")
    lines = ["| format | bits/char | vs INT8 | ops per char | cycles/char | energy/char (uJ) | energy vs INT8 |",
             "|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        ops = ", ".join(f"{k} {v:,}" for k, v in r["ops"].items())
        rel = en = "-"
        if base:
            rel = f"{100 * (r['bits_per_char'] / base['bits_per_char'] - 1):+.2f}%"
            en = f"{r['energy_uj'] / base['energy_uj']:.2f}x"
        fmt = r["format"] + (f" (avg {r['avg_bits']:.2f} b)" if "avg_bits" in r else "")
        if "plan" in r:  # a per-GEMM plan: its fmt is only the spec that asked for the search
            fmt = "bfp:search, block/mantissa per GEMM " + ", ".join(
                f"{parse(p)['block']}/{parse(p)['mantissa']}" for p in r["plan"])
        lines.append(f"| {fmt} | {r['bits_per_char']:.4f} | {rel} | {ops} | {r['cycles']:,} | "
                     f"{r['energy_uj']:.1f} | {en} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m termshift.nn.lstm_results", description=__doc__.split("\n\n")[0])
    ap.add_argument("--chars", type=int, default=50_000, help="scored test characters (0: the whole test split)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--backend", default="reference")
    ap.add_argument("--no-search", action="store_true", help="skip the adaptive teq and bfp:search rows")
    ap.add_argument("--only", nargs="*", help="row names to run (float int8 pot tr teq bfp teq-adaptive bfp-search ...)")
    args = ap.parse_args(argv)
    rep = run(args.chars or None, args.json, args.backend, not args.no_search, set(args.only or ()))
    print(table(rep))
    print(f"\n{rep['chars']} test characters, {rep['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
