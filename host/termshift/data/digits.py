"""scikit-learn's 8x8 handwritten digits (UCI optdigits test set, 1797 images, 10 classes).

Owns the fallback dataset for default runs and fast tests: it ships inside
scikit-learn, so it is always there once termshift's dependencies are. Owns
the deterministic train/test split: the first ``N - n_test`` samples in
scikit-learn's order train, the last ``n_test`` test, with
``n_test = ceil(test_fraction * N)`` (360 of 1797 at the default 0.2). A
contiguous split rather than a shuffled one: it depends on no RNG or library
version, and it is how scikit-learn's own digits example splits
(``shuffle=False``). The classes are interleaved in the file, so both parts
hold every digit in near-equal numbers.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import DatasetMissingError, IntegrityError

NAME = "digits"
N_SAMPLES = 1797
IMAGE_SHAPE = (8, 8)
MAX_VALUE = 16  # pixel values are integer counts 0..16 (4x4 blocks of a 32x32 bitmap)


def _sklearn_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise DatasetMissingError(
            NAME, "scikit-learn is not installed", command="pip install scikit-learn"
        ) from e
    return load_digits()


def load_digits_dataset(test_fraction: float = 0.2):
    """``(x_train uint8 [N,8,8] in 0..16, y_train uint8, x_test, y_test)``."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    d = _sklearn_digits()
    images, target = np.asarray(d.images), np.asarray(d.target)
    if images.shape != (N_SAMPLES, *IMAGE_SHAPE) or target.shape != (N_SAMPLES,):
        raise IntegrityError(
            f"sklearn digits: shape {images.shape}/{target.shape}, expected ({N_SAMPLES}, 8, 8)/({N_SAMPLES},)"
        )
    x = images.astype(np.uint8)
    if not np.array_equal(x, images) or x.max() > MAX_VALUE or target.min() < 0 or target.max() > 9:
        raise IntegrityError("sklearn digits: pixel values are not integers in 0..16 or labels not in 0..9")
    y = target.astype(np.uint8)
    n_test = math.ceil(test_fraction * N_SAMPLES)
    cut = N_SAMPLES - n_test
    return x[:cut], y[:cut], x[cut:], y[cut:]


def verify() -> tuple[str, str]:
    try:
        x, y, xt, yt = load_digits_dataset()
    except DatasetMissingError as e:
        return "missing", str(e)
    except IntegrityError as e:
        return "corrupt", str(e)
    return "ok", f"{len(x)} train + {len(xt)} test (scikit-learn)"
