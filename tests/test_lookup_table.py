"""Measured lookup-table device: packaged data, kernel vs NumPy twin, per-pulse statistics, range clipping."""
import numpy as np
import pytest

from crossbar_sim import AnalogTile, ConfigError, TileConfig, UpdateParameters
from crossbar_sim.device_models import LookupTableDevice, get_device
from crossbar_sim.device_models.lookup_table import TABLES, load_table
from crossbar_sim.kernels import reference as R
from crossbar_sim.kernels import update as K


@pytest.mark.parametrize("table", sorted(TABLES))
def test_packaged_tables_load(table):
    g, cdf, up, down = load_table(table)
    assert up.shape == down.shape == (cdf.size, g.size)
    assert np.all(np.diff(g) > 0) and cdf[0] == 0.0 and cdf[-1] == 1.0
    # quantiles increase with the CDF level (the measured TaOx tables are monotone only up to noise, so
    # compare the 10 % and 90 % levels of every bin)
    i10, i90 = np.searchsorted(cdf, 0.1), np.searchsorted(cdf, 0.9)
    assert np.all(up[i90] >= up[i10]) and np.all(down[i90] >= down[i10])
    dev = LookupTableDevice(table=table)
    assert dev.dw_min > 0 and np.isfinite(dev.n_states)


def test_kernel_pulse_equals_twin():
    dev = LookupTableDevice(table="TaOx_dev2")
    tp = dev.tile_params()
    rng = np.random.default_rng(0)
    w = rng.uniform(-1.1, 1.1, 300)
    u = rng.random(300)
    upm = rng.random(300) < 0.5
    su, sd = 1.3 * dev.dw_min, 0.7 * dev.dw_min
    ker = np.array([K.one_pulse(w[k], upm[k], su, sd, 0.0, 0.0, 0.0, -1.0, 1.0, K.MODEL_TABLE, 0, 0.0, tp, u[k])
                    for k in range(w.size)])
    ref = R.one_pulse(w, upm, su, sd, 0.0, 0.0, 0.0, -1.0, 1.0, K.MODEL_TABLE, 0, 0.0, tp, u)
    np.testing.assert_allclose(ker, ref, rtol=1e-12, atol=1e-12)


def test_pulses_sample_the_table_and_stay_in_range():
    # many devices at the same G bin, one up pulse each: the sampled changes follow the measured quantiles
    dev = LookupTableDevice(table="ENODe")
    gw, cdf, up_rel, _ = dev._tables()
    j = gw.size // 2
    n = 4000
    tile = AnalogTile(n, 1, TileConfig.perfect(dev, UpdateParameters(pulse_type="mean_count", desired_bl=1,
                                                                      update_bl_management=False,
                                                                      update_management=False)), seed=1)
    tile.set_weights(np.full((n, 1), gw[j], np.float32))
    tile.update(np.ones(1), -np.ones(n), lr=dev.dw_min)  # exactly one up pulse per device
    dw = (tile.read_weights()[:, 0] - np.float32(gw[j])) / dev.dw_min
    for q in (0.25, 0.5, 0.75):
        # sample quantile vs table quantile: 4000 draws, the quantile's std error is ~0.02 of the spread
        spread = np.interp(0.9, cdf, up_rel[:, j]) - np.interp(0.1, cdf, up_rel[:, j])
        assert np.quantile(dw, q) == pytest.approx(np.interp(q, cdf, up_rel[:, j]), abs=0.1 * spread + 1e-3)
    # range: 300 up pulses drive every device to (and not beyond) the top of the measured range
    for _ in range(300):
        tile.update(np.ones(1), -np.ones(n), lr=dev.dw_min)
    w = tile.read_weights()
    assert w.max() <= dev.w_max + 1e-6 and w.min() >= dev.w_min - 1e-6


def test_dw_min_rescales_and_bad_table():
    d0 = LookupTableDevice(table="ENODe")
    d1 = LookupTableDevice(table="ENODe", dw_min=2 * d0.dw_min)
    np.testing.assert_allclose(d1._tables()[2] * d1.dw_min, 2 * d0._tables()[2] * d0.dw_min)
    assert get_device("LookupTable", table="TaOx_dev1").table == "TaOx_dev1"
    with pytest.raises(ConfigError, match="The 'table' parameter of LookupTableDevice"):
        LookupTableDevice(table="no-such-table")
