"""Cache directory resolution, atomic writes and the shared error types of termshift.data."""

import os

import pytest

from termshift.data import DatasetMissingError, IntegrityError, cache_dir
from termshift.data.cache import atomic_replace_dir, atomic_write_bytes, atomic_write_text, sha256_file


def test_cache_dir_prefers_termshift_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TERMSHIFT_CACHE", str(tmp_path / "ts"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "ts"
    assert not (tmp_path / "ts").exists()
    assert cache_dir(create=True).is_dir()


def test_cache_dir_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.delenv("TERMSHIFT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "termshift"
    # A relative XDG_CACHE_HOME is invalid per the XDG spec and ignored.
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "termshift"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == tmp_path / "home" / ".cache" / "termshift"


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(p, b"one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert sorted(os.listdir(p.parent)) == ["f.bin"]


def test_atomic_write_failure_keeps_old_content(tmp_path, monkeypatch):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(p, b"new")
    monkeypatch.undo()
    assert p.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_atomic_replace_dir(tmp_path):
    dst = tmp_path / "tree"
    for content in ("first", "second"):
        src = tmp_path / f".build-{content}"
        src.mkdir()
        (src / "x").write_text(content)
        atomic_replace_dir(src, dst)
    assert (dst / "x").read_text() == "second"
    assert sorted(os.listdir(tmp_path)) == ["tree"]


def test_sha256_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_error_types():
    e = DatasetMissingError("austen", "not found")
    assert isinstance(e, FileNotFoundError)
    assert str(e) == "austen: not found. Install it with: bash scripts/get_data.sh austen"
    assert e.command == "bash scripts/get_data.sh austen"
    assert issubclass(IntegrityError, ValueError)
