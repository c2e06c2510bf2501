"""A pure-Python reader for the part of R's serialization format that R data packages use.

Owns decoding R's XDR serialization (``X\\n``, versions 2 and 3: what
``saveRDS`` and R's lazy-load databases write) into plain Python objects, and
reading lazy-load databases (``.rdx`` index + ``.rdb`` blobs), which is how an
installed R package such as janeaustenr stores its data. No R is needed.

Supported: NULL, character vectors (CHARSXP in UTF-8, latin1, bytes, ASCII or
the writer's native encoding, NA), logical/integer/double/complex/raw vectors,
lists and expression vectors, pairlists and language objects with
attributes and tags, symbols and the reference table, environments, the
special environments, persistent references (how lazy-load databases point at
each other), and the ALTREP classes R itself writes for plain data
(compact sequences and wrappers). Anything else (closures, bytecode, S4,
external pointers) raises :class:`UnsupportedRObjectError` naming the type:
the goal is data, not R code.

Mapping: vectors become :class:`RVector` (a ``list`` with ``.rtype`` and
``.attributes``), NA becomes ``None`` (NA_real_ stays a float NaN), pairlists
become :class:`RPairList` of ``(tag, value)``, attributes a ``dict`` keyed by
tag name.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import IntegrityError

# SEXP type codes (R's Rinternals.h) and the pseudo-types of serialize.c.
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
CHARSXP, LGLSXP, INTSXP, REALSXP, CPLXSXP, STRSXP = 9, 10, 13, 14, 15, 16
VECSXP, EXPRSXP, BCODESXP, RAWSXP, S4SXP = 19, 20, 21, 24, 25
ALTREP_SXP, EMPTYENV_SXP, BASEENV_SXP = 238, 242, 241
PERSISTSXP, PACKAGESXP, NAMESPACESXP, BASENAMESPACE_SXP = 247, 248, 249, 250
MISSINGARG_SXP, UNBOUNDVALUE_SXP, GLOBALENV_SXP, NILVALUE_SXP, REFSXP = 251, 252, 253, 254, 255

_TYPE_NAMES = {
    0: "NILSXP", 1: "SYMSXP", 2: "LISTSXP", 3: "CLOSXP", 4: "ENVSXP", 5: "PROMSXP",
    6: "LANGSXP", 7: "SPECIALSXP", 8: "BUILTINSXP", 9: "CHARSXP", 10: "LGLSXP",
    13: "INTSXP", 14: "REALSXP", 15: "CPLXSXP", 16: "STRSXP", 17: "DOTSXP",
    18: "ANYSXP", 19: "VECSXP", 20: "EXPRSXP", 21: "BCODESXP", 22: "EXTPTRSXP",
    23: "WEAKREFSXP", 24: "RAWSXP", 25: "S4SXP", 238: "ALTREP_SXP",
    239: "ATTRLISTSXP", 240: "ATTRLANGSXP", 241: "BASEENV_SXP", 242: "EMPTYENV_SXP",
    243: "BCREPREF", 244: "BCREPDEF", 245: "GENERICREFSXP", 246: "CLASSREFSXP",
    247: "PERSISTSXP", 248: "PACKAGESXP", 249: "NAMESPACESXP", 250: "BASENAMESPACE_SXP",
    251: "MISSINGARG_SXP", 252: "UNBOUNDVALUE_SXP", 253: "GLOBALENV_SXP",
    254: "NILVALUE_SXP", 255: "REFSXP",
}

# Flag word layout (serialize.c PackFlags): type in bits 0-7, then
# is-object, has-attributes, has-tag, and the gp "levels" from bit 12.
_IS_OBJECT, _HAS_ATTR, _HAS_TAG = 1 << 8, 1 << 9, 1 << 10
# CHARSXP encoding bits within the levels.
_BYTES_MASK, _LATIN1_MASK, _UTF8_MASK, _ASCII_MASK = 1 << 1, 1 << 2, 1 << 3, 1 << 6

NA_INTEGER = -(2**31)

# Lists and pairlists nest by recursion, a few Python frames per level; a
# stream nesting deeper than this (real R data stays far below) must fail as
# malformed data, not as a RecursionError.
MAX_DEPTH = 100
# ALTREP compact sequences store only (n, start, step); expanding a forged n
# must not exhaust memory.
MAX_COMPACT_SEQ = 10**7


class RFormatError(IntegrityError):
    """The bytes are not a well-formed R serialization (truncated, bad header, bad reference)."""


class UnsupportedRObjectError(ValueError):
    """A well-formed stream holds an object type this reader deliberately does not decode."""


@dataclass(frozen=True)
class RSymbol:
    name: str


class RVector(list):
    """An R atomic vector or list: the elements plus R's type name and attributes."""

    def __init__(self, items=(), rtype: str = "list", attributes: dict | None = None):
        super().__init__(items)
        self.rtype = rtype
        self.attributes = attributes or {}

    @property
    def names(self) -> list | None:
        n = self.attributes.get("names")
        return list(n) if n is not None else None

    def to_dict(self) -> dict:
        """Elements keyed by their ``names`` attribute."""
        names = self.names
        if names is None or len(names) != len(self):
            raise KeyError("vector has no names attribute of matching length")
        return dict(zip(names, self, strict=True))

    def __repr__(self) -> str:
        return f"RVector({self.rtype}, {list.__repr__(self)}, attributes={self.attributes!r})"


