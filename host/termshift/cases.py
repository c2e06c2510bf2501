"""Engine test cases: deterministic random GEMMs and the edge cases every
engine must survive (length 1, ragged tiles, extreme codes at the largest legal
reduction length, all-negative operands, zeros, requant saturation).

Used by `termshift verify`, the golden-vector generator for the C++
testbenches, and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from termshift.formats.uniform import INT32_MAX, MAX_SHIFT, Requant, max_reduction_length


@dataclass(frozen=True)
class GemmCase:
    name: str
    a: np.ndarray
    w: np.ndarray
    bias: np.ndarray
    requant: Requant | None


def _requant(rng: np.random.Generator, n: int, a_unsigned: bool) -> Requant:
    lo, hi = (0, 255) if a_unsigned else (-127, 127)
    return Requant(rng.integers(0, 2**16, n).astype(np.int32), int(rng.integers(0, 25)), lo, hi)


def random_case(rng: np.random.Generator, m: int, n: int, k: int, name: str = "random") -> GemmCase:
    a_unsigned = bool(rng.integers(0, 2))
    a = rng.integers(0, 256, (m, k)).astype(np.uint8) if a_unsigned else rng.integers(-128, 128, (m, k)).astype(np.int8)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    bias = rng.integers(-(2**20), 2**20, n).astype(np.int32)
    rq = None if rng.integers(0, 4) == 0 else _requant(rng, n, a_unsigned)
    return GemmCase(name, a, w, bias, rq)


def edge_cases(rng: np.random.Generator) -> Iterator[GemmCase]:
    def full(shape, value, dtype):
        return np.full(shape, value, dtype=dtype)

    yield random_case(rng, 1, 1, 1, "length 1")
    yield random_case(rng, 9, 7, 257, "ragged tiles K=257")
    yield random_case(rng, 17, 3, 513, "ragged tiles K=513")
    yield random_case(rng, 8, 8, 256, "exact tile 8x8x256")

    k_u = max_reduction_length(a_unsigned=True)
    yield GemmCase("max K uint8 255 x -128", full((2, k_u), 255, np.uint8), full((3, k_u), -128, np.int8),
                   np.zeros(3, np.int32), None)
    k_s = max_reduction_length(a_unsigned=False)
    yield GemmCase("max K int8 -128 x -128", full((1, k_s), -128, np.int8), full((2, k_s), -128, np.int8),
                   np.zeros(2, np.int32), None)
    yield GemmCase("max K int8 -128 x 127", full((1, k_s), -128, np.int8), full((1, k_s), 127, np.int8),
                   np.zeros(1, np.int32), Requant(np.array([INT32_MAX], np.int32), MAX_SHIFT, -(2**31), INT32_MAX))

    m, n, k = 11, 13, 300
    neg = GemmCase("all negative", rng.integers(-128, 0, (m, k)).astype(np.int8),
                   rng.integers(-128, 0, (n, k)).astype(np.int8),
                   rng.integers(-(2**20), 0, n).astype(np.int32),
                   Requant(rng.integers(1, 2**12, n).astype(np.int32), 20, -127, 127))
    yield neg
    yield GemmCase("zero activations", np.zeros((5, 40), np.uint8), rng.integers(-128, 128, (6, 40)).astype(np.int8),
                   rng.integers(-1000, 1000, 6).astype(np.int32), Requant(np.full(6, 3, np.int32), 1, 0, 255))
    yield GemmCase("zero weights", rng.integers(0, 256, (4, 33)).astype(np.uint8), np.zeros((9, 33), np.int8),
                   np.zeros(9, np.int32), None)
    sat = random_case(rng, 6, 10, 64, "requant saturates both ends")
    yield GemmCase(sat.name, sat.a, sat.w, sat.bias, Requant(np.full(10, 2**30, np.int32), 0, -127, 127))
    yield GemmCase("requant shift 0, multiplier 1", sat.a, sat.w, sat.bias,
                   Requant(np.ones(10, np.int32), 0, -(2**31), INT32_MAX))
    ties = GemmCase("requant ties round up", np.array([[1], [3], [255]], np.uint8), np.array([[-1], [1], [-3]], np.int8),
                    np.array([0, 0, 0], np.int32), Requant(np.array([1, 1, 1], np.int32), 1, -(2**31), INT32_MAX))
    yield ties


def all_cases(seed: int, n_random: int) -> Iterator[GemmCase]:
    rng = np.random.default_rng(seed)
    yield from edge_cases(rng)
    for i in range(n_random):
        m, n = (int(v) for v in rng.integers(1, 40, 2))
        k = int(rng.integers(1, 700))
        yield random_case(rng, m, n, k, f"random #{i}")
