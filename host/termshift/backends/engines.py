"""The engine registry: how every backend finds an engine by name.

An engine (one HLS top, one number format's GEMM) registers an `EngineDef`
from its own module `termshift.backends.engine_<name>`: how to validate its
operands, how the numpy reference computes it, how the C-sim extension is
called, and the edge and random cases `termshift verify` feeds it. Adding an
engine means adding that module and its name to `ENGINE_MODULES`; the
backends, `verify` and the tests pick it up from here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

# One entry per engine; order is the order `termshift verify` reports them.
ENGINE_MODULES = {
    "int": "termshift.backends.engine_int",
    "pot": "termshift.backends.engine_pot",
    "bfp": "termshift.backends.engine_bfp",
    "tr": "termshift.backends.engine_tr",
    "teq": "termshift.backends.engine_teq",
}


@dataclass(frozen=True)
class EngineDef:
    name: str
    validate: Callable[..., Any]  # (**operands) -> validated args
    reference: Callable[[Any], Any]  # args -> GemmResult
    csim: Callable[[Any, str, Any], Any]  # (extension module, build, args) -> GemmResult
    cases: Callable[[int, int], Iterator[tuple[str, dict]]]  # (seed, n_random) -> (name, operands)


_LOADED: dict[str, EngineDef] = {}


def engine_names() -> tuple[str, ...]:
    return tuple(ENGINE_MODULES)


def get_engine(name: str) -> EngineDef:
    if name not in ENGINE_MODULES:
        raise ValueError(f"unknown engine {name!r}; engines: {', '.join(ENGINE_MODULES)}")
    if name not in _LOADED:
        _LOADED[name] = importlib.import_module(ENGINE_MODULES[name]).ENGINE
    return _LOADED[name]
