"""Digital forward/backward of every layer against finite differences (float64), and layer shapes."""
import numpy as np
import pytest

from crossbar_sim.nn import functional as F
from crossbar_sim.nn.layers import (AnalogConv2d, AnalogLinear, DigitalTile, Flatten, MaxPool2d, ReLU, Sequential,
                                    Sigmoid, Tanh)

EPS = 1e-6
# central differences in float64: truncation O(eps^2) ~ 1e-12, rounding ~1e-16/eps ~ 1e-10 relative
RTOL = 1e-6


def _loss(model, x, w_out):
    return float(np.sum(model.forward(x) * w_out))


def _numgrad(f, a):
    g = np.zeros_like(a)
    it = np.nditer(a, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = a[i]
        a[i] = old + EPS
        fp = f()
        a[i] = old - EPS
        fm = f()
        a[i] = old
        g[i] = (fp - fm) / (2 * EPS)
    return g


def _check(model, x, params):
    """Compare analytic input/parameter gradients of sum(model(x) * w_out) with central differences."""
    rng = np.random.default_rng(1)
    y = model.forward(x)
    w_out = rng.normal(size=y.shape)
    model.forward(x)
    dx = model.backward(w_out, need_dx=True)
    np.testing.assert_allclose(dx, _numgrad(lambda: _loss(model, x, w_out), x), rtol=RTOL, atol=1e-8)
    for name, (get_value, get_grad) in params.items():
        model.forward(x)
        model.backward(w_out, need_dx=True)
        analytic = get_grad().copy()
        num = _numgrad(lambda: _loss(model, x, w_out), get_value())
        np.testing.assert_allclose(analytic, num, rtol=RTOL, atol=1e-8, err_msg=name)


def _tile_grad(layer):
    """Gradient w.r.t. the tile weights from the pending update: sum_s d_s x_s^T."""
    X, D = layer._pending
    return D.T @ X


@pytest.mark.parametrize("analog_bias", [False, True])
@pytest.mark.parametrize("out_scaling", [False, True])
def test_linear_gradients(analog_bias, out_scaling):
    rng = np.random.default_rng(0)
    tile = DigitalTile(3, 4 + analog_bias, dtype=np.float64)
    lin = AnalogLinear(4, 3, tile, bias=True, analog_bias=analog_bias, out_scaling=out_scaling, rng=rng)
    if out_scaling:
        lin.alpha.value[...] = 1.3
    model = Sequential([lin])
    x = rng.normal(size=(5, 4))
    params = {"W": (lambda: tile.w, lambda: _tile_grad(lin))}
    if lin.bias is not None:
        params["b"] = (lambda: lin.bias.value, lambda: lin.bias.grad)
    if out_scaling:
        params["alpha"] = (lambda: lin.alpha.value, lambda: lin.alpha.grad)
    _check(model, x, params)


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1)])
def test_conv_gradients(stride, padding):
    rng = np.random.default_rng(0)
    tile = DigitalTile(3, 2 * 3 * 3, dtype=np.float64)
    conv = AnalogConv2d(2, 3, 3, tile, stride=stride, padding=padding, out_scaling=True, rng=rng)
    conv.alpha.value[...] = 0.7
    x = rng.normal(size=(2, 2, 6, 6))
    _check(Sequential([conv]), x, {"W": (lambda: tile.w, lambda: _tile_grad(conv)),
                                   "b": (lambda: conv.bias.value, lambda: conv.bias.grad),
                                   "alpha": (lambda: conv.alpha.value, lambda: conv.alpha.grad)})


def test_conv_matches_direct_convolution():
    rng = np.random.default_rng(3)
    tile = DigitalTile(4, 2 * 5 * 5, dtype=np.float64)
    conv = AnalogConv2d(2, 4, 5, tile, out_scaling=False, rng=rng)
    x = rng.normal(size=(3, 2, 9, 8))
    y = conv.forward(x)
    W = tile.w.reshape(4, 2, 5, 5)
    ref = np.zeros((3, 4, 5, 4))
    for oy in range(5):
        for ox in range(4):
            ref[:, :, oy, ox] = np.einsum("bcij,ocij->bo", x[:, :, oy:oy + 5, ox:ox + 5], W)
    np.testing.assert_allclose(y, ref + conv.bias.value[None, :, None, None], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act", [Sigmoid, Tanh, ReLU])
def test_activation_gradients(act):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 7))
    x[np.abs(x) < 1e-3] = 0.5  # keep ReLU away from its kink
    _check(Sequential([act()]), x, {})


def test_maxpool_and_flatten_gradients():
    rng = np.random.default_rng(0)
    x = rng.permutation(2 * 3 * 6 * 4).reshape(2, 3, 6, 4).astype(np.float64) * 0.01  # distinct: no ties
    _check(Sequential([MaxPool2d(2), Flatten()]), x, {})


def test_nll_loss_gradient_and_value():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 10))
    y = rng.integers(0, 10, 6)
    loss, dz, _ = F.nll_loss(z, y)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(6), y])), rel=1e-12)

    def f():
        return F.nll_loss(z, y)[0]

    np.testing.assert_allclose(dz, _numgrad(f, z), rtol=1e-6, atol=1e-9)


def test_sigmoid_is_stable_for_large_inputs():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    y = F.sigmoid(x)
    assert np.all(np.isfinite(y)) and y[0] == 0.0 and y[-1] == 1.0 and y[2] == 0.5
