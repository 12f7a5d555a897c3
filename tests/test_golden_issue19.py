"""Issue 19 against aihwkit 1.1.0: fixtures from runs of the real aihwkit (``tests/data/aihwkit_issue19``, made by its
``generate.py``; every case noise-free and deterministic), compared with our tiles on the same inputs.

Cases: the fast-update granularity of transfer compounds (mean of A's and C's), chopped TTv2 with auto_scale,
auto_granularity, correct_gradient_magnitudes, forget_buffer False, row transfer, no_buffer, out-choppers, AGAD
with auto_scale and row transfer, mixed precision (with and without quantisation bins), vector and reference unit
cells, SoftBoundsPmax, PowStepReference, decay, and the parameters of every build_config / preset configuration.
"""
import gzip
import json
import os

import numpy as np
import pytest

from crossbar_sim.device_models import ConstantStepDevice
from crossbar_sim.tiles.buffered import BufferedTransferTile, ChoppedTransfer, DynamicTransfer
from crossbar_sim.tiles.params import IOParameters, UpdateParameters
from crossbar_sim.tiles.tiki_taka import CompoundTileConfig, TikiTakaTile, TransferCompound

DATA = os.path.join(os.path.dirname(__file__), "data", "aihwkit_issue19")
FIX = np.load(os.path.join(DATA, "fixtures.npz"))
PERFECT = IOParameters(is_perfect=True)


G = 2.0 ** -7  # as the generator: pulse sums exact in float32


def cs(dw=G, **kw):
    d = dict(dw_min=dw, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
             w_max=1.0, w_min=-1.0)
    d.update(kw)
    return ConstantStepDevice(**d)


def mc(**kw):
    # closed_form off: pulses one by one, float32 sums in aihwkit's order (the buffer thresholds see the last ulp)
    return UpdateParameters(pulse_type="mean_count", closed_form=False, **kw)


MC31 = mc(desired_bl=31)
BL1_MC = mc(desired_bl=1, update_bl_management=False, update_management=False)


def run(tile, lr, n_out=3, n_in=4):
    """Apply the fixture's batches to ``tile``; yield after each batch."""
    X, D = FIX["seq_x"][:, :n_in], FIX["seq_d"][:, :n_out]
    tile.set_weights(np.zeros((n_out, n_in), np.float32))
    s = 0
    for b in FIX["seq_batches"]:
        tile.update(X[s:s + b], D[s:s + b], lr)
        s += int(b)
        yield


def compound(cls, a=G, c=G, update=MC31, **kw):
    comp = cls(device_a=cs(a), device_c=cs(c), transfer_forward=PERFECT, transfer_update=BL1_MC, **kw)
    cfg = CompoundTileConfig(device=comp, update=update, forward=PERFECT, backward=PERFECT)
    return (TikiTakaTile if cls is TransferCompound else BufferedTransferTile)(3, 4, cfg, seed=0)


def check_sequence(name, tile, lr, arrays=("A", "C", "H"), atol=2e-6):
    for k, _ in enumerate(run(tile, lr)):
        got = {"A": tile.a.read_weights(), "C": tile.c.read_weights(), "W": tile.read_weights()}
        if hasattr(tile, "H"):
            got["H"] = tile.H
        for a in arrays:
            np.testing.assert_allclose(got[a], FIX[f"{name}_{a}"][k], atol=atol, err_msg=f"{name} {a} batch {k}")
        if hasattr(tile, "in_chop") and f"{name}_in_chop" in FIX:
            np.testing.assert_array_equal(tile.in_chop, FIX[f"{name}_in_chop"][k].astype(bool), err_msg=f"batch {k}")
            np.testing.assert_array_equal(tile.out_chop, FIX[f"{name}_out_chop"][k].astype(bool), err_msg=f"batch {k}")


