"""The R serialization reader: round trips through the hand-written XDR writer in
tests/_rxdr.py, golden bytes written by real R 4.2.2, and malformed input."""

import base64
import gzip
import importlib.util
import math
import struct
import sys
import zlib
from pathlib import Path

import pytest

from termshift.data import IntegrityError
from termshift.data.rdata import (
    LazyLoadDB, REnvironment, RFormatError, RPairList, RPersistentRef, RSpecial, RSymbol, RVector,
    UnsupportedRObjectError, decompress_lazyload_blob, read_rds, unserialize,
)


def _load_fixture_module():
    # Loaded by path so it works under any pytest import mode and without a conftest.
    name = "_termshift_test_rxdr"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("_rxdr.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


rx = _load_fixture_module()

# Written by R 4.2.2 (Debian bookworm r-base-core) with this script, then zlib +
# base64 here. R is not needed to run the tests.
#
#   e2 <- new.env(); assign("self", e2, envir = e2)
#   x <- list(
#     s = c("plain", NA, enc2utf8("caf\u00e9 \u2014 \u00a3"), iconv("na\u00efve", "UTF-8", "latin1"), ""),
#     b = `Encoding<-`("\xff\xfe", "bytes"), i = c(1L, NA, -2147483647L), l = c(TRUE, FALSE, NA),
#     d = c(1.5, NA, -Inf, 1e300), z = complex(real = 1, imaginary = -2), r = as.raw(c(0, 127, 255)),
#     seq = 1:10, f = factor(c("b", "a", "b")), df = data.frame(a = 1:3, b = c("x", "y", "z")),
#     pl = as.pairlist(list(alpha = 1L, beta = "two")), nested = list(list(list("deep"))),
#     env = e2, call = quote(a + a), dstr = as.character(4:6))
#   for (v in 2:3) { con <- file(sprintf("golden_v%d.bin", v), "wb"); serialize(x, con, version = v); close(con) }
#   e <- new.env()
#   assign("book", c("CHAPTER I", "It is a truth universally acknowledged", "", rep("spam and eggs", 60)), envir = e)
#   assign("other", list(k = 1:3), envir = e)
#   for (cmp in 1:3) tools:::makeLazyLoadDB(e, sprintf("lazy%d", cmp), compress = cmp)
#   tools:::makeLazyLoadDB(e, "lazy0", compress = FALSE)
#   saveRDS(c("a", "b"), "xz.rds", compress = "xz"); saveRDS(c("a", "b"), "bz.rds", compress = "bzip2")
R_GOLDEN = {
    "bz.rds": (
        "eNoBTQCy/0JaaDkxQVkmU1lyMf8NAAAX/wB+MEAAAAIAQAEABkAwACAAMUNNMAA01NBpo0yYOQzK5CDQnauClzYo"
        "FKSYj0+qh8XckU4UJByMf8NAX2MaAw=="
    ),
    "golden_v2.bin": (
        "eNqdUr1OwzAQvjhpoRGFSl1YkLojdeJnQSqPweomjqhk0pKEFhhoRh6AkQkm3gLBmyB2OrKUYMd3aRIGBCed/fl8"
        "993ZdycuADBwGANma9hVy5bSjtIGONDS+0TyUahAK1MCkGrjhseD16feW3rXe3kEOM4dQ/4xFRgFyGIB9PSZZV9q"
        "bSvViaxULWl+Cy7ZwNi0bCp1Bp/mMF/ode0hW5jzzeH70S1c3GOt1gDtz1DIds45zzCli/QMUzn58wCamlfpun6d"
        "8bOpRLaKcQw2D2tKMRUyxucxtFqcwLDm3/Akj+PiN5Ak4F4yjhRSv2J3MV279BNUaiffkfuSwBWB63q2kJ+JX4tj"
        "Wa0e1+cJ7weRCq4RtqLxrE+kukCmW6QGYWmKr2bncnLK0dEyWnFwhiLhtdx2MhsbLuhiWH0vuzu+EBPsoZZlKXYH"
        "8R+1WmIsZKDGIvsf1w9tlrit3WKwis7kBpeyVdq9R2CfwIEp1qb+bdFFvOowghEBScBfDQ2CiFoQi3OyBQiYX6AJ"
        "UTRDESeCeGwRTunTPC5l0aA4ySf7G5TgfOQ="
    ),
    "golden_v3.bin": (
        "eNqdU8FOGzEQnfVuAomARMqFC1IOvVXlCodK5MQXUKm3yNn10khms6yXUDhAjnwAR0701L9A8CeIc8uRC1ns9Uyy"
        "cVtQsWTP86znzRvv+GsTAHwIGAO/piHUvuztftoGYB29aenZNk4IoGFsKvkw0aBR6AEwMc6VkMd3P7v3k8vu7Q+A"
        "Xnkw4b/HAqMAWTyArtmzYqrX1TKx9k70Mim/QpN8YH1mrOkZ7DzZzfmjWZeui0e7P9t6+HwBR1eo1dtB/w3MxnrJ"
        "ea7Vwi+TvKS3wtbC0UHKw7w/THIlDp2vwYArgb5VFGXsFEX5vQ82AyUla8/4VCDDWG2DKn9dirGQCi+HodfjBAbO"
        "+VoouVKzu0SSWOsfZZiyg+mwUK+wlhWvlrH8WhllNp80fSdwQuDUVZnwA/FmUUHh1NGMeM4340wHO4SNbHS8SaRG"
        "ODONodvv2QpczM5l+o1XKvWcA8FA5NzJ7efHIyy2g2GurR4PIiFSY/GSniuxG4j/cy5KVELG5om9j+uPWa9wex+d"
        "Jve4daxQNveNtCIRiywTUV/l2TDZ/0dHtTH83d3Xa/+1+ygG5hdVo95pUQ1q3l0IhgQkgWjesAgy+v3m6aMvRsCi"
        "GUqJop4IlQvi8UUyph8WcilnzaGvyWh9ATaEo6Q="
    ),
    "lazy0.rdb": (
        "eNqL4GJgYGBmYGFiYmBmBTIZWEND3HQtgAwBILZnYGHgBNKczh6OASGuQQqeUAE1zxKFzGKFRIWSotKSDIXSvMyy"
        "1KLixJycSoXE5Oy8/PKc1JT01BSoagYozVtckJirkJiXopCanl48KjgqOCo4KjjMBCNwlahMwkAOIxC/A2ImMBui"
        "ny85P7cgMbkkPjOvpDi1EE2WJSmxOBUqxgs1AUT/A+kEWeXAAS5iGew/oNIQNSzIZrHmJeamFkMLd5ggYzZIJQAM"
        "/kvY"
    ),
    "lazy0.rdx": (
        "eNqT7+ZgAAPm7gdJCQkJaQmJSUkJaaxGkhHOzndKdCUkZrQcFBKYxdlRudDEw1egiT8tP51hFsMSSckICQtHrk9C"
        "xcHdjTyMG5Q6FLyD6urMfBzrPN2yBCd85M9iZj7Ccux/gC+PgCWb3oaVMz6dCWi2OC3UbSQ8uahhmyPLjq6gy0Hd"
        "QZ8nCSqd/LmT1XXl0aMrNRWcGY0nrXb6BHQSAHmZN3c="
    ),
    "lazy1.rdb": (
        "eNpjYGANqpjT/SApISEhLSExKSkhjdVIMsLZ+U6JbgMPo8K29ITEByyX5pyT62NUXOfINS+A0fS8UOuZpFaX1kmL"
        "Lk3iab2058ymK4seHZkzx6v1yJM3e/58mnNlypcrIiuy2DTORsdMmLF6wozpiybMmhdno2UBgWdYGFc9tLjFwMCw"
        "HZfdEhIzWhpl3BTq2I/4JJhxM6tPeOZ97ryuh49e5/kz2pp+ui6TUz29dPxauz46+TJc/O9g5RhmWWDQ0PiXPURq"
        "URvrTZ1re47cuZKk4MzgOcFQeokQw54Oof8A4PxlKA=="
    ),
    "lazy1.rdx": (
        "eNoBmwBk/x+LCAAAAAAAAANVTcsKAjEQSx972AVB8Du8+wV+gYLX7jqi6G5lKp78dnXaqaiFIWkyk+w6AA7eWrhG"
        "KJrtZr1cAXZRDEUrM6uY3+PnnzlDEgQNPNocMoWRkpB5WVLR9zGePwvxdiS5wrM2QBPMqx5BvdJidP58V4Pae+BT"
        "6C/SpkLHdCCmafgqQxyvTCnRPoe+AXAoQDbyAAAAQ0xCTQ=="
    ),
    "lazy2.rdb": (
        "eNoBVAGr/gAABVIyQlpoOTFBWSZTWUcmT5UAAU9/gH4yQABBAgBAq2BWQC7v36AwALhGNNBoAZNAZGmhiaMMaaDQ"
        "AyaAyNNDE0YIpKm9NSfqNTRhGGU9Q00ekzUnZIpEkVtivgiBS7ViovrpstVWEAKSkFsIrmhADlCK8M+XQFdIK/2H"
        "PPdwlftwL+V1/vh8YbaEdQVkCvpzxBWOmMwV775grMFd86fuVawArl2s8gV0V0KL2jLuCuNdRmldY8XckU4UJBHJ"
        "k+VAAAAAtzJCWmg5MUFZJlNZncPo5wAASf+B/nNIAAACAEDBAAZAuivsAAABQAEgAGoanqmTIGgAAA2oNNSADQBo"
        "ZA0NI2wWZnvkVP5DeUVVtWS6lGQW/twUMCA4hQVIWgHEgZAEAAkRqUgSIpoQHFBJtqoStc2uEPn2sewQ9wYj0R3I"
        "bUynJAZT+LuSKcKEhO4fRzjzD4kn"
    ),
    "lazy2.rdx": (
        "eNqT7+ZgAAPm7gdJCQkJaQmJSUkJaaxGkhHOzndKdCUkZrQcFBKYxdlRudCEQ8bpUfONyRINagyZbmxibH4TFCs7"
        "d6486tDGECHoMkFV095eepnCfhXlrRwnfrBvbWRMYnpcv0KNrUPmhphbh6/GpzMBzRanhbqNhCcXNWxzZNnRFXQ5"
        "qDvo8yRBpZM/d7K6rjx6dKWmgjPj4haJ05+AbgIAVz454g=="
    ),
    "lazy3.rdb": (
        "eNpjYGANinrAGshQEMugw1Qj+XP9F1nreTNM615d+KLou9k16MhBq/a4FSoWZy4uZtM25O24bjzHad3HZbu6BeYJ"
        "r9hyOmLj4ikcRYIaOablogXrrLxncqk6Zk6YbFqbmvV99TP1azMcZ0cVSys1+y+1UWzydJdSLO+71fE5fF3AoQoG"
        "ENge9YBhG0MKdst9fqT0ZP7LC9eV38HzNGN7Zt+S/mbfWC9p2+vqK882sJkn61nNfL3dg11k0cL7zB/dBZLd4uYK"
        "/7DaOs8o+jvLNT4R1qszlHr22dj/rNaxO73cg4EBANTSZRc="
    ),
    "lazy3.rdx": (
        "eNoBnABj/x+LCAAAAAAAAANVTssKwjAQnDx6aEEQ/A7vfoFfoOA1rSuKtrGJeOuvVzfZiBoIM5nZncmhAWBgtYap"
        "mKLa77brDaBX2RDUfBcF05l+3omP4ARGBYs6hQyup8hkmYdEtK3318+Af5wpMJlLAyRBvcoSxMstSn7y55sSVD9d"
        "uLj2xm0iNIFOFGjovkrn+3ugGOmYQt/5Mwd28gAAAAwXSKE="
    ),
    "xz.rds": (
        "eNr7a14VEcXAwJipdM+MiUGRUYyBgaFE/+niBwwGDGqxDDpMNZI/13+RtZ43w7Tu1YUvir6bXYOOHLRq5xXe5/FA"
        "YKbUJpn+J0AtDD4aJcYMjHaGOevmGkxwmsnLCBJkjIwCAAmOHu4="
    ),
}


def golden(name: str) -> bytes:
    return zlib.decompress(base64.b64decode("".join(R_GOLDEN[name])))


def write_golden(tmp_path: Path, *names: str) -> Path:
    for n in names:
        (tmp_path / n).write_bytes(golden(n))
    return tmp_path


# -- real R output -------------------------------------------------------------

@pytest.mark.parametrize("version", [2, 3])
def test_r_golden_all_types(version):
    obj, header = unserialize(golden(f"golden_v{version}.bin"), with_header=True)
    assert header.version == version and header.writer_version == "4.2.2"
    assert header.native_encoding == ("UTF-8" if version == 3 else None)
    d = obj.to_dict()
    assert list(d["s"]) == ["plain", None, "caf\u00e9 \u2014 \u00a3", "na\u00efve", ""]
    assert list(d["b"]) == [b"\xff\xfe"]
    assert list(d["i"]) == [1, None, -2147483647]
    assert list(d["l"]) == [True, False, None]
    assert d["d"][0] == 1.5 and math.isnan(d["d"][1]) and d["d"][2:] == [-math.inf, 1e300]
    assert list(d["z"]) == [1 - 2j]
    assert list(d["r"]) == [0, 127, 255]
    assert list(d["seq"]) == list(range(1, 11))  # ALTREP compact_intseq in version 3
    assert list(d["f"]) == [2, 1, 2] and list(d["f"].attributes["levels"]) == ["a", "b"]
    assert list(d["f"].attributes["class"]) == ["factor"]
    df = d["df"]
    assert df.names == ["a", "b"] and list(df[1]) == ["x", "y", "z"]
    assert list(df.attributes["row.names"]) == [None, -3]  # R's compact row names c(NA, -n)
    assert d["pl"].to_dict() == {"alpha": [1], "beta": ["two"]}
    assert list(d["nested"][0][0][0]) == ["deep"]
    env = d["env"]
    assert isinstance(env, REnvironment) and env.enclos == RSpecial("R_GlobalEnv")
    bucket = next(b for b in env.hashtab if b is not None)
    assert bucket[0][0] == "self" and bucket[0][1] is env  # reference back to itself
    call = d["call"]
    assert call.rtype == "language" and [v for _, v in call] == [RSymbol("+"), RSymbol("a"), RSymbol("a")]
    assert list(d["dstr"]) == ["4", "5", "6"]  # ALTREP deferred_string in version 3


def test_r_golden_rds_compression(tmp_path):
    write_golden(tmp_path, "xz.rds", "bz.rds")
    assert list(read_rds(tmp_path / "xz.rds")) == ["a", "b"]
    assert list(read_rds(tmp_path / "bz.rds")) == ["a", "b"]


@pytest.mark.parametrize("method", [0, 1, 2, 3])
def test_r_golden_lazyload(tmp_path, method):
    write_golden(tmp_path, f"lazy{method}.rdb", f"lazy{method}.rdx")
    db = LazyLoadDB(tmp_path / f"lazy{method}")
    assert db.compression == method and sorted(db.names()) == ["book", "other"]
    book = db.fetch("book")
    assert book.rtype == "character" and len(book) == 63 and book[1] == "It is a truth universally acknowledged"
    assert list(db.fetch("other").to_dict()["k"]) == [1, 2, 3]


# -- round trips through the fixture writer ------------------------------------

def test_roundtrip_strings_all_encodings():
    v = rx.strs("ascii", "\u00e9t\u00e9", rx.Chars("caf\u00e9", "latin1"), rx.Chars("x\u00e9", "native"),
                rx.Chars("abc", "ascii"), b"\x00\xff", None, "")
    got = unserialize(rx.serialize(v))
    assert list(got) == ["ascii", "\u00e9t\u00e9", "caf\u00e9", "x\u00e9", "abc", b"\x00\xff", None, ""]


def test_native_encoding_from_header():
    blob = rx.serialize(rx.strs(rx.Chars("\u00e9", "latin1")), native="latin1")
    # Re-flag the element as native: the header's latin1 must then decode it.
    blob = blob.replace(struct.pack(">i", 9 | (4 << 12)), struct.pack(">i", 9))
    assert list(unserialize(blob)) == ["\u00e9"]


@pytest.mark.parametrize("version", [2, 3])
def test_roundtrip_nested_with_attributes_and_refs(version):
    obj = rx.named_list({
        "text": rx.strs("a", "b", names=rx.strs("x", "y")),
        "ints": rx.ints(1, None, 3, dim=rx.ints(3, 1)),
        "lgl": RVector([True, None, False], "logical"),
        "dbl": RVector([0.5, -2.0], "double", {"names": rx.strs("p", "q")}),
        "cplx": RVector([1 + 1j], "complex"),
        "raw": RVector([1, 2, 255], "raw"),
        "pl": RPairList([("alpha", rx.ints(1)), (None, rx.strs("untagged")), ("names", None)]),
        "sym": RSymbol("names"),  # same symbol as the attribute tags: written as a reference
        "empty": RVector([], "list"),
        "null": None,
        "expr": RVector([RSymbol("x")], "expression"),
        "obj": rx.ints(1, 2, **{"class": rx.strs("myclass")}),
    })
    blob = rx.serialize(obj, version)
    assert blob.count(b"\x00\x00\x00\x05names") == 1  # later uses are REFSXP
    d = unserialize(blob).to_dict()
    assert list(d["text"]) == ["a", "b"] and d["text"].names == ["x", "y"]
    assert list(d["ints"]) == [1, None, 3] and list(d["ints"].attributes["dim"]) == [3, 1]
    assert list(d["lgl"]) == [True, None, False]
    assert d["dbl"].to_dict() == {"p": 0.5, "q": -2.0}
    assert list(d["cplx"]) == [1 + 1j] and list(d["raw"]) == [1, 2, 255]
    assert list(d["pl"]) == [("alpha", [1]), (None, ["untagged"]), ("names", None)]
    assert d["sym"] == RSymbol("names")
    assert d["empty"] == [] and d["null"] is None
    assert d["expr"].rtype == "expression" and d["expr"][0] == RSymbol("x")
    assert list(d["obj"].attributes["class"]) == ["myclass"]


def test_long_vector_length_form():
    got = unserialize(rx.serialize(rx.strs("a", "b", "c"), long_lengths=True))
    assert list(got) == ["a", "b", "c"]


def test_environment_self_reference():
    env = REnvironment(locked=True)
    env.frame = RPairList([("me", env), ("v", rx.ints(7))])
    got = unserialize(rx.serialize(RVector([env, env], "list")))
    assert got[0] is got[1] and got[0].locked
    assert got[0].frame.to_dict()["me"] is got[0] and list(got[0].frame.to_dict()["v"]) == [7]


def test_long_pairlist_does_not_recurse():
    pl = RPairList([(f"t{i}", rx.ints(i)) for i in range(20000)])
    got = unserialize(rx.serialize(pl))
    assert len(got) == 20000 and got[-1] == ("t19999", [19999])


def test_deep_nesting_is_a_format_error():
    obj = rx.strs("x")
    for _ in range(300):
        obj = RVector([obj], "list")
    with pytest.raises(RFormatError, match="nested deeper"):
        unserialize(rx.serialize(obj))


def test_persistent_reference():
    w = rx.XDRWriter()
    w.i(247)  # PERSISTSXP
    w.i(0)
    w.i(1)
    w.chars("env::1")
    assert unserialize(bytes(w.out)) == RPersistentRef(("env::1",))


# -- malformed and unsupported input ---------------------------------------------

def test_truncated_stream():
    blob = rx.serialize(rx.strs("hello", "world"))
    for cut in (1, 5, 12, len(blob) - 3):
        with pytest.raises(RFormatError, match="truncated"):
            unserialize(blob[:cut])


def test_trailing_bytes_and_bad_refs():
    blob = rx.serialize(rx.strs("x"))
    with pytest.raises(RFormatError, match="trailing"):
        unserialize(blob + b"\x00")
    w = rx.XDRWriter()
    w.i(255 | (5 << 8))  # reference 5 into an empty table
    with pytest.raises(RFormatError, match="reference 5 outside"):
        unserialize(bytes(w.out))
    w = rx.XDRWriter()
    w.i(16)
    w.i(2**30)  # a length no stream this short can hold
    with pytest.raises(RFormatError, match="exceeds the remaining data"):
        unserialize(bytes(w.out))


def test_bad_headers():
    with pytest.raises(RFormatError, match="not an R serialization"):
        unserialize(b"RDX3\n")
    with pytest.raises(UnsupportedRObjectError, match="ASCII R serialization"):
        unserialize(b"A\n3\n")
    blob = bytearray(rx.serialize(None))
    blob[2:6] = struct.pack(">i", 4)
    with pytest.raises(UnsupportedRObjectError, match="version 4"):
        unserialize(bytes(blob))


def test_invalid_utf8_is_a_format_error():
    blob = rx.serialize(rx.strs(rx.Chars(b"\xff", "utf8")))
    with pytest.raises(RFormatError, match="not valid in its declared encoding"):
        unserialize(blob)


def test_unsupported_types_are_named():
    w = rx.XDRWriter()
    w.i(3)  # CLOSXP
    with pytest.raises(UnsupportedRObjectError, match="CLOSXP"):
        unserialize(bytes(w.out))
    w = rx.XDRWriter()
    w.i(22)  # EXTPTRSXP
    with pytest.raises(UnsupportedRObjectError, match="EXTPTRSXP"):
        unserialize(bytes(w.out))


# -- lazy-load databases built by the fixture writer ------------------------------

@pytest.mark.parametrize("method", [0, 1, 2, 3])
def test_fixture_lazyload_all_methods(tmp_path, method):
    objs = {"a": rx.strs("x" * 100, "y"), "b": rx.named_list({"k": rx.ints(1, 2)})}
    db = LazyLoadDB(rx.write_lazyload(tmp_path / "db", objs, method=method))
    assert db.names() == ["a", "b"]
    assert list(db.fetch("a")) == ["x" * 100, "y"]
    assert list(db.load_all()["b"].to_dict()["k"]) == [1, 2]
    with pytest.raises(KeyError, match="'zz' is not in"):
        db.fetch("zz")


@pytest.mark.parametrize("kind", [b"0", b"1", b"2"])
def test_method3_fallback_kinds(kind):
    payload = rx.serialize(rx.strs("q"))
    assert list(unserialize(decompress_lazyload_blob(rx.compress_entry(payload, 3, kind), 3, "t"))) == ["q"]


def test_lazyload_corruption(tmp_path):
    base = rx.write_lazyload(tmp_path / "db", {"a": rx.strs("some text " * 20)}, method=1)
    rdb = base.with_suffix(".rdb")
    good = rdb.read_bytes()
    # the length header disagrees with the payload
    rdb.write_bytes(struct.pack(">I", 5) + good[4:])
    with pytest.raises(RFormatError, match="header says 5"):
        LazyLoadDB(base).fetch("a")
    # damaged zlib data
    rdb.write_bytes(good[:10] + bytes(b ^ 0xFF for b in good[10:20]) + good[20:])
    with pytest.raises(IntegrityError, match="corrupt compressed entry"):
        LazyLoadDB(base).fetch("a")
    # the .rdb is shorter than the index says
    rdb.write_bytes(good[:-5])
    with pytest.raises(RFormatError, match="lies outside"):
        LazyLoadDB(base).fetch("a")
    # truncated gzip index
    rdx = base.with_suffix(".rdx")
    rdx.write_bytes(rdx.read_bytes()[:-6])
    with pytest.raises(RFormatError, match="corrupt or truncated compressed stream"):
        LazyLoadDB(base)


def test_lazyload_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="db.rdx"):
        LazyLoadDB(tmp_path / "db")


def test_lazyload_index_not_a_list(tmp_path):
    (tmp_path / "db.rdb").write_bytes(b"")
    (tmp_path / "db.rdx").write_bytes(gzip.compress(rx.serialize(rx.strs("x"))))
    with pytest.raises(RFormatError, match="index is not a named list"):
        LazyLoadDB(tmp_path / "db")
