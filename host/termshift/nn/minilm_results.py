"""The MiniLM results table: every weight format on the held-out Austen sentences.

``python -m termshift.nn.minilm_results --sentences 256 --json out.json [--markdown out.md]``

Owns the list of settings docs/results/minilm.md reports and the figures of
each: cosine to the fp32 embeddings over the held-out sentences (mean, min,
5th percentile), the engine ops of the format's own cost function, cycles
and modeled energy per :data:`~termshift.nn.minilm.COST_TOKENS`-token
sentence (engine rows plus host rows), ratios to the default INT8 row, and,
for ``tr``, term pairs against the conventional count (MACs x b_w x b_x).
Every quantized row runs its engine GEMMs on the reference backend (equal
to C-sim bit for bit: ``termshift agree --model minilm``). The bfp uniform
sweep over search/bfp.py's whole candidate space runs on ``--sweep-sentences``
held-out sentences (fewer, said in its table); every other row on ``--sentences``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from termshift.nn import minilm

INT8 = "int:bits=8"  # the default INT8 row every ratio is taken against
MAIN_ROWS = [
    ("float", "float"),
    ("INT8 calibration", "int:bits=8,act=max,smooth=off"),
    ("INT8 calibration", "int:bits=8,act=p99.99,smooth=off"),
    ("INT8 calibration", "int:bits=8,act=mse,smooth=off"),
    ("INT8 calibration", "int:bits=8,act=rmse,smooth=off"),
    ("INT8 calibration", "int:bits=8,act=max,smooth=0.5"),
    ("INT8 calibration", INT8),
    ("onnx-int8", "onnx-int8,act=max"),
    ("onnx-int8", "onnx-int8"),
    ("pot", "pot:bits=4"),
    ("pot", "pot:bits=3"),
    ("pot", "pot:bits=4,round=gptq"),
    ("pot", "pot:bits=3,round=gptq"),
    ("tr", "tr:bits=8,group=16,budget=12,data_terms=3"),
    ("tr", "tr:bits=8,group=16,budget=24,data_terms=4"),
    ("tr", "tr:bits=8,group=16,budget=32,data_terms=4"),
    ("tr", "tr:bits=8,group=16,budget=40,data_terms=4"),
    ("tr", "tr:bits=8,group=8,budget=16,data_terms=4"),
    ("tr", "tr:bits=8,group=16,budget=32,data_terms=6"),
    ("tr", "tr:bits=8,group=16,budget=32,data_terms=4,act=max,smooth=off"),
    ("teq", "teq:bits=4"),
    ("teq", "teq:bits=5"),
    ("teq", "teq:bits=6"),
    ("teq", "teq"),
    ("bfp", "bfp:block=32,mantissa=8"),
    ("bfp", "bfp:search=on"),
]
OP_KEYS = ("macs", "shift_adds", "term_pairs", "conventional_term_pairs", "term_encodes", "bfp_pp_rows",
           "bfp_block_adds", "bfp_align_adds", "teq_pairs", "teq_recons", "teq_lut_reads", "teq_bank_incs")


def _stats(cos: np.ndarray) -> dict:
    return {"cosine": float(cos.mean()), "cosine_min": float(cos.min()), "cosine_p5": float(np.percentile(cos, 5))}


def evaluate_row(fmt: str, held: list[str], ref: np.ndarray, backend) -> dict:
    """One setting: cosine statistics, per-sentence costs, engine op totals, timings."""
    from termshift.energy.model import summarize

    t0 = time.perf_counter()
    if fmt == "float":
        rows = minilm.minilm_costs("float")
        out = {"format": "float", **_stats(np.ones(len(held)))}
        meta, label = {}, "float"
    else:
        model = minilm.build_quantized(fmt, quiet=False)
        t_build = time.perf_counter() - t0
        emb, _ = model.encode(held, backend)
        rows = minilm.minilm_costs("int", model.a_bits, model=model,
                                   int8_embeddings=fmt.startswith("onnx-int8"))
        cos = minilm.cosine(ref, emb)
        label, meta = model.label, dict(model.meta)
        out = {"format": label, **_stats(cos), "build_seconds": t_build}
        engine = [r for r in rows if r.kind == "linear"]
        out["engine_ops"] = {k: sum(r.ops.get(k, 0) for r in engine) for k in OP_KEYS
                             if any(k in r.ops for r in engine)}
        out["bits_per_weight"] = (sum(r.bits_per_weight * r.weight_count for r in engine)
                                  / sum(r.weight_count for r in engine))
        out["engine_cycles"] = sum(r.cycles for r in engine)
        out["engine_energy_j"] = summarize(engine)["total"]["energy_j"]
        out["weight_storage_bits"] = sum(r.weight_bits for r in engine)
    tot = summarize(rows)["total"]
    out.update(cycles=tot["cycles"], energy_j=tot["energy_j"], weight_bits=tot["weight_bits"],
               seconds=time.perf_counter() - t0, spec=fmt, **meta)
    if "teq_search" in meta:
        out["teq_widths"] = meta["teq_search"]["widths"]
    return out


def bfp_sweep(held: list[str], ref: np.ndarray, backend) -> list[dict]:
    """Every uniform (block, mantissa) of search/bfp.py's candidate space."""
    from termshift.search.bfp import CANDIDATES

    out = []
    for p in CANDIDATES:
        r = evaluate_row(p.spec(), held, ref, backend)
        out.append({k: r[k] for k in ("spec", "cosine", "cosine_min", "cosine_p5", "bits_per_weight",
                                      "engine_cycles", "energy_j", "weight_storage_bits")})
        print(f"bfp sweep {p.spec()}: cosine {r['cosine']:.4f}", file=sys.stderr, flush=True)
    return out