def test_fast_update_uses_mean_granularity_of_a_and_c():
    # aihwkit 1.1.0 CPU: VectorRPUDevice::populate sets the compound's granularity to the mean of its devices and the
    # updater uses it: with A dw 0.001, C dw 0.003 the fast update's counts follow g = 0.002 (not A's 0.001)
    t = compound(TransferCompound, a=0.001, c=0.003, transfer_every=0.0, fast_lr=0.01,
                 update=mc(desired_bl=31, update_bl_management=False, update_management=False))
    check_sequence("gran_tt", t, 0.1, arrays=("A",))
    t = compound(ChoppedTransfer, a=0.001, c=0.003, transfer_every=0.0, fast_lr=0.01, in_chop_prob=0.0,
                 update=mc(desired_bl=31, update_bl_management=False, update_management=False))
    check_sequence("gran_chopped", t, 0.1, arrays=("A",))


def test_chopped_auto_scale_regular_choppers():
    t = compound(ChoppedTransfer, transfer_every=1.0, fast_lr=0.1, in_chop_prob=0.5, in_chop_random=False,
                 auto_scale=True)
    check_sequence("cttv2_auto", t, 0.5)
    np.testing.assert_allclose([t.m_x, t.m_d], [FIX["cttv2_auto_m_x"][-1], FIX["cttv2_auto_m_d"][-1]], rtol=1e-6)
    np.testing.assert_allclose(t.count_lr, FIX["cttv2_auto_count_lr"][-1], rtol=1e-6)
    assert t.transfer_counter == FIX["cttv2_auto_counter"][-1]


@pytest.mark.parametrize("name,cls,lr,kw", [
    ("cttv2_opts", ChoppedTransfer, 0.3, dict(c=2 * G, transfer_every=2.0, fast_lr=0.2, in_chop_prob=0.34,
                                              in_chop_random=False, auto_scale=True, auto_momentum=0.9,
                                              auto_granularity=30.0, correct_gradient_magnitudes=True,
                                              forget_buffer=False, momentum=0.2)),
    ("cttv2_rows", ChoppedTransfer, 0.5, dict(transfer_every=1.0, fast_lr=0.1, in_chop_prob=0.5, in_chop_random=False,
                                              auto_scale=True, transfer_columns=False)),
    ("cttv2_nobuf", ChoppedTransfer, 2.0, dict(transfer_every=1.0, fast_lr=0.5, in_chop_prob=0.0, no_buffer=True)),
    ("cttv2_outchop", ChoppedTransfer, 0.5, dict(transfer_every=1.0, fast_lr=0.1, in_chop_prob=0.5,
                                                 in_chop_random=False, out_chop_prob=1.0, auto_scale=True)),
    ("agad_auto", DynamicTransfer, 0.5, dict(transfer_every=1.0, fast_lr=0.1, in_chop_prob=0.5, auto_scale=True,
                                             tail_weightening=1.5)),
    ("agad_rows", DynamicTransfer, 0.5, dict(transfer_every=1.0, fast_lr=0.1, in_chop_prob=0.5, auto_scale=True,
                                             tail_weightening=1.5, transfer_columns=False, forget_buffer=False,
                                             momentum=0.1, buffer_cap=2.0)),
])
def test_chopped_and_agad_options(name, cls, lr, kw):
    t = compound(cls, **kw)
    check_sequence(name, t, lr)
    if cls is DynamicTransfer:
        np.testing.assert_allclose(t.running_mean, FIX[f"{name}_running_mean_weight"][-1], atol=1e-6)
        np.testing.assert_allclose(t.past_mean, FIX[f"{name}_past_mean_weight"][-1], atol=1e-6)
    assert t.transfer_counter == FIX[f"{name}_counter"][-1]
    assert t.c.counters["n_pulses"] > 0  # the pulsed path ran


# ------------------------------------------------------------------------------------------ devices
NOVAR = dict(dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)


