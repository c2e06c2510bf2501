"""Image classification datasets as float tensors ready for the models:
Fashion-MNIST when installed, else scikit-learn digits (always there).

Pixels are scaled to [0, 1] by their format's maximum (255 or 16), so the
quantized graph's input codes for Fashion-MNIST are the raw pixel bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from termshift.data.errors import DatasetMissingError

CALIBRATION_SAMPLES = 2000


@dataclass(frozen=True)
class ImageData:
    name: str
    x_train: np.ndarray  # float32 (N, 1, H, W) in [0, 1]
    y_train: np.ndarray  # int64
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])

    def calibration(self, n: int = CALIBRATION_SAMPLES) -> np.ndarray:
        """The last n training images: a fixed split the optimizer also saw,
        never test data."""
        return self.x_train[-n:]


def _prep(name, x, y, xt, yt, max_value) -> ImageData:
    def f(a):
        return (a.astype(np.float32) / max_value)[:, None, :, :]

    return ImageData(name, f(x), y.astype(np.int64), f(xt), yt.astype(np.int64))


def load_image_data(name: str) -> ImageData:
    """`fashion-mnist`, `digits`, or `auto` (Fashion-MNIST if installed, else digits)."""
    if name in ("fashion-mnist", "auto"):
        from termshift.data.fashion_mnist import load_fashion_mnist

        try:
            return _prep("fashion-mnist", *load_fashion_mnist(), 255.0)
        except DatasetMissingError:
            if name == "fashion-mnist":
                raise
    if name in ("digits", "auto"):
        from termshift.data.digits import load_digits_dataset

        return _prep("digits", *load_digits_dataset(), 16.0)
    raise ValueError(f"unknown dataset {name!r}; choose fashion-mnist, digits or auto")
