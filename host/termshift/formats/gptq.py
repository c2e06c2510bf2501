"""Error-feedback weight rounding (GPTQ) for any per-row weight grid.

Nearest rounding minimizes each weight's own error. `gptq_round` instead
chooses a layer's codes column by column and feeds each column's rounding
error into the columns not yet rounded, weighted by the inverse of the
calibration inputs' second moments H = X^T X / rows: the optimal-brain-
quantization step of GPTQ (Frantar et al. 2023). It minimizes the layer's
output error sum ||(W - Q) x||^2 on the calibration inputs greedily; no
gradient, no labels, no retraining. The grid is the caller's: a function that
rounds one column (one weight per output row) and says what the codes mean.
`teq` (exponential grids) and `pot` (power-of-two grids) use it; the codes
stay codes of the same grid, so their engines and bit-exactness are untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from termshift.checks import as_float_array, require_ndim

DAMP = 0.01  # diagonal load, as a fraction of the mean input second moment
BLOCK = 128  # columns rounded between two full updates of the rest


def input_gram(rows) -> np.ndarray:
    """Second moments X^T X / rows (K, K) of a GEMM's float input rows (rows, K)."""
    x = as_float_array(rows, "input rows")
    require_ndim(x, "input rows", 2)
    if x.shape[0] == 0:
        raise ValueError("input rows: need at least one calibration row")
    return x.T @ x / x.shape[0]


def gptq_round(w2d, round_column: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]], gram,
               damp: float = DAMP) -> np.ndarray:
    """Codes (N, K) int8 of weights w2d (N, K), column by column:
    `round_column(values (N,), k)` returns column k's codes and the values
    they stand for (N,) on the caller's per-row grid. Columns go in
    decreasing input energy H[k, k] (GPTQ's "act order"), so the columns that
    matter most are rounded while every later column can still absorb their
    error. A column no calibration input touches (H[k, k] = 0) is rounded as
    0.0 and feeds nothing back."""
    w = np.array(as_float_array(w2d, "w2d"), np.float64)
    require_ndim(w, "w2d", 2)
    n, k = w.shape
    h = np.array(as_float_array(gram, "gram"), np.float64)
    if h.shape != (k, k):
        raise ValueError(f"gram must be ({k}, {k}) for {k} input channels, got {h.shape}")
    if not damp > 0:
        raise ValueError(f"damp must be > 0, got {damp}")
    dead = np.diag(h) <= 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h[np.diag_indices(k)] += damp * float(np.mean(np.diag(h)))
    order = np.argsort(-np.diag(h), kind="stable")
    w, h = w[:, order], h[np.ix_(order, order)]
    # Upper Cholesky factor of H^-1: row j holds the feedback of column j's error.
    hinv = np.linalg.cholesky(np.linalg.inv(h)).T
    q = np.zeros((n, k), np.int8)
    for c0 in range(0, k, BLOCK):
        c1 = min(c0 + BLOCK, k)
        err = np.zeros((n, c1 - c0))
        for j in range(c0, c1):
            codes, values = round_column(w[:, j], int(order[j]))
            q[:, j] = codes
            e = (w[:, j] - values) / hinv[j, j]
            w[:, j:c1] -= np.outer(e, hinv[j, j:c1])
            err[:, j - c0] = e
        w[:, c1:] -= err @ hinv[c0:c1, c1:]
    out = np.empty_like(q)
    out[:, order] = q
    return out
