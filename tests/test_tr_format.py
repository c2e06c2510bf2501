"""The `tr` numpy reference against its written spec (docs/formats/tr.md):
signed-digit encodings, term revealing, the base weight quantization, the
engine's term-list payload and the reference GEMM in both engine modes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_array_equal

from termshift.formats import parse, tr, uniform

INT_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64]


# --------------------------------------------------------------------------- independent models


def py_digits(v: int, encoding: str) -> dict:
    """{exponent: digit} of |v| from the definitions, with plain Python ints."""
    mag, out = abs(v), {}
    if encoding == "binary":
        return {j: 1 for j in range(mag.bit_length()) if mag >> j & 1}
    if encoding == "hese":
        bits = bin(mag)[2:][::-1]  # bits[j] is bit j
        j = 0
        while j < len(bits):
            if bits[j] == "0":
                j += 1
                continue
            h = j
            while h + 1 < len(bits) and bits[h + 1] == "1":
                h += 1
            if h == j:
                out[j] = 1
            else:
                out[j], out[h + 1] = -1, 1
            j = h + 1
        return out
    j = 0
    while mag:
        if mag & 1:
            d = 2 - (mag & 3)
            out[j] = d
            mag -= d
        mag >>= 1
        j += 1
    return out


def py_reveal(values: list, group: int, budget: int, encoding: str) -> list:
    """Sort each group's terms by (-magnitude, index) and keep `budget` of them."""
    out = []
    for g0 in range(0, len(values), group):
        chunk = values[g0:g0 + group]
        found = []
        for i, v in enumerate(chunk):
            sign = -1 if v < 0 else 1
            for e, d in py_digits(v, encoding).items():
                found.append((-(1 << e), i, sign * d * (1 << e)))
        kept = [0] * len(chunk)
        for _, i, term in sorted(found)[:budget]:
            kept[i] += term
        out += kept
    return out


# --------------------------------------------------------------------------- terms


@pytest.mark.parametrize("encoding", tr.ENCODINGS)
@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_terms_sum_back_and_match_the_definition(dtype, encoding):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(3)
    q = np.concatenate([rng.integers(info.min, int(info.max) + 1, 300, dtype=np.int64).astype(dtype),
                        np.array([info.min, info.max, 0, 1, 7, 109], dtype=dtype)])
    d = tr.terms(q, encoding)
    assert d.dtype == np.int8 and d.shape == q.shape + (tr.digit_count(dtype),)
    assert set(np.unique(d)) <= {-1, 0, 1}
    total = sum(d[..., j].astype(object) * (1 << j) for j in range(d.shape[-1]))
    assert list(total) == [int(v) for v in q]
    for v, row in zip(q[::37], d[::37]):
        sign = -1 if v < 0 else 1
        assert {j: sign * int(x) for j, x in enumerate(row) if x} == py_digits(int(v), encoding)


def test_digit_count_by_dtype():
    assert [tr.digit_count(t) for t in (np.int8, np.uint8, np.int16, np.int32, np.int64)] == [9, 9, 17, 33, 65]


def test_hese_rule_examples():
    def digits(v):
        return {j: int(x) for j, x in enumerate(tr.terms(np.int16(v), "hese")) if x}

    assert digits(7) == {0: -1, 3: 1}  # run 0..2 -> 2^3 - 2^0
    assert digits(5) == {0: 1, 2: 1}  # isolated ones stay
    assert digits(14) == {1: -1, 4: 1}
    assert digits(64) == {6: 1}
    assert digits(219) == {0: -1, 2: 1, 3: -1, 5: 1, 6: -1, 8: 1}  # 11011011: the 6-term worst case
    assert digits(-7) == {0: 1, 3: -1}  # the sign applies to every digit


