"""The numpy reference GEMM against a plain Python-int model of the spec, and
the accumulator-width rule."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from termshift.formats import uniform
from termshift.formats.uniform import Requant


def python_model(a, w, bias, rq):
    """Arbitrary-precision ints: no overflow, no float, no numpy broadcasting."""
    m, k = a.shape
    n = w.shape[0]
    out = np.zeros((m, n), np.int64)
    for i in range(m):
        for j in range(n):
            acc = int(bias[j]) + sum(int(a[i, t]) * int(w[j, t]) for t in range(k))
            if rq is not None:
                y = acc * int(rq.multiplier[j])
                y = (y + (1 << (rq.shift - 1) if rq.shift else 0)) >> rq.shift
                acc = min(max(y, rq.lo), rq.hi)
            out[i, j] = acc
    return out


@st.composite
def gemm_operands(draw):
    m, n, k = draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 40))
    unsigned = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (m, k)).astype(np.uint8) if unsigned else rng.integers(-128, 128, (m, k)).astype(np.int8)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    bias = rng.integers(-(2**24), 2**24, n).astype(np.int32)
    rq = None
    if draw(st.booleans()):
        lo = draw(st.integers(-(2**31), 2**31 - 1))
        hi = draw(st.integers(lo, 2**31 - 1))
        rq = Requant(rng.integers(0, 2**31 - 1, n).astype(np.int32), draw(st.integers(0, 62)), lo, hi)
    return a, w, bias, rq


@given(gemm_operands())
def test_reference_matches_python_ints(ops):
    a, w, bias, rq = ops
    assert_array_equal(uniform.gemm(a, w, bias, rq), python_model(a, w, bias, rq))


def test_no_bias_means_zero_bias():
    a = np.array([[1, 2]], np.int8)
    w = np.array([[3, 4], [-5, 6]], np.int8)
    assert_array_equal(uniform.gemm(a, w), [[11, 7]])


def test_accumulator_limits():
    assert uniform.max_reduction_length(a_unsigned=True) == (2**31 - 1) // (255 * 128) == 65793
    assert uniform.max_reduction_length(a_unsigned=False) == (2**31 - 1) // (128 * 128)
    assert uniform.required_acc_bits(1, False) == 16  # 128 * 128 = 2^14 -> 15 magnitude bits + sign
    assert uniform.required_acc_bits(65793, True) == 32
    uniform.check_accumulator(65793, True)
    with pytest.raises(ValueError, match=r"K=65794 can overflow the engine's 32-bit accumulator.*largest K here is 65793"):
        uniform.check_accumulator(65794, True)


def test_bias_counts_against_the_accumulator():
    k = uniform.max_reduction_length(a_unsigned=True)
    a = np.zeros((1, k), np.uint8)
    w = np.zeros((1, k), np.int8)
    with pytest.raises(ValueError, match=r"\|bias\| 1000"):
        uniform.gemm(a, w, np.array([1000], np.int32))


@pytest.mark.parametrize(
    "a, w, bias, error, message",
    [
        (np.ones((2, 3), np.float32), np.ones((2, 3), np.int8), None, TypeError, r"a \(activations\) must have dtype int8 or uint8, got float32"),
        (np.ones((2, 3), np.int8), np.ones((2, 3), np.int16), None, TypeError, r"w \(weights\) must have dtype int8, got int16"),
        ([[1, 2]], np.ones((2, 2), np.int8), None, TypeError, "must be a numpy array, got list"),
        (np.ones(3, np.int8), np.ones((2, 3), np.int8), None, ValueError, "must be 2-D"),
        (np.ones((2, 3), np.int8), np.ones((2, 4), np.int8), None, ValueError, "both need K=3"),
        (np.ones((0, 3), np.int8), np.ones((2, 3), np.int8), None, ValueError, "M=0"),
        (np.ones((2, 3), np.int8), np.ones((2, 3), np.int8), np.ones(3, np.int32), ValueError, r"bias must have shape \(2,\)"),
        (np.ones((2, 3), np.int8), np.ones((2, 3), np.int8), np.ones(2, np.int64), TypeError, "bias must have dtype int32"),
    ],
)
def test_bad_operands_are_named(a, w, bias, error, message):
    with pytest.raises(error, match=message):
        uniform.gemm(a, w, bias)


def test_requant_must_be_a_requant():
    with pytest.raises(TypeError, match="requant must be"):
        uniform.gemm(np.ones((1, 1), np.int8), np.ones((1, 1), np.int8), None, (1, 0, 0, 1))


def test_float_operands_quantize_then_gemm_end_to_end():
    rng = np.random.default_rng(1)
    x = np.maximum(rng.normal(size=(16, 64)), 0)
    wf = rng.normal(size=(10, 64)) * 0.1
    s_w = uniform.weight_scale(wf, 8)
    s_a = uniform.activation_scale(x, 8, signed=False)
    a = uniform.quantize(x, s_a, 8, signed=False)
    w = uniform.quantize(wf, s_w, 8)
    y_float = x @ wf.T
    s_out = np.abs(y_float).max() / 127
    rq = uniform.requant_params(s_a * s_w / s_out, 8, out_signed=True)
    y = uniform.gemm(a, w, None, rq) * s_out
    # 8-bit end to end: within a few output steps of float.
    assert np.abs(y - y_float).max() < 4 * s_out
