"""Numba kernels of the convolutional network layers: im2col / col2im, 2-D max pooling and its adjoint, and the
layout changes between patch rows and images.

Shapes follow PyTorch (images (B, C, H, W)); a patch row has the column index ``c * k * k + ky * k + kx``
(PyTorch's ``weight.reshape(out, -1)``) and rows are sample-major, then raster order ``(oy, ox)``. Each kernel
writes into a caller-allocated ``out`` and has a NumPy twin of the same name in :mod:`.reference`, which it
equals bit for bit (col2im adds the patch contributions of a pixel in the twin's order: ``ky`` then ``kx``).
"""
from __future__ import annotations

from numba import njit


@njit(cache=True, error_model="numpy")
def im2col(x, k, stride, padding, out):
    """Patches of ``x`` (B, C, H, W) into ``out`` (B * Ho * Wo, C * k * k); zero outside the image."""
    B, C, H, W = x.shape
    Ho = (H + 2 * padding - k) // stride + 1
    Wo = (W + 2 * padding - k) // stride + 1
    for b in range(B):
        for oy in range(Ho):
            for ox in range(Wo):
                r = (b * Ho + oy) * Wo + ox
                for c in range(C):
                    for ky in range(k):
                        iy = oy * stride + ky - padding
                        base = (c * k + ky) * k
                        x0 = ox * stride - padding
                        if padding == 0:  # every tap inside the image: a plain copy of k pixels
                            for kx in range(k):
                                out[r, base + kx] = x[b, c, iy, x0 + kx]
                            continue
                        for kx in range(k):
                            ix = x0 + kx
                            if 0 <= iy < H and 0 <= ix < W:
                                out[r, base + kx] = x[b, c, iy, ix]
                            else:
                                out[r, base + kx] = 0.0


@njit(cache=True, error_model="numpy")
def col2im(cols, k, stride, padding, out):
    """Adjoint of :func:`im2col`: ``out`` (B, C, H, W) = 0, then every patch entry added to its pixel."""
    B, C, H, W = out.shape
    Ho = (H + 2 * padding - k) // stride + 1
    Wo = (W + 2 * padding - k) // stride + 1
    out[...] = 0.0
    for ky in range(k):
        for kx in range(k):
            for b in range(B):
                for c in range(C):
                    col = (c * k + ky) * k + kx
                    for oy in range(Ho):
                        iy = oy * stride + ky - padding
                        if iy < 0 or iy >= H:
                            continue
                        for ox in range(Wo):
                            ix = ox * stride + kx - padding
                            if 0 <= ix < W:
                                out[b, c, iy, ix] += cols[(b * Ho + oy) * Wo + ox, col]


@njit(cache=True, error_model="numpy")
def maxpool2d(x, k, y, idx):
    """Max pooling with window and stride ``k``: ``y`` (B, C, H//k, W//k) and ``idx``, the position
    ``ky * k + kx`` of the first maximum in each window (as ``numpy.argmax`` and PyTorch)."""
    B, C, Ho, Wo = y.shape
    for b in range(B):
        for c in range(C):
            for oy in range(Ho):
                for ox in range(Wo):
                    best = x[b, c, oy * k, ox * k]
                    bi = 0
                    for ky in range(k):
                        for kx in range(k):
                            v = x[b, c, oy * k + ky, ox * k + kx]
                            if v > best:
                                best = v
                                bi = ky * k + kx
                    y[b, c, oy, ox] = best
                    idx[b, c, oy, ox] = bi


@njit(cache=True, error_model="numpy")
def maxpool2d_backward(dy, idx, k, out):
    """Adjoint of :func:`maxpool2d`: ``out`` (B, C, H, W) holds ``dy`` at each window's maximum, 0 elsewhere."""
    B, C, Ho, Wo = dy.shape
    out[...] = 0.0
    for b in range(B):
        for c in range(C):
            for oy in range(Ho):
                for ox in range(Wo):
                    p = idx[b, c, oy, ox]
                    out[b, c, oy * k + p // k, ox * k + p % k] = dy[b, c, oy, ox]


@njit(cache=True, error_model="numpy")
def rows_to_images(rows, out):
    """Patch-row outputs ``rows`` (B * Ho * Wo, O) into images ``out`` (B, O, Ho, Wo)."""
    B, O, Ho, Wo = out.shape
    for b in range(B):
        for oy in range(Ho):
            for ox in range(Wo):
                r = (b * Ho + oy) * Wo + ox
                for o in range(O):
                    out[b, o, oy, ox] = rows[r, o]


@njit(cache=True, error_model="numpy")
def images_to_rows(img, out):
    """Images ``img`` (B, O, Ho, Wo) into patch rows ``out`` (B * Ho * Wo, O) (adjoint of
    :func:`rows_to_images`)."""
    B, O, Ho, Wo = img.shape
    for b in range(B):
        for o in range(O):
            for oy in range(Ho):
                for ox in range(Wo):
                    out[(b * Ho + oy) * Wo + ox, o] = img[b, o, oy, ox]