def test_published_term_statistics():
    """DESIGN.md: over uniform 8-bit values HESE averages 3.25 terms, binary
    4.0, NAF 3.11; HESE needs at most 6 and never more than binary."""
    counts = {e: tr.term_count(np.arange(256, dtype=np.uint8), e) for e in tr.ENCODINGS}
    assert counts["hese"].sum() == 832 and counts["hese"].mean() == 3.25
    assert counts["binary"].sum() == 1024 and counts["binary"].mean() == 4.0
    assert counts["naf"].sum() == 796 and round(counts["naf"].mean(), 2) == 3.11
    assert counts["hese"].max() == 6 and int(np.argmax(counts["hese"])) == 0b11011011
    wide = np.arange(-70000, 70000, dtype=np.int32)
    assert (tr.term_count(wide, "hese") <= tr.term_count(wide, "binary")).all()
    assert (tr.term_count(wide, "naf") <= tr.term_count(wide, "hese")).all()  # NAF is minimal


def test_naf_is_non_adjacent():
    d = tr.terms(np.arange(-40000, 40000, dtype=np.int32), "naf")
    assert not ((d[..., 1:] != 0) & (d[..., :-1] != 0)).any()


def test_most_negative_values():
    assert tr.terms(np.array([-128], np.int8), "hese")[0].tolist() == [0] * 7 + [-1, 0]
    d = tr.terms(np.array([-(2**63)], np.int64), "naf")[0]
    assert np.flatnonzero(d).tolist() == [63] and d[63] == -1


@pytest.mark.parametrize("bad, error, message", [
    (np.array([1.5]), TypeError, "q must hold integers, got dtype float64"),
    (np.array([True]), TypeError, "q must hold integers, got dtype bool"),
    (np.array([1], np.uint64), TypeError, "uint64 is not supported"),
])
def test_terms_rejects_bad_input(bad, error, message):
    with pytest.raises(error, match=message):
        tr.terms(bad)


def test_unknown_encoding_is_named():
    with pytest.raises(ValueError, match="encoding must be one of binary, hese, naf, got 'booth'"):
        tr.terms(np.array([3]), "booth")


# --------------------------------------------------------------------------- term_reveal


def test_paper_figure_example():
    """Weights 3.21, 0.17, 0.72 with s = 0.05 give codes 64, 3, 14; one group
    of 3 with a budget of 4 terms keeps 64, 2, 12 in binary, 64, 4, 14 in HESE."""
    q = tr.quantize_weights(np.array([3.21, 0.17, 0.72]), 0.05, bits=8)
    assert q.tolist() == [64, 3, 14]
    assert tr.term_reveal(q, 3, 4, "binary").tolist() == [64, 2, 12]
    assert tr.term_reveal(q, 3, 4, "hese").tolist() == [64, 4, 14]


def test_truncation_can_round_up():
    assert tr.term_reveal(np.array([7], np.int8), 1, 1, "hese").tolist() == [8]
    assert tr.term_reveal(np.array([127, -127], np.int8), 1, 1, "hese").tolist() == [128, -128]
    out = tr.term_reveal(np.array([255], np.uint8), 1, 1, "hese")
    assert out.dtype == np.int16 and out.tolist() == [256]
    assert tr.term_reveal(np.array([7], np.int16), 1, 1, "binary").tolist() == [4]  # binary only rounds down


def test_ties_go_to_the_lower_index():
    q = np.array([1, 1, 1, 1], np.int16)
    assert tr.term_reveal(q, 4, 2, "binary").tolist() == [1, 1, 0, 0]
    q = np.array([2, 3, 2], np.int16)  # terms 2, 2+1, 2: the 2s tie
    assert tr.term_reveal(q, 3, 2, "binary").tolist() == [2, 2, 0]


def test_last_group_is_shorter_and_axis_is_respected():
    q = np.array([[3, 3, 3, 3, 3], [7, 0, 0, 1, 1]], np.int16)
    # groups along axis 1: [0:2], [2:4], [4:5]
    assert tr.term_reveal(q, 2, 1, "binary", axis=1).tolist() == [[2, 0, 2, 0, 2], [4, 0, 0, 1, 1]]
    assert_array_equal(tr.term_reveal(q.T, 2, 1, "binary", axis=0), tr.term_reveal(q, 2, 1, "binary", axis=1).T)


