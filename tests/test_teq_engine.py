"""TEQ engine: C-sim (fast and exact builds) == numpy reference, bit for bit,
with the cycle counter equal to the cycle model; the extension's own guards;
the testbench's golden vectors are current."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from termshift.backends.engine_teq import (TEQ_ENGINE, VECTORS, edge_operands, random_operands, render_vectors,
                                           teq_cycles)
from termshift.formats import teq

ROOT = Path(__file__).resolve().parents[1]


def run_all(ops, *backends):
    return [b.run("teq", **ops) for b in backends]


@pytest.mark.parametrize("name, ops", list(edge_operands(np.random.default_rng(11))), ids=lambda v: v if isinstance(v, str) else "")
def test_edge_cases_agree(name, ops, reference, csim_fast, csim_exact):
    want, fast, exact = run_all(ops, reference, csim_fast, csim_exact)
    assert_array_equal(fast.out, want.out)
    assert_array_equal(exact.out, want.out)
    assert fast.cycles == exact.cycles == want.cycles


def test_extreme_sums_reach_the_bound(reference):
    cases = dict(edge_operands(np.random.default_rng(0)))
    out = reference.run("teq", **cases["max K, p only, all +32767"]).out
    assert out.max() == (2**31 - 1) // 32767 * 32767 == 2**31 - 2
    out = reference.run("teq", **cases["max K, p only, signs give -2^31+2"]).out
    assert out.min() == -(2**31 - 2)


@given(m=st.integers(1, 20), n=st.integers(1, 20), k=st.integers(1, 600), seed=st.integers(0, 2**32 - 1))
def test_random_calls_agree(m, n, k, seed, reference, csim_fast, csim_exact):
    ops = random_operands(np.random.default_rng(seed), m, n, k)
    want, fast, exact = run_all(ops, reference, csim_fast, csim_exact)
    assert_array_equal(fast.out, want.out)
    assert_array_equal(exact.out, want.out)
    args = teq.validate_gemm_teq(**ops)
    assert fast.cycles == exact.cycles == teq_cycles(TEQ_ENGINE, m, n, k, args.n_recon)


def test_engine_geometry_matches_python_model(csim_fast):
    info = csim_fast._ext.ENGINES["teq"]
    assert (info["rows"], info["cols"], info["tile_k"]) == (TEQ_ENGINE.rows, TEQ_ENGINE.cols, TEQ_ENGINE.tile_k)
    assert (info["count_bits"], info["table_bits"]) == (teq.COUNT_BITS, teq.TABLE_BITS)
    assert info["w_bits_max"] == teq.W_BITS.stop - 1 and info["a_mag_max"] == teq.A_MAG_MAX
    assert (info["flag_raw_out"], info["flag_wbank"], info["flag_abank"]) == (teq.FLAG_RAW_OUT, teq.FLAG_WBANK,
                                                                             teq.FLAG_ABANK)


def test_cycle_model_by_hand():
    # one 8 x 8 tile, K = 256: wavefront 256 + 14, reconstruction 8 rows x 13 bins, drain 64
    assert teq_cycles(TEQ_ENGINE, 8, 8, 256, 13) == 256 + 14 + 8 * 13 + 64
    # 2 x 2 tiles, two K slices each paying the fill
    assert teq_cycles(TEQ_ENGINE, 9, 16, 257, 20) == 4 * (257 + 2 * 14 + 160 + 64)


def test_banks_cost_reconstruction_steps(reference):
    ops = random_operands(np.random.default_rng(3), 4, 4, 10)
    la, lw = ops["a_table"].size, ops["w_table"].size
    base = dict(ops, w_table=np.zeros(lw, np.int16), a_table=np.zeros(la, np.int16))
    cycles = [reference.run("teq", **dict(base, **extra)).cycles
              for extra in ({}, {"w_table": np.ones(lw, np.int16)}, {"a_table": np.ones(la, np.int16)})]
    assert cycles[1] - cycles[0] == TEQ_ENGINE.rows * lw
    assert cycles[2] - cycles[0] == TEQ_ENGINE.rows * la


def test_csim_validates_like_the_reference(csim_fast):
    ops = random_operands(np.random.default_rng(4), 2, 2, 4)
    with pytest.raises(TypeError, match="int8 or uint8"):
        csim_fast.run("teq", **dict(ops, a=np.zeros((2, 4))))
    with pytest.raises(ValueError, match="p_table must have"):
        csim_fast.run("teq", **dict(ops, p_table=np.zeros(1, np.int16)))


def test_extension_guards_memory_even_without_host_checks(csim_fast):
    ext = csim_fast._ext
    a = np.zeros((2, 4), np.uint8)
    w = np.zeros((3, 2), np.uint8)  # 4 codes x 4 bits
    z = np.zeros(3, np.int32)
    tables = np.zeros(2 * (3 + 2) - 1, np.int16)
    lut = np.zeros(256, np.int8)

    def call(**kw):
        args = dict(build="fast", a=a, w=w, bias=z, multiplier=z, tables=tables, lut=lut, K=4, w_bits=4, lw=2, la=3,
                    shift=0, lo=0, hi=0, flags=2)
        args.update(kw)
        return ext.gemm_teq(**args)

    assert call()[0].shape == (2, 3)
    bad_lut = lut.copy()
    bad_lut[9] = -128
    for kw, message in ((dict(lut=bad_lut), "lut entries"), (dict(w=np.zeros((3, 3), np.uint8)), "bytes per row"),
                        (dict(tables=tables[:-1]), "tables must have"), (dict(lw=8), "lw must be"),
                        (dict(la=128), "la must be"), (dict(w_bits=8), "w_bits must be"),
                        (dict(build="slow"), "build must be"), (dict(K=5), "K columns")):
        with pytest.raises(ValueError, match=message):
            call(**kw)


def test_committed_vectors_are_current():
    committed = (ROOT / VECTORS).read_text()
    assert committed == render_vectors(), "regenerate with: python -m termshift.backends.engine_teq"


def test_vectors_cover_edge_cases():
    text = render_vectors()
    for name in ("length 1", "ragged tiles K=257", "all negative, both banks", "zero weights",
                 "one level each (la = lw = 1)", "w_bits=7, every field value", "requant ties round up"):
        assert f'"{name}"' in text
