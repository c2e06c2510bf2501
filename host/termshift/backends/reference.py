"""The numpy reference backend: the format specs executed directly."""

from __future__ import annotations

from termshift.backends.base import Backend, GemmResult
from termshift.backends.engines import get_engine


class ReferenceBackend(Backend):
    name = "reference"

    def run(self, engine: str, **operands) -> GemmResult:
        e = get_engine(engine)
        return e.reference(e.validate(**operands))