def _trajectory(device, n_up, n_down):
    from crossbar_sim.tiles.analog import AnalogTile
    from crossbar_sim.tiles.params import TileConfig

    t = AnalogTile(1, 1, TileConfig.perfect(device, BL1_MC), seed=0)
    w = [t.read_weights()[0, 0]]
    for k in range(n_up + n_down):  # one pulse per call
        t.update(np.ones(1), np.full(1, -1.0 if k < n_up else 1.0), 100.0)
        w.append(t.read_weights()[0, 0])
    return np.array(w, np.float32), t


@pytest.mark.parametrize("name,kw", [("pmax_default", {}),
                                     ("pmax_b", dict(p_max=300, alpha=0.002, range_min=-0.5, range_max=1.5))])
def test_soft_bounds_pmax_mapping_and_response(name, kw):
    from crossbar_sim.device_models import SoftBoundsPmaxDevice

    dev = SoftBoundsPmaxDevice(**kw, **NOVAR)
    np.testing.assert_allclose([dev.w_min, dev.w_max, dev.dw_min, dev.up_down], FIX[f"{name}_mapped"], rtol=1e-6)
    w, _ = _trajectory(dev, 400, 800)
    np.testing.assert_allclose(w, FIX[f"{name}_w"], atol=2e-6)


@pytest.mark.parametrize("name,kw", [
    ("powref_a", dict(dw_min=0.02, pow_gamma=2.0, pow_gamma_dtod=0.0, reference_mean=0.1)),
    ("powref_b", dict(dw_min=0.02, pow_gamma=1.5, pow_gamma_dtod=0.0, pow_up_down=0.3, subtract_symmetry_point=True,
                      up_down=0.1)),
])
def test_pow_step_reference_response(name, kw):
    from crossbar_sim.device_models import PowStepReferenceDevice

    dev = PowStepReferenceDevice(w_max=1.0, w_min=-1.0, **{**NOVAR, **kw})
    w, t = _trajectory(dev, 150, 300)
    # aihwkit estimates the symmetric point in float32 and pulses with powf: a few float32 ulps of the weight
    np.testing.assert_allclose(w, FIX[f"{name}_w"], atol=2e-6)
    hidden = dict(zip(['decay_scales', 'diffusion_rates', 'drift_nu', 'dwmin_down', 'dwmin_up', 'gamma_down',
                       'gamma_up', 'max_bound', 'min_bound', 'reference', 'reset_bias'], FIX[f"{name}_hidden"]))
    np.testing.assert_allclose(t.devices.dp[0, 0, 4], hidden["reference"], atol=1e-6)  # REF row
    np.testing.assert_allclose(t.devices.reset_bias[0, 0], hidden["reset_bias"], atol=1e-6)
    np.testing.assert_allclose(t.devices.dp[0, 0, 2:4], [hidden["gamma_up"], hidden["gamma_down"]], rtol=1e-6)


def test_decay_towards_reset_value():
    from crossbar_sim.device_models import SoftBoundsReferenceDevice
    from crossbar_sim.tiles.analog import AnalogTile
    from crossbar_sim.tiles.params import TileConfig

    cases = {"decay_cs": (cs(0.001, lifetime=10.0, reset=0.2, reset_std=0.0), [[0.5, -0.5, 0.0]]),
             # aihwkit clamps a negative reset (-0.1 in its fixture) to 0; we keep a negative reset as given, so the
             # equivalent of aihwkit's run here is reset 0
             "decay_sbr": (SoftBoundsReferenceDevice(dw_min=0.001, lifetime=3.0, reset=0.0, reset_std=0.0, w_max=0.6,
                                                     w_min=-0.6, **NOVAR), [[0.55, -0.5, 0.05]])}
    for name, (dev, w0) in cases.items():
        t = AnalogTile(1, 3, TileConfig.perfect(dev), seed=0)
        t.set_weights(np.asarray(w0, np.float32))
        out = [t.read_weights()[0]]
        for _ in range(6):
            t.post_update_step()
            out.append(t.read_weights()[0])
        np.testing.assert_allclose(np.stack(out), FIX[f"{name}_w"], atol=1e-6, err_msg=name)