class RPairList(list):
    """An R pairlist (or language object): ``(tag or None, value)`` pairs.

    ``tail`` is the final CDR when it is not NULL (a "dotted" pair, which R's
    own ALTREP states use).
    """

    def __init__(self, items=(), rtype: str = "pairlist", attributes: dict | None = None, tail: Any = None):
        super().__init__(items)
        self.rtype = rtype
        self.attributes = attributes or {}
        self.tail = tail

    def to_dict(self) -> dict:
        return {tag: value for tag, value in self}


@dataclass
class REnvironment:
    locked: bool = False
    enclos: Any = None
    frame: Any = None
    hashtab: Any = None
    attributes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RSpecial:
    """A singleton R writes by name: ``R_GlobalEnv``, ``R_EmptyEnv``, ``R_MissingArg``..."""

    name: str


@dataclass(frozen=True)
class RPersistentRef:
    """A PERSISTSXP: a name the writer's hook gave for an object stored elsewhere
    (in lazy-load databases, the key of an environment in the same .rdb)."""

    names: tuple


@dataclass(frozen=True)
class RNamespace:
    kind: str  # "namespace" or "package"
    spec: tuple


@dataclass
class RHeader:
    format: str
    version: int
    writer_version: str
    min_reader_version: str
    native_encoding: str | None


def _version_string(v: int) -> str:
    return f"{v // 65536}.{(v // 256) % 256}.{v % 256}"


