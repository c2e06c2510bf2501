"""scikit-learn digits: shapes, value range and the fixed contiguous split."""

import numpy as np
import pytest

from termshift.data import digits, load_digits_dataset


def test_split_shapes_and_values():
    x, y, xt, yt = load_digits_dataset()
    assert x.shape == (1437, 8, 8) and xt.shape == (360, 8, 8)
    assert x.dtype == np.uint8 and y.dtype == np.uint8
    assert int(max(x.max(), xt.max())) == 16
    # every class appears in both parts
    assert np.bincount(y, minlength=10).min() > 100 and np.bincount(yt, minlength=10).min() > 25


def test_split_is_contiguous_and_deterministic():
    from sklearn.datasets import load_digits

    ref = load_digits()
    x, y, xt, yt = load_digits_dataset(test_fraction=0.5)
    assert len(xt) == 899 and len(x) == 898
    np.testing.assert_array_equal(np.concatenate([x, xt]), ref.images.astype(np.uint8))
    np.testing.assert_array_equal(np.concatenate([y, yt]), ref.target)
    again = load_digits_dataset(test_fraction=0.5)
    assert all(np.array_equal(a, b) for a, b in zip((x, y, xt, yt), again, strict=True))


def test_bad_fraction():
    with pytest.raises(ValueError):
        load_digits_dataset(test_fraction=1.0)


def test_verify_ok():
    assert digits.verify()[0] == "ok"
