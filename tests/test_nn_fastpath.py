"""The internal fast paths the network layers use give exactly what the public, validating paths give."""
import numpy as np
import pytest

from crossbar_sim import AnalogTile, TileConfig
from crossbar_sim.tiles.tiki_taka import CompoundTileConfig, TikiTakaTile, TransferCompound
from crossbar_sim.device_models import asymmetric_linear_device
from crossbar_sim.tiles.params import IOParameters
from crossbar_sim.tiles.periphery import analog_mvm, read_columns
from crossbar_sim.tiles.analog import zig_tables


@pytest.mark.parametrize("io", [IOParameters(), IOParameters(noise_management="none", bound_management="none"),
                                IOParameters(out_sto_round=True, w_noise=0.1, w_noise_type="additive_constant"),
                                IOParameters(inp_res=0.3, out_noise=0.2), IOParameters(inp_noise=0.1)])
@pytest.mark.parametrize("cols", [[7], [0, 49, 7]])
def test_read_columns_equals_one_hot_mvm(io, cols):
    rng = np.random.default_rng(0)
    W = rng.uniform(-0.3, 0.3, (37, 50)).astype(np.float32)
    W[3, 7] = 20.0  # an output beyond the ADC range: bound management passes
    E = np.zeros((len(cols), 50), np.float32)
    E[np.arange(len(cols)), cols] = 1.0
    ca, cb = {"mvm": 0, "dac": 0, "adc": 0}, {"mvm": 0, "dac": 0, "adc": 0}
    a = analog_mvm(W, E, io, np.uint64(9), 3, zig_tables(), counters=ca)
    b = read_columns(W, cols, io, np.uint64(9), 3, zig_tables(), counters=cb)
    np.testing.assert_array_equal(a, b)
    assert ca == cb


def test_unchecked_paths_equal_public_paths():
    dev = asymmetric_linear_device(0.7, variations=True)
    rng = np.random.default_rng(1)
    X = rng.random((6, 20)).astype(np.float32)
    D = rng.normal(0, 0.05, (6, 9)).astype(np.float32)
    for make in (lambda: AnalogTile(9, 20, TileConfig(device=dev), seed=4),
                 lambda: TikiTakaTile(9, 20, CompoundTileConfig(device=TransferCompound(device_a=dev, device_c=dev,
                                                                                         fast_lr=0.05)), seed=4)):
        t1, t2 = make(), make()
        for _ in range(3):
            np.testing.assert_array_equal(t1.forward(X), t2._forward(X))
            np.testing.assert_array_equal(t1.backward(D), t2._backward(D))
            t1.update(X, D, 0.05)
            t2._update(X, D, 0.05)
        np.testing.assert_array_equal(t1.read_weights(), t2.read_weights())
