"""The Austen corpus: loading from a janeaustenr-shaped lazy-load database built here,
the chapter split, tokenization, fetching through apt-get/dpkg (faked), and the real
Debian data when it has been fetched."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from termshift.data import DatasetMissingError, IntegrityError, austen


def _load_fixture_module():
    name = "_termshift_test_rxdr"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("_rxdr.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


rx = _load_fixture_module()


def fake_book(var: str, n_chapters: int, roman: bool) -> list[str]:
    lines = [var.upper(), "", "By Jane Austen", ""]
    for k in range(1, n_chapters + 1):
        head = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"][k - 1] if roman else str(k)
        lines += [f"CHAPTER {head}" if roman else f"Chapter {head}", "",
                  f"{var} chapter {k} says: _it_ isn't so--really.", f"Second line of {k}.", ""]
    return lines


FAKE = {var: fake_book(var, 12, roman=i % 2 == 0) for i, var in enumerate(austen.BOOKS)}


@pytest.fixture
def fake_dir(tmp_path):
    rx.write_lazyload(tmp_path / "Rdata", {v: rx.strs(*lines) for v, lines in FAKE.items()}, method=1)
    return tmp_path


def test_load_fixture(fake_dir):
    books = austen.load_austen(fake_dir, verify=False)
    assert list(books) == list(austen.BOOKS.values())
    assert books["Pride & Prejudice"] == FAKE["prideprejudice"]


def test_checksum_mismatch_is_integrity_error(fake_dir):
    with pytest.raises(IntegrityError, match="'Sense & Sensibility' has 64 lines .* expected 12624 lines"):
        austen.load_austen(fake_dir)


def test_missing_book_variable(tmp_path):
    rx.write_lazyload(tmp_path / "Rdata", {"emma": rx.strs("x")})
    with pytest.raises(IntegrityError, match="no variable.*sensesensibility"):
        austen.load_austen(tmp_path, verify=False)


def test_wrong_type(tmp_path):
    objs = {v: rx.strs("x") for v in austen.BOOKS}
    objs["emma"] = rx.ints(1)
    rx.write_lazyload(tmp_path / "Rdata", objs)
    with pytest.raises(IntegrityError, match=r"\[emma\]: expected a character vector, got integer"):
        austen.load_austen(tmp_path, verify=False)


def test_missing_everywhere(monkeypatch, tmp_path):
    monkeypatch.setenv("TERMSHIFT_AUSTEN_DIR", str(tmp_path / "absent"))
    with pytest.raises(DatasetMissingError, match="Install it with: bash scripts/get_data.sh austen"):
        austen.load_austen()
    assert austen.verify()[0] == "missing"


def test_split_rule():
    assert [austen.split_of_chapter(k) for k in (1, 8, 9, 10, 11, 19, 20, 21)] == [
        "train", "train", "valid", "test", "train", "valid", "test", "train"]
    parts = austen.split_book(FAKE["sensesensibility"])
    assert parts["train"][:4] == FAKE["sensesensibility"][:4]  # front matter trains
    assert parts["valid"][0] == "CHAPTER IX" and parts["test"][0] == "CHAPTER X"
    assert sum(map(len, parts.values())) == len(FAKE["sensesensibility"])
    assert austen.split_book(FAKE["emma"])["test"][0] == "Chapter 10"
    assert austen.split_book(["no", "chapters"]) == {"train": ["no", "chapters"], "valid": [], "test": []}


def test_corpus_is_deterministic_and_disjoint(fake_dir):
    books = austen.load_austen(fake_dir, verify=False)
    a = austen.austen_corpus("word", books=books)
    b = austen.austen_corpus("word", books=books)
    assert a == b
    valid_text = " ".join(a["valid"])
    assert "9" in a["valid"] and "10" not in a["valid"] and "10" in a["test"]
    assert "chapter 9 says" not in " ".join(a["train"]) and "chapter 9 says" in valid_text
    chars = austen.austen_corpus("char", books=books, titles=["Emma", "Persuasion"])
    assert chars["test"].startswith("Chapter 10\n\nemma chapter 10 says")
    assert "persuasion chapter 10" in chars["test"]
    with pytest.raises(ValueError):
        austen.austen_corpus("byte", books=books)
    with pytest.raises(KeyError):
        austen.austen_splits(books=books, titles=["Lady Susan"])


def test_tokenize_and_vocab():
    assert austen.tokenize_words('"It _isn\'t_ so--really," said Mr. Darcy.') == [
        '"', "it", "isn't", "so", "--", "really", ",", '"', "said", "mr", ".", "darcy", "."]
    assert austen.words_of(["One line", "wrapped.", "", "", "Two."]) == [
        "one", "line", "wrapped", ".", austen.EOS, "two", ".", austen.EOS]
    vocab = austen.build_vocab(["b", "a", "b", "c", "a", "b", "d"], max_size=4)
    assert vocab == {"<unk>": 0, "<eos>": 1, "b": 2, "a": 3}
    assert austen.encode(["a", "zzz"], vocab) == [3, 0]
    assert austen.build_vocab(["x", "y", "y"], min_count=2) == {"<unk>": 0, "<eos>": 1, "y": 2}


# -- fetching through apt-get download + dpkg -x ------------------------------

def fake_apt(tmp_path: Path, script: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    apt = bin_dir / "apt-get"
    apt.write_text("#!/bin/sh\n" + script)
    apt.chmod(0o755)
    return bin_dir


def test_fetch_reports_apt_failure(tmp_path, monkeypatch):
    if shutil.which("dpkg") is None:
        pytest.skip("dpkg not installed")
    bin_dir = fake_apt(tmp_path, 'echo "E: Unable to locate package $2" >&2; exit 100\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TERMSHIFT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DatasetMissingError) as e:
        austen.fetch_austen(force=True)
    msg = str(e.value)
    assert "apt-get download r-cran-janeaustenr` failed: E: Unable to locate package" in msg
    assert "sudo apt-get update" in msg and "bash scripts/get_data.sh austen" in msg
    assert not (tmp_path / "cache" / "debian" / "r-cran-janeaustenr").exists()
    assert os.listdir(tmp_path / "cache" / "debian") == []  # no temp left behind


def test_fetch_without_apt(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # neither apt-get nor dpkg
    monkeypatch.setenv("TERMSHIFT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DatasetMissingError, match="`apt-get` is not available"):
        austen.fetch_austen(force=True)


def test_fetch_unpacks_deb_into_cache(tmp_path, monkeypatch):
    if shutil.which("dpkg-deb") is None or shutil.which("dpkg") is None:
        pytest.skip("dpkg-deb not installed")
    pkg = tmp_path / "pkg"
    data = pkg / "usr/lib/R/site-library/janeaustenr/data"
    data.mkdir(parents=True)
    rx.write_lazyload(data / "Rdata", {v: rx.strs(*lines) for v, lines in FAKE.items()})
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN/control").write_text(
        "Package: r-cran-janeaustenr\nVersion: 9.9-1\nArchitecture: all\n"
        "Maintainer: test <t@example.org>\nDescription: fixture\n")
    deb = tmp_path / "fixture.deb"
    subprocess.run(["dpkg-deb", "--build", "-Zgzip", str(pkg), str(deb)], check=True, capture_output=True)
    bin_dir = fake_apt(tmp_path, f'cp "{deb}" "./$2_9.9-1_all.deb"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TERMSHIFT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TERMSHIFT_AUSTEN_DIR", raising=False)
    got = austen.fetch_austen(force=True)
    root = tmp_path / "cache/debian/r-cran-janeaustenr"
    assert got == root / "usr/lib/R/site-library/janeaustenr/data"
    assert (root / ".termshift-source").read_text().strip() == "r-cran-janeaustenr_9.9-1_all.deb"
    assert austen.load_austen(got, verify=False)["Emma"] == FAKE["emma"]
    # A second forced fetch replaces the tree in place.
    assert austen.fetch_austen(force=True) == got
    assert sorted(os.listdir(tmp_path / "cache/debian")) == ["r-cran-janeaustenr"]


# -- the real data ----------------------------------------------------------------

def test_real_janeaustenr():
    d = austen.find_austen_dir()
    if d is None or not (d / "Rdata.rdx").is_file():
        pytest.skip("janeaustenr data not fetched (bash scripts/get_data.sh austen); searched "
                    + ", ".join(map(str, austen.candidate_dirs())))
    books = austen.load_austen()
    assert list(books) == ["Sense & Sensibility", "Pride & Prejudice", "Mansfield Park",
                           "Emma", "Northanger Abbey", "Persuasion"]
    assert books["Pride & Prejudice"][0] == "PRIDE AND PREJUDICE"
    assert books["Pride & Prejudice"][9].startswith("It is a truth universally acknowledged")
    words = sum(len(line.split()) for lines in books.values() for line in lines)
    assert 700_000 <= words <= 735_000, words
    assert [len(austen.chapter_starts(b)) for b in books.values()] == [50, 61, 48, 55, 31, 24]
    corpus = austen.austen_corpus("word", books=books)
    sizes = {k: len(v) for k, v in corpus.items()}
    total = sum(sizes.values())
    assert 0.75 < sizes["train"] / total < 0.85 and 0.07 < sizes["test"] / total < 0.12
