"""Golden vectors for the C++ testbenches, computed by the numpy reference.

`python -m termshift.golden` rewrites hls/tb/data/gemm_int_vectors.h; a test
checks the committed file equals what the current reference produces, so the
testbench (and vitis_hls csim_design) always checks against the Python spec.

Also owns what every engine's generator (termshift.backends.engine_<e>)
shares: the C literals, the header layout (`render_vector_header`), the
case selection (`golden_operands`), the requant fields of a case
(`output_stage`) and the writer (`write_vectors`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from termshift.atomic import write_text_atomic
from termshift.backends.cycle_model import INT_ENGINE, gemm_cycles
from termshift.cases import GemmCase, edge_cases, random_case
from termshift.formats import uniform

GOLDEN_SEED = 2026
INT_VECTORS = Path("hls/tb/data/gemm_int_vectors.h")
_MAX_ELEMENTS = 20000  # keep the header small: skip edge cases with huge K
# The random shapes every engine's header holds after its edge cases.
GOLDEN_SHAPES = ((3, 5, 7), (12, 9, 260), (1, 20, 31))


def golden_operands(edge: Iterable[tuple[str, dict]], random_operands: Callable[[int, int, int], dict],
                    max_elements: int = _MAX_ELEMENTS) -> list[tuple[str, dict]]:
    """The edge cases whose a and w are small enough for a header, then one
    random case per GOLDEN_SHAPES entry (drawn after the edge cases, so a
    shared generator is consumed in a fixed order)."""
    out = [(name, ops) for name, ops in edge if ops["a"].size + ops["w"].size <= max_elements]
    out += [(f"random {m}x{n}x{k}", random_operands(m, n, k)) for m, n, k in GOLDEN_SHAPES]
    return out


def golden_int_cases() -> list[GemmCase]:
    rng = np.random.default_rng(GOLDEN_SEED)
    cases = [c for c in edge_cases(rng) if c.a.size + c.w.size <= _MAX_ELEMENTS]
    cases += [random_case(rng, m, n, k, f"random {m}x{n}x{k}") for m, n, k in GOLDEN_SHAPES]
    return cases


def _c_int(v: int) -> str:
    # -2147483648 is not an int literal in C++ (it is -(2147483648L)).
    return "(-2147483647 - 1)" if v == -(2**31) else str(v)


def _c_array(ctype: str, name: str, values: np.ndarray) -> str:
    flat = values.reshape(-1).tolist()
    rows = [", ".join(_c_int(v) for v in flat[i:i + 24]) for i in range(0, len(flat), 24)]
    body = ",\n    ".join(rows)
    return f"static const {ctype} {name}[{len(flat)}] = {{\n    {body}}};\n"


def output_stage(requant: uniform.Requant | None, n: int, a_unsigned: bool) -> tuple[int, uniform.Requant, np.ndarray]:
    """The testbench fields of a case's output stage: the flags register
    (FLAG_A_UNSIGNED, FLAG_RAW_OUT), the requant (all zeros for raw output)
    and its multiplier as n int64 values."""
    flags = (1 if a_unsigned else 0) | (2 if requant is None else 0)
    rq = requant or uniform.Requant(np.zeros(n, np.int32), 0, 0, 0)
    mult = np.broadcast_to(np.asarray(rq.multiplier, np.int64), (n,))
    return flags, rq, mult


def render_vector_header(engine: str, banner: Sequence[str], fields: Sequence[str], arrays: Sequence[str],
                         entries: Sequence[str]) -> str:
    """The text of hls/tb/data/gemm_<engine>_vectors.h: `banner` comment
    lines, an include guard, `struct gemm_<engine>_vector` with `fields`
    (C member declarations), the `arrays` (from _c_array) and the table
    `gemm_<engine>_vectors[]` of `entries` (C initializer lines)."""
    guard = f"TERMSHIFT_GEMM_{engine.upper()}_VECTORS_H"
    out = [*banner, f"#ifndef {guard}", f"#define {guard}", "#include <stdint.h>", "",
           f"struct gemm_{engine}_vector {{", *(f"    {f}" for f in fields), "};", ""]
    out += arrays
    out.append(f"static const gemm_{engine}_vector gemm_{engine}_vectors[] = {{")
    out += entries
    out += ["};", "", "#endif", ""]
    return "\n".join(out)


def write_vectors(root: Path, relpath: Path, text: str) -> Path:
    """Writes one generated header under the repository root, atomically."""
    path = Path(root) / relpath
    write_text_atomic(path, text)
    print(f"wrote {path}")
    return path


def render_int_vectors() -> str:
    arrays, entries = [], []
    for i, case in enumerate(golden_int_cases()):
        m, k = case.a.shape
        n = case.w.shape[0]
        c = uniform.gemm(case.a, case.w, case.bias, case.requant)
        flags, rq, mult = output_stage(case.requant, n, case.a.dtype == np.uint8)
        arrays.append(_c_array("uint8_t", f"v{i}_A", case.a.view(np.uint8)))
        arrays.append(_c_array("int8_t", f"v{i}_W", case.w))
        arrays.append(_c_array("int32_t", f"v{i}_bias", case.bias))
        arrays.append(_c_array("int32_t", f"v{i}_mult", mult))
        arrays.append(_c_array("int32_t", f"v{i}_C", c))
        cycles = gemm_cycles(INT_ENGINE, m, n, k)
        entries.append(f'    {{"{case.name}", {m}u, {n}u, {k}u, {rq.shift}u, {flags}u, {_c_int(rq.lo)}, {_c_int(rq.hi)}, '
                       f"v{i}_A, v{i}_W, v{i}_bias, v{i}_mult, v{i}_C, {cycles}ull}},")
    return render_vector_header(
        "int",
        ["// GENERATED by `python -m termshift.golden` from the numpy reference",
         "// (host/termshift/formats/uniform.py). Do not edit; regenerate."],
        ["const char *name;", "unsigned M, N, K, shift, flags;", "int32_t lo, hi;", "const uint8_t *A;",
         "const int8_t *W;", "const int32_t *bias, *mult, *C;", "uint64_t cycles;"],
        arrays, entries)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    args = parser.parse_args(argv)
    write_vectors(args.root, INT_VECTORS, render_int_vectors())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
