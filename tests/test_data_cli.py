"""``python -m termshift.data`` and scripts/get_data.sh argument handling."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import termshift
from termshift.data import __main__ as cli
from termshift.data import austen, fashion_mnist, minilm

REPO = Path(__file__).resolve().parents[1]
HOST = Path(termshift.__file__).resolve().parents[1]


def test_verify_prints_one_line_per_dataset(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(fashion_mnist, "verify", lambda: ("corrupt", "x_train: SHA-256 mismatch"))
    missing = ("missing", "austen: ... Install it with: bash scripts/get_data.sh austen")
    monkeypatch.setattr(austen, "verify", lambda: missing)
    monkeypatch.setattr(minilm, "verify", lambda: [("minilm-fp32", "ok", "p"), ("minilm-int8", "ok", "q")])
    rc = cli.main(["verify"])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 1
    assert [line.split()[:2] for line in lines] == [
        ["fashion-mnist", "corrupt"], ["digits", "ok"], ["austen", "missing"],
        ["minilm-fp32", "ok"], ["minilm-int8", "ok"]]
    assert "bash scripts/get_data.sh austen" in lines[2]
    assert cli.main(["verify", "digits", "minilm"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["digits", "minilm-fp32", "minilm-int8"]


def test_verify_rejects_unknown_name():
    with pytest.raises(SystemExit) as e:
        cli.main(["verify", "cifar"])
    assert e.value.code == 2


def test_fetch_failure_exit_code(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TERMSHIFT_AUSTEN_DIR", str(tmp_path / "absent"))
    monkeypatch.setenv("TERMSHIFT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get
    assert cli.main(["fetch", "austen"]) == 1
    assert "`apt-get` is not available" in capsys.readouterr().err


def test_module_entry_point_runs():
    env = dict(os.environ, PYTHONPATH=str(HOST))
    r = subprocess.run([sys.executable, "-m", "termshift.data", "verify", "digits"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("digits") and " ok " in r.stdout


@pytest.mark.skipif(not (REPO / "scripts/get_data.sh").is_file(), reason="scripts/ not in this tree")
def test_get_data_usage():
    script = str(REPO / "scripts/get_data.sh")
    assert subprocess.run(["bash", "-n", script]).returncode == 0
    r = subprocess.run(["bash", script, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "fashion-mnist" in r.stdout and "--no-deps" in r.stdout
    r = subprocess.run(["bash", script, "cifar"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown dataset 'cifar'" in r.stderr


@pytest.mark.skipif(not (REPO / "scripts/get_data.sh").is_file(), reason="scripts/ not in this tree")
def test_get_data_digits_is_idempotent():
    # digits ships with scikit-learn, a dependency: the script must find it and change nothing.
    r = subprocess.run(["bash", str(REPO / "scripts/get_data.sh"), "digits"], capture_output=True, text=True,
                       env=dict(os.environ, PYTHON=sys.executable), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "digits: already present" in r.stdout and "pip install" not in r.stdout
