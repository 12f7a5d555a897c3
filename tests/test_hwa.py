"""Hardware-aware training (issue 18): the weight-modifier kernel against its NumPy twin, the modifier applied once
per mini-batch to the forward and backward reads only (not the update, not the evaluation), clipping rules.

Statistical tolerance: 40000 deviates per check; a measured std is within 3 % (6 standard errors) of the
configured one, a mean within 6 standard errors of 0, a drop fraction within 6 binomial standard errors.
"""
import numpy as np
import pytest
from crossbar_sim.kernels import modifier as KM
from crossbar_sim.kernels import reference_modifier as RM

from crossbar_sim import ConfigError, IOParameters
from crossbar_sim.inference import WeightClip, WeightModifier
from crossbar_sim.inference.hwa import (
    clear_modified_weights,
    clip_weights,
    modify_weights,
    weight_tiles,
)
from crossbar_sim.nn import NetConfig, NetTrainer
from crossbar_sim.nn.layers import DigitalTile

PERFECT = IOParameters.perfect()


def _w(shape=(200, 201), seed=0):  # odd size: the kernel's unpaired last element is covered
    return np.random.default_rng(seed).uniform(-0.5, 0.5, shape).astype(np.float32)


def _kernel(W, kind, std, a, pdrop, key=12345):
    out = np.empty_like(W)
    KM.weight_modifier(W, out, kind, std, a, pdrop, np.uint64(key))
    return out


def test_kernel_without_noise_is_the_twin_exactly():
    W = _w()
    for kind in (KM.MOD_NONE, KM.MOD_ADD_NORMAL, KM.MOD_MULT_NORMAL):
        np.testing.assert_array_equal(_kernel(W, kind, 0.0, 0.7, 0.0), W)
        np.testing.assert_array_equal(RM.weight_modifier(W, kind, 0.0, 0.7, 0.0, np.random.default_rng(0)), W)


@pytest.mark.parametrize("impl", ["kernel", "twin"])
def test_additive_and_multiplicative_noise_statistics(impl):
    W = _w()
    run = (lambda *a: _kernel(W, *a)) if impl == "kernel" else \
        (lambda *a: RM.weight_modifier(W, *a, np.random.default_rng(3)))
    z = (run(KM.MOD_ADD_NORMAL, 0.1, 0.5, 0.0).astype(np.float64) - W) / (0.1 * 0.5)  # std_dev relative to a
    assert z.std() == pytest.approx(1.0, rel=0.03) and abs(z.mean()) < 6 / np.sqrt(z.size)
    z = (run(KM.MOD_MULT_NORMAL, 0.2, 0.5, 0.0).astype(np.float64) / W - 1.0) / 0.2  # relative to w, not a
    assert z.std() == pytest.approx(1.0, rel=0.03) and abs(z.mean()) < 6 / np.sqrt(z.size)
    dropped = run(KM.MOD_NONE, 0.0, 1.0, 0.25) == 0.0
    assert dropped.mean() == pytest.approx(0.25, abs=6 * np.sqrt(0.25 * 0.75 / W.size))


def test_kernel_is_a_function_of_its_key():
    W = _w()
    a = _kernel(W, KM.MOD_ADD_NORMAL, 0.1, 1.0, 0.1, key=7)
    np.testing.assert_array_equal(a, _kernel(W, KM.MOD_ADD_NORMAL, 0.1, 1.0, 0.1, key=7))
    assert not np.array_equal(a, _kernel(W, KM.MOD_ADD_NORMAL, 0.1, 1.0, 0.1, key=8))


def _trainer(**kw):
    rng = np.random.default_rng(0)
    data = {"x_train": rng.integers(0, 256, (24, 28, 28), dtype=np.uint8), "y_train": rng.integers(0, 10, 24),
            "x_test": rng.integers(0, 256, (8, 28, 28), dtype=np.uint8), "y_test": rng.integers(0, 10, 8)}
    base = {"algorithm": "analog_sgd", "forward": PERFECT, "backward": PERFECT, "batch_size": 8, "n_train": 24,
            "n_test": 8, "lr": 0.1}
    base.update(kw)
    return NetTrainer(NetConfig(**base), seed=3, data=data)


