"""Tiki-Taka v1 compound tile: transfer schedule, fractional and sub-batch periods, state."""
import numpy as np
import pytest

from crossbar_sim import ConfigError, IOParameters, UpdateParameters
from crossbar_sim.tiles.tiki_taka import CompoundTileConfig, TikiTakaTile, TransferCompound
from crossbar_sim.device_models import SoftBoundsReferenceDevice


def _tt(**kw):
    dev = SoftBoundsReferenceDevice(w_max=0.6, w_min=-0.6)
    tc = TransferCompound(device_a=dev, device_c=dev, transfer_forward=IOParameters(is_perfect=True), **kw)
    return TikiTakaTile(4, 6, CompoundTileConfig(device=tc), seed=1)


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.5, (n, 6)).astype(np.float32), rng.normal(0, 0.5, (n, 4)).astype(np.float32)


@pytest.mark.parametrize("transfer_every, units_in_mbatch, batch, expected", [
    (1.0, True, 8, 3),      # once per mini-batch
    (0.5, True, 8, 6),      # every ceil(0.5 * 8) = 4 samples: sub-batch period
    (0.3, False, 8, 24),    # round(0.3) = 0 would never transfer (aihwkit): we transfer every sample
    (3.0, False, 8, 8),     # every 3 samples, mid-batch, across batch boundaries
    (2.5, True, 8, 1),      # every ceil(2.5 * 8) = 20 samples
])
def test_transfer_schedule(transfer_every, units_in_mbatch, batch, expected):
    t = _tt(transfer_every=transfer_every, units_in_mbatch=units_in_mbatch)
    X, D = _data(3 * batch)
    for k in range(3):
        t.update(X[k * batch:(k + 1) * batch], D[k * batch:(k + 1) * batch], 0.1)
    assert t.counters["n_transfers"] == expected
    assert t.pointer == expected % 6  # one column per transfer, wrapping


def test_transfer_disabled_leaves_c_unchanged():
    t = _tt(transfer_every=0.0)
    c0 = t.c.read_weights()
    X, D = _data(20)
    t.update(X, D, 0.1)
    np.testing.assert_array_equal(t.c.read_weights(), c0)
    assert t.a.counters["n_pulses"] > 0 and t.c.counters["n_pulses"] == 0


def test_batch_split_does_not_change_the_result():
    X, D = _data(24, seed=3)
    a = _tt(transfer_every=5.0, units_in_mbatch=False)
    b = _tt(transfer_every=5.0, units_in_mbatch=False)
    a.update(X, D, 0.1)
    for k in range(0, 24, 7):
        b.update(X[k:k + 7], D[k:k + 7], 0.1)
    np.testing.assert_array_equal(a.a.read_weights(), b.a.read_weights())
    np.testing.assert_array_equal(a.c.read_weights(), b.c.read_weights())


def test_fast_lr_and_gamma():
    X, D = _data(10)
    t = _tt(fast_lr=-1.0, gamma=0.5, transfer_every=0.0)  # fast_lr <= 0: use the SGD lr
    t.update(X, D, 0.1)
    np.testing.assert_allclose(t.read_weights(), 0.5 * t.a.read_weights() + t.c.read_weights(), rtol=1e-6)
    assert t.a.counters["n_pulses"] > 0


def test_state_round_trip():
    X, D = _data(30, seed=4)
    a = _tt(transfer_every=2.0, units_in_mbatch=False, n_reads_per_transfer=2)
    a.update(X[:13], D[:13], 0.1)
    b = TikiTakaTile.from_state(a.get_state())
    a.update(X[13:], D[13:], 0.1)
    b.update(X[13:], D[13:], 0.1)
    np.testing.assert_array_equal(a.c.read_weights(), b.c.read_weights())
    np.testing.assert_array_equal(a.a.read_weights(), b.a.read_weights())
    assert a.pointer == b.pointer and a.samples_seen == b.samples_seen


def test_bad_transfer_parameters():
    with pytest.raises(ConfigError, match="'transfer_every' parameter of TransferCompound must be a float in"):
        _tt(transfer_every=-1.0)
    with pytest.raises(ConfigError, match="'n_reads_per_transfer' parameter of TransferCompound must be an int"):
        _tt(n_reads_per_transfer=0)
    with pytest.raises(ConfigError, match="'device_a' parameter of TransferCompound must be a device model"):
        TransferCompound(device_a=UpdateParameters())
