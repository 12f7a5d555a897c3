"""AnalogTile: bad input, determinism, state round trip, periphery switches."""
import numpy as np
import pytest

from crossbar_sim import (AnalogTile, ConfigError, IOParameters, NonFiniteError, ShapeError, TileConfig,
                          UpdateParameters)
from crossbar_sim.device_models import SoftBoundsDevice


def _tile(seed=0, **kw):
    return AnalogTile(5, 7, TileConfig(device=SoftBoundsDevice(write_noise_std=1.0), **kw), seed=seed)


def test_nan_inputs_are_rejected_naming_the_argument():
    t = _tile()
    x = np.ones(7)
    x[3] = np.nan
    with pytest.raises(NonFiniteError, match=r"'x' contains 1 non-finite value"):
        t.update(x, np.ones(5), 0.1)
    d = np.ones(5)
    d[0] = np.inf
    with pytest.raises(NonFiniteError, match=r"'d' contains 1 non-finite value"):
        t.update(np.ones(7), d, 0.1)
    with pytest.raises(NonFiniteError, match=r"'x' contains"):
        t.forward(x)
    with pytest.raises(NonFiniteError, match=r"'w' contains"):
        t.set_weights(np.full((5, 7), np.nan))


def test_shape_mismatches():
    t = _tile()
    with pytest.raises(ShapeError, match=r"'x' must have shape \(7,\) or \(batch, 7\). Got shape \(6,\)"):
        t.forward(np.ones(6))
    with pytest.raises(ShapeError, match=r"'d' must have shape \(5,\) or \(batch, 5\)"):
        t.backward(np.ones((2, 4)))
    with pytest.raises(ShapeError, match="same batch size"):
        t.update(np.ones((3, 7)), np.ones((2, 5)), 0.1)
    with pytest.raises(ShapeError, match=r"'w' must have shape \(5, 7\)"):
        t.set_weights(np.ones((7, 5)))


def test_bad_scalars():
    t = _tile()
    with pytest.raises(ConfigError, match=r"'lr' parameter of AnalogTile.update must be a float in "
                                          r"\[0, 3.40282e\+38\]"):
        t.update(np.ones(7), np.ones(5), -0.1)
    with pytest.raises(ConfigError, match=r"'out_size' parameter of AnalogTile must be an int"):
        AnalogTile(0, 3)
    with pytest.raises(ConfigError, match="'seed' parameter must be None, an int >= 0"):
        AnalogTile(2, 3, seed=-1)
    with pytest.raises(ConfigError, match="'config' parameter of AnalogTile must be a TileConfig"):
        AnalogTile(2, 3, config=SoftBoundsDevice())


def test_same_seed_bit_identical_and_different_seed_differs():
    rng = np.random.default_rng(0)
    X = rng.normal(0, 0.5, (10, 7)).astype(np.float32)
    D = rng.normal(0, 0.5, (10, 5)).astype(np.float32)
    outs = []
    for seed in (3, 3, 4):
        t = _tile(seed)
        t.update(X, D, 0.1)
        outs.append((t.read_weights(), t.forward(X), t.backward(D)))
    for a, b in zip(outs[0], outs[1]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(outs[0][0], outs[2][0])


def test_state_round_trip_continues_bit_identically():
    """aihw #320/#385/#595: a saved and reloaded tile continues exactly (device params and RNG included)."""
    rng = np.random.default_rng(1)
    X = rng.normal(0, 0.5, (20, 7)).astype(np.float32)
    D = rng.normal(0, 0.5, (20, 5)).astype(np.float32)
    a = _tile(9)
    a.update(X[:10], D[:10], 0.1)
    a.forward(X[:3])
    state = a.get_state()
    b = AnalogTile.from_state(state)
    for t in (a, b):
        t.update(X[10:], D[10:], 0.1)
    np.testing.assert_array_equal(a.read_weights(), b.read_weights())
    np.testing.assert_array_equal(a.hidden_weights(), b.hidden_weights())
    np.testing.assert_array_equal(a.forward(X), b.forward(X))
    np.testing.assert_array_equal(a.pulse_counts, b.pulse_counts)
    assert a.counters == b.counters
    # the state is plain data: arrays and JSON-able values
    assert isinstance(state["config"], str)


def test_perfect_periphery_is_exact_and_default_periphery_is_noisy():
    rng = np.random.default_rng(2)
    W = rng.uniform(-0.5, 0.5, (5, 7)).astype(np.float32)
    X = rng.normal(0, 1, (50, 7)).astype(np.float32)
    p = AnalogTile(5, 7, TileConfig.perfect(SoftBoundsDevice()), seed=0)
    p.set_weights(W)
    np.testing.assert_allclose(p.forward(X), X @ p.read_weights().T, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(p.backward(X[:, :5]), X[:, :5] @ p.read_weights(), rtol=1e-6, atol=1e-6)
    d = AnalogTile(5, 7, TileConfig(device=SoftBoundsDevice()), seed=0)
    d.set_weights(W)
    err = d.forward(X) - X @ d.read_weights().T
    assert 0 < np.abs(err).mean() < 0.2
    assert d.counters["mvm"] == 50 and d.counters["dac"] == 50 * 7 and d.counters["adc"] == 50 * 5


def test_io_parameters_validation():
    with pytest.raises(ConfigError, match="'out_noise' parameter of IOParameters must be a float in"):
        IOParameters(out_noise=-1.0)
    with pytest.raises(ConfigError, match="'noise_management' parameter of IOParameters must be one of"):
        IOParameters(noise_management="max")
    with pytest.raises(ConfigError, match="'update' parameter of TileConfig must be a UpdateParameters"):
        TileConfig(update=IOParameters())


def test_pulse_type_none_is_digital():
    t = AnalogTile(3, 4, TileConfig.perfect(SoftBoundsDevice(), UpdateParameters(pulse_type="none")), seed=0)
    x = np.array([1.0, 2.0, 0.0, -1.0], np.float32)
    d = np.array([1.0, -1.0, 0.5], np.float32)
    for _ in range(100):  # far beyond the device bounds: 'none' ignores them
        t.update(x, d, 0.1)
    np.testing.assert_allclose(t.read_weights(), -10.0 * np.outer(d, x), rtol=1e-5)
    assert t.counters["n_pulses"] == 0
