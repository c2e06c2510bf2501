"""BERT WordPiece tokenization in pure Python (uncased, as all-MiniLM-L6-v2 uses it).

Owns turning text into the token ids the MiniLM encoder takes, from the
model's own ``vocab.txt``, with no dependency beyond the standard library so
the board side can tokenize too. It reproduces what the ``tokenizers``
package does with the model's ``tokenizer.json`` (BertNormalizer with
lowercase and accent stripping, BertPreTokenizer, WordPiece with ``##``
continuations and at most 100 characters per word, then ``[CLS] ... [SEP]``);
tests/test_minilm.py checks the ids against that package when it is installed.

Normalization order follows ``tokenizers`` (clean, pad CJK characters, NFD and
drop non-spacing marks, lowercase), which differs from the original Python
BERT (lowercase first) only for characters whose lowercase form decomposes.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLS, SEP, PAD, UNK = "[CLS]", "[SEP]", "[PAD]", "[UNK]"
MAX_CHARS_PER_WORD = 100
CONTINUATION = "##"


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    # Tab and newlines are whitespace to BERT, not control characters to drop.
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    # BERT counts every ASCII non-alphanumeric printable ($, +, <, ^, `, |, ...)
    # as punctuation, although Unicode puts some of them in S* categories.
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def normalize(text: str) -> str:
    """BertNormalizer(clean_text, handle_chinese_chars, strip_accents, lowercase)."""
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_whitespace(ch):
            out.append(" ")
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    text = unicodedata.normalize("NFD", "".join(out))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return text.lower()


def pre_tokenize(text: str) -> list[str]:
    """Split on whitespace (dropped) and around every punctuation character (kept alone)."""
    words, cur = [], []
    for ch in text:
        if _is_whitespace(ch):
            if cur:
                words.append("".join(cur))
                cur = []
        elif _is_punctuation(ch):
            if cur:
                words.append("".join(cur))
                cur = []
            words.append(ch)
        else:
            cur.append(ch)
    if cur:
        words.append("".join(cur))
    return words


def load_vocab(path: str | os.PathLike) -> dict[str, int]:
    """``vocab.txt``: one token per line, the id is the line number."""
    with open(path, encoding="utf-8") as f:
        tokens = [line.rstrip("\n") for line in f]
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)  # a duplicate line keeps its first id, as tokenizers does
    for special in (CLS, SEP, PAD, UNK):
        if special not in vocab:
            raise ValueError(f"{path}: vocabulary has no {special} token")
    return vocab


@dataclass
class Batch:
    """Token ids of several texts, right-padded to the longest."""

    ids: np.ndarray  # (B, L) int64
    mask: np.ndarray  # (B, L) bool, True on real tokens
    lengths: np.ndarray  # (B,) int64, tokens per text including [CLS] and [SEP]

    @property
    def type_ids(self) -> np.ndarray:
        return np.zeros_like(self.ids)


class WordPieceTokenizer:
    """Uncased BERT tokenizer over a vocabulary; ``max_length`` counts [CLS] and [SEP]."""

    def __init__(self, vocab: dict[str, int], max_length: int = 256):
        if max_length < 2:
            raise ValueError(f"max_length must leave room for [CLS] and [SEP], got {max_length}")
        self.vocab = vocab
        self.max_length = max_length
        self.cls_id, self.sep_id = vocab[CLS], vocab[SEP]
        self.pad_id, self.unk_id = vocab[PAD], vocab[UNK]
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_file(cls, path: str | os.PathLike, max_length: int = 256) -> WordPieceTokenizer:
        return cls(load_vocab(Path(path)), max_length)

    def word_ids(self, word: str) -> list[int]:
        """Greedy longest-match-first WordPiece; a word with any unmatched rest is one [UNK]."""
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        if len(word) > MAX_CHARS_PER_WORD:
            ids = [self.unk_id]
        else:
            ids, start = [], 0
            while start < len(word):
                end = len(word)
                found = None
                while end > start:
                    piece = word[start:end] if start == 0 else CONTINUATION + word[start:end]
                    found = self.vocab.get(piece)
                    if found is not None:
                        break
                    end -= 1
                if found is None:
                    ids = [self.unk_id]
                    break
                ids.append(found)
                start = end
        self._cache[word] = ids
        return ids

    def tokenize_ids(self, text: str) -> list[int]:
        """Word-piece ids of ``text`` without special tokens and without truncation."""
        out: list[int] = []
        for word in pre_tokenize(normalize(text)):
            out.extend(self.word_ids(word))
        return out

    def encode(self, text: str) -> list[int]:
        """``[CLS] pieces [SEP]``, pieces truncated so the whole fits ``max_length``."""
        return [self.cls_id] + self.tokenize_ids(text)[: self.max_length - 2] + [self.sep_id]

    def tokens(self, text: str) -> list[str]:
        inv = {i: t for t, i in self.vocab.items()}
        return [inv[i] for i in self.encode(text)]

    def batch(self, texts) -> Batch:
        seqs = [self.encode(t) for t in texts]
        if not seqs:
            raise ValueError("no texts to tokenize")
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        ids = np.full((len(seqs), int(lengths.max())), self.pad_id, dtype=np.int64)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = s
        mask = np.arange(ids.shape[1])[None, :] < lengths[:, None]
        return Batch(ids, mask, lengths)
