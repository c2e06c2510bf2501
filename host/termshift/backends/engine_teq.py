"""The TEQ engine (hls/top/gemm_teq.cpp) as seen by the backends: operand
validation and reference from the `teq` format, the C-sim call, the cycle
model, the cases `termshift verify` runs, and the golden vectors of the C++
testbench (`python -m termshift.backends.engine_teq` rewrites
hls/tb/data/gemm_teq_vectors.h).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterator

import numpy as np

from termshift.backends.base import GemmResult
from termshift.backends.cycle_model import ArrayGeometry
from termshift.backends.engines import EngineDef
from termshift.formats import teq
from termshift.formats.uniform import INT32_MAX, MAX_SHIFT, Requant

# Must equal GEMM_TEQ_* in hls/top/gemm_teq.h; tests compare with the extension.
TEQ_ENGINE = ArrayGeometry(rows=8, cols=8, tile_k=256)
VECTORS = Path("hls/tb/data/gemm_teq_vectors.h")


def teq_cycles(geom: ArrayGeometry, m: int, n: int, k: int, n_recon: int) -> int:
    """Cycles of one M x N x K call (docs/formats/teq.md, section 9): per output
    tile, each K slice's wavefront (k_len + rows + cols - 2 steps), then the
    reconstruction (rows x n_recon: each column's unit walks its rows' counters
    one per cycle), then the drain through requant (rows x cols)."""
    tiles = -(-m // geom.rows) * -(-n // geom.cols)
    k_tiles = -(-k // geom.tile_k)
    return tiles * (k + k_tiles * (geom.rows + geom.cols - 2) + geom.rows * n_recon + geom.rows * geom.cols)


def validate(a, w, k, w_bits, lut, p_table, w_table, a_table, bias=None, requant=None) -> teq.GemmTeqArgs:
    return teq.validate_gemm_teq(a, w, k, w_bits, lut, p_table, w_table, a_table, bias, requant)


def reference(args: teq.GemmTeqArgs) -> GemmResult:
    m, n, k = args.shape
    return GemmResult(teq.gemm_args(args), teq_cycles(TEQ_ENGINE, m, n, k, args.n_recon))


def csim(ext, build: str, args: teq.GemmTeqArgs) -> GemmResult:
    if args.requant is None:
        mult, shift, lo, hi = np.zeros_like(args.bias), 0, 0, 0
    else:
        rq = args.requant
        mult, shift, lo, hi = rq.multiplier, rq.shift, rq.lo, rq.hi
    out, cycles = ext.gemm_teq(build, args.a.view(np.uint8), args.w, args.bias,
                               np.ascontiguousarray(mult, dtype=np.int32), args.tables, args.lut, args.k,
                               args.w_bits, args.lw, args.la, shift, lo, hi, args.flags)
    return GemmResult(out, int(cycles))


# ----------------------------------------------------------------------------- cases


def _operands(a, codes, w_bits, lut, p, wt, at, bias, requant) -> dict:
    return {"a": a, "w": teq.pack_codes(codes.astype(np.int8), w_bits), "k": int(codes.shape[1]),
            "w_bits": int(w_bits), "lut": lut.astype(np.int8), "p_table": p.astype(np.int16),
            "w_table": wt.astype(np.int16), "a_table": at.astype(np.int16), "bias": bias.astype(np.int32),
            "requant": requant}


def random_operands(rng: np.random.Generator, m: int, n: int, k: int) -> dict:
    """Any legal call: widths, level counts, tables (full int16 range, banks on
    or off), lookup table, codes with zeros, bias, requant or raw."""
    w_bits = int(rng.integers(2, 8))
    lw = int(rng.integers(1, 2 ** (w_bits - 1)))
    la = int(rng.integers(1, teq.A_MAG_MAX + 1))
    p = rng.integers(-(2**15), 2**15, la + lw - 1)
    wt = rng.integers(-(2**15), 2**15, lw) * int(rng.integers(0, 2))
    at = rng.integers(-(2**15), 2**15, la) * int(rng.integers(0, 2))
    signed_in = bool(rng.integers(0, 2))
    lut = rng.integers(-la if signed_in else 0, la + 1, 256)
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    if signed_in:
        a = a.view(np.int8)
    codes = rng.integers(-lw, lw + 1, (n, k))
    bias = rng.integers(-(2**20), 2**20, n)
    rq = None
    if rng.integers(0, 4):
        lo, hi = (0, 255) if rng.integers(0, 2) else (-127, 127)
        rq = Requant(rng.integers(0, 2**16, n).astype(np.int32), int(rng.integers(0, 30)), lo, hi)
    return _operands(a, codes, w_bits, lut, p, wt, at, bias, rq)


def _max_k(per_pair: int) -> int:
    return INT32_MAX // per_pair


def edge_operands(rng: np.random.Generator) -> Iterator[tuple[str, dict]]:
    def full(shape, value):
        return np.full(shape, value, dtype=np.int64)

    yield "length 1", random_operands(rng, 1, 1, 1)
    yield "ragged tiles K=257", random_operands(rng, 9, 7, 257)
    yield "ragged tiles K=513", random_operands(rng, 17, 3, 513)
    yield "exact tile 8x8x256", random_operands(rng, 8, 8, 256)
    for w_bits in teq.W_BITS:
        lw = 2 ** (w_bits - 1) - 1
        ops = random_operands(rng, 5, 9, 37)
        codes = rng.integers(-lw, lw + 1, (9, 37))
        codes[:, :3] = [-lw, lw, 0]
        ops.update(w=teq.pack_codes(codes.astype(np.int8), w_bits), w_bits=w_bits,
                   w_table=rng.integers(-99, 99, lw).astype(np.int16),
                   p_table=rng.integers(-999, 999, ops["a_table"].size + lw - 1).astype(np.int16))
        yield f"w_bits={w_bits}, every field value", ops

    # Largest reductions the accumulator bound admits, every pair at the top bin.
    lw, la = 63, 127
    top_lut = full(256, la)
    k = _max_k(2**15 - 1)
    yield "max K, p only, all +32767", _operands(full((2, k), 7).astype(np.uint8), full((2, k), lw), 7, top_lut,
                                                 full(la + lw - 1, 2**15 - 1), full(lw, 0), full(la, 0),
                                                 full(2, 0), None)
    neg = full((2, k), lw)
    neg[1] = -lw
    yield "max K, p only, signs give -2^31+2", _operands(full((1, k), 200).astype(np.uint8), neg, 7, top_lut,
                                                         full(la + lw - 1, 2**15 - 1), full(lw, 0), full(la, 0),
                                                         full(2, 0), None)
    k3 = _max_k(3 * 2**15)
    yield "max K, three banks at -32768", _operands(full((1, k3), 1).astype(np.uint8), full((1, k3), lw), 7, top_lut,
                                                    full(la + lw - 1, -(2**15)), full(lw, -(2**15)),
                                                    full(la, -(2**15)), full(1, 0),
                                                    Requant(np.array([INT32_MAX], np.int32), MAX_SHIFT, -(2**31),
                                                            INT32_MAX))

    ops = random_operands(rng, 11, 13, 300)
    lw, la = ops["w_table"].size, ops["a_table"].size
    ops.update(lut=rng.integers(-la, 0, 256).astype(np.int8), a=ops["a"].view(np.int8),
               w=teq.pack_codes(rng.integers(-lw, 0, (13, 300)).astype(np.int8), ops["w_bits"]),
               p_table=rng.integers(-(2**15), 0, la + lw - 1).astype(np.int16),
               w_table=rng.integers(-(2**15), 0, lw).astype(np.int16),
               a_table=rng.integers(-(2**15), 0, la).astype(np.int16),
               bias=rng.integers(-(2**20), 0, 13).astype(np.int32),
               requant=Requant(rng.integers(1, 2**12, 13).astype(np.int32), 20, -127, 127))
    yield "all negative, both banks", ops
    ops = random_operands(rng, 5, 6, 40)
    ops.update(lut=np.zeros(256, np.int8), requant=Requant(np.full(6, 3, np.int32), 1, 0, 255))
    yield "zero activations", ops
    ops = random_operands(rng, 4, 9, 33)
    ops.update(w=teq.pack_codes(np.zeros((9, 33), np.int8), ops["w_bits"]))
    yield "zero weights", ops
    ops = random_operands(rng, 3, 2, 9)
    ops.update(w_bits=2, w=teq.pack_codes(rng.integers(-1, 2, (2, 9)).astype(np.int8), 2),
               w_table=np.array([5], np.int16), a_table=np.array([-7], np.int16), p_table=np.array([11], np.int16),
               lut=rng.integers(-1, 2, 256).astype(np.int8))
    yield "one level each (la = lw = 1)", ops
    ops = random_operands(rng, 6, 10, 64)
    ops.update(requant=Requant(np.full(10, 2**30, np.int32), 0, -127, 127))
    yield "requant saturates both ends", ops
    ops = _operands(np.array([[1], [2], [3]], np.uint8), np.array([[1], [-1], [1]]), 3, np.array([0, 1, 1, 1] + [0] * 252),
                    np.array([1], np.int64), np.zeros(1), np.zeros(1), np.zeros(3), None)
    ops.update(requant=Requant(np.array([1, 1, 1], np.int32), 1, -(2**31), INT32_MAX))
    yield "requant ties round up", ops


def all_operands(seed: int, n_random: int) -> Iterator[tuple[str, dict]]:
    rng = np.random.default_rng(seed)
    yield from edge_operands(rng)
    for i in range(n_random):
        m, n = (int(v) for v in rng.integers(1, 40, 2))
        yield f"random #{i}", random_operands(rng, m, n, int(rng.integers(1, 700)))


def cases(seed: int, n_random: int):
    yield from all_operands(seed, n_random)


ENGINE = EngineDef("teq", validate, reference, csim, cases)


# ----------------------------------------------------------------------------- golden vectors

GOLDEN_SEED = 2027
_MAX_ELEMENTS = 20000  # keep the header small: the huge-K edge cases run in the testbench itself


def golden_cases() -> list[tuple[str, dict]]:
    from termshift.golden import golden_operands

    rng = np.random.default_rng(GOLDEN_SEED)
    return golden_operands(edge_operands(rng), lambda m, n, k: random_operands(rng, m, n, k), _MAX_ELEMENTS)


def render_vectors() -> str:
    from termshift.golden import _c_array, _c_int, output_stage, render_vector_header

    out, entries = [], []
    for i, (name, ops) in enumerate(golden_cases()):
        args = validate(**ops)
        res = reference(args)
        m, n, k = args.shape
        # The flags register also carries the bank bits: args.flags has them all.
        _, rq, mult = output_stage(args.requant, n, a_unsigned=False)
        out.append(_c_array("uint8_t", f"v{i}_A", args.a.view(np.uint8)))
        out.append(_c_array("uint8_t", f"v{i}_W", args.w))
        out.append(_c_array("int32_t", f"v{i}_bias", args.bias))
        out.append(_c_array("int32_t", f"v{i}_mult", mult))
        out.append(_c_array("int16_t", f"v{i}_tables", args.tables))
        out.append(_c_array("int8_t", f"v{i}_lut", args.lut))
        out.append(_c_array("int32_t", f"v{i}_C", res.out))
        entries.append(f'    {{"{name}", {m}u, {n}u, {k}u, {args.w_bits}u, {args.lw}u, {args.la}u, {rq.shift}u, '
                       f"{args.flags}u, {_c_int(rq.lo)}, {_c_int(rq.hi)}, v{i}_A, v{i}_W, v{i}_bias, v{i}_mult, "
                       f"v{i}_tables, v{i}_lut, v{i}_C, {res.cycles}ull}},")
    return render_vector_header(
        "teq",
        ["// GENERATED by `python -m termshift.backends.engine_teq` from the numpy",
         "// reference (host/termshift/formats/teq.py). Do not edit; regenerate."],
        ["const char *name;", "unsigned M, N, K, w_bits, lw, la, shift, flags;", "int32_t lo, hi;",
         "const uint8_t *A, *W;", "const int32_t *bias, *mult;", "const int16_t *tables;", "const int8_t *lut;",
         "const int32_t *C;", "uint64_t cycles;"],
        out, entries)


def main(argv=None) -> int:
    from termshift.golden import write_vectors

    parser = argparse.ArgumentParser(description="Rewrite the TEQ testbench's golden vectors from the reference.")
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    args = parser.parse_args(argv)
    write_vectors(args.root, VECTORS, render_vectors())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