def test_budget_edges():
    q = np.array([5, 6, 7], np.int16)
    assert tr.term_reveal(q, 3, 0, "hese").tolist() == [0, 0, 0]
    assert tr.term_reveal(q, 3, 100, "hese").tolist() == [5, 6, 7]
    assert tr.term_reveal(q, 10, 2, "binary").tolist() == [4, 4, 0]  # group longer than the axis


@given(st.sampled_from([np.int8, np.uint8, np.int16, np.int32]), st.integers(1, 70), st.integers(1, 20),
       st.integers(0, 25), st.sampled_from(tr.ENCODINGS), st.integers(0, 2**32 - 1))
def test_term_reveal_matches_sorting_model(dtype, length, group, budget, encoding, seed):
    info = np.iinfo(dtype)
    lo, hi = max(int(info.min), -5000), min(int(info.max), 5000)
    q = np.random.default_rng(seed).integers(lo, hi + 1, length).astype(dtype)
    got = tr.term_reveal(q, group, budget, encoding)
    assert got.tolist() == py_reveal([int(v) for v in q], group, budget, encoding)


@given(hnp.arrays(np.int8, st.tuples(st.integers(1, 5), st.integers(1, 40))), st.integers(1, 16),
       st.integers(1, 30), st.sampled_from(tr.ENCODINGS))