class _Reader:
    def __init__(self, data: bytes | bytearray | memoryview, name: str):
        self.buf = memoryview(data)
        self.pos = 0
        self.name = name
        self.refs: list = []
        self.native_encoding = "utf-8"
        self.depth = 0

    # -- primitives --------------------------------------------------------
    def _fail(self, what: str) -> RFormatError:
        return RFormatError(f"{self.name}: {what} at byte {self.pos} of {len(self.buf)}")

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise self._fail(f"truncated R serialization (wanted {n} more bytes)")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        if self.pos + 4 > len(self.buf):
            raise self._fail("truncated R serialization (wanted a 4-byte integer)")
        (v,) = struct.unpack_from(">i", self.buf, self.pos)
        self.pos += 4
        return v

    def length(self) -> int:
        n = self.int()
        if n == -1:  # long vector: two more ints, high word first
            hi, lo = self.int(), self.int()
            n = (hi << 32) + (lo & 0xFFFFFFFF)
        if n < 0:
            raise self._fail(f"negative vector length {n}")
        # Every element takes at least one byte, which bounds n cheaply before allocating.
        if n > len(self.buf) - self.pos:
            raise self._fail(f"vector length {n} exceeds the remaining data")
        return n

    # -- header ------------------------------------------------------------
    def header(self) -> RHeader:
        fmt = bytes(self.take(2))
        if fmt != b"X\n":
            kinds = {b"A\n": "ASCII", b"B\n": "native binary", b"\n\n": "legacy ASCII"}
            if fmt in kinds:
                raise UnsupportedRObjectError(
                    f"{self.name}: {kinds[fmt]} R serialization; only XDR ('X\\n', R's default) is supported"
                )
            raise self._fail(f"not an R serialization (starts with {fmt!r}, expected b'X\\n')")
        version, writer, min_reader = self.int(), self.int(), self.int()
        native = None
        if version == 3:
            n = self.int()
            if not 0 <= n <= 255:
                raise self._fail(f"bad native-encoding length {n}")
            native = bytes(self.take(n)).decode("ascii", "replace")
            try:
                self.native_encoding = codecs.lookup(native).name
            except LookupError:
                pass  # R writes names iconv knows; fall back to UTF-8 for ones Python doesn't
        elif version != 2:
            raise UnsupportedRObjectError(f"{self.name}: R serialization version {version}; supported: 2 and 3")
        return RHeader("xdr", version, _version_string(writer), _version_string(min_reader), native)

    # -- items -------------------------------------------------------------
    def item(self) -> Any:
        return self._item(self.int())

    def _ref(self, flags: int) -> Any:
        idx = flags >> 8
        if idx == 0:
            idx = self.int()
        if not 1 <= idx <= len(self.refs):
            raise self._fail(f"reference {idx} outside the table of {len(self.refs)}")
        return self.refs[idx - 1]

    def _attributes(self) -> dict:
        attrs = self.item()
        if attrs is None:
            return {}
        if not isinstance(attrs, RPairList):
            raise self._fail("attributes are not a pairlist")
        return {_tag_name(tag): value for tag, value in attrs}

    def _item(self, flags: int) -> Any:
        t = flags & 0xFF
        if t == NILVALUE_SXP:
            return None
        if t == REFSXP:
            return self._ref(flags)
        if t in _SPECIALS:
            return _SPECIALS[t]
        if t == CHARSXP:
            return self._charsxp(flags)
        if t == SYMSXP:
            name = self.item()
            if not isinstance(name, str):
                raise self._fail("symbol name is not a string")
            sym = RSymbol(name)
            self.refs.append(sym)
            return sym
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._fail(f"objects nested deeper than {MAX_DEPTH}")
        try:
            if t in (LISTSXP, LANGSXP):
                return self._pairlist(flags)
            return self._compound(flags, t)
        finally:
            self.depth -= 1

    def _compound(self, flags: int, t: int) -> Any:
        if t in _VECTOR_READERS:
            items = _VECTOR_READERS[t](self, self.length())
            attrs = self._attributes() if flags & _HAS_ATTR else {}
            return RVector(items, _RTYPE[t], attrs)
        if t in (VECSXP, EXPRSXP):
            n = self.length()
            items = [self.item() for _ in range(n)]
            attrs = self._attributes() if flags & _HAS_ATTR else {}
            return RVector(items, "list" if t == VECSXP else "expression", attrs)
        if t == ENVSXP:
            env = REnvironment(locked=bool(self.int()))
            self.refs.append(env)  # before the contents: they may refer back to it
            env.enclos, env.frame, env.hashtab = self.item(), self.item(), self.item()
            env.attributes = self._attributes()
            return env
        if t == PERSISTSXP:
            ref = RPersistentRef(tuple(self._string_vec()))
            self.refs.append(ref)
            return ref
        if t in (NAMESPACESXP, PACKAGESXP):
            ns = RNamespace("namespace" if t == NAMESPACESXP else "package", tuple(self._string_vec()))
            self.refs.append(ns)
            return ns
        if t == ALTREP_SXP:
            return self._altrep()
        raise UnsupportedRObjectError(
            f"{self.name}: R object of type {_TYPE_NAMES.get(t, t)} (code {t}) at byte {self.pos - 4}; "
            "this reader decodes data (vectors, lists, pairlists, environments), not R code"
        )

    def _charsxp(self, flags: int) -> str | bytes | None:
        n = self.int()
        if n == -1:
            return None  # NA_character_
        if n < 0:
            raise self._fail(f"negative string length {n}")
        raw = bytes(self.take(n))
        levels = flags >> 12
        try:
            if levels & _UTF8_MASK:
                return raw.decode("utf-8")
            if levels & _LATIN1_MASK:
                return raw.decode("latin-1")
            if levels & _BYTES_MASK:
                return raw
            if levels & _ASCII_MASK:
                return raw.decode("ascii")
        except UnicodeDecodeError as e:
            raise self._fail(f"string not valid in its declared encoding ({e.reason})") from e
        # Unflagged strings are in the writer's native encoding (known for v3 streams).
        try:
            return raw.decode(self.native_encoding)
        except UnicodeDecodeError:
            return raw.decode("latin-1")

    def _pairlist(self, flags: int) -> RPairList:
        # Iterative over the CDR chain: long pairlists must not recurse per element.
        out = RPairList(rtype="language" if flags & 0xFF == LANGSXP else "pairlist")
        first = True
        while True:
            attrs = self._attributes() if flags & _HAS_ATTR else {}
            if first:
                out.attributes = attrs
                first = False
            tag = self.item() if flags & _HAS_TAG else None
            out.append((_tag_name(tag) if tag is not None else None, self.item()))
            flags = self.int()
            t = flags & 0xFF
            if t not in (LISTSXP, LANGSXP):
                out.tail = self._item(flags)
                return out

    def _string_vec(self) -> list:
        if self.int() != 0:
            raise self._fail("named persistent-string vector")
        return [self.item() for _ in range(self.length())]

    def _altrep(self) -> RVector:
        info = self.item()
        state = self.item()
        attr = self.item()
        attrs = {_tag_name(t): v for t, v in attr} if isinstance(attr, RPairList) else {}
        cls = info[0][1].name if isinstance(info, RPairList) and info and isinstance(info[0][1], RSymbol) else None
        if cls in ("compact_intseq", "compact_realseq") and isinstance(state, RVector) and len(state) == 3:
            try:
                n, start, step = int(state[0]), float(state[1]), float(state[2])
            except (TypeError, ValueError, OverflowError):
                raise self._fail(f"compact sequence state {list(state)!r} is not (n, start, step)") from None
            if not 0 <= n <= MAX_COMPACT_SEQ:
                raise UnsupportedRObjectError(f"{self.name}: compact sequence of length {n} (limit {MAX_COMPACT_SEQ})")
            conv = int if cls == "compact_intseq" else float
            items = [conv(start + i * step) for i in range(n)]
            return RVector(items, "integer" if cls == "compact_intseq" else "double", attrs)
        if cls and cls.startswith("wrap_") and isinstance(state, RVector) and len(state) >= 1:
            inner = state[0]
            merged = dict(getattr(inner, "attributes", {}))
            merged.update(attrs)
            return RVector(list(inner), getattr(inner, "rtype", "list"), merged)
        if cls == "deferred_string" and isinstance(state, RPairList) and state:
            # as.character() of an integer vector, not yet expanded. Integers
            # print exactly; doubles need R's number formatting, so they are refused.
            arg = state[0][1]
            if isinstance(arg, RVector) and arg.rtype == "integer":
                return RVector([None if v is None else str(v) for v in arg], "character", attrs)
        raise UnsupportedRObjectError(f"{self.name}: ALTREP class {cls!r} is not supported")


