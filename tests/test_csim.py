"""C-sim engine (fast and exact builds) == numpy reference, bit for bit, with
the cycle counter equal to the cycle model."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

import termshift.backends.csim as csim_mod
from termshift.backends import get_backend
from termshift.backends.cycle_model import INT_ENGINE, gemm_cycles, utilization
from termshift.cases import edge_cases, random_case
from termshift.formats.uniform import Requant


def run_all(case, *backends):
    return [b.gemm_int(case.a, case.w, case.bias, case.requant) for b in backends]


@pytest.mark.parametrize("case", list(edge_cases(np.random.default_rng(7))), ids=lambda c: c.name)
def test_edge_cases_agree(case, reference, csim_fast, csim_exact):
    want, fast, exact = run_all(case, reference, csim_fast, csim_exact)
    assert_array_equal(fast.out, want.out)
    assert_array_equal(exact.out, want.out)
    assert fast.cycles == exact.cycles == want.cycles


# Shapes straddle the 8 x 8 array and the 256-deep K tile on purpose.
@given(m=st.integers(1, 20), n=st.integers(1, 20), k=st.integers(1, 600), seed=st.integers(0, 2**32 - 1))
def test_random_gemms_agree(m, n, k, seed, reference, csim_fast, csim_exact):
    case = random_case(np.random.default_rng(seed), m, n, k)
    want, fast, exact = run_all(case, reference, csim_fast, csim_exact)
    assert_array_equal(fast.out, want.out)
    assert_array_equal(exact.out, want.out)
    assert fast.cycles == exact.cycles == gemm_cycles(INT_ENGINE, m, n, k)


def test_engine_geometry_matches_python_model(csim_fast):
    info = csim_fast._ext.ENGINES["int"]
    assert (info["rows"], info["cols"], info["tile_k"]) == (INT_ENGINE.rows, INT_ENGINE.cols, INT_ENGINE.tile_k)
    assert info["acc_bits"] == 32 and info["max_shift"] == 62


def test_cycle_model_by_hand():
    # One full tile: 256 steps + fill/drain 8 + 8 - 2, then 64 accumulators drained one per cycle.
    assert gemm_cycles(INT_ENGINE, 8, 8, 256) == 256 + 14 + 64
    # Ragged: 2 x 2 output tiles, K=257 needs two K slices (each pays fill/drain).
    assert gemm_cycles(INT_ENGINE, 9, 16, 257) == 4 * (257 + 2 * 14 + 64)
    assert gemm_cycles(INT_ENGINE, 1, 1, 1) == 1 + 14 + 64
    assert utilization(INT_ENGINE, 256, 256, 256) == pytest.approx(256 / 334)


def test_signed_and_unsigned_bytes_differ(csim_fast, reference):
    # 0xFF is -1 as int8 and 255 as uint8: the flag must reach the engine.
    w = np.ones((1, 1), np.int8)
    assert csim_fast.gemm_int(np.array([[-1]], np.int8), w).out[0, 0] == -1
    assert csim_fast.gemm_int(np.array([[255]], np.uint8), w).out[0, 0] == 255


def test_csim_validates_like_the_reference(csim_fast):
    with pytest.raises(TypeError, match="int8 or uint8"):
        csim_fast.gemm_int(np.ones((2, 2), np.float64), np.ones((2, 2), np.int8))
    with pytest.raises(ValueError, match="overflow"):
        k = 70000
        csim_fast.gemm_int(np.ones((1, k), np.uint8), np.ones((1, k), np.int8))
    with pytest.raises(ValueError, match="shift=99"):
        csim_fast.gemm_int(np.ones((1, 1), np.int8), np.ones((1, 1), np.int8), None, Requant(np.ones(1, np.int32), 99, 0, 1))


def test_extension_guards_memory_even_without_host_checks(csim_fast):
    ext = csim_fast._ext
    a = np.ones((2, 3), np.uint8)
    w = np.ones((4, 5), np.int8)
    z = np.zeros(4, np.int32)
    with pytest.raises(ValueError, match="disagree on K"):
        ext.gemm_int("fast", a, w, z, z, 0, 0, 0, 2)
    with pytest.raises(ValueError, match="build must be"):
        ext.gemm_int("slow", a, np.ones((4, 3), np.int8), z, z, 0, 0, 0, 2)
    with pytest.raises(ValueError, match="bias must have N"):
        ext.gemm_int("fast", a, np.ones((4, 3), np.int8), np.zeros(3, np.int32), z, 0, 0, 0, 2)


def test_unknown_build_and_backend():
    with pytest.raises(ValueError, match="csim build must be one of"):
        get_backend("csim", build="turbo")
    with pytest.raises(ValueError, match="unknown backend 'fpga'"):
        get_backend("fpga")


def test_missing_extension_says_how_to_build(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, globals=None, locals=None, fromlist=(), level=0):
        if fromlist and "_csim" in fromlist:
            raise ImportError("No module named 'termshift._csim'")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install \."):
        csim_mod.load_extension()
