"""aihwkit's tile mapping of large layers (``MappingParameter.max_input_size`` / ``max_output_size``, 512): a layer with
more inputs or outputs lives on a grid of near-equal tiles (``TileModuleArray``), each with its own periphery, pulse
update and learnable output scale, summed in digital with a digital bias. aihwkit 0.9.0 (the paper's version) and
1.1.0 both map the paper's FCN 784-input layer onto two 256 x 392 tiles with two out scales."""
import numpy as np
import pytest

from crossbar_sim import AnalogTile, TileConfig
from crossbar_sim.device_models import SoftBoundsReferenceDevice
from crossbar_sim.errors import ConfigError
from crossbar_sim.experiments.mnist_paper import paper_config
from crossbar_sim.nn import NetConfig
from crossbar_sim.nn.layers import AnalogLinear, DigitalTile, TileArray, split_sizes
from crossbar_sim.nn.models import build_model
from crossbar_sim.tiles.params import IOParameters


def test_split_sizes_are_aihwkits():
    # aihwkit TileModuleArray.get_split_sizes: ceil(n / max) parts, near-equal, larger first
    assert split_sizes(784, 512) == [392, 392]
    assert split_sizes(1000, 512) == [500, 500] and split_sizes(1100, 512) == [367, 367, 366]
    assert split_sizes(512, 512) == [512] and split_sizes(513, 512) == [257, 256]
    assert split_sizes(784, 0) == [784]


@pytest.mark.parametrize("algorithm", ["analog_sgd", "tiki_taka"])
def test_paper_fcn_first_layer_is_two_tiles_with_two_out_scales(algorithm):
    model = build_model(paper_config("fcn", algorithm, 0.78), 0)
    l0, l1, l2 = model.weight_layers().values()
    assert isinstance(l0.tile, TileArray) and l0.tile.in_sizes == [392, 392] and l0.tile.out_sizes == [256]
    assert [(p[0], p[2].in_size, p[2].out_size) for p in l0.tile.parts] == [(slice(0, 392), 392, 256),
                                                                            (slice(392, 784), 392, 256)]
    assert l0.alpha.value.shape == (2,) and l0.bias is not None  # one out scale per tile, digital bias
    assert not isinstance(l1.tile, TileArray) and l1.alpha.value.shape == (1,)
    assert not isinstance(l2.tile, TileArray)
    # the two tiles are distinct devices (own seeds), the logical weights the PyTorch init of the whole layer
    a, b = (p[2] for p in l0.tile.parts)
    w = l0.tile.read_weights()
    assert w.shape == (256, 784) and np.abs(w).max() <= 1 / 28 + 1e-6
    np.testing.assert_array_equal(w[:, 392:], b.read_weights())
    # the paper's CNN has no layer above 512 inputs: no split; max_input_size=0 turns the mapping off
    assert not any(isinstance(l.tile, TileArray) for l in build_model(paper_config("cnn", algorithm, 0.6), 0)
                   .weight_layers().values())
    l0 = next(iter(build_model(paper_config("fcn", algorithm, 0.78, max_input_size=0), 0).weight_layers().values()))
    assert not isinstance(l0.tile, TileArray) and l0.alpha.value.shape == (1,)
    # digital layers and the digital reference are never split
    assert not isinstance(build_model(paper_config("fcn", "digital_sgd", 0.78), 0).layers[0].tile, TileArray)


def test_mapping_sizes_are_validated():
    with pytest.raises(ConfigError, match="max_input_size"):
        NetConfig(max_input_size=-1)
    assert NetConfig.from_dict({k: v for k, v in NetConfig().to_dict().items()
                                if k not in ("max_input_size", "max_output_size")}).max_input_size == 512


