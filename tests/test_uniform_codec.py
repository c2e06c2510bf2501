"""The int codec against its written spec (docs/formats/int.md)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_array_equal

from termshift.formats import uniform

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def test_ranges():
    assert uniform.qrange(8, True) == (-127, 127)
    assert uniform.qrange(8, False) == (0, 255)
    assert uniform.qrange(2, True) == (-1, 1)
    with pytest.raises(ValueError, match="bits=9"):
        uniform.qrange(9, True)


def test_ties_round_away_from_zero():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999, -0.49999])
    assert_array_equal(uniform.quantize(x, 1.0, 8, True), [1, 2, 3, -1, -2, -3, 0, 0])


def test_clamp_and_unsigned():
    x = np.array([-1000.0, -1.0, 0.0, 1000.0])
    assert_array_equal(uniform.quantize(x, 1.0, 8, True), [-127, -1, 0, 127])
    q = uniform.quantize(x, 1.0, 8, False)
    assert q.dtype == np.uint8
    assert_array_equal(q, [0, 0, 0, 255])
    assert_array_equal(uniform.quantize(x, 1.0, 4, True), [-7, -1, 0, 7])


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 9)), elements=finite),
       st.integers(2, 8), st.sampled_from(["channel", "tensor"]))
def test_roundtrip_error_is_at_most_half_a_step(w, bits, granularity):
    s = uniform.weight_scale(w, bits, granularity)
    q = uniform.quantize(w, s, bits, True)
    lo, hi = uniform.qrange(bits, True)
    assert q.min() >= lo and q.max() <= hi
    err = np.abs(uniform.dequantize(q, s) - w)
    step = np.broadcast_to(np.reshape(s, (-1, 1)) if np.ndim(s) else s, w.shape)
    assert (err <= step / 2 * (1 + 1e-9)).all()
    # The largest magnitude of each channel lands exactly on the top code.
    if granularity == "channel":
        top = np.abs(q.astype(int)).max(axis=1)
        assert_array_equal(top[np.abs(w).max(axis=1) > 0], hi)


def test_zero_channel_gets_unit_scale():
    w = np.array([[0.0, 0.0], [1.0, -2.0]])
    s = uniform.weight_scale(w, 8)
    assert s[0] == 1.0 and s[1] == pytest.approx(2 / 127)
    assert_array_equal(uniform.quantize(w, s, 8)[0], [0, 0])


def test_activation_scale():
    assert uniform.activation_scale(np.array([0.0, 2.55]), 8, signed=False) == pytest.approx(0.01)
    assert uniform.activation_scale(np.zeros(3), 8) == 1.0


@pytest.mark.parametrize("bad, kind", [(np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "Inf")])
def test_non_finite_inputs_are_named(bad, kind):
    x = np.array([[1.0, 2.0], [3.0, bad]])
    with pytest.raises(ValueError, match=rf"x contains 1 non-finite value\(s\) \({kind} first at index \(1, 1\)\)"):
        uniform.quantize(x, 1.0)
    with pytest.raises(ValueError, match="w contains"):
        uniform.weight_scale(x)


def test_bad_scales_and_shapes():
    with pytest.raises(ValueError, match="scale must be positive"):
        uniform.quantize(np.ones(3), 0.0)
    with pytest.raises(ValueError, match="per-channel scale has 2 entries"):
        uniform.quantize(np.ones((3, 4)), np.ones(2))
    with pytest.raises(TypeError, match="numeric"):
        uniform.quantize(np.array(["a"]), 1.0)
    with pytest.raises(TypeError, match="integer codes"):
        uniform.dequantize(np.ones(3), 1.0)
    with pytest.raises(ValueError, match="granularity"):
        uniform.weight_scale(np.ones((2, 2)), 8, "row")
