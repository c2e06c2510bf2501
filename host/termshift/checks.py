"""Input validation shared by every codec and backend.

Each helper raises TypeError (wrong kind of thing) or ValueError (right kind,
bad value) with the offending tensor or parameter named, so a user sees what
to fix instead of a crash or a silently wrong result.
"""

from __future__ import annotations

import numpy as np


def as_float_array(x, name: str) -> np.ndarray:
    """x as a float64 array; rejects non-numeric dtypes, NaN and Inf."""
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(arr[idx]) else "Inf"
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) ({kind} first at index {idx})"
        )
    return arr


def require_dtype(x, name: str, dtypes: tuple) -> np.ndarray:
    """x as a C-contiguous array, which must already have one of `dtypes`."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if x.dtype not in [np.dtype(d) for d in dtypes]:
        allowed = " or ".join(np.dtype(d).name for d in dtypes)
        raise TypeError(f"{name} must have dtype {allowed}, got {x.dtype}")
    return np.ascontiguousarray(x)


def require_ndim(x: np.ndarray, name: str, ndim: int) -> None:
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")


def require_int(value, name: str, lo: int, hi: int) -> int:
    """value as a Python int in [lo, hi]; bools and floats are rejected."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name}={value} is out of range [{lo}, {hi}]")
    return value
