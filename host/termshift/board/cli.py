"""`termshift board run|throughput|power|simulate`: the board runtime from a shell.

Owns the argument parsing and printing only; the work is in driver.py,
power.py and simulated.py. `add_parser(subparsers)` adds the `board`
command to termshift's CLI. Every command takes `--overlay PATH` (default
$TERMSHIFT_OVERLAY or ./termshift.bit) or `--simulated` (a simulated ZCU104;
with no --overlay it writes a simulated overlay with every engine to a
temporary directory). `run`, `throughput` and `power` take an artifact in any
format; it runs on the engine its format needs (int, pot, tr, bfp or teq).

Exit codes: 0 success, 1 outputs differ from the artifact's expected ones,
2 an error the user can fix (message on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("board", help="run models and measure energy on a ZCU104 (or a simulated one)",
                              description="The termshift overlay through PYNQ: run, throughput, power; "
                                          "`simulate DIR` writes a simulated overlay.")
    sub = p.add_subparsers(dest="board_command", required=True)

    def common(q, artifact=True):
        q.add_argument("--overlay", type=Path, default=Path(os.environ.get("TERMSHIFT_OVERLAY", "termshift.bit")),
                       help="the overlay's .bit (manifest.json and .hwh beside it); default $TERMSHIFT_OVERLAY "
                            "or ./termshift.bit")
        q.add_argument("--simulated", action="store_true",
                       help="use a simulated ZCU104 (C-sim engines); without --overlay a simulated overlay is made")
        q.add_argument("--build", default="fast", choices=("fast", "exact"), help="C-sim build of the simulated engines")
        q.add_argument("--batch", type=int, default=64, help="inferences per batch")
        q.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for an engine call")
        if artifact:
            q.add_argument("artifact", type=Path, help="compiled model (.tsm) from `termshift export`")

    q = sub.add_parser("run", help="run an artifact's expected input; compare with its expected output bit for bit")
    common(q)
    q.add_argument("--json", type=Path, help="also write the result to this JSON file")
    q.set_defaults(board_func=_cmd_run)

    q = sub.add_parser("throughput", help="inferences/s and per-stage milliseconds (pack, copy, execute, unpack, host)")
    common(q)
    q.add_argument("--inferences", type=int, default=256)
    q.add_argument("--json", type=Path)
    q.set_defaults(board_func=_cmd_throughput)

    q = sub.add_parser("power", help="energy per inference from the PMBus rails (idle window, then marked runs)")
    common(q)
    q.add_argument("--idle-s", type=float, default=2.0, help="idle window (s)")
    q.add_argument("--active-s", type=float, default=5.0, help="minimum active window (s)")
    q.add_argument("--interval", type=float, default=0.05, help="sampling interval (s)")
    q.add_argument("--rails", default=None, help="comma-separated rails to record (default: every ZCU104 rail)")
    q.add_argument("--csv", type=Path, help="write the raw samples here")
    q.add_argument("--json", type=Path)
    q.set_defaults(board_func=_cmd_power)

    q = sub.add_parser("simulate", help="write a simulated overlay (termshift.bit, termshift.hwh, manifest.json)")
    q.add_argument("out", type=Path, help="directory to write into")
    q.add_argument("--clock-mhz", type=float, default=100.0)
    q.add_argument("--engines", default=None,
                   help="comma-separated engines to put in the overlay (default: all of int, pot, tr, bfp, teq)")
    q.set_defaults(board_func=_cmd_simulate)
    p.set_defaults(func=_dispatch)
    return p


def _dispatch(args) -> int:
    try:
        from termshift.board.driver import BoardError
        from termshift.board.power import PowerSensorsError
    except ImportError as exc:
        print(f"termshift board {args.board_command}: error: {exc}", file=sys.stderr)
        return 2
    for name, value in (("batch", getattr(args, "batch", 1)), ("inferences", getattr(args, "inferences", 1))):
        if value < 1:
            print(f"termshift board: error: --{name} must be >= 1", file=sys.stderr)
            return 2
    try:
        return args.board_func(args)
    except (BoardError, PowerSensorsError, ValueError, OSError, ImportError) as exc:
        print(f"termshift board {args.board_command}: error: {exc}", file=sys.stderr)
        return 2


class _Session:
    """The overlay (and, when simulated, the device) a command works on."""

    def __init__(self, args):
        from termshift.board.driver import TermshiftOverlay

        self.device = None
        self._tmp = None
        overlay = args.overlay
        if args.simulated:
            from termshift.board.simulated import SimulatedZCU104, write_overlay

            self.device = SimulatedZCU104(build=args.build)
            if not overlay.is_file():
                self._tmp = tempfile.TemporaryDirectory(prefix="termshift-sim-")
                overlay = write_overlay(self._tmp.name)
        elif not overlay.is_file():
            raise FileNotFoundError(f"overlay {overlay} not found; pass --overlay PATH (or --simulated)")
        self.overlay = TermshiftOverlay(str(overlay), device=self.device, timeout_s=args.timeout)
        for note in self.overlay.notes:
            print(f"note: {note}", file=sys.stderr)

    def rails(self):
        if self.device is None:
            return None
        from termshift.board.simulated import simulated_rails

        return simulated_rails(self.device)

    def close(self):
        if self._tmp is not None:
            self._tmp.cleanup()


def _write_json(path, data) -> None:
    if path:
        from termshift.atomic import write_json_atomic

        write_json_atomic(path, data)
        print(f"wrote {path}")


def _cmd_run(args) -> int:
    s = _Session(args)
    try:
        model = s.overlay.load_model(args.artifact, batch_size=args.batch)
        r = model.check()
    finally:
        s.close()
    verdict = "IDENTICAL to the artifact's expected output" if r["identical"] else \
        f"{r['mismatching_values']} VALUES DIFFER from the artifact's expected output"
    print(f"{r['model']} ({r['format']}) on engine '{r['engine']}', {r['samples']} samples: {verdict}"
          + (f"; argmax agrees on {100 * r['argmax_agree']:.1f}%" if r["argmax_agree"] is not None else ""))
    _write_json(args.json, r)
    return 0 if r["identical"] else 1


def format_throughput(t: dict) -> str:
    stages = ", ".join(f"{k} {v:.3f}" for k, v in t["stage_ms"].items())
    return (f"{t['model']} ({t['format']}) on '{t['engine']}' [{t['device']}]: {t['inferences']} inferences, batch "
            f"{t['batch_size']}: {t['inferences_per_s']:.1f} inferences/s, {t['ms_per_inference']:.3f} ms each "
            f"(ms per inference: {stages}); {t['engine_calls']} engine calls, "
            f"{t['cycles_per_inference']:.0f} cycles per inference")


def _cmd_throughput(args) -> int:
    s = _Session(args)
    try:
        model = s.overlay.load_model(args.artifact, batch_size=args.batch)
        t = model.throughput_test(inferences=args.inferences, batch_size=args.batch)
    finally:
        s.close()
    print(format_throughput(t))
    _write_json(args.json, t)
    return 0


def format_power(r) -> str:
    lines = [(f"{r.inferences} inferences in {r.active_s:.2f} s (idle window {r.idle_s:.2f} s, "
              f"sampled every {r.interval_s:g} s)"),
             f"{'rail':<6} {'idle W':>8} {'active W':>9} {'dynamic W':>10} {'mJ/inference':>13}"]
    for name, rail in r.rails.items():
        lines.append(f"{name:<6} {rail.idle_w:8.3f} {rail.active_w:9.3f} {rail.dynamic_w:10.3f} "
                     f"{1e3 * rail.dynamic_j_per_inference:13.4f}")
    lines.append(f"dynamic energy per inference ({r.total_rail}): {1e3 * r.energy_per_inference_j:.4f} mJ, "
                 f"{r.inferences_per_joule:.1f} inferences/J")
    lines += [f"note: {n}" for n in r.notes]
    return "\n".join(lines)


def _cmd_power(args) -> int:
    from termshift.board.power import ZCU104_RAILS, PowerMeter

    s = _Session(args)
    try:
        model = s.overlay.load_model(args.artifact, batch_size=args.batch)
        names = tuple(n.strip() for n in args.rails.split(",")) if args.rails else ZCU104_RAILS
        meter = PowerMeter(rails=s.rails(), names=names, interval_s=args.interval)
        x = model.sample_input(args.batch)
        report = meter.measure(lambda: model.run(x), len(x), idle_s=args.idle_s, min_active_s=args.active_s)
    finally:
        s.close()
    print(format_power(report))
    if args.csv:
        report.to_csv(args.csv)
        print(f"wrote {args.csv}")
    _write_json(args.json, report.to_dict())
    return 0


def _cmd_simulate(args) -> int:
    from termshift.board.simulated import SIM_ENGINES, write_overlay

    engines = SIM_ENGINES if args.engines is None else tuple(e.strip() for e in args.engines.split(",") if e.strip())
    unknown = [e for e in engines if e not in SIM_ENGINES]
    if unknown or not engines:
        raise ValueError(f"--engines: {', '.join(unknown) or 'none given'}; the simulated board has "
                         f"{', '.join(SIM_ENGINES)}")
    bit = write_overlay(args.out, engines=engines, clock_mhz=args.clock_mhz)
    print(f"wrote {bit}, {bit.with_suffix('.hwh')} and {bit.with_name('manifest.json')} (a simulated overlay "
          f"with engines {', '.join(sorted(engines))}: "
          f"load it with TermshiftOverlay(..., device=SimulatedZCU104()) or `termshift board ... --simulated "
          f"--overlay {bit}`)")
    return 0


def main(argv=None) -> int:
    """Standalone entry (`python -m termshift.board.cli ...`) until termshift's CLI adds the command."""
    parser = argparse.ArgumentParser(prog="termshift")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
