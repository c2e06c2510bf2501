"""im2col: turns a 2-D convolution over integer codes into one GEMM.

Patches are ordered (c, kh, kw) to match torch's Conv2d weight layout
(out, in, kh, kw) flattened to (out, in*kh*kw). Padding inserts code 0, which
is the value 0.0 because every format here has its zero at code 0.
"""

from __future__ import annotations

import numpy as np


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    out = (size + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise ValueError(f"convolution leaves no output: size {size}, kernel {kernel}, stride {stride}, padding {padding}")
    return out


def im2col(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]) -> np.ndarray:
    """x: (B, C, H, W) -> (B * Ho * Wo, C * kh * kw), same dtype."""
    b, c, h, w = x.shape
    kh, kw = kernel
    sh, sw = stride
    ph, pw = padding
    ho = conv_output_size(h, kh, sh, ph)
    wo = conv_output_size(w, kw, sw, pw)
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    view = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))  # (B, C, H', W', kh, kw)
    view = view[:, :, ::sh, ::sw][:, :, :ho, :wo]
    return np.ascontiguousarray(view.transpose(0, 2, 3, 1, 4, 5)).reshape(b * ho * wo, c * kh * kw)


def conv_patches(conv, x: np.ndarray) -> np.ndarray:
    """The GEMM input rows of a torch Conv2d `conv` on float input x (B, C, H, W)."""
    return im2col(np.asarray(x), tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.padding))


def col2im_output(y: np.ndarray, batch: int, ho: int, wo: int) -> np.ndarray:
    """GEMM output (B * Ho * Wo, Cout) -> (B, Cout, Ho, Wo)."""
    return np.ascontiguousarray(y.reshape(batch, ho, wo, -1).transpose(0, 3, 1, 2))
