"""One contract for every device model and every preset: construct, pulse up and down through a tile, bounds
per device after every update, symmetric point, number of states."""
import numpy as np
import pytest

from crossbar_sim import ConfigError, IOParameters, UpdateParameters
from crossbar_sim.tiles.onesided import OneSidedUnitCell, make_array
from crossbar_sim.device_models import DEVICE_MODELS, get_device, get_preset, list_presets
from crossbar_sim.device_models.presets import PRESETS

MODELS = {name: cls() for name, cls in DEVICE_MODELS.items()}
PRESET_DEVICES = {name: dev for name, (dev, _) in list_presets().items()}
ALL = {**{f"model:{k}": v for k, v in MODELS.items()}, **{f"preset:{k}": v for k, v in PRESET_DEVICES.items()}}


@pytest.mark.parametrize("name", sorted(ALL))
def test_device_contract(name):
    cell = ALL[name]
    # a one-sided pair preset (PCM): its unit device passes the device checks, the pair the tile checks below
    pair = isinstance(cell, OneSidedUnitCell)
    dev = cell.unit_device if pair else cell
    # number of states: (w_max - w_min) / dw_min (aihwkit's definition)
    assert dev.n_states == pytest.approx((dev.w_max - dev.w_min) / dev.dw_min)
    assert dev.granularity() > 0
    # symmetric point: where the mean up and down steps cancel (nan if there is none)
    sp = dev.symmetric_point()
    if np.isfinite(sp):
        up, down = dev.mean_steps()
        assert dev.w_min <= sp <= dev.w_max
        def h(w):
            return up * float(dev.q_plus(w)) - down * float(dev.q_minus(w))

        # a root of h, or (measured tables: piecewise-constant q) a sign change of h across it
        d = 1e-3 * (dev.w_max - dev.w_min)
        assert abs(h(sp)) <= 1e-6 * max(up, down) or h(max(sp - d, dev.w_min)) * h(min(sp + d, dev.w_max)) <= 0
    # through a tile: 60 updates up, then 60 down, bounds held per device after every update
    upd = UpdateParameters(desired_bl=31)
    perfect = IOParameters(is_perfect=True)
    tile = make_array(6, 7, cell, upd, perfect, perfect, seed=3)
    lo, hi = tile.w_min_bound, tile.w_max_bound
    assert np.all(lo <= 0) and np.all(hi >= 0)
    w0 = np.clip(np.full(tile.shape, sp if np.isfinite(sp) and not pair else 0.0, np.float32), lo, hi)
    tile.set_weights(w0)
    x = np.ones(7, np.float32)
    lr = 5 * cell.granularity()
    arrays = list(tile.tiles.values()) if pair else [tile]
    means = [tile.hidden_weights().mean()]
    for sign in (-1.0, 1.0):  # d = -1: W <- W + lr x (up pulses); d = +1: down pulses
        for _ in range(60):
            tile.update(x, np.full(6, sign, np.float32), lr)
            w = tile.hidden_weights()
            assert np.all(w >= lo - 1e-6) and np.all(w <= hi + 1e-6)
            for a in arrays:  # each device of a pair within its own bounds too
                assert np.all(a.hidden_weights() >= a.w_min_bound) and np.all(a.hidden_weights() <= a.w_max_bound)
        means.append(tile.hidden_weights().mean())
    assert tile.counters["n_pulses_up"] > 0
    if pair:  # w moved down by potentiating g_minus: no device of the pair ever received a down pulse
        assert all(a.counters["n_pulses_up"] > 0 and a.pulse_counts[..., 1].sum() == 0 for a in arrays)
        assert tile.counters["n_pulses_down"] == 0
    else:
        assert tile.counters["n_pulses_down"] > 0
    assert means[1] > means[0] and means[2] < means[1]


def test_presets_have_sources_and_docstrings():
    for name, (factory, source) in PRESETS.items():
        assert "et al" in source or "Gokmen" in source, name
        assert "aihwkit" in source
        assert factory.__doc__ and ("et al" in factory.__doc__ or "Gokmen" in factory.__doc__), name


def test_preset_lookup():
    assert get_device("EcRam") == get_preset("ecram")
    assert get_preset("ReRamES", dw_min=0.01).dw_min == 0.01
    assert get_device("SoftBounds").__class__.__name__ == "SoftBoundsDevice"
    with pytest.raises(ConfigError, match="Unknown preset 'nope'"):
        get_preset("nope")
    with pytest.raises(ConfigError, match="Unknown device 'nope'"):
        get_device("nope")


