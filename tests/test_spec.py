"""Format spec strings parse to resolved parameters; bad ones name the problem."""

import pytest

from termshift.formats import parse


def test_defaults_and_explicit():
    assert parse("int").params == {"bits": 8, "granularity": "channel"}
    spec = parse(" INT:bits=4, granularity=tensor ")
    assert spec.name == "int" and spec["bits"] == 4 and spec["granularity"] == "tensor"
    assert str(spec) == "int:bits=4,granularity=tensor"
    assert parse(str(spec)) == spec


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "non-empty"),
        ("posit:bits=8", "unknown format 'posit'"),
        ("int:bits=9", "bits=9 is out of range (allowed: 2..8)"),
        ("int:bits=1", "out of range"),
        ("int:bits=eight", "expected an integer"),
        ("int:width=8", "has no parameter 'width'"),
        ("int:bits", "expected key=value"),
        ("int:bits=8,bits=4", "given twice"),
        ("int:granularity=row", "granularity='row' is out of range"),
    ],
)
def test_bad_specs(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(text)


def test_non_string():
    with pytest.raises(ValueError):
        parse(None)


def test_bare_switch_means_on():
    assert parse("bfp:search")["search"] == "on"
    assert parse("bfp:search") == parse("bfp:search=on")
    assert parse("bfp:block=8,search,mantissa=3").params == {**parse("bfp:block=8,mantissa=3").params, "search": "on"}
    assert parse("teq:beta")["beta"] == "on"
    assert parse("bfp:search=off")["search"] == "off"
    assert parse("bfp")["search"] == "off"


@pytest.mark.parametrize(
    "text, message",
    [
        ("bfp:block", "'block' is not an on/off switch"),
        ("pot:rounding", "'rounding' is not an on/off switch"),
        ("int:granularity", "expected key=value, got 'granularity'"),
        ("bfp:searching", "has no parameter 'searching'"),
        ("bfp:search,search=on", "given twice"),
        ("bfp:search=yes", "search='yes' is out of range (allowed: off, on)"),
    ],
)
def test_bare_non_switch_is_an_error(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(text)


@pytest.mark.parametrize("text, want", [
    ("pot:bits=4,rounding=linear,granularity=channel,scale=float,sparsity=0.0", "pot:bits=4"),
    ("tr:bits=4,group=8,budget=12,data_terms=3", "tr:bits=4,group=8"),
    ("bfp:block=8,mantissa=3", "bfp:block=8,mantissa=3"),
    ("int:bits=8,granularity=tensor", "int:bits=8,granularity=tensor"),
    ("float", "float"),
])
def test_short_spec_keeps_only_what_differs_from_the_defaults(text, want):
    from termshift.formats import parse, short

    assert short(text) == want
    if text != "float":
        assert parse(short(text)) == parse(text)
