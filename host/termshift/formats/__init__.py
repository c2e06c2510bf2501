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


__all__ = ["FormatSpec", "Param", "REGISTRY", "parse", "uniform"]
