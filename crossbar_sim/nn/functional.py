"""Array functions of the network layers (NumPy, batch first): im2col, pooling, activations, loss.

Shapes follow PyTorch: images are (batch, channels, height, width); a convolution's weight matrix is
(out_channels, in_channels * k * k) with the column index ``c * k * k + ky * k + kx`` (PyTorch's
``weight.reshape(out, -1)``), so a patch row of :func:`im2col` multiplies it directly. im2col, col2im,
pooling and the patch-row layout changes run as Numba kernels (:mod:`crossbar_sim.kernels.nn`, NumPy twins
in :mod:`crossbar_sim.kernels.reference`).
"""
from __future__ import annotations

import numpy as np

from ..kernels import nn as NK


def im2col(x: np.ndarray, k: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Patches of ``x`` (B, C, H, W) as rows: (B * Ho * Wo, C * k * k), sample-major, then raster order.

    Each row is one input vector of the tile (one sample of the pulsed update, as on hardware).
    """
    B, C, H, W = x.shape
    Ho = (H + 2 * padding - k) // stride + 1
    Wo = (W + 2 * padding - k) // stride + 1
    out = np.empty((B * Ho * Wo, C * k * k), x.dtype)
    NK.im2col(x, k, stride, padding, out)
    return out


def col2im(cols: np.ndarray, x_shape, k: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Adjoint of :func:`im2col`: sums the patch gradients back into an image gradient of ``x_shape``."""
    out = np.empty(x_shape, cols.dtype)
    NK.col2im(cols, k, stride, padding, out)
    return out


def maxpool2d(x: np.ndarray, k: int = 2):
    """Max pooling with window and stride ``k`` (H, W divisible by k). Returns (y, argmax index in window)."""
    B, C, H, W = x.shape
    y = np.empty((B, C, H // k, W // k), x.dtype)
    idx = np.empty((B, C, H // k, W // k), np.int64)
    NK.maxpool2d(x, k, y, idx)  # first maximum, as PyTorch
    return y, idx


def maxpool2d_backward(dy: np.ndarray, idx: np.ndarray, x_shape, k: int = 2) -> np.ndarray:
    out = np.empty(x_shape, dy.dtype)
    NK.maxpool2d_backward(dy, idx, k, out)
    return out


def rows_to_images(rows: np.ndarray, B: int, Ho: int, Wo: int) -> np.ndarray:
    """Per-patch outputs (B * Ho * Wo, O) as images (B, O, Ho, Wo)."""
    out = np.empty((B, rows.shape[1], Ho, Wo), rows.dtype)
    NK.rows_to_images(rows, out)
    return out


def images_to_rows(img: np.ndarray) -> np.ndarray:
    """Images (B, O, Ho, Wo) as per-patch rows (B * Ho * Wo, O) (adjoint of :func:`rows_to_images`)."""
    B, O, Ho, Wo = img.shape
    out = np.empty((B * Ho * Wo, O), img.dtype)
    NK.images_to_rows(img, out)
    return out


def sigmoid(x):
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x)))).astype(x.dtype)


def log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=1, keepdims=True)
    s = z - m
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def nll_loss(z: np.ndarray, labels: np.ndarray):
    """Mean negative log-likelihood of ``log_softmax(z)`` and its gradient w.r.t. ``z`` (PyTorch's
    ``NLLLoss(log_softmax(z))`` with mean reduction). Returns ``(loss, dz, n_correct)``."""
    B = z.shape[0]
    lp = log_softmax(z.astype(np.float64))
    rows = np.arange(B)
    loss = -lp[rows, labels].mean()
    dz = np.exp(lp)
    dz[rows, labels] -= 1.0
    dz /= B
    correct = int(np.sum(np.argmax(z, axis=1) == labels))
    return float(loss), dz.astype(z.dtype), correct
