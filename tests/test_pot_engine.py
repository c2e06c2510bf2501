"""The PoT (BAC) engine: C-sim fast and exact builds == numpy reference, bit
for bit, with the cycle counter equal to the cycle model; the cycle model by
hand; the extension's own guards; the testbench's golden vectors are current."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from termshift.backends.cycle_model import INT_ENGINE, gemm_cycles
from termshift.backends.engine_pot import (POT_ENGINE, VECTORS, edge_operands, pot_gemm_cycles, random_operands,
                                           render_vectors)
from termshift.formats import pot
from termshift.verify import verify_engine

ROOT = Path(__file__).resolve().parents[1]


def run_all(ops, *backends):
    return [b.run("pot", **ops) for b in backends]


@pytest.mark.parametrize("name, ops", list(edge_operands(np.random.default_rng(7))), ids=lambda x: x if isinstance(x, str) else "")
def test_edge_cases_agree(name, ops, reference, csim_fast, csim_exact):
    want, fast, exact = run_all(ops, reference, csim_fast, csim_exact)
    assert_array_equal(fast.out, want.out)
    assert_array_equal(exact.out, want.out)
    assert fast.cycles == exact.cycles == want.cycles


# Shapes straddle the 8 x 8 array and the 256-deep K tile on purpose.
@given(m=st.integers(1, 20), n=st.integers(1, 20), k=st.integers(1, 600), seed=st.integers(0, 2**32 - 1))
def test_random_gemms_agree(m, n, k, seed, reference, csim_fast, csim_exact):
    ops = random_operands(np.random.default_rng(seed), m, n, k)
    want, fast, exact = run_all(ops, reference, csim_fast, csim_exact)
    assert_array_equal(fast.out, want.out)
    assert_array_equal(exact.out, want.out)
    counts = pot.group_counts(ops["w"], POT_ENGINE.cols, POT_ENGINE.tile_k)
    assert fast.cycles == exact.cycles == pot_gemm_cycles(POT_ENGINE, m, counts)


def test_cycle_model_by_hand():
    g = POT_ENGINE
    dense = np.ones((16, 600), np.int8)
    # No zero k-group: exactly the INT8 engine's count.
    assert pot_gemm_cycles(g, 9, pot.group_counts(dense, 8, 256)) == gemm_cycles(INT_ENGINE, 9, 16, 600)
    sparse = dense.copy()
    sparse[:8, 256:512] = 0  # tile 0 skips its whole second slice
    sparse[8:, ::2] = 0  # tile 1 keeps every other step: 128, 128, 44
    per_row_tile = (256 + 14) + (88 + 14) + 64 + (128 + 14) + (128 + 14) + (44 + 14) + 64
    assert pot_gemm_cycles(g, 9, pot.group_counts(sparse, 8, 256)) == 2 * per_row_tile
    # All zero: only the drains.
    assert pot_gemm_cycles(g, 17, pot.group_counts(np.zeros((20, 300), np.int8), 8, 256)) == 3 * 3 * 64


def test_engine_geometry_matches_python_model(csim_fast):
    info = csim_fast._ext.ENGINES["pot"]
    assert (info["rows"], info["cols"], info["tile_k"]) == (POT_ENGINE.rows, POT_ENGINE.cols, POT_ENGINE.tile_k)
    assert info["acc_bits"] == 32 and info["max_emax"] == pot.MAX_EMAX


def test_stream_length_agrees_with_the_engine(csim_fast):
    rng = np.random.default_rng(3)
    codes = rng.integers(-7, 8, (21, 700)).astype(np.int8)
    codes[:, rng.random(700) < 0.4] = 0
    words, total = pot.pack_stream(codes, 4, 8, 256)
    assert csim_fast._ext.pot_stream_bits(words, 21, 700, 4) == total == pot.stream_bits(codes, 4, 8, 256)


def test_extension_guards_memory_even_without_host_checks(csim_fast):
    ext = csim_fast._ext
    a = np.ones((2, 300), np.uint8)
    z = np.zeros(4, np.int32)
    words, _ = pot.pack_stream(np.ones((4, 300), np.int8), 4, 8, 256)
    with pytest.raises(ValueError, match="shorter than its group masks"):
        ext.gemm_pot("fast", a, words[:-1], 4, 4, 6, z, z, 0, 0, 0, 2)
    with pytest.raises(ValueError, match="bits must be in 2..6"):
        ext.gemm_pot("fast", a, words, 4, 7, 6, z, z, 0, 0, 0, 2)
    with pytest.raises(ValueError, match="emax out of range"):
        ext.gemm_pot("fast", a, words, 4, 4, 24, z, z, 0, 0, 0, 2)
    with pytest.raises(ValueError, match="build must be"):
        ext.gemm_pot("slow", a, words, 4, 4, 6, z, z, 0, 0, 0, 2)
    out, cycles = ext.gemm_pot("exact", a, words, 4, 4, 6, z, z, 0, 0, 0, 3)
    assert (out == 300 * 64).all() and cycles == gemm_cycles(INT_ENGINE, 2, 4, 300)


def test_csim_validates_like_the_reference(csim_fast):
    a = np.ones((1, 3), np.uint8)
    with pytest.raises(ValueError, match="deeper than emax=0"):
        csim_fast.run("pot", a=a, w=np.full((1, 3), 2, np.int8), bits=4, emax=0)
    with pytest.raises(TypeError, match="dtype int8"):
        csim_fast.run("pot", a=a, w=np.ones((1, 3), np.uint8), bits=4, emax=6)


def test_verify_reports_no_mismatch():
    for build in ("fast", "exact"):
        row = verify_engine("pot", build, 5, 11)
        assert row.cases > 20 and row.mismatches == 0, row.line()


def test_committed_vectors_are_current():
    committed = (ROOT / VECTORS).read_text()
    assert committed == render_vectors(), "regenerate with: python -m termshift.backends.engine_pot"


def test_vectors_cover_every_code_width_and_skipping():
    text = render_vectors()
    for name in ["length 1", "ragged tiles K=257", "all negative", "zero weights: every slice skipped",
                 "pruned slices and k-groups", "requant ties round up"] + [f"every code, bits={b}" for b in range(2, 7)]:
        assert f'"{name}"' in text