def test_preset_values_match_source():
    # a few numbers as published in aihwkit's presets (Tang 2018 ECRAM, Gong 2018 ReRAM, IEDM 2022 array)
    e = get_preset("EcRam")
    assert (e.gamma_up, e.gamma_down, e.w_max, e.w_min) == (0.1153, 0.5085, 1.1724, -0.8276)
    r = get_preset("ReRamES")
    assert (r.A_up, r.A_down, r.a, r.b, r.up_down) == (-1.18445, -0.081404, -0.5, -0.5, 0.259359)
    a = get_preset("ReRamArrayHfO2")
    assert a.dw_min == 0.4622 and a.dw_min_dtod_log_normal and a.subtract_symmetry_point
    # aihwkit PCMPresetUnitCell: the PCMPresetDevice pair, refresh every mini-batch, PresetIOParameters read
    p = get_preset("PCM")
    assert isinstance(p, OneSidedUnitCell) and p.unit_device == get_preset("PCMUnit")
    assert (p.refresh_every, p.units_in_mbatch, p.refresh_upper_thres, p.refresh_lower_thres) == (1, True, 0.75, 0.25)
    assert (p.refresh_forward.out_bound, p.refresh_forward.out_noise, p.refresh_update.desired_bl) == (20.0, 0.1, 31)
    u = p.unit_device
    assert (u.A_up, u.A_down, u.w_max, u.w_min, u.dw_min_std_add, u.reset, u.reset_dtod) == (
        -27.235, -2.235, 2.0, 0.0, 0.042, 0.01, 0.02)
    assert not p.copy_inverted and get_preset("PCM", dw_min=0.02).unit_device.dw_min == 0.02


# ------------------------------------------------------------------------------------------ unit cells, decay
def _cells():
    from crossbar_sim.device_models import SoftBoundsPmaxDevice
    from crossbar_sim.tiles.onesided import DifferenceUnitCell
    from crossbar_sim.tiles.vector import ReferenceUnitCell, VectorUnitCell

    sb = get_device("SoftBounds")
    return {
        "VectorUnitCell:all": VectorUnitCell(unit_cell_devices=(sb, get_device("ConstantStep"))),
        "VectorUnitCell:single_random": VectorUnitCell(unit_cell_devices=(sb,) * 3, update_policy="single_random"),
        "VectorUnitCell:single_sequential": VectorUnitCell(unit_cell_devices=(sb, SoftBoundsPmaxDevice()),
                                                           update_policy="single_sequential", gamma_vec=(0.7, 0.3)),
        "ReferenceUnitCell": ReferenceUnitCell(unit_cell_devices=(sb,)),
        "DifferenceUnitCell": DifferenceUnitCell(unit_device=sb),
    }


@pytest.mark.parametrize("name", sorted(_cells()))
def test_unit_cell_contract(name):
    cell = _cells()[name]
    upd = UpdateParameters(desired_bl=31)
    perfect = IOParameters(is_perfect=True)
    tile = make_array(6, 7, cell, upd, perfect, perfect, seed=3)
    assert cell.granularity() > 0 and tile.granularity == pytest.approx(cell.granularity())
    tile.set_weights(np.zeros(tile.shape, np.float32))
    lr = 5 * cell.granularity()
    means = [tile.read_weights().mean()]
    for sign in (-1.0, 1.0):
        for _ in range(40):
            tile.update(np.ones(7, np.float32), np.full(6, sign, np.float32), lr)
            for a in tile.tiles.values():  # every device array within its own bounds
                w = a.hidden_weights()
                assert np.all(w >= a.w_min_bound) and np.all(w <= a.w_max_bound)
        means.append(tile.read_weights().mean())
    assert means[1] > means[0] and means[2] < means[1]
    assert tile.counters["n_pulses"] > 0


@pytest.mark.parametrize("name", sorted(MODELS))
def test_decay_and_diffusion_keep_bounds(name):
    from crossbar_sim.tiles.analog import AnalogTile
    from crossbar_sim.tiles.params import TileConfig

    dev = MODELS[name].replace(lifetime=3.0, lifetime_dtod=0.3, diffusion=0.2, diffusion_dtod=0.3)
    tile = AnalogTile(5, 6, TileConfig(device=dev), seed=2)
    tile.set_weights(np.full(tile.shape, 0.5, np.float32))
    start = tile.hidden_weights()
    for _ in range(10):
        tile.post_update_step()
        w = tile.hidden_weights()
        assert np.all(w >= tile.w_min_bound) and np.all(w <= tile.w_max_bound)
    assert not np.array_equal(tile.hidden_weights(), start)
