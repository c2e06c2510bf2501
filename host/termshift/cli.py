"""The `termshift` command line: one subcommand per job, each a thin layer
over a module that owns the work (verify.py, bench.py, ...).

Errors a user can fix (bad spec, missing build, bad input) print one clear
line on stderr and exit 2; mismatches exit 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from termshift import __version__


def _cmd_verify(args) -> int:
    from termshift.backends.engines import engine_names
    from termshift.verify import verify_engine

    engines = engine_names() if args.engine == "all" else (args.engine,)
    builds = ("fast", "exact") if args.build == "both" else (args.build,)
    failed = 0
    for engine in engines:
        for build in builds:
            row = verify_engine(engine, build, args.cases, args.seed)
            print(row.line(), flush=True)
            failed += row.mismatches
    return 1 if failed else 0


def _cmd_bench_csim(args) -> int:
    from termshift.atomic import write_json_atomic
    from termshift.bench import format_report, run_bench

    report = run_bench(size=args.size, repeats=args.repeats)
    print(format_report(report))
    if args.json:
        write_json_atomic(args.json, report)
        print(f"wrote {args.json}")
    return 0


def _cmd_eval(args) -> int:
    from termshift.atomic import write_json_atomic
    from termshift.evaluate import evaluate, format_report

    report = evaluate(args.model, args.format, args.backend, build=args.build, dataset=args.dataset,
                      limit=args.limit)
    print(format_report(report))
    if args.json:
        write_json_atomic(args.json, report)
        print(f"wrote {args.json}")
    return 0


def _cmd_demo(args) -> int:
    from termshift.demo import format_demo, run_demo

    report = run_demo(args.out, dataset=args.dataset)
    print(format_demo(report))
    print(f"wrote {args.out / 'demo.json'} and {args.out / 'accuracy_vs_energy.png'}")
    checks = [report["backends_agree"], *report.get("backends_agree_other_formats", [])]
    return 0 if all(a["mismatches"] == 0 and a["cycles_equal"] for a in checks) else 1


def _cmd_agree(args) -> int:
    from termshift.demo import check_backends_agree

    if args.model == "minilm":
        from termshift.nn.minilm import agree_minilm

        r = agree_minilm(args.format, limit=args.limit, build=args.build)
    elif args.model == "lstm":
        from termshift.nn.lstm import check_backends_agree_lstm

        r = check_backends_agree_lstm(args.format, args.build, limit=args.limit)
    else:
        r = check_backends_agree(args.model, args.dataset, args.format, args.build)
    ok = r["mismatches"] == 0 and r["cycles_equal"]
    dataset = r["data"].name if "data" in r else {"minilm": "austen-sentences", "lstm": "austen"}.get(args.model, "?")
    samples = r.get("samples", r.get("scored_tokens"))
    print(f"{args.model} on {dataset}, {r['format']}: {samples} test samples, "
          f"{r['engine_outputs_compared']:,} engine outputs compared between reference and csim-{args.build}: "
          f"{'IDENTICAL' if ok else str(r['mismatches']) + ' MISMATCHES'}, cycles {'equal' if r['cycles_equal'] else 'DIFFER'} "
          f"(reference {r['reference_seconds']:.2f} s, csim {r[f'csim_{args.build}_seconds']:.2f} s)")
    return 0 if ok else 1


def _cmd_export(args) -> int:
    from termshift.backends import get_backend
    from termshift.nn.artifact import save_artifact
    from termshift.nn.datasets import load_image_data
    from termshift.nn.lower import lower
    from termshift.nn.train import trained_model

    data = load_image_data(args.dataset)
    graph = lower(trained_model(args.model, data), data.calibration(), args.format)
    graph.meta.update(model=args.model, dataset=data.name)
    x = data.x_test[:args.expected]
    out = graph.run(x, get_backend("reference")).output
    path = save_artifact(graph, args.output, expected={"input": x, "output": out})
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB): {args.model} on {data.name}, {graph.fmt}")
    return 0


def _cmd_hls(args) -> int:
    from termshift.hls import check, manifest, resources

    tool = {"check": check.main, "resources": resources.main, "manifest": manifest.main}[args.action]
    return tool(args.rest)


def _cmd_bfp_search(args) -> int:
    from termshift.search import bfp_cli

    return bfp_cli.main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="termshift", description="Bit-exact HLS engines for non-uniform DNN number formats.")
    parser.add_argument("--version", action="version", version=f"termshift {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verify", help="compare the C-sim engines with the numpy reference, bit for bit")
    p.add_argument("--engine", default="all", help="engine to check (e.g. int) or all")
    p.add_argument("--build", default="both", choices=("fast", "exact", "both"))
    p.add_argument("--cases", type=int, default=200, help="random cases per engine and build (edge cases are always run)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("bench", help="benchmarks")
    bench_sub = p.add_subparsers(dest="bench", required=True)
    b = bench_sub.add_parser("csim", help="C-sim GEMM speed: fast vs exact vs plain ap_int loop vs numpy")
    b.add_argument("--json", type=Path, help="also write the results to this JSON file")
    b.add_argument("--size", type=int, default=256, help="M = N = K of the GEMM")
    b.add_argument("--repeats", type=int, default=3)
    b.set_defaults(func=_cmd_bench_csim)

    p = sub.add_parser("eval", help="accuracy, ops, bits, cycles and modeled energy of a model in a format")
    p.add_argument("--model", required=True, choices=("mlp", "cnn", "lstm", "minilm"))
    p.add_argument("--format", required=True, help="format spec, e.g. int:bits=8, or float")
    p.add_argument("--backend", default="reference", choices=("reference", "csim"))
    p.add_argument("--build", default="fast", choices=("fast", "exact"), help="C-sim build (with --backend csim)")
    p.add_argument("--dataset", default="auto", help="fashion-mnist, digits or auto (image models)")
    p.add_argument("--limit", type=int, help="score only the first N test samples")
    p.add_argument("--json", type=Path, help="also write the report to this JSON file")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("demo", help="the main job: MLP float vs INT on reference and C-sim, table + plot + artifact")
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--dataset", default="auto", help="fashion-mnist, digits or auto (Fashion-MNIST when installed)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("agree", help="run a model's whole test set on reference and C-sim; compare every engine output")
    p.add_argument("--model", required=True, choices=("mlp", "cnn", "lstm", "minilm"))
    p.add_argument("--format", default="int:bits=8")
    p.add_argument("--dataset", default="auto")
    p.add_argument("--build", default="fast", choices=("fast", "exact"))
    p.add_argument("--limit", type=int, default=None, help="lstm: score at most N test characters; minilm: at most N held-out sentences")
    p.set_defaults(func=_cmd_agree)

    p = sub.add_parser("hls", help="HLS flow helpers: static synthesizability check, resource model, overlay manifest",
                       description="termshift hls check [--root DIR] | resources [...] | manifest write|check [...]; "
                                   "`termshift hls ACTION --help` for each")
    p.add_argument("action", choices=("check", "resources", "manifest"))
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the action")
    p.set_defaults(func=_cmd_hls)

    # Every argument after `bfp-search` belongs to termshift.search.bfp_cli (its
    # own --help included): with no prefix character that argv can contain, this
    # parser reads none of them as options and REMAINDER keeps them in order.
    p = sub.add_parser("bfp-search", add_help=False, prefix_chars="\0",
                       help="per-layer BFP search vs the best uniform BFP setting and BitQ's rule: table, JSON, plot "
                            "(`termshift bfp-search --help` for its options)",
                       description="termshift bfp-search [--model mlp|cnn ...] [--dataset D] [--metric bits|energy] "
                                   "[--tolerance P] [--val N] [--time-budget S] [--test-limit N] [--out DIR]")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for python -m termshift.search.bfp_cli")
    p.set_defaults(func=_cmd_bfp_search)

    p = sub.add_parser("export", help="write a compiled-model artifact (.tsm) for the board")
    p.add_argument("--model", required=True, choices=("mlp", "cnn"))
    p.add_argument("--format", default="int:bits=8")
    p.add_argument("--dataset", default="auto")
    p.add_argument("--expected", type=int, default=16, help="test samples whose outputs go into the artifact")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.set_defaults(func=_cmd_export)

    from termshift.board.cli import add_parser as add_board_parser

    add_board_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "cases", 0) < 0:
        parser.error("--cases must be >= 0")
    if getattr(args, "size", 1) < 1:
        parser.error("--size must be >= 1")
    if getattr(args, "limit", None) is not None and args.limit < 1:
        parser.error("--limit must be >= 1")
    try:
        return args.func(args)
    except (ValueError, TypeError, ImportError, OSError) as exc:
        print(f"termshift {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
