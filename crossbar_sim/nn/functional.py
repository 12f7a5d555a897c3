"""Array functions of the network layers (NumPy, batch first): im2col, pooling, activations, loss.

Shapes follow PyTorch: images are (batch, channels, height, width); a convolution's weight matrix is
(out_channels, in_channels * k * k) with the column index ``c * k * k + ky * k + kx`` (PyTorch's
``weight.reshape(out, -1)``), so a patch row of :func:`im2col` multiplies it directly.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def im2col(x: np.ndarray, k: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Patches of ``x`` (B, C, H, W) as rows: (B * Ho * Wo, C * k * k), sample-major, then raster order.

    Each row is one input vector of the tile (one sample of the pulsed update, as on hardware).
    """
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    B, C, H, W = x.shape
    win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]  # B, C, Ho, Wo, k, k
    Ho, Wo = win.shape[2], win.shape[3]
    return np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(B * Ho * Wo, C * k * k)


def col2im(cols: np.ndarray, x_shape, k: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Adjoint of :func:`im2col`: sums the patch gradients back into an image gradient of ``x_shape``."""
    B, C, H, W = x_shape
    Hp, Wp = H + 2 * padding, W + 2 * padding
    Ho = (Hp - k) // stride + 1
    Wo = (Wp - k) // stride + 1
    c = cols.reshape(B, Ho, Wo, C, k, k)
    out = np.zeros((B, C, Hp, Wp), cols.dtype)
    for ky in range(k):
        for kx in range(k):
            out[:, :, ky:ky + stride * Ho:stride, kx:kx + stride * Wo:stride] += c[:, :, :, :, ky, kx].transpose(0, 3, 1, 2)
    if padding:
        out = out[:, :, padding:-padding, padding:-padding]
    return out


def maxpool2d(x: np.ndarray, k: int = 2):
    """Max pooling with window and stride ``k`` (H, W divisible by k). Returns (y, argmax index in window)."""
    B, C, H, W = x.shape
    r = x.reshape(B, C, H // k, k, W // k, k).transpose(0, 1, 2, 4, 3, 5).reshape(B, C, H // k, W // k, k * k)
    idx = np.argmax(r, axis=-1)  # first maximum, as PyTorch
    y = np.take_along_axis(r, idx[..., None], axis=-1)[..., 0]
    return y, idx


def maxpool2d_backward(dy: np.ndarray, idx: np.ndarray, x_shape, k: int = 2) -> np.ndarray:
    B, C, H, W = x_shape
    g = np.zeros((B, C, H // k, W // k, k * k), dy.dtype)
    np.put_along_axis(g, idx[..., None], dy[..., None], axis=-1)
    return g.reshape(B, C, H // k, W // k, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(B, C, H, W)


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