def test_decay_of_transfer_compound_leaks_a_and_c():
    comp = TransferCompound(device_a=cs(0.01, lifetime=5.0, reset_std=0.0), device_c=cs(0.01, lifetime=5.0,
                            reset_std=0.0), transfer_every=0.0, fast_lr=0.1, transfer_forward=PERFECT)
    t = TikiTakaTile(1, 2, CompoundTileConfig(device=comp, update=MC31, forward=PERFECT, backward=PERFECT), seed=0)
    t.set_weights(np.array([[0.4, -0.2]], np.float32))
    t.update(np.array([[1.0, -1.0]], np.float32), np.array([[1.0]], np.float32), 0.1)
    t.post_update_step()
    np.testing.assert_allclose(np.stack([t.a.read_weights()[0], t.c.read_weights()[0]]), FIX["decay_tt_AC"], atol=1e-6)


# ------------------------------------------------------------------------------------------ mixed precision, cells
@pytest.mark.parametrize("name,kw", [
    ("mp", {}),
    ("mpq", dict(n_x_bins=7, n_d_bins=5, stoc_round_x=False, stoc_round_d=False, transfer_every=2,
                 n_rows_per_transfer=2, transfer_lr=0.5)),
])
def test_mixed_precision(name, kw):
    from crossbar_sim.tiles.mixed_precision import MixedPrecisionCompound, MixedPrecisionTile, MixedPrecisionTileConfig

    cfg = MixedPrecisionTileConfig(device=MixedPrecisionCompound(device=cs(), **kw), update=MC31, forward=PERFECT,
                                   backward=PERFECT)
    t = MixedPrecisionTile(3, 4, cfg, seed=0)
    for k, _ in enumerate(run(t, 0.2)):
        np.testing.assert_allclose(t.read_weights(), FIX[f"{name}_W"][k], atol=2e-6, err_msg=f"W batch {k}")
        np.testing.assert_allclose(t.chi, FIX[f"{name}_hidden_weights_chi"][k], atol=2e-6, err_msg=f"chi batch {k}")
    assert t.array.counters["n_pulses"] > 0


@pytest.mark.parametrize("policy", ["all", "single_fixed", "single_sequential"])
def test_vector_unit_cell_policies(policy):
    from crossbar_sim.tiles.vector import VectorTile, VectorTileConfig, VectorUnitCell

    cell = VectorUnitCell(unit_cell_devices=(cs(G), cs(2 * G)), update_policy=policy)
    t = VectorTile(3, 4, VectorTileConfig(device=cell, update=MC31, forward=PERFECT, backward=PERFECT), seed=0)
    name = f"vec_{policy}"
    for k, _ in enumerate(run(t, 0.3)):
        np.testing.assert_allclose(t.devs[0].read_weights(), FIX[f"{name}_A"][k], atol=2e-6, err_msg=f"d0 {k}")
        np.testing.assert_allclose(t.devs[1].read_weights(), FIX[f"{name}_C"][k], atol=2e-6, err_msg=f"d1 {k}")
        np.testing.assert_allclose(t.read_weights(), FIX[f"{name}_W"][k], atol=2e-6, err_msg=f"W {k}")


def test_reference_unit_cell():
    from crossbar_sim.tiles.vector import ReferenceUnitCell, VectorTile, VectorTileConfig

    cell = ReferenceUnitCell(unit_cell_devices=(cs(G),))
    assert cell.n_devices == 2 and cell.gamma_vec == (1.0, -1.0)
    t = VectorTile(3, 4, VectorTileConfig(device=cell, update=MC31, forward=PERFECT, backward=PERFECT), seed=0)
    for k, _ in enumerate(run(t, 0.3)):
        np.testing.assert_allclose(t.read_weights(), FIX["ref_cell_W"][k], atol=2e-6, err_msg=f"W {k}")
        np.testing.assert_allclose(t.devs[1].read_weights(), 0.0)


