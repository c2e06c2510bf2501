"""The TR engine in C-sim (fast and exact builds) == the numpy reference, bit
for bit, in both modes, with its cycle counter equal to the cycle model; its
term units equal formats.tr on every input; the testbench's vectors are current."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from termshift.backends import engine_tr
from termshift.backends.cycle_model import INT_ENGINE, gemm_cycles
from termshift.formats import tr, uniform
from termshift.verify import verify_engine

ROOT = Path(__file__).resolve().parents[1]


def run3(ops, reference, csim_fast, csim_exact):
    return [b.run("tr", **ops) for b in (reference, csim_fast, csim_exact)]


def assert_agree(ops, reference, csim_fast, csim_exact):
    want, fast, exact = run3(ops, reference, csim_fast, csim_exact)
    assert_array_equal(fast.out, want.out)
    assert_array_equal(exact.out, want.out)
    assert fast.cycles == exact.cycles == want.cycles
    return want


@pytest.mark.parametrize("case", list(engine_tr.tr_edge_cases(np.random.default_rng(11))), ids=lambda c: c[0])
def test_tr_edge_cases_agree(case, reference, csim_fast, csim_exact):
    assert_agree(case[1], reference, csim_fast, csim_exact)


@given(m=st.integers(1, 20), n=st.integers(1, 20), k=st.integers(1, 600), group=st.integers(1, 16),
       bits=st.integers(2, 8), budget=st.integers(1, 40), data_terms=st.integers(1, 8),
       encoding=st.sampled_from(tr.ENCODINGS), seed=st.integers(0, 2**32 - 1))
def test_random_tr_gemms_agree(m, n, k, group, bits, budget, data_terms, encoding, seed,
                               reference, csim_fast, csim_exact):
    _, ops = engine_tr.revealed_case(np.random.default_rng(seed), m, n, k, bits, group, budget, data_terms,
                                     encoding, "hypothesis")
    want = assert_agree(ops, reference, csim_fast, csim_exact)
    assert want.cycles == engine_tr.tr_cycles(m, ops["counts"], group, budget)


@given(m=st.integers(1, 12), n=st.integers(1, 12), k=st.integers(1, 300), group=st.integers(1, 16),
       slots=st.integers(1, 255), seed=st.integers(0, 2**32 - 1))
def test_arbitrary_term_lists_agree(m, n, k, group, slots, seed, reference, csim_fast, csim_exact):
    _, ops = engine_tr.arbitrary_case(np.random.default_rng(seed), m, n, k, group, slots, "hypothesis")
    assert_agree(ops, reference, csim_fast, csim_exact)


@given(m=st.integers(1, 20), n=st.integers(1, 20), k=st.integers(1, 600), seed=st.integers(0, 2**32 - 1))
def test_conventional_mode_is_the_int8_engine(m, n, k, seed, csim_fast, csim_exact, reference):
    """Same operands, same integers as the INT8 engine (its C-sim and the reference)."""
    from termshift.cases import random_case

    c = random_case(np.random.default_rng(seed), m, n, k)
    ops = {"a": c.a, "w": c.w, "bias": c.bias, "requant": c.requant}
    want = assert_agree(ops, reference, csim_fast, csim_exact)
    assert_array_equal(want.out, csim_fast.gemm_int(c.a, c.w, c.bias, c.requant).out)
    assert want.cycles == engine_tr.conventional_cycles(m, n, k, 8)


def test_engine_registers_match_python(csim_fast):
    info = csim_fast._ext.ENGINES["tr"]
    g = engine_tr.TR_ENGINE
    assert (info["rows"], info["cols"], info["tile_k"]) == (g.rows, g.cols, g.tile_k)
    assert info["term_buf"] == engine_tr.TERM_BUF and info["max_group"] == tr.MAX_GROUP
    assert info["max_data_terms"] == tr.MAX_DATA_TERMS and info["max_slots"] == tr.MAX_SLOTS
    assert info["encodings"] == {e: i for i, e in enumerate(tr.ENCODINGS)}
    assert (info["mode_conventional"], info["mode_tr"]) == (0, 1) and info["acc_bits"] == 32


@pytest.mark.parametrize("build", ["fast", "exact"])
def test_encoder_and_selector_match_reference_on_every_code(build, csim_fast):
    ext = csim_fast._ext
    codes = np.arange(-128, 256, dtype=np.int16)
    pow2 = 1 << (np.abs(np.arange(-10, 11)) - 1).clip(0)
    for enc, e_idx in ext.ENGINES["tr"]["encodings"].items():
        for budget in range(1, tr.MAX_DATA_TERMS + 1):
            lanes = ext.tr_encode(build, codes, e_idx, budget).astype(np.int64)
            values = (np.sign(lanes) * pow2[np.abs(lanes) + 10]).sum(axis=1)
            want = np.concatenate([tr.truncate_data(codes[:128].astype(np.int8), budget, enc),
                                   tr.truncate_data(codes[128:].astype(np.uint8), budget, enc)])
            assert_array_equal(values, want)
            # Largest term first, no more than the budget.
            exps = np.abs(lanes) - 1
            assert (np.count_nonzero(lanes, axis=1) <= budget).all()
            assert ((np.diff(np.where(lanes != 0, exps, -1), axis=1) < 0) | (lanes[:, 1:] == 0)).all()


@pytest.mark.parametrize("build", ["fast", "exact"])
def test_group_selector_matches_term_reveal(build, csim_fast):
    ext = csim_fast._ext
    rng = np.random.default_rng(4)
    for g in (1, 3, 8, 16):
        values = rng.integers(-255, 256, (200, g)).astype(np.int16)
        for enc, e_idx in ext.ENGINES["tr"]["encodings"].items():
            for budget in (0, 1, 5, 12, 40):
                assert_array_equal(ext.tr_reveal(build, values, e_idx, budget),
                                   tr.term_reveal(values, g, budget, enc, axis=1))


def test_cycle_model_by_hand():
    # One tile, one slice: steps = the longest list per group; + 7 row skew; + 64 drain.
    counts = np.array([[3, 0, 5], [1, 0, 6]])
    assert engine_tr.tr_cycles(1, counts, 16, 8) == (3 + 0 + 6) + 7 + 64
    assert engine_tr.tr_cycles(9, counts, 16, 8) == 2 * ((3 + 6) + 7 + 64)  # two row tiles
    # g=3, 255 slots: min(256 // 3, 2048 // 255) = 8 groups per slice.
    assert engine_tr.groups_per_slice(3, 255) == 8
    assert engine_tr.tr_cycles(1, np.ones((1, 17)), 3, 255) == 17 + 3 * 7 + 64
    # Conventional: conv_bits steps per value; 256 values per slice at 8 bits.
    assert engine_tr.conventional_cycles(8, 8, 256, 8) == 256 * 8 + 7 + 64
    assert engine_tr.conventional_cycles(1, 9, 300, 4) == 2 * (300 * 4 + 2 * 7 + 64)
    # Bit-serial conventional mode takes ~8 steps where the INT8 engine's parallel MAC takes one.
    assert engine_tr.conventional_cycles(64, 64, 512, 8) > 6 * gemm_cycles(INT_ENGINE, 64, 64, 512)


def test_fewer_terms_fewer_cycles(reference):
    rng = np.random.default_rng(1)
    cycles = []
    for budget in (2, 6, 12):
        _, ops = engine_tr.revealed_case(rng, 8, 16, 512, 8, 16, budget, 3, "hese", "x")
        cycles.append(reference.run("tr", **ops).cycles)
    assert cycles[0] < cycles[1] < cycles[2]


def test_mode_is_chosen_by_operands():
    a = np.ones((1, 4), np.uint8)
    with pytest.raises(TypeError, match="not both"):
        engine_tr.validate(a, w=np.ones((1, 4), np.int8), terms=np.zeros((1, 1, 1), np.uint8),
                           counts=np.zeros((1, 1), np.uint8))
    with pytest.raises(TypeError, match="needs w"):
        engine_tr.validate(a, terms=np.zeros((1, 1, 1), np.uint8))


def test_extension_guards_memory_without_host_checks(csim_fast):
    ext = csim_fast._ext
    a = np.ones((2, 8), np.uint8)
    z = np.zeros(3, np.int32)
    w = np.zeros((1, 1), np.int8)
    terms = np.zeros((3, 2, 4), np.uint8)
    with pytest.raises(ValueError, match="a count exceeds slots"):
        ext.gemm_tr("fast", a, w, terms, np.full((3, 2), 5, np.uint8), z, z, 0, 0, 0, 2, 1, 4, 2, 1, 8)
    with pytest.raises(ValueError, match="terms must be N x ceil"):
        ext.gemm_tr("fast", a, w, terms, np.ones((3, 2), np.uint8), z, z, 0, 0, 0, 2, 1, 3, 2, 1, 8)
    with pytest.raises(ValueError, match="group out of range"):
        ext.gemm_tr("fast", a, w, terms, np.ones((3, 2), np.uint8), z, z, 0, 0, 0, 2, 1, 0, 2, 1, 8)
    with pytest.raises(ValueError, match="w must be N x K"):
        ext.gemm_tr("fast", a, w, terms, np.ones((3, 2), np.uint8), z, z, 0, 0, 0, 2, 0, 1, 2, 1, 8)
    with pytest.raises(ValueError, match="data_terms out of range"):
        ext.gemm_tr("exact", a, w, terms, np.ones((3, 2), np.uint8), z, z, 0, 0, 0, 2, 1, 4, 9, 1, 8)
    with pytest.raises(ValueError, match="codes must be in -128..255"):
        ext.tr_encode("fast", np.array([256], np.int16), 1, 2)


def test_csim_validates_like_the_reference(csim_fast):
    with pytest.raises(ValueError, match="can overflow"):
        k = 70000
        csim_fast.run("tr", a=np.ones((1, k), np.uint8), w=np.ones((1, k), np.int8))
    with pytest.raises(ValueError, match="indexes value"):
        csim_fast.run("tr", a=np.ones((1, 3), np.uint8), terms=np.full((1, 1, 2), 0x30, np.uint8),
                      counts=np.ones((1, 1), np.uint8), group=3, data_terms=2)


def test_verify_covers_both_modes():
    names = [name for name, _ in engine_tr.cases(0, 3)]
    assert any(n.startswith("tr ") for n in names) and any(n.startswith("conventional ") for n in names)
    row = verify_engine("tr", "fast", 3, 5)  # the exact build is held to the reference above
    assert row.mismatches == 0 and row.cases == len(names)


def test_committed_vectors_are_current():
    committed = (ROOT / engine_tr.VECTORS).read_text()
    assert committed == engine_tr.render_vectors(), "regenerate with: python -m termshift.backends.engine_tr"
    for name in ("tr length 1", "tr g=3 k=4 (figure)", "tr ragged K=257 g=16", "tr all negative",
                 "tr zero weights", "conventional ragged tiles K=257", "conventional conv_bits=3"):
        assert f'"{name}"' in committed


def test_requant_matches_int_engine_clause(reference):
    rng = np.random.default_rng(2)
    _, ops = engine_tr.revealed_case(rng, 4, 5, 30, 4, 8, 6, 3, "hese", "x")
    ops["requant"] = uniform.Requant(np.full(5, 2**30, np.int32), 0, -127, 127)  # saturates
    out = reference.run("tr", **ops).out
    ops["requant"] = None
    raw = reference.run("tr", **ops).out
    assert_array_equal(out, np.clip(raw.astype(np.int64) * 2**30, -127, 127))
