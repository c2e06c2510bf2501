"""Jane Austen's six novels (Debian ``r-cran-janeaustenr``), a text corpus for language models.

Owns getting the text (``apt-get download`` + ``dpkg -x`` of the Debian
package into the termshift cache; no R, no root), reading it from the R
package's lazy-load database with :mod:`termshift.data.rdata`, checking it
(line count and SHA-256 of every book's text), and the deterministic
train/valid/test split plus word- and character-level tokenization.

Split rule (by chapter, inside each book): chapter k (1-based, counted in
order through the whole book, volumes included) goes to *valid* when
``k % 10 == 9``, to *test* when ``k % 10 == 0``, otherwise to *train*; the
front matter before the first chapter heading goes to *train*. Chapters are
never cut, every book contributes to every split (Persuasion has 24
chapters), and the split is ~81/9.3/9.3 % of chapters. Splits concatenate
books in :data:`BOOKS` order.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from pathlib import Path

from .debian import extracted_root, fetch_deb
from .errors import DatasetMissingError, IntegrityError
from .rdata import LazyLoadDB, RFormatError, RVector, UnsupportedRObjectError

NAME = "austen"
DEBIAN_PACKAGE = "r-cran-janeaustenr"
_DATA_SUBDIR = Path("usr/lib/R/site-library/janeaustenr/data")
SYSTEM_DIRS = (
    Path("/usr/lib/R/site-library/janeaustenr/data"),
    Path("/usr/local/lib/R/site-library/janeaustenr/data"),
)

# R variable name -> title as janeaustenr::austen_books() labels it, in its order.
BOOKS = {
    "sensesensibility": "Sense & Sensibility",
    "prideprejudice": "Pride & Prejudice",
    "mansfieldpark": "Mansfield Park",
    "emma": "Emma",
    "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
}

# (lines, SHA-256 of "\n".join(lines) in UTF-8) of janeaustenr 1.0.0. A
# checksum of the decoded text rather than of the .rdb, so a rebuild of the
# same package by another R version still verifies.
CONTENT = {
    "Sense & Sensibility": (12624, "0996d90842bbe8093f3b8142c1e77d1b20cff52d1d0615f3ed67733653e74e26"),
    "Pride & Prejudice": (13030, "2e44edaa4946d64ad541c68e0224f5d672f43bf3ce2a8a0b0637ad5e02fc6eb3"),
    "Mansfield Park": (15349, "e0e9ef3863ea77f51f6070062ee0dd50ad9b933223880617629e4e4963ea40ff"),
    "Emma": (16235, "dd08b340a56ad4a0a00718d5682528a5a5886ae0aef91c9e0fa528074fa64b75"),
    "Northanger Abbey": (7856, "8618a5acf5be50cc6e9b7680c7469fb6012649ab08c709dfc63c6367989fd31d"),
    "Persuasion": (8328, "726513a6c18bb678427bcbcf7c72d0d20816a67c25b0471b26ddcabf3ebac140"),
}

SPLITS = ("train", "valid", "test")
CHAPTER_RE = re.compile(r"^\s*chapter\s+(?:\d+|[ivxlc]+)\.?\s*$", re.IGNORECASE)
EOS = "<eos>"
UNK = "<unk>"


def text_sha256(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def candidate_dirs() -> list[Path]:
    """Directories holding janeaustenr's ``Rdata.rdb``/``Rdata.rdx``, in search order."""
    dirs = []
    env = os.environ.get("TERMSHIFT_AUSTEN_DIR")
    if env:
        dirs.append(Path(env))
    dirs.append(extracted_root(DEBIAN_PACKAGE) / _DATA_SUBDIR)
    dirs.extend(SYSTEM_DIRS)
    return dirs


def find_austen_dir() -> Path | None:
    env = os.environ.get("TERMSHIFT_AUSTEN_DIR")
    if env:
        return Path(env)  # an explicit choice is never silently replaced by another copy
    for d in candidate_dirs():
        if (d / "Rdata.rdx").is_file() and (d / "Rdata.rdb").is_file():
            return d
    return None


def fetch_austen(force: bool = False) -> Path:
    """Unpack r-cran-janeaustenr into the cache unless a usable copy is already found."""
    if not force:
        found = find_austen_dir()
        if found is not None and (found / "Rdata.rdx").is_file():
            return found
    root = fetch_deb(DEBIAN_PACKAGE, NAME)
    data = root / _DATA_SUBDIR
    if not (data / "Rdata.rdx").is_file():
        raise IntegrityError(f"{DEBIAN_PACKAGE} unpacked to {root} but has no {_DATA_SUBDIR}/Rdata.rdx")
    return data


