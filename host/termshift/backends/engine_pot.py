"""The PoT engine (hls/top/gemm_pot.cpp) as seen by the backends: operand
validation and reference from the `pot` format, the engine's cycle model, the
C-sim call, the cases `termshift verify` runs, and the testbench's golden
vectors (`python -m termshift.backends.engine_pot` rewrites
hls/tb/data/gemm_pot_vectors.h).

Cycle model (docs/formats/pot.md, section 7): the array is the INT8 engine's
output-stationary systolic array with BAC PEs, and a K slice runs only its
kept steps, the input positions where the column tile has a nonzero weight:

    cycles = ceil(M/rows) * sum over column tiles t of
             ( sum over slices j with P[t,j] > 0 of (P[t,j] + rows + cols - 2) + rows * cols )

with P = formats.pot.group_counts(w). A dense W gives exactly the INT8
engine's count (cycle_model.gemm_cycles); pruned k-groups come off it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from termshift.backends.base import GemmResult
from termshift.backends.cycle_model import ArrayGeometry
from termshift.backends.engines import EngineDef
from termshift.formats import pot, uniform

# Must equal GEMM_POT_* in hls/top/gemm_pot.h; tests compare with the extension.
POT_ENGINE = ArrayGeometry(rows=8, cols=8, tile_k=256)
VECTORS = Path("hls/tb/data/gemm_pot_vectors.h")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def pot_gemm_cycles(geom: ArrayGeometry, m: int, counts: np.ndarray) -> int:
    """Array cycles of one call, from the kept steps P[t, j] of every column tile and slice."""
    counts = np.asarray(counts, np.int64)
    live = counts[counts > 0]
    per_row_tile = int(live.sum()) + live.size * (geom.rows + geom.cols - 2) + counts.shape[0] * geom.rows * geom.cols
    return _ceil_div(m, geom.rows) * per_row_tile


def cycles_of(geom: ArrayGeometry, m: int, codes: np.ndarray) -> int:
    return pot_gemm_cycles(geom, m, pot.group_counts(codes, geom.cols, geom.tile_k))


def validate(a, w, bits, emax, bias=None, requant=None) -> pot.GemmPotArgs:
    return pot.validate_gemm_pot(a, w, bits, emax, bias, requant)


def reference(args: pot.GemmPotArgs) -> GemmResult:
    out = pot.gemm(args.a, args.w, args.bits, args.emax, args.bias, args.requant)
    return GemmResult(out, cycles_of(POT_ENGINE, args.a.shape[0], args.w))


def csim(ext, build: str, args: pot.GemmPotArgs) -> GemmResult:
    info = ext.ENGINES["pot"]
    flags = info["flag_a_unsigned"] if args.a_unsigned else 0
    if args.requant is None:
        flags |= info["flag_raw_out"]
        mult, shift, lo, hi = np.zeros_like(args.bias), 0, 0, 0
    else:
        rq = args.requant
        mult, shift, lo, hi = rq.multiplier, rq.shift, rq.lo, rq.hi
    stream, _ = pot.pack_stream(args.w, args.bits, POT_ENGINE.cols, POT_ENGINE.tile_k)
    out, cycles = ext.gemm_pot(build, args.a.view(np.uint8), stream, args.w.shape[0], args.bits, args.emax,
                               args.bias, np.ascontiguousarray(mult, dtype=np.int32), shift, lo, hi, flags)
    return GemmResult(out, int(cycles))


# --------------------------------------------------------------------------- cases


def _codes(rng: np.random.Generator, n: int, k: int, bits: int, emax: int, zero_frac: float) -> np.ndarray:
    top = min(pot.max_levels(bits), emax + 1)
    q = rng.integers(-top, top + 1, (n, k))
    q[rng.random((n, k)) < zero_frac] = 0
    return q.astype(np.int8)


def random_operands(rng: np.random.Generator, m: int, n: int, k: int) -> dict:
    """A random legal call: random bits, emax that fits K, random zeros and pruned k-groups."""
    bits = int(rng.integers(2, 7))
    a_unsigned = bool(rng.integers(0, 2))
    bias_max = 2**16
    fit = min(pot.max_levels(bits) - 1, pot.MAX_EMAX)
    while fit > 0 and pot.accumulator_worst_case(k, fit, a_unsigned, bias_max) > uniform.ACC_MAX:
        fit -= 1
    emax = int(rng.integers(0, fit + 1))
    w = _codes(rng, n, k, bits, emax, float(rng.choice([0.0, 0.3, 0.9])))
    if rng.integers(0, 2):  # whole k-groups of column tiles pruned, as pot.prune leaves them
        cols = POT_ENGINE.cols
        dead = rng.random((-(-n // cols), k)) < rng.random()
        w[np.repeat(dead, cols, axis=0)[:n]] = 0
    a = (rng.integers(0, 256, (m, k)).astype(np.uint8) if a_unsigned
         else rng.integers(-128, 128, (m, k)).astype(np.int8))
    bias = rng.integers(-bias_max, bias_max, n).astype(np.int32)
    rq = None
    if rng.integers(0, 4):
        lo, hi = (0, 255) if a_unsigned else (-127, 127)
        rq = uniform.Requant(rng.integers(0, 2**16, n).astype(np.int32), int(rng.integers(0, 25)), lo, hi)
    return {"a": a, "w": w, "bits": bits, "emax": emax, "bias": bias, "requant": rq}


def edge_operands(rng: np.random.Generator):
    """(name, operands) for the cases every PoT engine must survive."""
    def call(a, w, bits, emax, bias=None, requant=None):
        n = w.shape[0]
        return {"a": a, "w": w, "bits": bits, "emax": emax,
                "bias": np.zeros(n, np.int32) if bias is None else bias, "requant": requant}

    yield "length 1", random_operands(rng, 1, 1, 1)
    yield "ragged tiles K=257", random_operands(rng, 9, 7, 257)
    yield "ragged tiles K=513, N=17", random_operands(rng, 17, 17, 513)
    yield "exact tile 8x8x256", random_operands(rng, 8, 8, 256)
    # Largest K at emax = 6 (4-bit codes), every product at its extreme.
    k6 = pot.max_reduction_length(6, a_unsigned=True)
    yield "max K uint8 255 x -2^6", call(np.full((2, k6), 255, np.uint8), np.full((3, k6), -1, np.int8), 4, 6)
    k6s = pot.max_reduction_length(6, a_unsigned=False)
    yield "max K int8 -128 x -2^6", call(np.full((1, k6s), -128, np.int8), np.full((2, k6s), -1, np.int8), 4, 6)
    yield "emax 23, K=1, 255 x 2^23", call(np.full((3, 1), 255, np.uint8), np.array([[1], [-1]], np.int8), 6, 23)
    yield "emax 23, K=1, -128 x -2^23", call(np.full((2, 1), -128, np.int8), np.array([[-1], [1]], np.int8), 6, 23,
                                             requant=uniform.Requant(np.array([uniform.INT32_MAX, 1], np.int32),
                                                                     uniform.MAX_SHIFT, -(2**31), uniform.INT32_MAX))
    for bits in range(2, 7):
        top = min(pot.max_levels(bits), 17)  # 6 bits: |q| <= 17 keeps K = 35 inside the accumulator
        emax = top - 1
        every = np.tile(np.arange(-top, top + 1, dtype=np.int8), (3, 1))
        yield f"every code, bits={bits}", call(rng.integers(-128, 128, (5, 2 * top + 1)).astype(np.int8), every,
                                               bits, emax)
    neg = random_operands(rng, 11, 13, 300)
    neg.update(a=rng.integers(-128, 0, (11, 300)).astype(np.int8), w=-np.abs(neg["w"]).astype(np.int8),
               bias=rng.integers(-(2**16), 0, 13).astype(np.int32),
               requant=uniform.Requant(rng.integers(1, 2**12, 13).astype(np.int32), 20, -127, 127))
    yield "all negative", neg
    yield "zero activations", call(np.zeros((5, 40), np.uint8), _codes(rng, 6, 40, 4, 6, 0.2), 4, 6,
                                   rng.integers(-1000, 1000, 6).astype(np.int32),
                                   uniform.Requant(np.full(6, 3, np.int32), 1, 0, 255))
    yield "zero weights: every slice skipped", call(rng.integers(0, 256, (4, 600)).astype(np.uint8),
                                                    np.zeros((9, 600), np.int8), 4, 6,
                                                    rng.integers(-9, 9, 9).astype(np.int32))
    half = _codes(rng, 16, 600, 4, 6, 0.0)
    half[:8, 256:512] = 0  # column tile 0 skips its whole second slice
    half[8:, ::2] = 0  # column tile 1 keeps every other step
    yield "pruned slices and k-groups", call(rng.integers(0, 256, (10, 600)).astype(np.uint8), half, 4, 6)
    yield "single nonzero at the last k", call(rng.integers(0, 256, (3, 300)).astype(np.uint8),
                                              np.pad(np.array([[5]], np.int8), ((0, 2), (299, 0))), 4, 6)
    ties = call(np.array([[1], [3], [255]], np.uint8), np.array([[-1], [1], [-3]], np.int8), 4, 2,
                requant=uniform.Requant(np.array([1, 1, 1], np.int32), 1, -(2**31), uniform.INT32_MAX))
    yield "requant ties round up", ties


def cases(seed: int, n_random: int):
    rng = np.random.default_rng(seed)
    yield from edge_operands(rng)
    for i in range(n_random):
        m, n = (int(v) for v in rng.integers(1, 40, 2))
        yield f"random #{i}", random_operands(rng, m, n, int(rng.integers(1, 700)))


ENGINE = EngineDef("pot", validate, reference, csim, cases)


# --------------------------------------------------------------------------- golden vectors

GOLDEN_SEED = 2026
_MAX_ELEMENTS = 20000  # keep the header small: skip edge cases with huge K


def golden_cases() -> list[tuple[str, dict]]:
    from termshift.golden import golden_operands

    rng = np.random.default_rng(GOLDEN_SEED)
    return golden_operands(edge_operands(rng), lambda m, n, k: random_operands(rng, m, n, k), _MAX_ELEMENTS)


def render_vectors() -> str:
    from termshift.golden import _c_array, _c_int, output_stage, render_vector_header

    out, entries = [], []
    for i, (name, ops) in enumerate(golden_cases()):
        args = validate(**ops)
        m, n, k = args.shape
        ref = reference(args)
        stream, _ = pot.pack_stream(args.w, args.bits, POT_ENGINE.cols, POT_ENGINE.tile_k)
        flags, rq, mult = output_stage(args.requant, n, args.a_unsigned)
        out.append(_c_array("uint8_t", f"v{i}_A", args.a.view(np.uint8)))
        out.append(_c_array("int8_t", f"v{i}_W", args.w))
        out.append(_c_array("uint32_t", f"v{i}_stream", stream.astype(np.int64)))
        out.append(_c_array("int32_t", f"v{i}_bias", args.bias))
        out.append(_c_array("int32_t", f"v{i}_mult", mult))
        out.append(_c_array("int32_t", f"v{i}_C", ref.out))
        entries.append(f'    {{"{name}", {m}u, {n}u, {k}u, {args.bits}u, {args.emax}u, {rq.shift}u, {flags}u, '
                       f"{_c_int(rq.lo)}, {_c_int(rq.hi)}, v{i}_A, v{i}_W, v{i}_stream, {stream.size}u, "
                       f"v{i}_bias, v{i}_mult, v{i}_C, {ref.cycles}ull}},")
    return render_vector_header(
        "pot",
        ["// GENERATED by `python -m termshift.backends.engine_pot` from the numpy reference",
         "// (host/termshift/formats/pot.py). Do not edit; regenerate."],
        ["const char *name;", "unsigned M, N, K, bits, emax, shift, flags;", "int32_t lo, hi;", "const uint8_t *A;",
         "const int8_t *W;       // signed exponent codes, N x K", "const uint32_t *stream;  // pack_stream(W)",
         "unsigned stream_words;", "const int32_t *bias, *mult, *C;", "uint64_t cycles;"],
        out, entries)


def bench(m: int = 256, n: int = 256, k: int = 256, repeat: int = 3) -> list[dict]:
    """Side-by-side speed of the reference and both C-sim builds, dense and pruned W."""
    import time

    from termshift.backends import get_backend

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    dense = _codes(rng, n, k, 4, 6, 0.0)
    pruned = dense.copy()
    pruned[np.repeat(rng.random((-(-n // POT_ENGINE.cols), k)) < 0.5, POT_ENGINE.cols, axis=0)[:n]] = 0
    rows = []
    for label, w in (("dense", dense), ("50% k-groups pruned", pruned)):
        ops = {"a": a, "w": w, "bits": 4, "emax": 6}
        want = get_backend("reference").run("pot", **ops)
        for name, be in (("reference (numpy)", get_backend("reference")),
                         ("csim fast", get_backend("csim", build="fast")),
                         ("csim exact", get_backend("csim", build="exact"))):
            best = float("inf")
            for _ in range(repeat):
                t0 = time.perf_counter()
                got = be.run("pot", **ops)
                best = min(best, time.perf_counter() - t0)
            if not (np.array_equal(got.out, want.out) and got.cycles == want.cycles):
                raise AssertionError(f"{name} disagrees with the reference on the {label} benchmark")
            rows.append({"weights": label, "backend": name, "seconds": best, "cycles": got.cycles,
                         "shift_adds_per_s": m * int(np.count_nonzero(w)) / best})
    return rows


def main(argv=None) -> int:
    from termshift.golden import write_vectors

    parser = argparse.ArgumentParser(description="Regenerate the PoT testbench's golden vectors (or --bench).")
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    parser.add_argument("--bench", action="store_true", help="time reference and C-sim on a 256^3 GEMM instead")
    args = parser.parse_args(argv)
    if args.bench:
        print(f"{'weights':<22} {'backend':<18} {'seconds':>9} {'M shift-adds/s':>15} {'array cycles':>13}")
        for r in bench():
            print(f"{r['weights']:<22} {r['backend']:<18} {r['seconds']:>9.4f} {r['shift_adds_per_s'] / 1e6:>15.1f} "
                  f"{r['cycles']:>13,}")
        return 0
    write_vectors(args.root, VECTORS, render_vectors())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
