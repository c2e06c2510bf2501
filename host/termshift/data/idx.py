"""The idx file format (MNIST's) and loading a directory of MNIST-format idx files.

Owns parsing: a 4-byte magic (two zero bytes, a dtype code, the number of
dimensions), one big-endian uint32 per dimension, then the data in big-endian
order, optionally gzip-compressed. Owns :func:`load_idx_dataset`, which takes
any directory laid out like MNIST (Fashion-MNIST, real MNIST, KMNIST...) and
checks sizes and header dims before returning arrays. Dataset-specific
expectations (counts, checksums) live with each dataset, e.g. fashion_mnist.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import IntegrityError

# idx dtype code -> numpy dtype (the format stores multi-byte values big-endian).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"

# (role, file stem); both "train-images-idx3-ubyte" and "train-images.idx3-ubyte"
# are in circulation, with or without ".gz".
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """The uncompressed bytes of an idx file (gzip detected by magic, not by name)."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise IntegrityError(f"{path}: corrupt or truncated gzip stream ({e})") from e


def parse_idx(data: bytes, name: str = "<idx>") -> np.ndarray:
    """Parse idx bytes into a native-endian array; the size must match the header exactly."""
    if len(data) < 4:
        raise IntegrityError(f"{name}: {len(data)} bytes is too short for an idx header (need >= 4)")
    zero, code, ndim = struct.unpack_from(">HBB", data)
    if zero != 0 or code not in IDX_DTYPES:
        raise IntegrityError(
            f"{name}: bad idx magic {data[:4].hex()} (expected 0000 + dtype code in "
            f"{{{', '.join(f'{c:02x}' for c in IDX_DTYPES)}}} + ndim)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IntegrityError(f"{name}: truncated idx header ({len(data)} bytes, header needs {header})")
    dims = struct.unpack_from(f">{ndim}I", data, 4)
    dtype = IDX_DTYPES[code]
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise IntegrityError(
            f"{name}: idx data {what}: {len(data)} bytes, header dims {tuple(dims)} "
            f"of {dtype.name} need exactly {expected}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one idx file (raw or gzip)."""
    return parse_idx(read_idx_bytes(path), str(path))


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool = False) -> Path:
    """Write ``array`` as idx (used by tests and by anyone exporting data in MNIST layout)."""
    from .cache import atomic_write_bytes

    array = np.asarray(array)
    codes = [c for c, dt in IDX_DTYPES.items() if (dt.kind, dt.itemsize) == (array.dtype.kind, array.dtype.itemsize)]
    if not codes:
        raise TypeError(f"idx has no dtype code for {array.dtype}")
    code = codes[0]
    dt = IDX_DTYPES[code]
    blob = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    blob += array.astype(dt, copy=False).tobytes()
    if compress:
        blob = gzip.compress(blob, mtime=0)
    return atomic_write_bytes(path, blob)


def find_idx_file(directory: str | os.PathLike, stem: str) -> Path | None:
    """The file in ``directory`` holding idx ``stem``, trying the naming variants in use."""
    directory = Path(directory)
    dotted = stem.replace("-idx", ".idx")
    for base in (stem, dotted):
        for suffix in ("", ".gz"):
            p = directory / (base + suffix)
            if p.is_file():
                return p
    return None


_PUT_FILES_HINT = (
    "A directory of MNIST-format data needs " + ", ".join(IDX_FILES.values())
    + " (each optionally .gz); for Fashion-MNIST run: bash scripts/get_data.sh fashion-mnist"
)


def load_idx_dataset(
    directory: str | os.PathLike,
    expected_counts: tuple[int, int] | None = None,
    image_shape: tuple[int, ...] | None = (28, 28),
    content_sha256: dict[str, str] | None = None,
):
    """Load an MNIST-layout directory: ``(x_train, y_train, x_test, y_test)``.

    Images come back ``uint8 [N, *image_shape]``, labels ``uint8 [N]``.
    ``expected_counts`` = (n_train, n_test) is checked against the headers;
    ``content_sha256`` maps a role (``x_train``...) to the SHA-256 of the
    uncompressed idx bytes, so a checksum holds whether the file is gzipped or not.
    """
    from .errors import DatasetMissingError

    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetMissingError(
            "idx", f"directory {directory} does not exist",
            hint=_PUT_FILES_HINT,
        )
    out, digests = {}, {}
    for role, stem in IDX_FILES.items():
        path = find_idx_file(directory, stem)
        if path is None:
            raise DatasetMissingError(
                "idx", f"{directory} has no {stem} or {stem}.gz",
                hint=_PUT_FILES_HINT,
            )
        data = read_idx_bytes(path)
        digests[role] = hashlib.sha256(data).hexdigest() if content_sha256 and role in content_sha256 else None
        out[role] = (path, parse_idx(data, str(path)))

    for split, xr, yr in (("train", "x_train", "y_train"), ("test", "x_test", "y_test")):
        (xp, x), (yp, y) = out[xr], out[yr]
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise IntegrityError(f"{directory}: {split} images/labels must be uint8 idx, got {x.dtype}/{y.dtype}")
        if x.ndim < 2 or y.ndim != 1:
            raise IntegrityError(f"{xp}: images need >= 2 dims and labels 1, got {x.shape} and {y.shape}")
        if image_shape is not None and tuple(x.shape[1:]) != tuple(image_shape):
            raise IntegrityError(f"{xp}: image shape {tuple(x.shape[1:])}, expected {tuple(image_shape)}")
        if x.shape[0] != y.shape[0]:
            raise IntegrityError(
                f"{directory}: {split} has {x.shape[0]} images ({xp.name}) but {y.shape[0]} labels ({yp.name})"
            )
        if expected_counts is not None:
            want = expected_counts[0 if split == "train" else 1]
            if x.shape[0] != want:
                raise IntegrityError(f"{xp}: header says {x.shape[0]} {split} images, expected {want}")
    # Checksums last: a wrong count or shape says more about what is wrong than a hash does.
    for role, got in digests.items():
        if got is not None and got != content_sha256[role]:
            raise IntegrityError(
                f"{out[role][0]}: SHA-256 of the uncompressed idx data is {got}, expected "
                f"{content_sha256[role]}; the file is corrupt or not the expected release"
            )
    return out["x_train"][1], out["y_train"][1], out["x_test"][1], out["y_test"][1]