def load_austen(directory: str | os.PathLike | None = None, verify: bool = True) -> dict[str, list[str]]:
    """``{title: lines}`` for the six novels, in :data:`BOOKS` order.

    ``directory`` holds ``Rdata.rdb``/``Rdata.rdx`` (default: search
    :func:`candidate_dirs`). With ``verify`` each book's line count and text
    checksum must match janeaustenr 1.0.0.
    """
    if directory is None:
        directory = find_austen_dir()
        if directory is None:
            searched = ", ".join(str(d) for d in candidate_dirs())
            raise DatasetMissingError(NAME, f"janeaustenr's Rdata.rdb/.rdx not found (searched {searched})")
    directory = Path(directory)
    if not (directory / "Rdata.rdx").is_file() or not (directory / "Rdata.rdb").is_file():
        raise DatasetMissingError(NAME, f"{directory} has no Rdata.rdb + Rdata.rdx")
    try:
        db = LazyLoadDB(directory / "Rdata")
        missing = [v for v in BOOKS if v not in db.names()]
        if missing:
            raise IntegrityError(f"{db.rdx}: no variable(s) {', '.join(missing)} (has {', '.join(db.names())})")
        books = {}
        for var, title in BOOKS.items():
            vec = db.fetch(var)
            if not isinstance(vec, RVector) or vec.rtype != "character":
                got = getattr(vec, "rtype", type(vec).__name__)
                raise IntegrityError(f"{db.rdb}[{var}]: expected a character vector, got {got}")
            # NA lines do not occur in janeaustenr; reading them as blank keeps paragraph structure.
            books[title] = ["" if s is None else s if isinstance(s, str) else s.decode("latin-1") for s in vec]
    except UnsupportedRObjectError as e:
        raise IntegrityError(str(e)) from e
    if verify:
        for title, lines in books.items():
            n, digest = CONTENT[title]
            got = text_sha256(lines)
            if len(lines) != n or got != digest:
                raise IntegrityError(
                    f"{directory}: {title!r} has {len(lines)} lines with text SHA-256 {got}; expected "
                    f"{n} lines with {digest} (janeaustenr 1.0.0). Another release of the package? "
                    "Pass verify=False to accept it"
                )
    return books


def chapter_starts(lines: list[str]) -> list[int]:
    """Indices of the chapter heading lines, in order."""
    return [i for i, line in enumerate(lines) if CHAPTER_RE.match(line)]


def split_of_chapter(k: int) -> str:
    """The split of 1-based chapter ``k`` (see the module docstring)."""
    r = k % 10
    return "valid" if r == 9 else "test" if r == 0 else "train"


def split_book(lines: list[str]) -> dict[str, list[str]]:
    """One book's lines divided into train/valid/test by chapter."""
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    starts = chapter_starts(lines)
    if not starts:
        out["train"] = list(lines)
        return out
    out["train"].extend(lines[: starts[0]])
    bounds = starts + [len(lines)]
    for k in range(1, len(starts) + 1):
        out[split_of_chapter(k)].extend(lines[bounds[k - 1] : bounds[k]])
    return out


def austen_splits(books: dict[str, list[str]] | None = None, titles=None, **load_kw) -> dict[str, list[str]]:
    """``{split: lines}`` over ``titles`` (default all six), books in :data:`BOOKS` order."""
    books = load_austen(**load_kw) if books is None else books
    titles = list(books) if titles is None else list(titles)
    unknown = [t for t in titles if t not in books]
    if unknown:
        raise KeyError(f"unknown book(s) {unknown}; have {list(books)}")
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for title in titles:
        for split, part in split_book(books[title]).items():
            out[split].extend(part)
    return out


_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*|--+|[^\sa-z0-9]")


def tokenize_words(text: str) -> list[str]:
    """Lower-cased words (inner apostrophes kept), dash runs, and single punctuation marks.

    Underscores are dropped: in these Gutenberg texts they only mark italics.
    """
    return _WORD_RE.findall(text.replace("_", "").lower())


def paragraphs(lines: list[str]) -> list[str]:
    """Maximal runs of non-blank lines, each joined with single spaces (undoes hard wrapping)."""
    out, cur = [], []
    for line in lines:
        if line.strip():
            cur.append(line.strip())
        elif cur:
            out.append(" ".join(cur))
            cur = []
    if cur:
        out.append(" ".join(cur))
    return out


def words_of(lines: list[str]) -> list[str]:
    """Word tokens with :data:`EOS` after every paragraph."""
    out: list[str] = []
    for p in paragraphs(lines):
        out.extend(tokenize_words(p))
        out.append(EOS)
    return out


def austen_corpus(level: str = "word", titles=None, books=None, **load_kw) -> dict:
    """The split corpus: ``level="word"`` gives token lists (see :func:`words_of`),
    ``level="char"`` gives each split's text as one string (lines joined by ``"\\n"``)."""
    splits = austen_splits(books=books, titles=titles, **load_kw)
    if level == "word":
        return {s: words_of(lines) for s, lines in splits.items()}
    if level == "char":
        return {s: "\n".join(lines) for s, lines in splits.items()}
    raise ValueError(f"level must be 'word' or 'char', got {level!r}")


def build_vocab(tokens, max_size: int | None = None, min_count: int = 1, specials=(UNK, EOS)) -> dict[str, int]:
    """Token -> id: specials first, then by descending count, ties by token, so it is reproducible."""
    counts = Counter(tokens)
    vocab = {s: i for i, s in enumerate(specials)}
    ranked = sorted((t for t, c in counts.items() if c >= min_count and t not in vocab), key=lambda t: (-counts[t], t))
    for t in ranked:
        if max_size is not None and len(vocab) >= max_size:
            break
        vocab[t] = len(vocab)
    return vocab


def encode(tokens, vocab: dict[str, int]) -> list[int]:
    unk = vocab[UNK]
    return [vocab.get(t, unk) for t in tokens]


def verify() -> tuple[str, str]:
    """``(status, detail)`` for ``python -m termshift.data verify``."""
    try:
        books = load_austen()
    except DatasetMissingError as e:
        return "missing", str(e)
    except (IntegrityError, RFormatError) as e:
        return "corrupt", str(e)
    words = sum(len(line.split()) for lines in books.values() for line in lines)
    return "ok", f"{len(books)} novels, {words} words ({find_austen_dir()})"
