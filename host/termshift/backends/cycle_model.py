"""Cycle model of the GEMM engines' systolic array (docs/cycle_model.md).

It mirrors the loop structure of hls/include/termshift/gemm_int.h at II=1:
for every (rows x cols) output tile and every tile_k-deep slice of K, the
array runs k_len + rows + cols - 2 steps (fill, steady state, drain of the
skewed wavefront), then the tile's rows x cols accumulators leave through the
requant stage and the 32-bit C port one per cycle. Memory transfers are not counted (the top is meant
to overlap them with compute; the board measures the real figure).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArrayGeometry:
    rows: int
    cols: int
    tile_k: int


# Must equal GEMM_INT_* in hls/top/gemm_int.h; tests compare with the extension.
INT_ENGINE = ArrayGeometry(rows=8, cols=8, tile_k=256)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def gemm_cycles(geom: ArrayGeometry, m: int, n: int, k: int) -> int:
    """Array cycles of one M x N x K GEMM call."""
    tiles = _ceil_div(m, geom.rows) * _ceil_div(n, geom.cols)
    k_tiles = _ceil_div(k, geom.tile_k)
    per_tile = k + k_tiles * (geom.rows + geom.cols - 2) + geom.rows * geom.cols
    return tiles * per_tile


def utilization(geom: ArrayGeometry, m: int, n: int, k: int) -> float:
    """Useful MACs over PE-cycles: 1.0 means every PE did a MAC every cycle."""
    return (m * n * k) / (gemm_cycles(geom, m, n, k) * geom.rows * geom.cols)