def _tag_name(tag: Any) -> str:
    if isinstance(tag, RSymbol):
        return tag.name
    if isinstance(tag, str):
        return tag
    raise RFormatError(f"pairlist tag is {type(tag).__name__}, expected a symbol")


def _read_lgl(r: _Reader, n: int) -> list:
    vals = struct.unpack_from(f">{n}i", r.take(4 * n))
    return [None if v == NA_INTEGER else bool(v) for v in vals]


def _read_int(r: _Reader, n: int) -> list:
    vals = struct.unpack_from(f">{n}i", r.take(4 * n))
    return [None if v == NA_INTEGER else v for v in vals]


def _read_real(r: _Reader, n: int) -> list:
    return list(struct.unpack_from(f">{n}d", r.take(8 * n)))


def _read_cplx(r: _Reader, n: int) -> list:
    v = struct.unpack_from(f">{2 * n}d", r.take(16 * n))
    return [complex(v[2 * i], v[2 * i + 1]) for i in range(n)]


def _read_raw(r: _Reader, n: int) -> list:
    return list(bytes(r.take(n)))


def _read_str(r: _Reader, n: int) -> list:
    out = []
    for _ in range(n):
        flags = r.int()
        if flags & 0xFF != CHARSXP:
            # R writes each element as a full item; anything but a CHARSXP is malformed.
            raise r._fail(f"character vector element of type {_TYPE_NAMES.get(flags & 0xFF, flags & 0xFF)}")
        out.append(r._charsxp(flags))
    return out


