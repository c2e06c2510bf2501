"""Requantization: fixed-point parameters and the integer rounding rule."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from termshift.formats import uniform
from termshift.formats.uniform import Requant


def test_ties_round_toward_plus_infinity():
    acc = np.array([1, 3, -1, -3, 5, -5], np.int64)  # x / 2 with x odd: every one a tie
    rq = Requant(np.ones(6, np.int32), 1, -100, 100)
    assert_array_equal(uniform.requantize(acc, rq), [1, 2, 0, -1, 3, -2])


def test_shift_zero_is_plain_multiply_and_clamp():
    rq = Requant(np.array([3, 3, 3], np.int32), 0, -10, 10)
    assert_array_equal(uniform.requantize(np.array([2, 4, -4]), rq), [6, 10, -10])


@given(st.lists(st.floats(1e-9, 1e3), min_size=1, max_size=16))
def test_params_are_accurate_and_fit_31_bits(reals):
    rq = uniform.requant_params(np.array(reals), 8, out_signed=False)
    assert 0 <= rq.shift <= uniform.MAX_SHIFT
    assert rq.multiplier.max() <= 2**31 - 1
    approx = rq.multiplier.astype(np.float64) / 2.0**rq.shift
    rmax = max(reals)
    # Error is half an LSB of the shared shift: relative to the largest channel < 2^-30.
    assert np.all(np.abs(approx - np.array(reals)) <= 0.5 / 2.0**rq.shift)
    if rq.shift < uniform.MAX_SHIFT:
        assert np.abs(approx.max() - rmax) / rmax < 2.0**-30
    assert (rq.lo, rq.hi) == (0, 255)


def test_params_relu_and_signed():
    assert (uniform.requant_params([0.5], 8, out_signed=True).lo) == -127
    rq = uniform.requant_params([0.5], 8, out_signed=True, relu=True)
    assert (rq.lo, rq.hi) == (0, 127)
    assert uniform.requant_params([0.0, 0.0]).shift == 0
    with pytest.raises(ValueError, match=">= 0"):
        uniform.requant_params([-1.0])
    with pytest.raises(ValueError, match="31-bit"):
        uniform.requant_params([3e9])


@pytest.mark.parametrize(
    "rq, error, message",
    [
        (Requant(np.ones(3, np.int32), 63, 0, 1), ValueError, "shift=63 is out of range"),
        (Requant(np.ones(3, np.int32), -1, 0, 1), ValueError, "shift=-1"),
        (Requant(np.ones(3, np.int32), 2, 5, 1), ValueError, "lo=5 is above hi=1"),
        (Requant(np.ones(2, np.int32), 2, 0, 1), ValueError, "3 entries"),
        (Requant(np.array([-1, 1, 1]), 2, 0, 1), ValueError, r"\[0, 2\^31-1\]"),
        (Requant(np.ones(3), 2, 0, 1), TypeError, "must be integer"),
        (Requant(np.ones(3, np.int32), 2.0, 0, 1), TypeError, "shift must be an integer"),
        (Requant(np.ones(3, np.int32), 2, 0, 2**31), ValueError, "hi=2147483648"),
    ],
)
def test_bad_requant_is_named(rq, error, message):
    with pytest.raises(error, match=message):
        rq.validated(3)


def test_quantize_bias():
    assert_array_equal(uniform.quantize_bias([0.5, -0.25], 0.5, [0.5, 0.5]), [2, -1])
    with pytest.raises(ValueError, match="32-bit accumulator"):
        uniform.quantize_bias([1e6], 1e-4, [1e-4])