def test_tile_array_layer_math_is_the_sum_of_scaled_blocks():
    """Exact (digital) blocks: y = sum_k alpha_k W_k x_k + b; grads of alpha_k, x and the per-block updates."""
    rng = np.random.default_rng(3)
    arr = TileArray(5, 7, lambda o, i, k: DigitalTile(o, i, np.float64), max_input_size=3, max_output_size=3)
    assert arr.in_sizes == [3, 2, 2] and arr.out_sizes == [3, 2] and arr.n_tiles == 6
    layer = AnalogLinear(7, 5, arr, out_scaling=True, rng=rng)
    layer.alpha.value[:] = rng.uniform(0.5, 2.0, 6)
    W = [p[2].read_weights().copy() for p in arr.parts]
    x = rng.normal(size=(4, 7))
    y = layer.forward(x)
    ref = np.tile(layer.bias.value, (4, 1))
    for k, (si, so, _) in enumerate(arr.parts):
        ref[:, so] += layer.alpha.value[k] * x[:, si] @ W[k].T
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    np.testing.assert_allclose(layer.weight(), sum(
        np.pad(layer.alpha.value[k] * W[k], ((so.start, 5 - so.stop), (si.start, 7 - si.stop)))
        for k, (si, so, _) in enumerate(arr.parts)), rtol=1e-12)
    dy = rng.normal(size=(4, 5))
    dx = layer.backward(dy, need_dx=True)
    for k, (si, so, _) in enumerate(arr.parts):
        assert layer.alpha.grad[k] == pytest.approx(np.sum(dy[:, so] * (x[:, si] @ W[k].T)))
    # finite differences of L = sum(dy * y) w.r.t. x
    eps, num = 1e-6, np.zeros_like(x)
    layer.train(False)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num[idx] = (np.sum(dy * layer.forward(xp)) - np.sum(dy * layer.forward(xm))) / (2 * eps)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)
    layer.train(True)
    alphas = layer.alpha.value.copy()
    layer.step(0.1)  # every block: W_k -= lr (alpha_k dY_k)^T X_k
    for k, (si, so, t) in enumerate(arr.parts):
        np.testing.assert_allclose(t.read_weights(), W[k] - 0.1 * (alphas[k] * dy[:, so]).T @ x[:, si], rtol=1e-12)


def test_each_tile_reads_through_its_own_periphery():
    """With analog tiles the layer output is the sum of each tile's own forward (its own noise management,
    DAC/ADC scale), not one forward of the whole matrix."""
    io = IOParameters(out_noise=0.0)
    cfg = TileConfig(device=SoftBoundsReferenceDevice(w_max=0.78, w_min=-0.78), forward=io, backward=io)
    arr = TileArray(16, 784, lambda o, i, k: AnalogTile(o, i, cfg, seed=k), max_input_size=512)
    layer = AnalogLinear(784, 16, arr, out_scaling=True, rng=np.random.default_rng(0))
    layer.alpha.value[:] = [0.5, 2.0]
    rng = np.random.default_rng(1)
    x = np.concatenate([0.01 * rng.random((3, 392)), rng.random((3, 392))], axis=1).astype(np.float32)
    y = layer.forward(x)
    parts = [layer.alpha.value[k] * t.forward(np.ascontiguousarray(x[:, si])) for k, (si, _, t) in enumerate(arr.parts)]
    np.testing.assert_array_equal(y, parts[0] + parts[1] + layer.bias.value)
    # the small-input half, read alone with its own noise management, keeps its signal; through a 784-input
    # tile with the large half its inputs (0..0.01) fall to one or two DAC steps (1/63 of max|x| = 1)
    t0 = arr.parts[0][2]
    exact0 = x[:, :392] @ t0.read_weights().T
    err_own = np.abs(t0.forward(np.ascontiguousarray(x[:, :392])) - exact0).max()
    whole = AnalogTile(16, 784, cfg, seed=5)
    whole.set_weights(np.concatenate([t0.read_weights(), np.zeros((16, 392), np.float32)], axis=1))
    err_whole = np.abs(whole.forward(x) - exact0).max()
    assert err_own < 0.2 * err_whole