def test_modifier_reads_once_per_batch_forward_and_backward_not_the_update():
    """The noisy copy replaces the weights of the forward and backward reads of one mini-batch; the devices keep
    their weights (only the update moves them); evaluation and the next batch read the tiles' own weights."""
    mod = WeightModifier(kind="add_normal", std_dev=0.2)
    tr = _trainer(modifier=mod, learn_out_scaling=False)
    x = tr.data["x_train"][:8]
    layer = tr.model.layers[4]  # the 128 -> 10 layer (one tile)
    w0 = layer.tile.read_weights()
    modify_weights(tr.model, mod, np.uint64(99))
    noisy = layer.tile._fb_weights
    assert noisy is not None and not np.array_equal(noisy, w0)
    h = tr.model.layers[3].forward(tr.model.layers[2].forward(tr.model.layers[1].forward(
        tr.model.layers[0].forward(x))))
    np.testing.assert_allclose(layer.forward(h), h @ noisy.T + layer.bias.value, rtol=1e-5, atol=1e-6)
    d = np.ones((8, 10), np.float32)
    layer.forward(h)
    np.testing.assert_allclose(layer.backward(d), d @ noisy, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(layer.tile.read_weights(), w0)  # the devices are untouched
    clear_modified_weights(tr.model)
    assert layer.tile._fb_weights is None
    # a training step leaves no modified weights behind, and an eval is the same before and after it
    tr.train_step(tr.data["x_train"][:8], tr.data["y_train"][:8], 0.1)
    assert all(t._fb_weights is None for _, t in weight_tiles(tr.model))
    e1, e2 = tr.evaluate(), tr.evaluate()
    assert e1 == e2


def test_modifier_changes_training_deterministically():
    runs = []
    for mod in (WeightModifier(), WeightModifier(kind="add_normal", std_dev=0.0),
                WeightModifier(kind="mult_normal", std_dev=0.3), WeightModifier(kind="mult_normal", std_dev=0.3)):
        tr = _trainer(modifier=mod)
        tr.run_epoch()
        runs.append(tr.model.layers[0].tile.read_weights())
    np.testing.assert_array_equal(runs[0], runs[1])  # std 0: inactive, bit-identical to no modifier
    np.testing.assert_array_equal(runs[2], runs[3])  # same seed: same noise
    assert not np.array_equal(runs[0], runs[2])


def test_modifier_on_digital_layers():
    tile = DigitalTile(3, 4)
    tile.set_weights(np.ones((3, 4)))
    tile.set_forward_weights(np.full((3, 4), 2.0))
    np.testing.assert_array_equal(tile.forward(np.ones((1, 4), np.float32)), [[8.0, 8.0, 8.0]])
    np.testing.assert_array_equal(tile.backward(np.ones((1, 3), np.float32)), [[6.0] * 4])
    tile.set_forward_weights(None)
    np.testing.assert_array_equal(tile.forward(np.ones((1, 4), np.float32)), [[4.0, 4.0, 4.0]])


@pytest.mark.parametrize("algorithm", ["digital_sgd", "analog_sgd", "tiki_taka"])
def test_clip_rules(algorithm):
    tr = _trainer(algorithm=algorithm)
    for layer in tr.model.weight_layers().values():
        layer.tile.set_weights(np.random.default_rng(1).uniform(-0.7, 0.7, (layer.tile.out_size,
                                                                          layer.tile.in_size)))
    w = tr.model.layers[4].tile.read_weights()
    c_g = 2.0 * w.astype(np.float64).std(ddof=1)
    c_a = np.abs(w).max(axis=1).mean()
    for clip, c in ((WeightClip(kind="fixed_value", fixed_value=0.3), 0.3),
                    (WeightClip(kind="layer_gaussian", sigma=2.0), c_g),
                    (WeightClip(kind="average_channel_max"), c_a),
                    (WeightClip(kind="average_channel_max", fixed_value=0.05), 0.05)):
        assert clip.clip_value(w) == pytest.approx(c, rel=1e-6)
    clip_weights(tr.model, WeightClip(kind="fixed_value", fixed_value=0.3))
    for layer in tr.model.weight_layers().values():
        assert np.abs(layer.tile.read_weights()).max() <= 0.3 + 1e-7


def test_clip_is_refused_on_one_sided_pairs_and_bad_values():
    from crossbar_sim.device_models import get_preset

    with pytest.raises(ConfigError, match="'clip' parameter of NetConfig"):
        NetConfig(device=get_preset("PCM"), clip=WeightClip(kind="fixed_value", fixed_value=1.0))
    with pytest.raises(ConfigError, match="'fixed_value' parameter"):
        WeightClip(kind="fixed_value")
    with pytest.raises(ConfigError, match="'kind' parameter"):
        WeightModifier(kind="poly")
    with pytest.raises(ConfigError, match="'pdrop' parameter"):
        WeightModifier(pdrop=1.0)