# ------------------------------------------------------------------------------------------ configurations
CONFIGS = json.load(gzip.open(os.path.join(DATA, "configs.json.gz"), "rt"))
#: fields whose values differ on purpose or do not matter: nm_thres is used only by noise_management "constant"
#: (aihwkit 0.0, ours 1.0); construction_seed is not reproduced (tiles take the run's seed)
SKIP = {"nm_thres", "construction_seed"}


def _compare(ours, theirs, path, out, seen):
    """Every field of our config that aihwkit's dump also has, compared (recursively); mismatches into ``out``."""
    import dataclasses

    from crossbar_sim.config import Config

    if isinstance(ours, Config):
        if not isinstance(theirs, dict):
            out.append(f"{path}: ours {type(ours).__name__}, aihwkit {theirs!r}")
            return
        mapped = dict(theirs)
        devs = theirs.get("unit_cell_devices")
        if isinstance(devs, list) and devs:
            mapped.setdefault("device_a", devs[0])
            mapped.setdefault("device_c", devs[-1])
            mapped.setdefault("unit_device", devs[0])
        for f in dataclasses.fields(ours):
            if f.name in SKIP or f.name not in mapped:
                continue
            _compare(getattr(ours, f.name), mapped[f.name], f"{path}.{f.name}", out, seen)
        return
    if isinstance(ours, tuple):
        if not isinstance(theirs, list) or len(theirs) != len(ours):
            out.append(f"{path}: ours {ours!r}, aihwkit {theirs!r}")
            return
        for k, (a, b) in enumerate(zip(ours, theirs)):
            _compare(a, b, f"{path}[{k}]", out, seen)
        return
    seen.append(path)
    if isinstance(ours, str):
        if str(theirs).lower() != ours.lower():
            out.append(f"{path}: ours {ours!r}, aihwkit {theirs!r}")
        return
    if isinstance(ours, bool) or isinstance(theirs, bool):
        if bool(ours) != bool(theirs):
            out.append(f"{path}: ours {ours!r}, aihwkit {theirs!r}")
        return
    if isinstance(ours, (int, float)):
        if not isinstance(theirs, (int, float)) or not np.isclose(float(ours), float(theirs), rtol=1e-9, atol=1e-12):
            out.append(f"{path}: ours {ours!r}, aihwkit {theirs!r}")


def _ours_vs_aihwkit(cfg, theirs):
    out, seen = [], []
    _compare(cfg, theirs, type(cfg).__name__, out, seen)
    assert len(seen) >= 40, seen  # not vacuous: device, update, periphery and compound fields were compared
    return out


@pytest.mark.parametrize("key", sorted(k for k in CONFIGS if k.startswith("build_config:")))
def test_build_config_parameters_equal_aihwkit(key):
    from crossbar_sim.device_models import ConstantStepDevice, SoftBoundsReferenceDevice
    from crossbar_sim.presets import build_config

    _, alg, dev, *rest = key.split(":")
    n = int(rest[0].split("=")[1]) if rest else 1
    device = {"ConstantStep": ConstantStepDevice, "SoftBoundsReference": SoftBoundsReferenceDevice}[dev]
    cfg = build_config(alg, device, n_devices=n)
    assert _ours_vs_aihwkit(cfg, CONFIGS[key]) == []


RPU_KEYS = sorted(k for k in CONFIGS if k.startswith("preset:") and k[7:] not in
                  ("FloatingPointPreset", "StandardHWATrainingPreset"))


@pytest.mark.parametrize("key", RPU_KEYS)
def test_rpu_presets_equal_aihwkit(key):
    from crossbar_sim.presets import RPU_PRESETS, get_rpu_preset

    name = key[len("preset:"):]
    assert name in RPU_PRESETS
    assert _ours_vs_aihwkit(get_rpu_preset(name), CONFIGS[key]) == []


def test_every_aihwkit_rpu_preset_is_registered():
    from crossbar_sim.presets import RPU_PRESETS

    assert sorted(RPU_PRESETS) == sorted(k[len("preset:"):] for k in RPU_KEYS)