def run(sentences: int = minilm.N_EVAL, sweep_sentences: int = 32, rows=None, sweep: bool = True) -> dict:
    from termshift.backends import get_backend

    t0 = time.perf_counter()
    be = get_backend("reference")
    enc = minilm.load_fp32_encoder()
    held = minilm.heldout_sentences(sentences)
    ref = enc.encode(held)
    results = []
    for group, fmt in rows or MAIN_ROWS:
        r = evaluate_row(fmt, held, ref, be)
        r["group"] = group
        results.append(r)
        print(f"{fmt}: cosine {r['cosine']:.4f} (min {r['cosine_min']:.4f}), {r['seconds']:.0f} s",
              file=sys.stderr, flush=True)
    base = next((r for r in results if r["spec"] == INT8), None)
    if base is not None:
        for r in results:
            r["energy_vs_int8"] = r["energy_j"] / base["energy_j"]
            r["cycles_vs_int8"] = r["cycles"] / base["cycles"]
    report = {"sentences": len(held), "cost_tokens": minilm.COST_TOKENS, "default_act": minilm.DEFAULT_ACT,
              "default_smooth": minilm.DEFAULT_SMOOTH, "format_smooth": minilm.FORMAT_SMOOTH, "rows": results}
    if sweep:
        sw_held = minilm.heldout_sentences(sweep_sentences)
        report["bfp_sweep"] = {"sentences": len(sw_held), "rows": bfp_sweep(sw_held, enc.encode(sw_held), be)}
    report["seconds"] = time.perf_counter() - t0
    return report


def _ops_text(r: dict) -> str:
    ops = r.get("engine_ops", {})
    main = [k for k in ("macs", "shift_adds", "term_pairs", "bfp_pp_rows", "teq_pairs") if k in ops]
    return ", ".join(f"{k} {ops[k] / 1e6:,.0f}M" for k in main) or "host fp32"


def markdown(report: dict) -> str:
    lines = [f"Held-out sentences: {report['sentences']}; costs per {report['cost_tokens']}-token sentence.", "",
             "| setting | mean cos | min | p5 | bits/w | engine ops (M) | cycles | energy (uJ) | energy / INT8 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        extra = ""
        ops = r.get("engine_ops", {})
        if "term_pairs" in ops:
            extra = f" (TR/conv term pairs 1/{ops['conventional_term_pairs'] / ops['term_pairs']:.2f})"
        lines.append(f"| `{r['spec']}`{extra} | {r['cosine']:.4f} | {r['cosine_min']:.4f} | {r['cosine_p5']:.4f} | "
                     f"{r.get('bits_per_weight', 32):.2f} | {_ops_text(r)} | {r['cycles']:,} | "
                     f"{r['energy_j'] * 1e6:,.1f} | {r.get('energy_vs_int8', float('nan')):.2f} |")
    if "bfp_sweep" in report:
        sw = report["bfp_sweep"]
        lines += ["", f"bfp uniform sweep ({sw['sentences']} held-out sentences):", "",
                  "| spec | mean cos | min | bits/w | energy (uJ) |", "|---|---|---|---|---|"]
        for r in sw["rows"]:
            lines.append(f"| `{r['spec']}` | {r['cosine']:.4f} | {r['cosine_min']:.4f} | {r['bits_per_weight']:.2f} | "
                         f"{r['energy_j'] * 1e6:,.1f} |")
    lines += ["", f"Run time: {report['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sentences", type=int, default=minilm.N_EVAL)
    ap.add_argument("--sweep-sentences", type=int, default=32)
    ap.add_argument("--no-sweep", action="store_true", help="skip the bfp uniform sweep")
    ap.add_argument("--only", nargs="*", help="run only these format strings (default: the whole table)")
    ap.add_argument("--json", type=str)
    ap.add_argument("--markdown", type=str)
    a = ap.parse_args(argv)
    rows = [("custom", f) for f in a.only] if a.only else None
    report = run(a.sentences, a.sweep_sentences, rows, not a.no_sweep)
    text = markdown(report)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1, default=float)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