_VECTOR_READERS = {
    LGLSXP: _read_lgl, INTSXP: _read_int, REALSXP: _read_real,
    CPLXSXP: _read_cplx, RAWSXP: _read_raw, STRSXP: _read_str,
}
_RTYPE = {
    LGLSXP: "logical", INTSXP: "integer", REALSXP: "double",
    CPLXSXP: "complex", RAWSXP: "raw", STRSXP: "character",
}
_SPECIALS = {
    GLOBALENV_SXP: RSpecial("R_GlobalEnv"),
    EMPTYENV_SXP: RSpecial("R_EmptyEnv"),
    BASEENV_SXP: RSpecial("R_BaseEnv"),
    BASENAMESPACE_SXP: RSpecial("R_BaseNamespace"),
    UNBOUNDVALUE_SXP: RSpecial("R_UnboundValue"),
    MISSINGARG_SXP: RSpecial("R_MissingArg"),
}


def unserialize(data: bytes, name: str = "<R serialization>", with_header: bool = False):
    """Decode one uncompressed R serialization; trailing bytes are an error."""
    r = _Reader(data, name)
    header = r.header()
    obj = r.item()
    if r.pos != len(r.buf):
        raise r._fail(f"{len(r.buf) - r.pos} unexpected trailing bytes")
    return (obj, header) if with_header else obj


def decompress_rds(raw: bytes, name: str = "<rds>") -> bytes:
    """Undo ``saveRDS``'s file compression (gzip, bzip2 or xz, detected by magic)."""
    try:
        if raw[:2] == b"\x1f\x8b":
            return gzip.decompress(raw)
        if raw[:3] == b"BZh":
            return bz2.decompress(raw)
        if raw[:6] == b"\xfd7zXZ\x00":
            return lzma.decompress(raw)
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as e:
        raise RFormatError(f"{name}: corrupt or truncated compressed stream ({e})") from e
    return raw


def read_rds(path: str | os.PathLike):
    """Read an ``.rds`` file (``saveRDS`` output), compressed or not."""
    path = Path(path)
    return unserialize(decompress_rds(path.read_bytes(), str(path)), str(path))


# -- lazy-load databases ------------------------------------------------------

def _raw_lzma2(blob: bytes) -> bytes:
    # R's xz compression writes a raw LZMA2 stream (no .xz container), preset 9e.
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
    return lzma.decompress(blob, format=lzma.FORMAT_RAW, filters=filters)


