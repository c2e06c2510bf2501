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
    from termshift.verify import ENGINES, verify_engine

    engines = ENGINES if args.engine == "all" else (args.engine,)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="termshift", description="Bit-exact HLS engines for non-uniform DNN number formats.")
    parser.add_argument("--version", action="version", version=f"termshift {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verify", help="compare the C-sim engines with the numpy reference, bit for bit")
    p.add_argument("--engine", default="all", help="engine to check (int) or all")
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
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "cases", 0) < 0:
        parser.error("--cases must be >= 0")
    if getattr(args, "size", 1) < 1:
        parser.error("--size must be >= 1")
    try:
        return args.func(args)
    except (ValueError, TypeError, ImportError, OSError) as exc:
        print(f"termshift {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
