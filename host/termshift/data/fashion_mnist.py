"""Fashion-MNIST (Zalando, 60k train / 10k test 28x28 grayscale, 10 classes).

Owns finding the idx files that Debian's ``dataset-fashion-mnist`` ships
(``/usr/share/datasets/fashion-mnist``, or the same package unpacked into the
termshift cache by ``bash scripts/get_data.sh fashion-mnist`` when not root),
and checking them: header dims against 60000/10000 x 28x28, exact file sizes,
and the SHA-256 of each file's uncompressed idx bytes. The checksum covers the
uncompressed bytes so that upstream's .gz files, Debian's re-compressed ones
and gunzipped copies all verify. Parsing itself is in :mod:`termshift.data.idx`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .debian import extracted_root
from .errors import DatasetMissingError
from .idx import load_idx_dataset

NAME = "fashion-mnist"
DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
_SUBDIR = Path("usr/share/datasets/fashion-mnist")

N_TRAIN, N_TEST = 60_000, 10_000
IMAGE_SHAPE = (28, 28)
CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# SHA-256 and size of the uncompressed idx bytes: the checked values.
CONTENT_SHA256 = {
    "x_train": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "y_train": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "x_test": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "y_test": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
CONTENT_SIZE = {"x_train": 47_040_016, "y_train": 60_008, "x_test": 7_840_016, "y_test": 10_008}

# The .gz files as shipped by dataset-fashion-mnist 0.0~git20200523.55506a9-1
# (Debian bookworm). Debian re-compressed them, so these differ from upstream's
# .gz MD5s while the content above is identical; kept as provenance.
DEBIAN_GZ = {
    "train-images-idx3-ubyte.gz": (26_421_856, "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"),
    "train-labels-idx1-ubyte.gz": (29_491, "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"),
    "t10k-images-idx3-ubyte.gz": (4_422_079, "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"),
    "t10k-labels-idx1-ubyte.gz": (5_125, "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"),
}


def candidate_dirs() -> list[Path]:
    """Where Fashion-MNIST is looked for, in order."""
    dirs = []
    env = os.environ.get("TERMSHIFT_FASHION_MNIST_DIR")
    if env:
        dirs.append(Path(env))
    dirs += [extracted_root(DEBIAN_PACKAGE) / _SUBDIR, DEBIAN_DIR]
    return dirs


def find_fashion_mnist() -> Path | None:
    env = os.environ.get("TERMSHIFT_FASHION_MNIST_DIR")
    if env:
        return Path(env)  # an explicit choice is never silently replaced by another copy
    for d in candidate_dirs():
        if d.is_dir() and any(d.iterdir()):
            return d
    return None


def load_fashion_mnist(directory: str | os.PathLike | None = None, verify: bool = True):
    """``(x_train uint8 [60000,28,28], y_train uint8 [60000], x_test, y_test)``.

    ``directory`` overrides the search; ``verify=False`` skips the checksums
    (the header and size checks always run).
    """
    if directory is None:
        found = find_fashion_mnist()
        if found is None:
            searched = ", ".join(str(d) for d in candidate_dirs())
            raise DatasetMissingError(NAME, f"no idx files found (searched {searched})")
        directory = found
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetMissingError(NAME, f"directory {directory} does not exist")
    return load_idx_dataset(
        directory,
        expected_counts=(N_TRAIN, N_TEST),
        image_shape=IMAGE_SHAPE,
        content_sha256=CONTENT_SHA256 if verify else None,
    )


def verify() -> tuple[str, str]:
    """``(status, detail)``, status ``ok``, ``missing`` or ``corrupt``, for ``python -m termshift.data verify``."""
    from .errors import IntegrityError

    try:
        x, y, xt, yt = load_fashion_mnist()
    except DatasetMissingError as e:
        return "missing", str(e)
    except IntegrityError as e:
        return "corrupt", str(e)
    return "ok", f"{x.shape[0]} train + {xt.shape[0]} test, {len(np.unique(y))} classes ({find_fashion_mnist()})"