def decompress_lazyload_blob(blob: bytes, method: int, name: str) -> bytes:
    """Undo R's R_compress1/2/3 framing of one .rdb entry (0 = stored as is)."""
    if method == 0:
        return blob
    if len(blob) < 4:
        raise RFormatError(f"{name}: compressed entry of {len(blob)} bytes has no length header")
    (expected,) = struct.unpack_from(">I", blob)
    try:
        if method == 1:
            out = zlib.decompress(blob[4:])
        else:
            kind, body = blob[4:5], blob[5:]
            if kind == b"0":
                out = body
            elif kind == b"1":
                out = zlib.decompress(body)
            elif kind == b"2":
                out = bz2.decompress(body)
            elif kind == b"Z" and method == 3:
                out = _raw_lzma2(body)
            else:
                raise RFormatError(f"{name}: unknown compression type {kind!r} for method {method}")
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as e:
        if isinstance(e, RFormatError):
            raise
        raise RFormatError(f"{name}: corrupt compressed entry ({e})") from e
    if len(out) != expected:
        raise RFormatError(f"{name}: entry decompresses to {len(out)} bytes, its header says {expected}")
    return out


class LazyLoadDB:
    """An R lazy-load database: ``<base>.rdx`` (index) + ``<base>.rdb`` (entries).

    The index is an .rds of ``list(variables=, references=, compressed=)``;
    each variable maps to ``c(offset, length)`` of one compressed
    serialization in the .rdb.
    """

    def __init__(self, base: str | os.PathLike):
        base = Path(base)
        if base.suffix in (".rdb", ".rdx"):
            base = base.with_suffix("")
        self.rdb = base.with_suffix(".rdb")
        self.rdx = base.with_suffix(".rdx")
        for p in (self.rdx, self.rdb):
            if not p.is_file():
                raise FileNotFoundError(f"lazy-load database file {p} does not exist")
        index = read_rds(self.rdx)
        if not isinstance(index, RVector) or index.names is None:
            raise RFormatError(f"{self.rdx}: index is not a named list")
        idx = index.to_dict()
        try:
            self._variables = self._offsets(idx["variables"], "variables")
            self._references = self._offsets(idx.get("references"), "references")
        except KeyError as e:
            raise RFormatError(f"{self.rdx}: index has no {e} entry") from e
        comp = idx.get("compressed")
        c = comp[0] if isinstance(comp, RVector) and len(comp) == 1 else comp
        if c is True:
            c = 1
        if c is False or c is None:
            c = 0
        if c not in (0, 1, 2, 3):
            raise RFormatError(f"{self.rdx}: unknown compression {comp!r}")
        self.compression = int(c)
        self._size = self.rdb.stat().st_size

    def _offsets(self, entries, what: str) -> dict[str, tuple[int, int]]:
        if entries is None:
            return {}
        if not isinstance(entries, RVector):
            raise RFormatError(f"{self.rdx}: {what} is not a list")
        if not entries:
            return {}
        out = {}
        for key, pos in entries.to_dict().items():
            if not isinstance(pos, RVector) or len(pos) != 2 or any(v is None for v in pos):
                raise RFormatError(f"{self.rdx}: {what}[{key!r}] is not c(offset, length)")
            out[key] = (int(pos[0]), int(pos[1]))
        return out

    def names(self) -> list[str]:
        return list(self._variables)

    def _entry(self, key: str, where: dict) -> Any:
        off, n = where[key]
        if off < 0 or n < 0 or off + n > self._size:
            raise RFormatError(f"{self.rdb}: entry {key!r} at {off}+{n} lies outside the {self._size}-byte file")
        with open(self.rdb, "rb") as f:
            f.seek(off)
            blob = f.read(n)
        label = f"{self.rdb}[{key}]"
        return unserialize(decompress_lazyload_blob(blob, self.compression, label), label)

    def fetch(self, name: str) -> Any:
        if name not in self._variables:
            raise KeyError(f"{name!r} is not in {self.rdx} (has: {', '.join(self._variables)})")
        return self._entry(name, self._variables)

    def fetch_reference(self, key: str) -> Any:
        """An environment stored under ``key`` (the target of an :class:`RPersistentRef`)."""
        return self._entry(key, self._references)

    def load_all(self) -> dict[str, Any]:
        return {k: self.fetch(k) for k in self._variables}
