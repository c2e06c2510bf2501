"""Number formats: one module per format, each with a spec dict of its
parameters and small pure numpy functions (the bit-exact reference).

`parse("int:bits=8")` resolves a spec string against every registered format.
"""

from __future__ import annotations

from termshift.formats import uniform
from termshift.formats import pot
from termshift.formats import bfp
from termshift.formats import teq
from termshift.formats import tr
from termshift.formats.spec import FormatSpec, Param, parse_spec

REGISTRY: dict[str, dict[str, Param]] = {
    "int": uniform.SPEC,
    "pot": pot.SPEC,
    "bfp": bfp.SPEC,
    "teq": teq.SPEC,
    "tr": tr.SPEC,
}


def parse(text: str) -> FormatSpec:
    return parse_spec(text, REGISTRY)


def short(fmt: str | FormatSpec) -> str:
    """The spec with only its non-default parameters (and `bits`, which readers
    look for), for tables: `pot:bits=4` rather than every resolved key.
    Strings that are not specs (e.g. "float") come back unchanged."""
    try:
        spec = parse(fmt) if isinstance(fmt, str) else fmt
    except ValueError:
        return str(fmt)
    decl = REGISTRY[spec.name]
    body = ",".join(f"{k}={v}" for k, v in spec.params.items() if v != decl[k].default or k == "bits")
    return f"{spec.name}:{body}" if body else spec.name


__all__ = ["FormatSpec", "Param", "REGISTRY", "parse", "short", "uniform"]
