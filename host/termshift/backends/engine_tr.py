"""The TR engine (hls/top/gemm_tr.cpp) as seen by the backends: operand
validation and reference from the `tr` format, the engine's cycle model, the
C-sim call, the cases `termshift verify` runs in both modes, and the
testbench's golden vectors (`python -m termshift.backends.engine_tr` rewrites
hls/tb/data/gemm_tr_vectors.h).

Operands select the mode: `w=` (int8, with `conv_bits`) runs conventional
mode, `terms=`/`counts=` (with `group`, `data_terms`, `encoding`) TR mode.

Cycle model (docs/formats/tr.md, section 7), for every row tile:

    sum over column tiles t of ( sum over K slices s of (T[t,s] + rows - 1) + rows * cols )

where a slice holds min(tile_k / group, term_buf / slots) whole groups and
T[t,s] is its step count: the sum over its groups of the longest term list
among the tile's columns (TR), or values * conv_bits (conventional).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from termshift.backends.base import GemmResult
from termshift.backends.cycle_model import ArrayGeometry
from termshift.backends.engines import EngineDef
from termshift.formats import tr, uniform

# Must equal GEMM_TR_* in hls/top/gemm_tr.h; tests compare with the extension.
TR_ENGINE = ArrayGeometry(rows=8, cols=8, tile_k=256)
TERM_BUF = 2048  # weight term slots buffered per column and slice
VECTORS = Path("hls/tb/data/gemm_tr_vectors.h")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def groups_per_slice(group: int, slots: int, geom: ArrayGeometry = TR_ENGINE) -> int:
    return min(geom.tile_k // group, TERM_BUF // slots)


def tr_cycles(m: int, counts: np.ndarray, group: int, slots: int, geom: ArrayGeometry = TR_ENGINE) -> int:
    """Array cycles of a TR-mode call with M = m, from the term counts (N, n_groups)."""
    counts = np.asarray(counts, np.int64)
    n, n_groups = counts.shape
    col_tiles = _ceil_div(n, geom.cols)
    padded = np.zeros((col_tiles * geom.cols, n_groups), np.int64)
    padded[:n] = counts
    steps = padded.reshape(col_tiles, geom.cols, n_groups).max(axis=1)  # (tiles, groups)
    slices = _ceil_div(n_groups, groups_per_slice(group, slots, geom))
    per_tile = steps.sum(axis=1) + slices * (geom.rows - 1) + geom.rows * geom.cols
    return _ceil_div(m, geom.rows) * int(per_tile.sum())


def conventional_cycles(m: int, n: int, k: int, conv_bits: int, geom: ArrayGeometry = TR_ENGINE) -> int:
    """Array cycles of a conventional-mode call: conv_bits steps per value."""
    slices = _ceil_div(k, groups_per_slice(1, conv_bits, geom))
    per_tile = k * conv_bits + slices * (geom.rows - 1) + geom.rows * geom.cols
    return _ceil_div(m, geom.rows) * _ceil_div(n, geom.cols) * per_tile


def cycles_of(args: tr.GemmTrArgs) -> int:
    m, n, k = args.shape
    if args.mode == "conventional":
        return conventional_cycles(m, n, k, args.conv_bits)
    return tr_cycles(m, args.counts, args.group, args.slots)


def validate(a, w=None, terms=None, counts=None, bias=None, requant=None, conv_bits: int = 8, group: int = 1,
             data_terms: int = tr.MAX_DATA_TERMS, encoding: str = "hese") -> tr.GemmTrArgs:
    if w is not None and (terms is not None or counts is not None):
        raise TypeError("give either w (conventional mode) or terms and counts (TR mode), not both")
    if w is not None:
        return tr.validate_conventional(a, w, bias, requant, conv_bits)
    if terms is None or counts is None:
        raise TypeError("the TR engine needs w (conventional mode) or both terms and counts (TR mode)")
    return tr.validate_tr(a, terms, counts, group, data_terms, encoding, bias, requant)


def reference(args: tr.GemmTrArgs) -> GemmResult:
    return GemmResult(tr.gemm_tr(args), cycles_of(args))


_NO_W = np.zeros((1, 1), np.int8)
_NO_TERMS = np.zeros((1, 1, 1), np.uint8)
_NO_COUNTS = np.zeros((1, 1), np.uint8)


def csim(ext, build: str, args: tr.GemmTrArgs) -> GemmResult:
    info = ext.ENGINES["tr"]
    flags = info["flag_a_unsigned"] if args.a_unsigned else 0
    if args.requant is None:
        flags |= info["flag_raw_out"]
        mult, shift, lo, hi = np.zeros_like(args.bias), 0, 0, 0
    else:
        rq = args.requant
        mult, shift, lo, hi = rq.multiplier, rq.shift, rq.lo, rq.hi
    conventional = args.mode == "conventional"
    mode = info["mode_conventional"] if conventional else info["mode_tr"]
    out, cycles = ext.gemm_tr(
        build, args.a.view(np.uint8), args.w if conventional else _NO_W,
        _NO_TERMS if conventional else args.terms, _NO_COUNTS if conventional else args.counts,
        args.bias, np.ascontiguousarray(mult, dtype=np.int32), shift, lo, hi, flags, mode, args.group,
        args.data_terms, info["encodings"][args.encoding], args.conv_bits)
    return GemmResult(out, int(cycles))


# --------------------------------------------------------------------------- cases


def _activations(rng: np.random.Generator, m: int, k: int, unsigned: bool) -> np.ndarray:
    if unsigned:
        return rng.integers(0, 256, (m, k)).astype(np.uint8)
    return rng.integers(-128, 128, (m, k)).astype(np.int8)


def _requant(rng: np.random.Generator, n: int, unsigned: bool) -> uniform.Requant | None:
    if rng.integers(0, 4) == 0:
        return None
    lo, hi = (0, 255) if unsigned else (-127, 127)
    return uniform.Requant(rng.integers(0, 2**16, n).astype(np.int32), int(rng.integers(0, 25)), lo, hi)


def revealed_case(rng: np.random.Generator, m: int, n: int, k: int, bits: int, group: int, budget: int,
                  data_terms: int, encoding: str, name: str, zero_frac: float = 0.0) -> tuple[str, dict]:
    """Operands the way the `tr` format makes them: B-bit codes, term-revealed."""
    unsigned = bool(rng.integers(0, 2))
    top = 2 ** (bits - 1)
    q = rng.integers(-top, top + 1, (n, k))
    q[rng.random((n, k)) < zero_frac] = 0
    kept = tr.reveal_digits(q.astype(np.int16), group, budget, encoding, axis=1)
    words, counts = tr.encode_weight_terms(kept, group, budget)
    return name, {"a": _activations(rng, m, k, unsigned), "terms": words, "counts": counts, "group": group,
                  "data_terms": data_terms, "encoding": encoding,
                  "bias": rng.integers(-(2**20), 2**20, n).astype(np.int32), "requant": _requant(rng, n, unsigned)}


def arbitrary_case(rng: np.random.Generator, m: int, n: int, k: int, group: int, slots: int, name: str) -> tuple[str, dict]:
    """Any legal term lists: unsorted, repeated exponents and indexes, random counts."""
    unsigned = bool(rng.integers(0, 2))
    n_groups = _ceil_div(k, group)
    glen = np.minimum(group, k - np.arange(n_groups) * group)
    idx = (rng.random((n, n_groups, slots)) * glen[None, :, None]).astype(np.int64)
    words = (rng.integers(0, 8, (n, n_groups, slots)) | (rng.integers(0, 2, (n, n_groups, slots)) << 3) | (idx << 4))
    counts = rng.integers(0, slots + 1, (n, n_groups)).astype(np.uint8)
    return name, {"a": _activations(rng, m, k, unsigned), "terms": words.astype(np.uint8), "counts": counts,
                  "group": group, "data_terms": int(rng.integers(1, tr.MAX_DATA_TERMS + 1)),
                  "encoding": tr.ENCODINGS[int(rng.integers(0, 3))],
                  "bias": rng.integers(-(2**20), 2**20, n).astype(np.int32), "requant": _requant(rng, n, unsigned)}


def _uniform_terms(n: int, k: int, group: int, word: int) -> tuple[np.ndarray, np.ndarray]:
    """Every value one term `word` (exponent and sign; index filled in)."""
    n_groups = _ceil_div(k, group)
    glen = np.minimum(group, k - np.arange(n_groups) * group)
    words = np.zeros((n, n_groups, group), np.uint8)
    words[:] = (np.arange(group) << 4 | word).astype(np.uint8)
    return words, np.broadcast_to(glen.astype(np.uint8), (n, n_groups)).copy()


def tr_edge_cases(rng: np.random.Generator):
    yield revealed_case(rng, 1, 1, 1, 8, 1, 1, 1, "hese", "tr length 1")
    yield revealed_case(rng, 3, 5, 3, 7, 3, 4, 2, "binary", "tr g=3 k=4 (figure)")
    yield revealed_case(rng, 9, 7, 257, 8, 16, 12, 3, "hese", "tr ragged K=257 g=16")
    yield revealed_case(rng, 17, 9, 700, 4, 3, 5, 4, "naf", "tr g=3 slices of 85 groups")
    yield revealed_case(rng, 8, 8, 256, 8, 8, 10, 6, "hese", "tr exact tile")
    yield revealed_case(rng, 5, 12, 100, 8, 1, 3, 2, "hese", "tr per-value g=1")
    yield revealed_case(rng, 4, 10, 300, 4, 16, 6, 3, "hese", "tr sparse groups", zero_frac=0.9)
    yield revealed_case(rng, 6, 9, 64, 8, 16, 128, 8, "binary", "tr budget above every group")
    yield arbitrary_case(rng, 7, 9, 150, 5, 255, "tr 255 slots, arbitrary lists")
    yield arbitrary_case(rng, 10, 11, 333, 16, 20, "tr arbitrary lists g=16")
    # Largest reduction the accumulator check accepts: 256 * 128 per value.
    k_max = uniform.ACC_MAX // (256 * 128)
    words, counts = _uniform_terms(3, k_max, 16, 7)
    yield "tr max K 255 x +128", {"a": np.full((2, k_max), 255, np.uint8), "terms": words, "counts": counts,
                                  "group": 16, "data_terms": 1, "encoding": "hese", "bias": np.zeros(3, np.int32),
                                  "requant": None}
    words, counts = _uniform_terms(2, k_max, 16, 7 | 8)
    yield "tr max K 255 x -128", {"a": np.full((1, k_max), 255, np.uint8), "terms": words, "counts": counts,
                                  "group": 16, "data_terms": 1, "encoding": "naf", "bias": np.zeros(2, np.int32),
                                  "requant": uniform.Requant(np.array([uniform.INT32_MAX] * 2, np.int32),
                                                             uniform.MAX_SHIFT, -(2**31), uniform.INT32_MAX)}
    name, ops = revealed_case(rng, 11, 13, 200, 8, 8, 12, 4, "hese", "tr all negative")
    ops["a"] = rng.integers(-128, 0, (11, 200)).astype(np.int8)
    ops["terms"] = ops["terms"] | np.uint8(8)
    ops["bias"] = -np.abs(ops["bias"])
    ops["requant"] = uniform.Requant(rng.integers(1, 2**12, 13).astype(np.int32), 20, -127, 127)
    yield name, ops
    name, ops = revealed_case(rng, 5, 6, 40, 4, 8, 6, 3, "hese", "tr zero activations")
    ops["a"] = np.zeros((5, 40), np.uint8)
    yield name, ops
    name, ops = revealed_case(rng, 4, 9, 33, 4, 16, 6, 3, "hese", "tr zero weights")
    ops["counts"] = np.zeros_like(ops["counts"])
    yield name, ops


def conventional_cases(seed: int, n_random: int):
    from termshift.cases import all_cases

    rng = np.random.default_rng(seed + 1)
    for c in all_cases(seed, n_random):
        yield f"conventional {c.name}", {"a": c.a, "w": c.w, "bias": c.bias, "requant": c.requant, "conv_bits": 8}
    for bits in (1, 3, 5, 7):
        a = rng.integers(0, 256, (5, 70)).astype(np.uint8)
        w = rng.integers(-(2**bits) + 1, 2**bits, (9, 70)).astype(np.int8)
        yield f"conventional conv_bits={bits}", {"a": a, "w": w, "bias": rng.integers(-99, 99, 9).astype(np.int32),
                                                 "requant": None, "conv_bits": bits}


def cases(seed: int, n_random: int):
    rng = np.random.default_rng(seed)
    yield from tr_edge_cases(rng)
    for i in range(n_random):
        m, n = (int(v) for v in rng.integers(1, 30, 2))
        k = int(rng.integers(1, 600))
        group = int(rng.integers(1, tr.MAX_GROUP + 1))
        if i % 3 == 2:
            yield arbitrary_case(rng, m, n, k, group, int(rng.integers(1, 40)), f"tr random arbitrary #{i}")
        else:
            yield revealed_case(rng, m, n, k, int(rng.integers(2, 9)), group, int(rng.integers(1, 3 * group + 2)),
                                int(rng.integers(1, tr.MAX_DATA_TERMS + 1)), tr.ENCODINGS[i % 3],
                                f"tr random #{i}")
    yield from conventional_cases(seed, max(1, n_random // 4))


ENGINE = EngineDef("tr", validate, reference, csim, cases)


# --------------------------------------------------------------------------- golden vectors

GOLDEN_SEED = 2026
_MAX_ELEMENTS = 8000  # keeps the header small


def golden_cases() -> list[tuple[str, dict]]:
    out = []
    for name, ops in cases(GOLDEN_SEED, 4):
        a = ops["a"]
        size = a.size + (ops["w"].size if "w" in ops else ops["terms"].size)
        if size <= _MAX_ELEMENTS:
            out.append((name, ops))
    return out


def render_vectors() -> str:
    from termshift.golden import _c_array, _c_int, output_stage, render_vector_header

    out, entries = [], []
    for i, (name, ops) in enumerate(golden_cases()):
        args = validate(**ops)
        res = reference(args)
        m, n, k = args.shape
        conventional = args.mode == "conventional"
        flags, rq, mult = output_stage(args.requant, n, args.a_unsigned)
        out.append(_c_array("uint8_t", f"v{i}_A", args.a.view(np.uint8)))
        out.append(_c_array("int8_t", f"v{i}_W", args.w if conventional else _NO_W))
        out.append(_c_array("uint8_t", f"v{i}_Wt", _NO_TERMS if conventional else args.terms))
        out.append(_c_array("uint8_t", f"v{i}_Wn", _NO_COUNTS if conventional else args.counts))
        out.append(_c_array("int32_t", f"v{i}_bias", args.bias))
        out.append(_c_array("int32_t", f"v{i}_mult", mult))
        out.append(_c_array("int32_t", f"v{i}_C", res.out))
        mode = 0 if conventional else 1
        enc = tr.ENCODINGS.index(args.encoding)
        entries.append(f'    {{"{name}", {m}u, {n}u, {k}u, {rq.shift}u, {flags}u, {mode}u, {args.group}u, '
                       f"{args.slots}u, {args.data_terms}u, {enc}u, {args.conv_bits}u, {_c_int(rq.lo)}, "
                       f"{_c_int(rq.hi)}, v{i}_A, v{i}_W, v{i}_Wt, v{i}_Wn, v{i}_bias, v{i}_mult, v{i}_C, "
                       f"{res.cycles}ull}},")
    return render_vector_header(
        "tr",
        ["// GENERATED by `python -m termshift.backends.engine_tr` from the numpy reference",
         "// (host/termshift/formats/tr.py). Do not edit; regenerate."],
        ["const char *name;", "unsigned M, N, K, shift, flags, mode, group, slots, data_terms, encoding, conv_bits;",
         "int32_t lo, hi;", "const uint8_t *A;", "const int8_t *W;", "const uint8_t *Wt, *Wn;",
         "const int32_t *bias, *mult, *C;", "uint64_t cycles;"],
        out, entries)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Rewrite the TR engine testbench's golden vectors.")
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    args = parser.parse_args(argv)
    from termshift.golden import write_vectors

    write_vectors(args.root, VECTORS, render_vectors())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
