"""The compiled-model artifact: numpy-only round trip, integrity checks."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from torch import nn

from termshift.nn.artifact import ArtifactError, load_artifact, save_artifact
from termshift.nn.lower import lower


@pytest.fixture(scope="module")
def graph():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 3 * 3, 4)).eval()
    return lower(model, np.random.default_rng(0).random((16, 1, 8, 8)).astype(np.float32))


def test_roundtrip_gives_identical_outputs(graph, reference, tmp_path):
    x = np.random.default_rng(1).random((5, 1, 8, 8))
    want = graph.run(x, reference, keep_raw=True)
    path = save_artifact(graph, tmp_path / "m.tsm", expected={"input": x, "output": want.output})
    loaded, expected = load_artifact(path)
    got = loaded.run(expected["input"], reference, keep_raw=True)
    assert_array_equal(got.output, expected["output"])
    for k in want.raw:
        assert_array_equal(got.raw[k], want.raw[k])
    assert loaded.fmt == graph.fmt and loaded.input_shape == graph.input_shape
    assert [p.name for p in tmp_path.iterdir()] == ["m.tsm"]  # no temp files left


def test_loads_without_torch(graph, tmp_path):
    path = save_artifact(graph, tmp_path / "m.tsm")
    code = ("import sys; sys.modules['torch'] = None\n"
            "from termshift.nn.artifact import load_artifact\n"
            "from termshift.backends import get_backend\n"
            "import numpy as np\n"
            f"g, _ = load_artifact({str(path)!r})\n"
            "print(g.run(np.zeros((1, 1, 8, 8)), get_backend('csim')).output.shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(1, 4)"


def _rewrite(path, edit):
    with zipfile.ZipFile(path) as z:
        items = {n: z.read(n) for n in z.namelist()}
    edit(items)
    with zipfile.ZipFile(path, "w") as z:
        for n, d in items.items():
            z.writestr(n, d)


def test_corrupted_array_is_named(graph, tmp_path):
    path = save_artifact(graph, tmp_path / "m.tsm")

    def flip(items):
        name = next(n for n in items if n.endswith("_payload_w.npy"))
        data = bytearray(items[name])
        data[-1] ^= 0x01
        items[name] = bytes(data)

    _rewrite(path, flip)
    with pytest.raises(ArtifactError, match=r"nodes\[1\]\.payload_w .* fails its SHA-256 check"):
        load_artifact(path)


def test_version_schema_and_garbage(graph, tmp_path):
    path = save_artifact(graph, tmp_path / "m.tsm")

    def bump(items):
        m = json.loads(items["manifest.json"])
        m["version"] = 99
        items["manifest.json"] = json.dumps(m).encode()

    _rewrite(path, bump)
    with pytest.raises(ArtifactError, match="artifact version 99 but this termshift reads version 1"):
        load_artifact(path)
    bad = tmp_path / "bad.tsm"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="not a ZIP file"):
        load_artifact(bad)
    with pytest.raises(FileNotFoundError):
        load_artifact(tmp_path / "missing.tsm")

    def drop(items):
        del items[next(n for n in items if n.endswith("_bias.npy"))]

    path2 = save_artifact(graph, tmp_path / "m2.tsm")
    _rewrite(path2, drop)
    with pytest.raises(ArtifactError, match="not in the archive"):
        load_artifact(path2)
