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
