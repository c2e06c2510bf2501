"""The interface every backend implements, and the result it returns.

A backend runs engine calls; it never quantizes. `reference` is numpy, `csim`
the C-simulated HLS engines, `board` the engines on a ZCU104. All take the
same operands and must return the same integers. `run(engine, **operands)`
reaches any registered engine (backends/engines.py); `gemm_int` is the INT8
engine's named shortcut.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GemmResult:
    out: np.ndarray  # (M, N) int32
    cycles: int  # modeled array cycles of this call


class Backend(ABC):
    name: str = "abstract"

    @abstractmethod
    def run(self, engine: str, **operands) -> GemmResult:
        """Run one call of `engine` on validated operands."""

    def gemm_int(self, a: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None,
                 requant=None) -> GemmResult:
        """INT8 engine: requant(a @ w.T + bias), or raw int32 when requant is None.

        a: (M, K) int8 or uint8 (uint8 means post-ReLU activations), w: (N, K)
        int8, bias: (N,) int32.
        """
        return self.run("int", a=a, w=w, bias=bias, requant=requant)