def test_reveal_digits_are_a_subset_of_terms(q, group, budget, encoding):
    kept = tr.reveal_digits(q, group, budget, encoding, axis=1)
    full = tr.terms(q, encoding)
    assert ((kept == full) | (kept == 0)).all()
    n_groups = -(-q.shape[1] // group)
    per_group = [np.count_nonzero(kept[:, g * group:(g + 1) * group], axis=(1, 2)) for g in range(n_groups)]
    assert max(int(c.max()) for c in per_group) <= budget


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_byte_mask_path_equals_digit_path(dtype):
    """8-bit term_reveal with g <= 16 runs on digit masks; it must equal the digit-by-digit selection."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(8)
    q = np.concatenate([rng.integers(info.min, int(info.max) + 1, (6, 45)), np.full((1, 45), info.max),
                        np.full((1, 45), info.min)]).astype(dtype)
    for g in range(2, 17):
        for budget in (0, 1, 2, 7, 13, 40, 200):
            for enc in tr.ENCODINGS:
                general = tr.reveal_digits(q, g, budget, enc, axis=1)
                want = (general.astype(np.int64) << np.arange(general.shape[-1])).sum(axis=-1)
                assert_array_equal(tr.term_reveal(q, g, budget, enc, axis=1), want)


def test_group_one_table_path_equals_general_path():
    q = np.arange(-128, 128, dtype=np.int8)
    for enc in tr.ENCODINGS:
        for t in range(1, 9):
            assert_array_equal(tr.term_reveal(q, 1, t, enc), tr.term_reveal(q.astype(np.int16), 1, t, enc))
            assert_array_equal(tr.truncate_data(q, t, enc), tr.term_reveal(q, 1, t, enc))


@pytest.mark.parametrize("call, error, message", [
    (lambda: tr.term_reveal(np.array([1]), 0, 1), ValueError, r"group=0 is out of range"),
    (lambda: tr.term_reveal(np.array([1]), 1, -1), ValueError, r"budget=-1 is out of range"),
    (lambda: tr.term_reveal(np.ones(8, np.int8), 4, -1), ValueError, r"budget=-1 is out of range"),
    (lambda: tr.term_reveal(np.ones(8, np.uint8), 4, 2, "csd"), ValueError, "encoding must be one of"),
    (lambda: tr.term_reveal(np.array([1]), 1.5, 1), TypeError, "group must be an integer"),
    (lambda: tr.term_reveal(np.array(3), 1, 1), ValueError, "at least one axis"),
    (lambda: tr.term_reveal(np.ones((2, 2), np.int16), 1, 1, axis=2), ValueError, "axis=2 is out of range"),
    (lambda: tr.term_reveal(np.array([2**62]), 1, 1), ValueError, "needs |q| < 2"),
    (lambda: tr.truncate_data(np.array([1], np.int16), 2, "hese"), TypeError, "int8 or uint8"),
])
def test_term_reveal_errors_name_the_parameter(call, error, message):
    with pytest.raises(error, match=message.replace("|", r"\|")):
        call()


# --------------------------------------------------------------------------- spec and weights


def test_spec_defaults_and_round_trip():
    spec = parse("tr")
    assert spec.params == {"bits": 4, "group": 16, "budget": 12, "data_terms": 3, "encoding": "hese",
                           "granularity": "channel"}
    spec = parse("tr:bits=8,group=8,budget=12,data_terms=4,encoding=naf")
    assert (spec["bits"], spec["group"], spec["budget"], spec["data_terms"], spec["encoding"]) == (8, 8, 12, 4, "naf")
    assert parse(str(spec)) == spec


@pytest.mark.parametrize("text, message", [
    ("tr:group=17", "group=17 is out of range (allowed: 1..16)"),
    ("tr:data_terms=9", "data_terms=9 is out of range (allowed: 1..8)"),
    ("tr:budget=0", "budget=0 is out of range"),
    ("tr:bits=9", "bits=9 is out of range"),
    ("tr:encoding=booth", "encoding='booth' is out of range"),
])
def test_bad_specs(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(text)


def test_base_quantization_formula():
    w = np.array([[1.0, -0.5, 0.26, 0.0], [0.0, 0.0, 0.0, 0.0]])
    s = tr.weight_scale(w, 4)
    assert s.tolist() == [1.0 / 8, 1.0]  # max|w| / 2^(b-1); an all-zero channel gets 1
    assert tr.quantize_weights(w, s, 4).tolist() == [[8, -4, 2, 0], [0, 0, 0, 0]]
    # floor(|x|/s + 1/2): ties away from zero; clamp at 2^b - 1.
    assert tr.quantize_weights(np.array([2.5, -2.5, 100.0]), 1.0, 4).tolist() == [3, -3, 15]
    assert tr.weight_scale(w, 4, "tensor").tolist() == 1.0 / 8
    with pytest.raises(ValueError, match="NaN"):
        tr.quantize_weights(np.array([np.nan]), 1.0, 4)
    with pytest.raises(ValueError, match="scale must be positive"):
        tr.quantize_weights(np.array([1.0]), 0.0, 4)


@given(hnp.arrays(np.int16, st.tuples(st.integers(1, 6), st.integers(1, 50)), elements=st.integers(-128, 128)),
       st.integers(1, 16), st.integers(1, 40), st.sampled_from(tr.ENCODINGS))
def test_term_lists_round_trip(q, group, budget, encoding):
    kept = tr.reveal_digits(q, group, budget, encoding, axis=1)
    words, counts = tr.encode_weight_terms(kept, group, budget)
    assert words.shape == (q.shape[0], -(-q.shape[1] // group), budget) and counts.max() <= budget
    assert_array_equal(tr.decode_weight_terms(words, counts, q.shape[1], group),
                       tr.term_reveal(q, group, budget, encoding, axis=1))
    # Each list is in selection order: exponent descending, then index ascending.
    for r in range(words.shape[0]):
        for j in range(words.shape[1]):
            w = words[r, j, :counts[r, j]].astype(int)
            key = [(-(x & 7), x >> 4) for x in w]
            assert key == sorted(key)


def test_term_word_layout():
    kept = tr.reveal_digits(np.array([[0, -6]], np.int16), 2, 4, "hese", axis=1)  # -6 = -(8 - 2)
    words, counts = tr.encode_weight_terms(kept, 2, 4)
    assert counts.tolist() == [[2]]
    assert words[0, 0].tolist() == [3 | 8 | 1 << 4, 1 | 1 << 4, 0, 0]


def test_weight_term_above_2_to_7_is_rejected():
    kept = tr.reveal_digits(np.array([[255]], np.int16), 1, 2, "hese", axis=1)
    with pytest.raises(ValueError, match="3-bit exponent"):
        tr.encode_weight_terms(kept, 1, 2)


def test_weight_payload_shapes_and_scale():
    w = np.random.default_rng(0).normal(size=(5, 37))
    payload, s_w = tr.weight_payload(w, 4, 8, 6)
    assert payload["terms"].shape == (5, 5, 6) and payload["counts"].shape == (5, 5)
    assert_array_equal(s_w, np.abs(w).max(axis=1) / 8)


# --------------------------------------------------------------------------- GEMM


def python_gemm(a, w_values, bias, rq):
    m, k = a.shape
    out = np.zeros((m, w_values.shape[0]), np.int64)
    for i in range(m):
        for j in range(w_values.shape[0]):
            acc = int(bias[j]) + sum(int(a[i, t]) * int(w_values[j, t]) for t in range(k))
            if rq is not None:
                y = (acc * int(rq.multiplier[j]) + ((1 << (rq.shift - 1)) if rq.shift else 0)) >> rq.shift
                acc = min(max(y, rq.lo), rq.hi)
            out[i, j] = acc
    return out


@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 40), st.integers(1, 16), st.integers(1, 30),
       st.integers(1, 8), st.sampled_from(tr.ENCODINGS), st.booleans(), st.booleans(), st.integers(0, 2**32 - 1))
def test_tr_gemm_matches_python_ints(m, n, k, group, budget, data_terms, encoding, unsigned, with_rq, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (m, k)).astype(np.uint8) if unsigned else rng.integers(-128, 128, (m, k)).astype(np.int8)
    q = rng.integers(-128, 129, (n, k)).astype(np.int16)
    words, counts = tr.encode_weight_terms(tr.reveal_digits(q, group, budget, encoding, axis=1), group, budget)
    bias = rng.integers(-(2**20), 2**20, n).astype(np.int32)
    rq = uniform.Requant(rng.integers(0, 2**20, n).astype(np.int32), int(rng.integers(0, 30)), -127, 127) if with_rq else None
    args = tr.validate_tr(a, words, counts, group, data_terms, encoding, bias, rq)
    a_t = [[int(v) for v in py_reveal([int(x) for x in row], 1, data_terms, encoding)] for row in a]
    w_v = np.array([py_reveal([int(x) for x in row], group, budget, encoding) for row in q])
    assert_array_equal(tr.gemm_tr(args), python_gemm(np.array(a_t), w_v, bias, rq))


def test_all_terms_kept_is_the_plain_gemm():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (7, 50)).astype(np.uint8)
    w = rng.integers(-127, 128, (6, 50)).astype(np.int8)
    words, counts = tr.encode_weight_terms(tr.reveal_digits(w, 1, 8, "binary", axis=1), 1, 8)
    args = tr.validate_tr(a, words, counts, 1, 8, "binary")
    assert_array_equal(tr.gemm_tr(args), uniform.gemm(a, w))
    conv = tr.validate_conventional(a, w, conv_bits=7)
    assert_array_equal(tr.gemm_tr(conv), uniform.gemm(a, w))


def test_data_terms_really_truncate():
    a = np.array([[255, 7]], np.uint8)
    words, counts = tr.encode_weight_terms(tr.reveal_digits(np.array([[1, 1]], np.int16), 2, 2, "hese", axis=1), 2, 2)
    assert tr.gemm_tr(tr.validate_tr(a, words, counts, 2, 1, "hese")).tolist() == [[256 + 8]]
    assert tr.gemm_tr(tr.validate_tr(a, words, counts, 2, 1, "binary")).tolist() == [[128 + 4]]
    assert tr.gemm_tr(tr.validate_tr(a, words, counts, 2, 8, "binary")).tolist() == [[255 + 7]]


def test_tr_accumulator_bound():
    k = uniform.ACC_MAX // (256 * 128)
    words = np.full((1, k, 1), 7, np.uint8)  # every value one term 2^7
    counts = np.ones((1, k), np.uint8)
    a = np.full((1, k), 255, np.uint8)
    tr.validate_tr(a, words, counts, 1, 1, "hese")
    with pytest.raises(ValueError, match=rf"K={k + 1} can overflow the engine.s 32-bit accumulator.*channel 0"):
        tr.validate_tr(np.full((1, k + 1), 255, np.uint8), np.full((1, k + 1, 1), 7, np.uint8),
                       np.ones((1, k + 1), np.uint8), 1, 1, "hese")
    # int8 activations: truncated magnitudes stay at most 128, so twice the length fits.
    tr.validate_tr(np.full((1, 2 * k), -128, np.int8), np.full((1, 2 * k, 1), 7, np.uint8),
                   np.ones((1, 2 * k), np.uint8), 1, 1, "hese")


def test_conventional_mode_limits():
    a = np.ones((1, 3), np.uint8)
    with pytest.raises(ValueError, match="conv_bits=3: weight magnitude 8 needs more than 3 bits"):
        tr.validate_conventional(a, np.array([[8, 1, 1]], np.int8), conv_bits=3)
    tr.validate_conventional(a, np.array([[-128, 1, 1]], np.int8), conv_bits=8)


@pytest.mark.parametrize("change, error, message", [
    (dict(terms=np.zeros((2, 3, 4), np.int8)), TypeError, "terms must have dtype uint8"),
    (dict(counts=np.zeros((2, 2), np.uint8)), ValueError, r"counts must have shape \(2, 3\)"),
    (dict(counts=np.full((2, 3), 5, np.uint8)), ValueError, "counts holds 5 but each group has only 4 slots"),
    (dict(group=2), ValueError, "terms has 3 groups per row but K=9 in groups of 2 needs 5"),
    (dict(group=17), ValueError, "group=17 is out of range"),
    (dict(data_terms=0), ValueError, "data_terms=0 is out of range"),
    (dict(encoding="csd"), ValueError, "encoding must be one of"),
    (dict(terms=np.full((2, 3, 4), 3 << 4, np.uint8)), ValueError, r"terms\[0, 0, 0\] indexes value 3 of a group of 3"),
    (dict(bias=np.zeros(3, np.int32)), ValueError, r"bias must have shape \(2,\)"),
    (dict(a=np.zeros((2, 9), np.float32)), TypeError, "a \\(activations\\) must have dtype int8 or uint8"),
])
def test_tr_validation_names_the_problem(change, error, message):
    ops = dict(a=np.zeros((2, 9), np.uint8), terms=np.zeros((2, 3, 4), np.uint8),
               counts=np.ones((2, 3), np.uint8), group=3, data_terms=2, encoding="hese", bias=None)
    ops.update(change)
    with pytest.raises(error, match=message):
        tr.validate_tr(**ops)


def test_term_pair_accounting():
    counts = np.array([[3, 0, 2], [1, 1, 1]], np.uint8)
    assert tr.term_pairs(counts, 4, m=5) == 5 * 8 * 4
    assert tr.conventional_term_pairs(5, 2, 48, 8, 8) == 5 * 2 * 48 * 64
    assert tr.weight_storage_bits(16, 8) == (8 * 8 + 8) / 16
    assert tr.packed_weight_bits(16, 8) == (8 * (3 + 1 + 4) + 4) / 16
