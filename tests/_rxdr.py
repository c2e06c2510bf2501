"""Test fixture: an R XDR serializer written from R's format (serialize.c WriteItem), for
building .rds files and lazy-load databases the reader in termshift.data.rdata must read.

It is independent of the reader's decoding: it only shares the reader's
container types (RVector, RPairList, RSymbol) as convenient inputs. Golden
bytes produced by real R (in test_data_rdata.py) keep both honest.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from termshift.data.rdata import REnvironment, RPairList, RSymbol, RVector

# SEXP codes, spelled out here rather than imported so the fixture states the format itself.
SYM, LIST, ENV, LANG, CHAR, LGL, INT, REAL, CPLX, STR, VEC, EXPR, RAW = 1, 2, 4, 6, 9, 10, 13, 14, 15, 16, 19, 20, 24
GLOBALENV, NILVALUE, REF = 253, 254, 255
IS_OBJ, HAS_ATTR, HAS_TAG = 1 << 8, 1 << 9, 1 << 10
BYTES, LATIN1, UTF8, ASCII = 2, 4, 8, 64
NA_INT = -(2**31)


@dataclass(frozen=True)
class Chars:
    """A CHARSXP with an explicit encoding: 'utf8', 'latin1', 'bytes', 'ascii' or 'native' (no flag)."""

    value: str | bytes
    enc: str


class XDRWriter:
    def __init__(self, version: int = 3, native: str = "UTF-8", long_lengths: bool = False):
        self.out = bytearray()
        self.refs: dict = {}
        self.long_lengths = long_lengths
        self.out += b"X\n"
        # writer 4.2.2, minimal reader 3.5.0 (v3) / 2.3.0 (v2), as R 4.2 writes.
        self.i(version)
        self.i(0x040202)
        self.i(0x030500 if version == 3 else 0x020300)
        if version == 3:
            enc = native.encode()
            self.i(len(enc))
            self.out += enc

    def i(self, v: int) -> None:
        self.out += struct.pack(">i", v)

    def length(self, n: int) -> None:
        if self.long_lengths:
            self.i(-1)
            self.i(n >> 32)
            self.i(n & 0xFFFFFFFF)
        else:
            self.i(n)

    def flags(self, t: int, attrs: dict | None = None, tag: bool = False, levels: int = 0) -> None:
        f = t | (levels << 12)
        if attrs:
            f |= HAS_ATTR
            if "class" in attrs:
                f |= IS_OBJ
        if tag:
            f |= HAS_TAG
        self.i(f)

    def chars(self, s) -> None:
        if s is None:
            self.i(CHAR)
            self.i(-1)
            return
        if isinstance(s, bytes):
            s = Chars(s, "bytes")
        if isinstance(s, str):
            s = Chars(s, "ascii" if s.isascii() else "utf8")
        enc = {"utf8": ("utf-8", UTF8), "latin1": ("latin-1", LATIN1), "ascii": ("ascii", ASCII),
               "native": ("utf-8", 0), "bytes": (None, BYTES)}[s.enc]
        raw = s.value if isinstance(s.value, bytes) else s.value.encode(enc[0])
        self.i(CHAR | (enc[1] << 12))
        self.i(len(raw))
        self.out += raw

    def symbol(self, name: str) -> None:
        key = ("sym", name)
        if key in self.refs:
            self.i(REF | (self.refs[key] << 8))
            return
        self.i(SYM)
        self.chars(name)
        self.refs[key] = len(self.refs) + 1

    def attributes(self, attrs: dict) -> None:
        self.pairlist(RPairList(list(attrs.items())))

    def pairlist(self, pl: RPairList) -> None:
        if not pl:
            self.i(NILVALUE)
            return
        t = LANG if pl.rtype == "language" else LIST
        for n, (tag, value) in enumerate(pl):
            attrs = pl.attributes if n == 0 else None
            self.flags(t if n == 0 else LIST, attrs, tag=tag is not None)
            if attrs:
                self.attributes(attrs)
            if tag is not None:
                self.symbol(tag)
            self.write(value)
        if getattr(pl, "tail", None) is not None:
            self.write(pl.tail)
        else:
            self.i(NILVALUE)

    def write(self, obj) -> None:
        if obj is None:
            self.i(NILVALUE)
        elif isinstance(obj, RSymbol):
            self.symbol(obj.name)
        elif isinstance(obj, RPairList):
            self.pairlist(obj)
        elif isinstance(obj, REnvironment):
            key = ("env", id(obj))
            if key in self.refs:
                self.i(REF | (self.refs[key] << 8))
                return
            self.i(ENV)
            self.refs[key] = len(self.refs) + 1
            self.i(int(obj.locked))
            self.write(obj.enclos if obj.enclos is not None else _GLOBAL)
            self.write(obj.frame)
            self.write(obj.hashtab)
            self.write(RPairList(list(obj.attributes.items())) if obj.attributes else None)
        elif obj is _GLOBAL:
            self.i(GLOBALENV)
        elif isinstance(obj, RVector):
            self.vector(obj)
        else:
            raise TypeError(f"fixture writer cannot serialize {type(obj).__name__}")

    def vector(self, v: RVector) -> None:
        t = {"character": STR, "integer": INT, "logical": LGL, "double": REAL, "complex": CPLX,
             "raw": RAW, "list": VEC, "expression": EXPR}[v.rtype]
        self.flags(t, v.attributes)
        self.length(len(v))
        if t == STR:
            for s in v:
                self.chars(s)
        elif t in (INT, LGL):
            for x in v:
                self.i(NA_INT if x is None else int(x))
        elif t == REAL:
            self.out += struct.pack(f">{len(v)}d", *v)
        elif t == CPLX:
            for z in v:
                self.out += struct.pack(">dd", z.real, z.imag)
        elif t == RAW:
            self.out += bytes(v)
        else:
            for x in v:
                self.write(x)
        if v.attributes:
            self.attributes(v.attributes)


_GLOBAL = object()


def serialize(obj, version: int = 3, **kw) -> bytes:
    w = XDRWriter(version, **kw)
    w.write(obj)
    return bytes(w.out)


def strs(*items, **attrs) -> RVector:
    return RVector(list(items), "character", attrs)


def ints(*items, **attrs) -> RVector:
    return RVector(list(items), "integer", attrs)


def named_list(d: dict) -> RVector:
    return RVector(list(d.values()), "list", {"names": strs(*d.keys())})


def compress_entry(payload: bytes, method: int, kind: bytes | None = None) -> bytes:
    """One .rdb entry as R frames it: method 1 = length + zlib; 2/3 = length + type byte + body."""
    if method == 0:
        return payload
    head = struct.pack(">I", len(payload))
    if method == 1:
        return head + zlib.compress(payload)
    kind = kind or (b"2" if method == 2 else b"Z")
    if kind == b"2":
        body = bz2.compress(payload)
    elif kind == b"Z":
        body = lzma.compress(payload, format=lzma.FORMAT_RAW,
                             filters=[{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}])
    elif kind == b"1":
        body = zlib.compress(payload)
    else:
        body = payload
    return head + kind + body


def write_lazyload(base: Path, objects: dict, method: int = 1, version: int = 3,
                   compressed_as_logical: bool = True) -> Path:
    """Write ``<base>.rdb`` + ``<base>.rdx`` the way R's makeLazyLoadDB does."""
    base = Path(base)
    rdb = bytearray()
    offsets = {}
    for name, obj in objects.items():
        entry = compress_entry(serialize(obj, version), method)
        offsets[name] = ints(len(rdb), len(entry))
        rdb += entry
    if method in (0, 1) and compressed_as_logical:
        comp = RVector([bool(method)], "logical")
    else:
        comp = ints(method)
    index = named_list({
        "variables": named_list(offsets),
        "references": RVector([], "list", {"names": strs()}),
        "compressed": comp,
    })
    base.with_suffix(".rdb").write_bytes(bytes(rdb))
    base.with_suffix(".rdx").write_bytes(gzip.compress(serialize(index, version)))
    return base
