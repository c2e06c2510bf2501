"""`termshift bench csim`: how fast the C-simulation runs, measured side by
side in one process on one 256 x 256 x 256 INT8 GEMM.

Contenders: the engine's fast build (native ints) and exact build (ap_types),
a plain triple loop over ap_int (what the obvious HLS code C-simulates at),
the same loop over native ints, and numpy (int32 matmul, and the float64 BLAS
matmul the reference backend uses). Every contender's output is checked
against the reference before its time counts.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from termshift.backends.csim import load_extension
from termshift.formats import uniform


def _best_time(fn, repeats: int, min_seconds: float = 0.2) -> float:
    """Best wall time of `fn` over repeats (at least one, keeps going to min_seconds)."""
    best = float("inf")
    spent = 0.0
    runs = 0
    while runs < repeats or spent < min_seconds:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        spent += dt
        runs += 1
        if runs >= 50:
            break
    return best


def run_bench(size: int = 256, repeats: int = 3, seed: int = 0) -> dict:
    ext = load_extension()
    rng = np.random.default_rng(seed)
    m = n = k = size
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    bias = np.zeros(n, np.int32)
    zeros = np.zeros(n, np.int32)
    raw_flags = ext.ENGINES["int"]["flag_a_unsigned"] | ext.ENGINES["int"]["flag_raw_out"]
    want = uniform.gemm(a, w, bias, None)

    a32, w32t = a.astype(np.int32), w.astype(np.int32).T.copy()
    af, wft = a.astype(np.float64), w.astype(np.float64).T.copy()
    contenders = {
        "csim_fast": lambda: ext.gemm_int("fast", a, w, bias, zeros, 0, 0, 0, raw_flags)[0],
        "csim_exact": lambda: ext.gemm_int("exact", a, w, bias, zeros, 0, 0, 0, raw_flags)[0],
        "plain_ap_int_loop": lambda: ext.plain_gemm("ap_int", a, w, True),
        "plain_native_loop": lambda: ext.plain_gemm("native", a, w, True),
        "numpy_int32_matmul": lambda: a32 @ w32t,
        "numpy_float64_blas": lambda: np.rint(af @ wft).astype(np.int32),
    }
    macs = m * n * k
    results = {}
    for name, fn in contenders.items():
        np.testing.assert_array_equal(fn(), want, err_msg=f"{name} disagrees with the reference")
        seconds = _best_time(fn, repeats)
        results[name] = {"seconds": seconds, "mac_per_s": macs / seconds}
    fast = results["csim_fast"]["mac_per_s"]
    ratios = {
        "fast_over_exact": fast / results["csim_exact"]["mac_per_s"],
        "fast_over_plain_ap_int": fast / results["plain_ap_int_loop"]["mac_per_s"],
        "exact_over_plain_ap_int": results["csim_exact"]["mac_per_s"] / results["plain_ap_int_loop"]["mac_per_s"],
        "fast_over_numpy_int32": fast / results["numpy_int32_matmul"]["mac_per_s"],
    }
    return {
        "benchmark": "csim",
        "gemm": {"m": m, "n": n, "k": k, "macs": macs, "a": "uint8", "w": "int8"},
        "results": results,
        "ratios": ratios,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(), "numpy": np.__version__},
        "outputs_checked": True,
    }


def format_report(report: dict) -> str:
    g = report["gemm"]
    lines = [f"C-sim benchmark: {g['m']}x{g['n']}x{g['k']} uint8 x int8 GEMM ({g['macs']:,} MACs), best of runs"]
    for name, r in report["results"].items():
        lines.append(f"  {name:<20} {r['mac_per_s'] / 1e6:>10.1f} M MAC/s  {r['seconds'] * 1e3:>9.2f} ms")
    for name, value in report["ratios"].items():
        lines.append(f"  ratio {name:<24} {value:>8.2f}x")
    return "\n".join(lines)
