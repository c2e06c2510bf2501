"""Format spec strings: `NAME[:key=value,...]`, e.g. `int:bits=8`.

A parameter whose allowed values are exactly {off, on} is a switch and may
be given bare: `bfp:search` means `bfp:search=on`.

Each format module declares its parameters in one spec dict (name, default,
parser, allowed values); this module parses strings against those dicts and
gives every error the spec string and the parameter by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

SWITCH_VALUES = {"off", "on"}

@dataclass(frozen=True)
class Param:
    """One format parameter: its default, how to parse it, what is allowed."""

    default: Any
    parse: Callable[[str], Any]
    allowed: Any  # a range, a set/tuple of values, or None
    doc: str = ""

    @property
    def is_switch(self) -> bool:
        return isinstance(self.allowed, (set, frozenset, tuple, list)) and set(self.allowed) == SWITCH_VALUES

    def check(self, fmt: str, key: str, value: Any) -> Any:
        if self.allowed is not None and value not in self.allowed:
            if isinstance(self.allowed, range):
                shown = f"{self.allowed.start}..{self.allowed.stop - 1}"
            else:
                shown = ", ".join(str(v) for v in sorted(self.allowed))
            raise ValueError(f"{fmt}: {key}={value!r} is out of range (allowed: {shown})")
        return value


@dataclass(frozen=True)
class FormatSpec:
    """A parsed format spec: the format name and every parameter resolved."""

    name: str
    params: dict = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def __str__(self) -> str:
        body = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}:{body}" if body else self.name


def parse_int(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None


def parse_spec(text: str, registry: dict[str, dict[str, Param]]) -> FormatSpec:
    """Parse `NAME[:k=v,...]` against `registry` (format name -> its params)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"format spec must be a non-empty string like 'int:bits=8', got {text!r}")
    name, _, body = text.strip().partition(":")
    name = name.strip().lower()
    if name not in registry:
        raise ValueError(f"unknown format {name!r} in {text!r}; known formats: {', '.join(sorted(registry))}")
    params_decl = registry[name]
    given: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in body.split(","))):
        key, eq, raw = item.partition("=")
        key = key.strip()
        if key not in params_decl:
            known = ", ".join(params_decl) or "none"
            raise ValueError(f"{text!r}: format {name!r} has no parameter {key!r} (parameters: {known})")
        if key in given:
            raise ValueError(f"{text!r}: parameter {key!r} given twice")
        if not eq:
            if not params_decl[key].is_switch:
                raise ValueError(f"{text!r}: expected key=value, got {item!r} ({key!r} is not an on/off switch, "
                                 f"so it needs a value)")
            raw = "on"
        try:
            value = params_decl[key].parse(raw.strip())
        except ValueError as exc:
            raise ValueError(f"{text!r}: {key}: {exc}") from None
        given[key] = params_decl[key].check(name, key, value)
    params = {k: given.get(k, p.default) for k, p in params_decl.items()}
    return FormatSpec(name, params)
