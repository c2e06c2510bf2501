"""idx parsing, MNIST-layout directory loading and the Fashion-MNIST checks, on tiny
idx files written here; plus the real Debian files when they are installed."""

import gzip
import hashlib
import struct

import numpy as np
import pytest

from termshift.data import DatasetMissingError, IntegrityError, load_idx_dataset, read_idx, write_idx
from termshift.data import fashion_mnist
from termshift.data.idx import IDX_DTYPES, parse_idx

RNG = np.random.default_rng(1234)


def idx_bytes(arr: np.ndarray, code: int) -> bytes:
    """idx written by hand (not by write_idx), so the reader is checked against the spec."""
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.astype(IDX_DTYPES[code]).tobytes()


def make_mnist_dir(d, n_train=5, n_test=3, shape=(28, 28), gz=True, dotted=False):
    d.mkdir(parents=True, exist_ok=True)
    parts = {
        "train-images-idx3-ubyte": RNG.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "train-labels-idx1-ubyte": RNG.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": RNG.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": RNG.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, arr in parts.items():
        name = stem.replace("-idx", ".idx") if dotted else stem
        blob = idx_bytes(arr, 0x08)
        if gz:
            (d / (name + ".gz")).write_bytes(gzip.compress(blob))
        else:
            (d / name).write_bytes(blob)
    return parts


@pytest.mark.parametrize("code", sorted(IDX_DTYPES))
def test_parse_every_dtype(code):
    dt = IDX_DTYPES[code]
    if dt.kind == "f":
        arr = RNG.standard_normal((3, 4, 2)).astype(dt)
    else:
        info = np.iinfo(dt)
        arr = RNG.integers(info.min, info.max, (3, 4, 2), endpoint=True).astype(dt)
    got = parse_idx(idx_bytes(arr, code))
    assert got.dtype == dt.newbyteorder("=")
    np.testing.assert_array_equal(got, arr)


def test_write_idx_roundtrip(tmp_path):
    arr = RNG.integers(-1000, 1000, (2, 3)).astype(np.int32)
    for compress in (False, True):
        p = write_idx(tmp_path / f"a{compress}", arr, compress=compress)
        np.testing.assert_array_equal(read_idx(p), arr)
    assert (tmp_path / "aTrue").read_bytes()[:2] == b"\x1f\x8b"


def test_header_and_size_errors():
    good = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3), 0x08)
    with pytest.raises(IntegrityError, match="bad idx magic"):
        parse_idx(b"\x00\x01" + good[2:], "f")
    with pytest.raises(IntegrityError, match="bad idx magic"):
        parse_idx(b"\x00\x00\x07" + good[3:], "f")
    with pytest.raises(IntegrityError, match="too short"):
        parse_idx(b"\x00\x00", "f")
    with pytest.raises(IntegrityError, match="truncated idx header"):
        parse_idx(good[:6], "f")
    with pytest.raises(IntegrityError, match=r"f: idx data truncated: 17 bytes, header dims \(2, 3\) of uint8 need"):
        parse_idx(good[:-1], "f")
    with pytest.raises(IntegrityError, match="trailing bytes"):
        parse_idx(good + b"\x00", "f")


def test_truncated_gzip(tmp_path):
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 50), np.uint8), 0x08))[:-12])
    with pytest.raises(IntegrityError, match="x.gz: corrupt or truncated gzip"):
        read_idx(p)


@pytest.mark.parametrize("gz,dotted", [(True, False), (False, False), (False, True)])
def test_load_idx_dataset(tmp_path, gz, dotted):
    parts = make_mnist_dir(tmp_path, gz=gz, dotted=dotted)
    x, y, xt, yt = load_idx_dataset(tmp_path, expected_counts=(5, 3))
    assert x.dtype == np.uint8 and x.shape == (5, 28, 28) and xt.shape == (3, 28, 28)
    np.testing.assert_array_equal(x, parts["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(yt, parts["t10k-labels-idx1-ubyte"])


def test_wrong_count_and_shape(tmp_path):
    make_mnist_dir(tmp_path)
    with pytest.raises(IntegrityError, match="header says 5 train images, expected 60000"):
        load_idx_dataset(tmp_path, expected_counts=(60000, 10000))
    with pytest.raises(IntegrityError, match=r"image shape \(28, 28\), expected \(8, 8\)"):
        load_idx_dataset(tmp_path, image_shape=(8, 8))
    # labels that do not match the images in number
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(4, np.uint8), 0x08)))
    with pytest.raises(IntegrityError, match="train has 5 images .* but 4 labels"):
        load_idx_dataset(tmp_path)


def test_missing_dir_and_file(tmp_path):
    with pytest.raises(DatasetMissingError, match="does not exist.*bash scripts/get_data.sh fashion-mnist"):
        load_idx_dataset(tmp_path / "nope")
    make_mnist_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz"):
        load_idx_dataset(tmp_path)


def test_content_hash_mismatch_names_file_and_expected(tmp_path):
    parts = make_mnist_dir(tmp_path)
    good = hashlib.sha256(idx_bytes(parts["train-labels-idx1-ubyte"], 0x08)).hexdigest()
    load_idx_dataset(tmp_path, content_sha256={"y_train": good})
    with pytest.raises(IntegrityError, match=r"train-labels-idx1-ubyte.gz: SHA-256 .* expected 0{64}"):
        load_idx_dataset(tmp_path, content_sha256={"y_train": "0" * 64})


def test_fashion_mnist_rejects_wrong_data(tmp_path, monkeypatch):
    make_mnist_dir(tmp_path)
    with pytest.raises(IntegrityError, match="expected 60000"):
        fashion_mnist.load_fashion_mnist(tmp_path)
    # Right counts, wrong bytes: only the checksum can tell.
    monkeypatch.setattr(fashion_mnist, "N_TRAIN", 5)
    monkeypatch.setattr(fashion_mnist, "N_TEST", 3)
    with pytest.raises(IntegrityError, match="train-images-idx3-ubyte.gz: SHA-256 .* expected c59f468a"):
        fashion_mnist.load_fashion_mnist(tmp_path)
    assert fashion_mnist.load_fashion_mnist(tmp_path, verify=False)[0].shape == (5, 28, 28)


def test_fashion_mnist_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("TERMSHIFT_FASHION_MNIST_DIR", str(tmp_path / "absent"))
    with pytest.raises(DatasetMissingError, match="bash scripts/get_data.sh fashion-mnist"):
        fashion_mnist.load_fashion_mnist()
    assert fashion_mnist.verify()[0] == "missing"


def test_fashion_mnist_constants_consistent():
    for role, n in (("x_train", 60000), ("x_test", 10000)):
        assert fashion_mnist.CONTENT_SIZE[role] == 16 + n * 28 * 28
    for role, n in (("y_train", 60000), ("y_test", 10000)):
        assert fashion_mnist.CONTENT_SIZE[role] == 8 + n


def test_real_fashion_mnist():
    d = fashion_mnist.find_fashion_mnist()
    if d is None or not d.is_dir():
        pytest.skip("Fashion-MNIST not installed (bash scripts/get_data.sh fashion-mnist)")
    x, y, xt, yt = fashion_mnist.load_fashion_mnist()
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10
