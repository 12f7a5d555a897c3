"""The convolution-layer kernels (kernels/nn.py) equal their NumPy twins bit for bit, and col2im / the pooling
backward are the adjoints of im2col / pooling (<A x, y> = <x, A^T y>)."""
import numpy as np
import pytest

from crossbar_sim.kernels import nn as NK
from crossbar_sim.kernels import reference as R

SHAPES = [  # (B, C, H, W, k, stride, padding)
    (8, 1, 28, 28, 5, 1, 0),   # the paper's CNN, conv 1
    (8, 16, 12, 12, 5, 1, 0),  # conv 2
    (2, 3, 9, 7, 3, 2, 1),     # stride and padding, odd sizes
    (1, 2, 5, 5, 5, 1, 2),
]


def _out_hw(H, W, k, stride, padding):
    return (H + 2 * padding - k) // stride + 1, (W + 2 * padding - k) // stride + 1


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_col2im_equal_twins_and_are_adjoint(shape, dtype):
    B, C, H, W, k, s, p = shape
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, C, H, W)).astype(dtype)
    Ho, Wo = _out_hw(H, W, k, s, p)
    got = np.empty((B * Ho * Wo, C * k * k), dtype)
    want = np.empty_like(got)
    NK.im2col(x, k, s, p, got)
    R.im2col(x, k, s, p, want)
    np.testing.assert_array_equal(got, want)
    cols = rng.normal(size=got.shape).astype(dtype)
    back = np.empty_like(x)
    back_twin = np.empty_like(x)
    NK.col2im(cols, k, s, p, back)
    R.col2im(cols, k, s, p, back_twin)
    np.testing.assert_array_equal(back, back_twin)
    a = float(np.sum(got.astype(np.float64) * cols))
    b = float(np.sum(x.astype(np.float64) * back))
    assert a == pytest.approx(b, rel=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("k", [2, 3])
def test_maxpool_equals_twin_with_ties(k):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, size=(3, 4, 3 * k, 4 * k)).astype(np.float32)  # many ties: the first maximum wins
    B, C, H, W = x.shape
    y, idx = np.empty((B, C, H // k, W // k), np.float32), np.empty((B, C, H // k, W // k), np.int64)
    yt, idxt = np.empty_like(y), np.empty_like(idx)
    NK.maxpool2d(x, k, y, idx)
    R.maxpool2d(x, k, yt, idxt)
    np.testing.assert_array_equal(y, yt)
    np.testing.assert_array_equal(idx, idxt)
    dy = rng.normal(size=y.shape).astype(np.float32)
    g, gt = np.empty_like(x), np.empty_like(x)
    NK.maxpool2d_backward(dy, idx, k, g)
    R.maxpool2d_backward(dy, idx, k, gt)
    np.testing.assert_array_equal(g, gt)
    assert np.count_nonzero(g) == np.count_nonzero(dy)


def test_patch_row_layout_round_trip_equals_twins():
    rng = np.random.default_rng(2)
    rows = rng.normal(size=(2 * 3 * 4, 5)).astype(np.float32)
    img, img_t = np.empty((2, 5, 3, 4), np.float32), np.empty((2, 5, 3, 4), np.float32)
    NK.rows_to_images(rows, img)
    R.rows_to_images(rows, img_t)
    np.testing.assert_array_equal(img, img_t)
    back, back_t = np.empty_like(rows), np.empty_like(rows)
    NK.images_to_rows(img, back)
    R.images_to_rows(img, back_t)
    np.testing.assert_array_equal(back, back_t)
    np.testing.assert_array_equal(back, rows)
