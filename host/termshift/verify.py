"""`termshift verify`: run random and edge-case GEMMs through the numpy
reference and the C-sim engine, and count every bit that differs.

A case counts as a mismatch when any output or the cycle count differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from termshift.backends import get_backend
from termshift.backends.engines import engine_names, get_engine


@dataclass
class VerifyRow:
    engine: str
    build: str
    cases: int
    mismatches: int
    first_failure: str = ""

    def line(self) -> str:
        text = f"{self.engine:<6} {self.build:<6} cases={self.cases:<5} mismatches={self.mismatches}"
        return text + (f"  first: {self.first_failure}" if self.first_failure else "")


def verify_engine(engine: str, build: str, n_random: int, seed: int) -> VerifyRow:
    defn = get_engine(engine)
    ref = get_backend("reference")
    sim = get_backend("csim", build=build)
    row = VerifyRow(engine, build, 0, 0)
    for name, operands in defn.cases(seed, n_random):
        want = ref.run(engine, **operands)
        got = sim.run(engine, **operands)
        row.cases += 1
        bad = int(np.count_nonzero(want.out != got.out)) if want.out.shape == got.out.shape else want.out.size
        if bad or want.cycles != got.cycles:
            row.mismatches += 1
            if not row.first_failure:
                row.first_failure = (f"{name}: {bad} outputs differ, cycles "
                                     f"reference {want.cycles} csim {got.cycles}")
    return row
