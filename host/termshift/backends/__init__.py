"""Backends run engine calls: `reference` (numpy), `csim` (C-simulated HLS).

`get_backend("csim", build="exact")` returns a ready backend by name.
"""

from __future__ import annotations

from termshift.backends.base import Backend, GemmResult

BACKENDS = ("reference", "csim")


def get_backend(name: str, **options) -> Backend:
    if name == "reference":
        from termshift.backends.reference import ReferenceBackend

        if options:
            raise TypeError(f"the reference backend takes no options, got {sorted(options)}")
        return ReferenceBackend()
    if name == "csim":
        from termshift.backends.csim import CSimBackend

        return CSimBackend(**options)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "GemmResult", "get_backend"]
