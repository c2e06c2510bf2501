"""The block floating point engine (hls/top/gemm_bfp.cpp) as seen by the
backends: operand validation and reference from the `bfp` format, the C-sim
call, the cycle model, the cases `termshift verify` runs, and the golden
vectors of the C++ testbench (`python -m termshift.backends.engine_bfp`
rewrites hls/tb/data/gemm_bfp_vectors.h).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterator

import numpy as np

from termshift.backends.base import GemmResult
from termshift.backends.cycle_model import ArrayGeometry, gemm_cycles
from termshift.backends.engines import EngineDef
from termshift.formats import bfp
from termshift.formats.uniform import INT32_MAX, MAX_SHIFT, Requant

# Must equal GEMM_BFP_* in hls/top/gemm_bfp.h; tests compare with the extension.
# The block-dot PE aligns a finished block in the same step as its last
# multiply, so the array keeps the INT8 array's loop structure and cycle count.
BFP_ENGINE = ArrayGeometry(rows=8, cols=8, tile_k=256)


def bfp_cycles(m: int, n: int, k: int) -> int:
    """Array cycles of one M x N x K call (docs/cycle_model.md)."""
    return gemm_cycles(BFP_ENGINE, m, n, k)


def validate(a, w, eref, block, mantissa, e_bits=8, bias=None, requant=None) -> bfp.GemmBfpArgs:
    return bfp.validate_gemm_bfp(a, w, eref, block, mantissa, e_bits, bias, requant)


def reference(args: bfp.GemmBfpArgs) -> GemmResult:
    return GemmResult(bfp.gemm_validated(args), bfp_cycles(*args.shape))


def csim(ext, build: str, args: bfp.GemmBfpArgs) -> GemmResult:
    info = ext.ENGINES["bfp"]
    flags = info["flag_a_unsigned"] if args.a_unsigned else 0
    if args.requant is None:
        flags |= info["flag_raw_out"]
        mult, shift, lo, hi = np.zeros_like(args.bias), 0, 0, 0
    else:
        rq = args.requant
        mult, shift, lo, hi = rq.multiplier, rq.shift, rq.lo, rq.hi
    p = args.p
    out, cycles = ext.gemm_bfp(build, args.a.view(np.uint8), args.w, args.eref, args.bias,
                               np.ascontiguousarray(mult, dtype=np.int32), p.block_log2, p.mantissa, p.e_bits,
                               shift, lo, hi, flags)
    return GemmResult(out, int(cycles))


# --------------------------------------------------------------------------- cases


def operands(name: str, a: np.ndarray, exps: np.ndarray, mant: np.ndarray, p: bfp.BfpParams, bias=None,
             requant: Requant | None = None, eref: np.ndarray | None = None) -> tuple[str, dict]:
    """A named engine call from decoded weights (packed here)."""
    eref = bfp.row_anchor(exps) if eref is None else eref
    n = mant.shape[0]
    bias = np.zeros(n, np.int32) if bias is None else bias
    return name, {"a": a, "w": bfp.pack(exps, mant, p), "eref": eref, "block": p.block, "mantissa": p.mantissa,
                  "e_bits": p.e_bits, "bias": bias, "requant": requant}


def _random_params(rng: np.random.Generator) -> bfp.BfpParams:
    return bfp.BfpParams(int(rng.choice(bfp.BLOCKS)), int(rng.integers(2, 9)), int(rng.integers(4, 9)))


def _requant(rng: np.random.Generator, n: int, a_unsigned: bool) -> Requant:
    lo, hi = (0, 255) if a_unsigned else (-127, 127)
    return Requant(rng.integers(0, 2**16, n).astype(np.int32), int(rng.integers(0, 25)), lo, hi)


def random_case(rng: np.random.Generator, m: int, n: int, k: int, name: str = "random",
                p: bfp.BfpParams | None = None) -> tuple[str, dict]:
    """Random codes over the engine's whole input range: every m-bit mantissa
    pattern (including -2^(m-1)), every exponent code, anchors at or above the
    row maximum, int8 or uint8 activations, raw or requantized output."""
    p = p or _random_params(rng)
    a_unsigned = bool(rng.integers(0, 2))
    a = rng.integers(0, 256, (m, k)).astype(np.uint8) if a_unsigned else rng.integers(-128, 128, (m, k)).astype(np.int8)
    half = 2 ** (p.mantissa - 1)
    mant = rng.integers(-half, half, (n, k)).astype(np.int8)
    nb = p.n_blocks(k)
    # Exponents near each other (the common case) or spread over the whole code range.
    if rng.integers(0, 2):
        base = rng.integers(0, 2**p.e_bits - 8, (n, 1))
        exps = (base + rng.integers(0, 8, (n, nb))).astype(np.uint8)
    else:
        exps = rng.integers(0, 2**p.e_bits, (n, nb)).astype(np.uint8)
    eref = np.minimum(exps.max(axis=1).astype(np.int64) + rng.integers(0, 3, n), 2**p.e_bits - 1).astype(np.uint8)
    bias = rng.integers(-(2**20), 2**20, n).astype(np.int32)
    rq = None if rng.integers(0, 4) == 0 else _requant(rng, n, a_unsigned)
    return operands(name, a, exps, mant, p, bias, rq, eref)


def edge_cases(rng: np.random.Generator) -> Iterator[tuple[str, dict]]:
    def full(shape, value, dtype):
        return np.full(shape, value, dtype=dtype)

    yield random_case(rng, 1, 1, 1, "length 1")
    yield random_case(rng, 9, 7, 257, "ragged block across tiles K=257 B=128", bfp.BfpParams(128, 5, 8))
    yield random_case(rng, 5, 9, 300, "slice starts mid-byte B=128 e=5", bfp.BfpParams(128, 3, 5))
    yield random_case(rng, 17, 3, 513, "ragged tiles K=513 B=4", bfp.BfpParams(4, 7, 6))
    yield random_case(rng, 8, 8, 256, "exact tile 8x8x256 MXINT8", bfp.BfpParams(32, 8, 8))
    for mb in range(2, 9):
        p = bfp.BfpParams(16, mb, 8)
        yield random_case(rng, 3, 10, 70, f"mantissa {mb} bits", p)

    p8 = bfp.BfpParams(4, 8, 8)
    k_u = bfp.max_reduction_length(True, p8)
    e0 = np.full((3, p8.n_blocks(k_u)), 127, np.uint8)
    yield operands("max K uint8 255 x -128", full((2, k_u), 255, np.uint8), e0, full((3, k_u), -128, np.int8), p8)
    k_s = bfp.max_reduction_length(False, p8)
    e1 = np.full((2, p8.n_blocks(k_s)), 200, np.uint8)
    yield operands("max K int8 -128 x -128", full((1, k_s), -128, np.int8), e1, full((2, k_s), -128, np.int8), p8)
    yield operands("max K int8 -128 x 127", full((1, k_s), -128, np.int8), e1[:1], full((1, k_s), 127, np.int8), p8,
                   requant=Requant(np.array([INT32_MAX], np.int32), MAX_SHIFT, -(2**31), INT32_MAX))

    m, n, k = 11, 13, 300
    p = bfp.BfpParams(8, 6, 8)
    neg_exps = rng.integers(100, 110, (n, p.n_blocks(k))).astype(np.uint8)
    yield operands("all negative", rng.integers(-128, 0, (m, k)).astype(np.int8), neg_exps,
                   rng.integers(-32, 0, (n, k)).astype(np.int8), p, rng.integers(-(2**20), 0, n).astype(np.int32),
                   Requant(rng.integers(1, 2**12, n).astype(np.int32), 20, -127, 127))
    zero_exps = rng.integers(0, 255, (6, 2)).astype(np.uint8)
    yield operands("zero activations", np.zeros((5, 40), np.uint8), zero_exps,
                   rng.integers(-8, 8, (6, 40)).astype(np.int8), bfp.BfpParams(32, 4, 8),
                   rng.integers(-1000, 1000, 6).astype(np.int32), Requant(np.full(6, 3, np.int32), 1, 0, 255))
    # All-zero weights as the quantizer writes them: every exponent code 0.
    yield operands("zero weights", rng.integers(0, 256, (4, 33)).astype(np.uint8), np.zeros((9, 9), np.uint8),
                   np.zeros((9, 33), np.int8), bfp.BfpParams(4, 5, 8))
    # Exponent codes 0..255 under anchor 255: shifts far past the 47-bit
    # saturation, negative block sums truncate to -1 (floor), not to 0.
    p = bfp.BfpParams(4, 8, 8)
    spread = np.tile(np.arange(256, dtype=np.uint8), (2, 1))
    yield operands("alignment shifts 0..255", rng.integers(-128, 128, (3, 1024)).astype(np.int8), spread,
                   rng.integers(-128, 128, (2, 1024)).astype(np.int8), p, eref=np.full(2, 255, np.uint8))
    # Block sums of +-1 one shift below the anchor land exactly on +-1/2 of an
    # output unit: the drain rounds both ties toward +infinity (1 and 0).
    ties_exps = np.array([[9, 8], [9, 8], [9, 8]], np.uint8)
    ties_mant = np.array([[0, 0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, -1, 0, 0, 0], [0, 0, 0, 0, 3, 0, 0, 0]], np.int8)
    yield operands("drain ties round up", np.array([[1, 0, 0, 0, 1, 0, 0, 0]], np.int8), ties_exps, ties_mant,
                   bfp.BfpParams(4, 3, 8))
    # A tie at -1/2 plus one guard unit floored to -1 (shift 47): floor gives
    # -1 at the drain where truncation toward zero would give 0.
    floor_mant = np.array([[-1, 0, 0, 0, -1, 0, 0, 0], [-1, 0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0]], np.int8)
    yield operands("floor visible at the drain", np.array([[1, 0, 0, 0, 1, 0, 0, 0]], np.uint8),
                   np.array([[99, 53]] * 3, np.uint8), floor_mant, bfp.BfpParams(4, 3, 8), eref=np.full(3, 100, np.uint8))
    yield operands("anchor above the row maximum", rng.integers(0, 256, (4, 64)).astype(np.uint8),
                   np.full((5, 4), 120, np.uint8), rng.integers(-8, 8, (5, 64)).astype(np.int8),
                   bfp.BfpParams(16, 4, 8), eref=np.array([120, 121, 130, 160, 255], np.uint8))
    name, ops = random_case(rng, 6, 10, 64, "requant saturates both ends", bfp.BfpParams(8, 8, 8))
    yield name, {**ops, "requant": Requant(np.full(10, 2**30, np.int32), 0, -127, 127)}
    # Weights straight from the quantizer: float -> blocks -> packed stream.
    wf = rng.normal(size=(12, 200)) * np.exp(rng.normal(size=(12, 1)))
    for p in (bfp.BfpParams(32, 8, 8), bfp.BfpParams(16, 4, 8), bfp.BfpParams(64, 3, 5)):
        exps, mant = bfp.quantize(wf, p)
        yield operands(f"quantized floats {p.label()}", rng.integers(0, 256, (7, 200)).astype(np.uint8), exps, mant, p,
                       rng.integers(-5000, 5000, 12).astype(np.int32), _requant(rng, 12, True))


def all_cases(seed: int, n_random: int) -> Iterator[tuple[str, dict]]:
    rng = np.random.default_rng(seed)
    yield from edge_cases(rng)
    for i in range(n_random):
        m, n = (int(v) for v in rng.integers(1, 40, 2))
        k = int(rng.integers(1, 700))
        yield random_case(rng, m, n, k, f"random #{i}")


def cases(seed: int, n_random: int):
    yield from all_cases(seed, n_random)


ENGINE = EngineDef("bfp", validate, reference, csim, cases)

# --------------------------------------------------------------------------- golden vectors

GOLDEN_SEED = 2027
VECTORS = Path("hls/tb/data/gemm_bfp_vectors.h")
_MAX_ELEMENTS = 20000  # keep the header small: skip edge cases with huge K


def golden_cases() -> list[tuple[str, dict]]:
    from termshift.golden import golden_operands

    rng = np.random.default_rng(GOLDEN_SEED)
    return golden_operands(edge_cases(rng), lambda m, n, k: random_case(rng, m, n, k)[1], _MAX_ELEMENTS)


def render_vectors() -> str:
    from termshift.golden import _c_array, _c_int, output_stage, render_vector_header

    out, entries = [], []
    for i, (name, ops) in enumerate(golden_cases()):
        args = validate(**ops)
        m, n, k = args.shape
        c = bfp.gemm_validated(args)
        flags, rq, mult = output_stage(args.requant, n, args.a_unsigned)
        out.append(_c_array("uint8_t", f"v{i}_A", args.a.view(np.uint8)))
        out.append(_c_array("uint8_t", f"v{i}_W", args.w))
        out.append(_c_array("uint8_t", f"v{i}_eref", args.eref))
        out.append(_c_array("int32_t", f"v{i}_bias", args.bias))
        out.append(_c_array("int32_t", f"v{i}_mult", mult))
        out.append(_c_array("int32_t", f"v{i}_C", c))
        p = args.p
        entries.append(f'    {{"{name}", {m}u, {n}u, {k}u, {p.block_log2}u, {p.mantissa}u, {p.e_bits}u, {rq.shift}u, '
                       f"{flags}u, {_c_int(rq.lo)}, {_c_int(rq.hi)}, v{i}_A, v{i}_W, v{i}_eref, v{i}_bias, v{i}_mult, "
                       f"v{i}_C, {bfp_cycles(m, n, k)}ull}},")
    return render_vector_header(
        "bfp",
        ["// GENERATED by `python -m termshift.backends.engine_bfp` from the numpy",
         "// reference (host/termshift/formats/bfp.py). Do not edit; regenerate."],
        ["const char *name;", "unsigned M, N, K, block_log2, m_bits, e_bits, shift, flags;", "int32_t lo, hi;",
         "const uint8_t *A, *W, *eref;", "const int32_t *bias, *mult, *C;", "uint64_t cycles;"],
        out, entries)


def bench(size: int = 256, p: bfp.BfpParams = bfp.BfpParams(32, 4, 8), repeats: int = 3, seed: int = 0) -> dict:
    """Side by side on one size^3 GEMM: the BFP reference, the BFP C-sim
    builds, and the INT8 C-sim fast build; every output checked first."""
    from termshift.backends.csim import load_extension
    from termshift.bench import _best_time

    ext = load_extension()
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (size, size)).astype(np.uint8)
    exps, mant = bfp.quantize(rng.normal(size=(size, size)), p)
    _, ops = operands("bench", a, exps, mant, p)
    args = validate(**ops)
    want = bfp.gemm_validated(args)
    w8 = rng.integers(-128, 128, (size, size)).astype(np.int8)
    z = np.zeros(size, np.int32)
    raw = ext.ENGINES["int"]["flag_a_unsigned"] | ext.ENGINES["int"]["flag_raw_out"]
    contenders = {
        "bfp_reference": lambda: bfp.gemm_validated(validate(**ops)),
        "bfp_csim_fast": lambda: csim(ext, "fast", args).out,
        "bfp_csim_exact": lambda: csim(ext, "exact", args).out,
        "int_csim_fast": lambda: ext.gemm_int("fast", a, w8, z, z, 0, 0, 0, raw)[0],  # the INT8 engine, for scale
    }
    results = {}
    for name, fn in contenders.items():
        if name.startswith("bfp"):
            np.testing.assert_array_equal(fn(), want, err_msg=f"{name} disagrees with the reference")
        seconds = _best_time(fn, repeats)
        results[name] = {"seconds": seconds, "mac_per_s": size**3 / seconds}
    return {"size": size, "format": p.spec(), "results": results}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Rewrite the BFP testbench's golden vectors from the numpy reference "
                                                 "(or, with --bench, time the BFP engine's C-sim).")
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    parser.add_argument("--bench", type=int, metavar="SIZE", help="time a SIZE^3 GEMM instead of writing vectors")
    args = parser.parse_args(argv)
    if args.bench:
        r = bench(args.bench)
        print(f"BFP engine, {r['size']}^3 GEMM in {r['format']}, best of runs:")
        for name, v in r["results"].items():
            print(f"  {name:<16} {v['mac_per_s'] / 1e6:>9.1f} M MAC/s  {v['seconds'] * 1e3:>9.2f} ms")
        return 0
    from termshift.golden import write_vectors

    write_vectors(args.root, VECTORS, render_vectors())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
