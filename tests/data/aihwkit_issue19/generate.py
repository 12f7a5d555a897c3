"""Deterministic fixtures from aihwkit 1.1.0 (CPU) for issue 19: the buffered transfer family's options, the
fast-update granularity of transfer compounds, mixed precision, SoftBoundsPmax, PowStepReference, decay, the
vector / reference unit cells and every build_config / preset RPU configuration.

Not part of the package and not run by the tests (they read fixtures.npz, fixtures.json, configs.json.gz). It needs aihwkit 1.1.0
and torch 2.10.0 exactly (the wheel's extension does not load with other torch versions):

    python -m venv /tmp/aihw && /tmp/aihw/bin/pip install torch==2.10.0 aihwkit==1.1.0
    /tmp/aihw/bin/python tests/data/aihwkit_issue19/generate.py tests/data/aihwkit_issue19

Every case has all randomness off: no device-to-device variation, no cycle-to-cycle noise, perfect periphery,
MEAN_COUNT pulses (deterministic), regular (not random) chopper switching; so a faithful simulator reproduces
the numbers. Arrays go to fixtures.npz, a description of each case to fixtures.json.
"""
import dataclasses
import enum
import gzip
import json
import sys
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")
from aihwkit.simulator.configs import (  # noqa: E402
    ChoppedTransferCompound, DigitalRankUpdateRPUConfig, DynamicTransferCompound, MixedPrecisionCompound,
    ReferenceUnitCell, SingleRPUConfig, SoftBoundsPmaxDevice, TransferCompound, UnitCellRPUConfig,
    VectorUnitCell, build_config)
from aihwkit.simulator.configs.devices import (ConstantStepDevice, PowStepReferenceDevice,  # noqa: E402
                                               SoftBoundsReferenceDevice)
from aihwkit.simulator.parameters import UpdateParameters  # noqa: E402
from aihwkit.simulator.parameters.enums import PulseType, RPUDataType, VectorUnitCellUpdatePolicy  # noqa: E402
from aihwkit.simulator.tiles import AnalogTile  # noqa: E402
import aihwkit.simulator.presets as presets  # noqa: E402

torch.set_num_threads(1)
torch.set_grad_enabled(False)
OUT = sys.argv[1]
arrays, meta = {}, {}
rng = np.random.default_rng(19)
f32 = lambda a: torch.tensor(np.asarray(a, dtype=np.float32))  # noqa: E731


G = 2.0 ** -7  # 0.0078125: sums of pulses are exact in float32, so buffer thresholds are not decided by the last ulp


def cs(dw=G, **kw):
    d = dict(dw_min=dw, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
             w_max=1.0, w_min=-1.0)
    d.update(kw)
    return ConstantStepDevice(**d)


def mc(**kw):
    return UpdateParameters(pulse_type=PulseType.MEAN_COUNT, **kw)


def perfect(cfg):
    cfg.forward.is_perfect = True
    cfg.backward.is_perfect = True
    if hasattr(cfg.device, "transfer_forward"):
        cfg.device.transfer_forward.is_perfect = True
    return cfg


# ------------------------------------------------------------------------------------------ update sequences
OUT_SIZE, IN_SIZE = 3, 4
BATCHES = [1, 2, 3, 1, 1, 2, 4, 1, 3, 2, 1, 1, 2, 3, 1, 4]   # 32 samples
NS = sum(BATCHES)
X = rng.standard_normal((NS, IN_SIZE)).astype(np.float32)
X[:, 0] *= 2.0
D = (0.4 * rng.standard_normal((NS, OUT_SIZE))).astype(np.float32)
arrays["seq_x"], arrays["seq_d"] = X, D
arrays["seq_batches"] = np.asarray(BATCHES, np.int64)


def run_sequence(name, cfg, lr, shape=(OUT_SIZE, IN_SIZE), extra=(), desc=""):
    t = AnalogTile(*shape, cfg)
    t.set_weights(torch.zeros(*shape))
    t.set_learning_rate(lr)
    rec = {k: [] for k in ("W", "A", "C", "H", "in_chop", "out_chop", "m_x", "m_d", "count_lr", "counter")}
    for e in extra:
        rec[e] = []
    s = 0
    for b in BATCHES:
        t.update(f32(X[s:s + b, :shape[1]]), f32(D[s:s + b, :shape[0]]))
        s += b
        hp = t.get_hidden_parameters()
        ex = t.tile.dump_extra()
        rec["W"].append(t.get_weights()[0].numpy().copy())
        rec["A"].append(hp["hidden_weights_0"].numpy().copy() if "hidden_weights_0" in hp else np.zeros(shape))
        rec["C"].append(hp["hidden_weights_1"].numpy().copy() if "hidden_weights_1" in hp else np.zeros(shape))
        hkey = next((k for k in ("buffered_FP_weight", "buffered_FP_weight_0") if k in hp), None)
        rec["H"].append(hp[hkey].numpy().copy() if hkey else np.zeros(shape))
        rec["in_chop"].append(np.asarray(ex.get("rpu.rpu_device.in_chopper", [0] * 1), np.float32))
        rec["out_chop"].append(np.asarray(ex.get("rpu.rpu_device.out_chopper", [0] * 1), np.float32))
        rec["m_x"].append(ex.get("rpu.rpu_device.m_x", [0.0])[0])
        rec["m_d"].append(ex.get("rpu.rpu_device.m_d", [0.0])[0])
        rec["count_lr"].append(ex.get("rpu.rpu_device.tmp_count_lr", [0.0])[0])
        rec["counter"].append(ex.get("rpu.rpu_device.transfer_counter", [0.0])[0])
        for e in extra:
            rec[e].append(hp[e].numpy().copy())
    for k, v in rec.items():
        arrays[f"{name}_{k}"] = np.asarray(np.stack(v) if isinstance(v[0], np.ndarray) else v, np.float32)
    meta[name] = desc


def chopped(cls=ChoppedTransferCompound, a=G, c=G, **kw):
    return cls(unit_cell_devices=[cs(a), cs(c)], **kw)


UP31 = dict(desired_bl=31)  # MEAN_COUNT, UBLM + UM on (aihwkit default management)
COMMON = ("3 x 4 tile, ConstantStep devices without variation (A dw_min a, C dw_min c, bounds +-1), perfect "
          "periphery and transfer read, MEAN_COUNT pulses; samples seq_x / seq_d applied in batches seq_batches "
          "(update(x, d) with W <- W - lr d x^T); arrays after each batch: W, A (hidden_weights_0), C, H "
          "(buffered_FP_weight[_0]), in/out choppers, m_x, m_d, tmp_count_lr, transfer_counter. ")

# granularity of the fast update: mean of A's and C's
run_sequence("gran_tt", perfect(UnitCellRPUConfig(
    device=TransferCompound(unit_cell_devices=[cs(0.001), cs(0.003)], transfer_every=0.0, fast_lr=0.01),
    update=mc(desired_bl=31, update_bl_management=False, update_management=False))), 0.1,
    desc=COMMON + "TransferCompound a=0.001 c=0.003, fast_lr 0.01, no transfers, BL 31 without UBLM/UM: the "
                  "pulse counts of A follow the mean granularity 0.002.")
run_sequence("gran_chopped", perfect(UnitCellRPUConfig(
    device=chopped(a=0.001, c=0.003, transfer_every=0.0, fast_lr=0.01, in_chop_prob=0.0),
    update=mc(desired_bl=31, update_bl_management=False, update_management=False))), 0.1,
    desc=COMMON + "ChoppedTransferCompound a=0.001 c=0.003, in_chop_prob 0, no transfers.")
run_sequence("cttv2_auto", perfect(UnitCellRPUConfig(
    device=chopped(transfer_every=1.0, fast_lr=0.1, in_chop_prob=0.5, in_chop_random=False, auto_scale=True),
    update=mc(**UP31))), 0.5,
    desc=COMMON + "c-TTv2 a=c=0.01, transfer every sample, fast_lr 0.1, auto_scale, regular choppers "
                  "(in_chop_prob 0.5: period 2 sweeps), lr 0.5.")
run_sequence("cttv2_opts", perfect(UnitCellRPUConfig(
    device=chopped(a=G, c=2 * G, transfer_every=2.0, fast_lr=0.2, in_chop_prob=0.34, in_chop_random=False,
                   auto_scale=True, auto_momentum=0.9, auto_granularity=30.0, correct_gradient_magnitudes=True,
                   forget_buffer=False, momentum=0.2),
    update=mc(**UP31))), 0.3,
    desc=COMMON + "c-TTv2 a=0.01 c=0.02, transfer every 2 samples, fast_lr 0.2, auto_scale with auto_momentum "
                  "0.9, auto_granularity 30, correct_gradient_magnitudes, forget_buffer False, momentum 0.2, "
                  "regular choppers 0.34 (period 3), lr 0.3.")
run_sequence("cttv2_rows", perfect(UnitCellRPUConfig(
    device=chopped(transfer_every=1.0, fast_lr=0.1, in_chop_prob=0.5, in_chop_random=False, auto_scale=True,
                   transfer_columns=False),
    update=mc(**UP31))), 0.5,
    desc=COMMON + "as cttv2_auto with transfer_columns=False (row transfer).")
run_sequence("cttv2_nobuf", perfect(UnitCellRPUConfig(
    device=chopped(transfer_every=1.0, fast_lr=0.5, in_chop_prob=0.0, no_buffer=True),
    update=mc(**UP31))), 2.0,
    desc=COMMON + "c-TTv2 a=c=0.01, no_buffer, fast_lr 0.5 (absolute, no auto_scale), no chopping, lr 2.")
run_sequence("cttv2_outchop", perfect(UnitCellRPUConfig(
    device=chopped(transfer_every=1.0, fast_lr=0.1, in_chop_prob=0.5, in_chop_random=False, out_chop_prob=1.0,
                   auto_scale=True),
    update=mc(**UP31))), 0.5,
    desc=COMMON + "as cttv2_auto with out_chop_prob 1 (every out-chopper flips after each sweep).")
run_sequence("agad_auto", perfect(UnitCellRPUConfig(
    device=chopped(DynamicTransferCompound, transfer_every=1.0, fast_lr=0.1, in_chop_prob=0.5, auto_scale=True,
                   tail_weightening=1.5),
    update=mc(**UP31))), 0.5, extra=("running_mean_weight", "past_mean_weight"),
    desc=COMMON + "AGAD a=c=0.01, transfer every sample, fast_lr 0.1, auto_scale, regular choppers period 2, "
                  "tail_weightening 1.5, lr 0.5; also running_mean_weight and past_mean_weight.")
run_sequence("agad_rows", perfect(UnitCellRPUConfig(
    device=chopped(DynamicTransferCompound, transfer_every=1.0, fast_lr=0.1, in_chop_prob=0.5, auto_scale=True,
                   tail_weightening=1.5, transfer_columns=False, forget_buffer=False, momentum=0.1, buffer_cap=2.0),
    update=mc(**UP31))), 0.5, extra=("running_mean_weight", "past_mean_weight"),
    desc=COMMON + "as agad_auto with row transfer, forget_buffer False, momentum 0.1, buffer_cap 2.")

# mixed precision
mp_cfg = DigitalRankUpdateRPUConfig(device=MixedPrecisionCompound(device=cs(G)), update=mc(**UP31))
mp_cfg.forward.is_perfect = True
mp_cfg.backward.is_perfect = True
run_sequence("mp", mp_cfg, 0.2, extra=("hidden_weights_chi",),
             desc="MixedPrecisionCompound of a ConstantStep dw 0.01 (no variation), MEAN_COUNT BL 31, all "
                  "defaults (transfer_every 1, every row, granularity from the device, no bins), lr 0.2; W after "
                  "each batch (A, C, H unused).")
mpq_cfg = DigitalRankUpdateRPUConfig(device=MixedPrecisionCompound(device=cs(G), n_x_bins=7, n_d_bins=5,
                                                                   stoc_round_x=False, stoc_round_d=False,
                                                                   transfer_every=2, n_rows_per_transfer=2,
                                                                   transfer_lr=0.5),
                                     update=mc(**UP31))
mpq_cfg.forward.is_perfect = True
mpq_cfg.backward.is_perfect = True
run_sequence("mpq", mpq_cfg, 0.2, extra=("hidden_weights_chi",),
             desc="MixedPrecisionCompound as mp with n_x_bins 7, n_d_bins 5, deterministic rounding, transfer_every "
                  "2, n_rows_per_transfer 2, transfer_lr 0.5.")


# vector and reference unit cells
P = VectorUnitCellUpdatePolicy
for pol in ("ALL", "SINGLE_FIXED", "SINGLE_SEQUENTIAL"):
    cfg = perfect(UnitCellRPUConfig(device=VectorUnitCell(unit_cell_devices=[cs(G), cs(2 * G)],
                                                           update_policy=getattr(P, pol)),
                                    update=mc(**UP31)))
    run_sequence(f"vec_{pol.lower()}", cfg, 0.3, extra=(),
                 desc=f"VectorUnitCell of ConstantStep dw 0.01 and 0.02, update_policy {pol}, lr 0.3; A, C = the two "
                      "devices' hidden weights, W = their mean.")
cfg = perfect(UnitCellRPUConfig(device=ReferenceUnitCell(unit_cell_devices=[cs(G)]), update=mc(**UP31)))
run_sequence("ref_cell", cfg, 0.3,
             desc="ReferenceUnitCell of one ConstantStep dw 0.01 (duplicated), lr 0.3: A = w_0 (pulsed), C = w_1 (the "
                  "reference, 0), W = A - C.")

# ------------------------------------------------------------------------------------------ devices


def trajectory(device, n_up, n_down, w0=0.0):
    cfg = SingleRPUConfig(device=device)
    cfg.forward.is_perfect = True
    cfg.update.pulse_type = PulseType.MEAN_COUNT
    cfg.update.desired_bl = 1
    cfg.update.update_bl_management = False
    cfg.update.update_management = False
    t = AnalogTile(1, 1, cfg)
    t.set_weights(torch.full((1, 1), float(w0)))
    t.set_learning_rate(100.0)
    w = [float(t.get_weights()[0][0, 0])]
    for k in range(n_up + n_down):
        t.update(torch.ones(1, 1), torch.full((1, 1), -1.0 if k < n_up else 1.0))
        w.append(float(t.get_weights()[0][0, 0]))
    return np.array(w, np.float32), t


NOVAR = dict(dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)
pm_cases = {"pmax_default": dict(), "pmax_b": dict(p_max=300, alpha=0.002, range_min=-0.5, range_max=1.5)}
for name, kw in pm_cases.items():
    dev = SoftBoundsPmaxDevice(**kw, **NOVAR)
    b = dev.as_bindings(RPUDataType.FLOAT)
    arrays[f"{name}_mapped"] = np.array([b.w_min, b.w_max, b.dw_min, b.up_down], np.float32)
    arrays[f"{name}_w"], _ = trajectory(dev, 400, 800)
    meta[name] = (f"SoftBoundsPmaxDevice({kw}) without variation: _mapped = bindings (w_min, w_max, dw_min, up_down); "
                  "_w = one pulse per update, 400 up then 800 down, from 0.")
pr_cases = {
    "powref_a": dict(dw_min=0.02, pow_gamma=2.0, pow_gamma_dtod=0.0, reference_mean=0.1, w_max=1.0, w_min=-1.0),
    "powref_b": dict(dw_min=0.02, pow_gamma=1.5, pow_gamma_dtod=0.0, pow_up_down=0.3, subtract_symmetry_point=True,
                     w_max=1.0, w_min=-1.0, up_down=0.1),
}
for name, kw in pr_cases.items():
    dev = PowStepReferenceDevice(**kw, **{k: v for k, v in NOVAR.items() if k not in kw})
    arrays[f"{name}_w"], t = trajectory(dev, 150, 300)
    hp = t.get_hidden_parameters()
    arrays[f"{name}_hidden"] = np.array([float(hp[k][0, 0]) for k in sorted(hp)], np.float32)
    meta[name] = (f"PowStepReferenceDevice({kw}) without variation: one pulse per update, 150 up then 300 down from 0; "
                  f"_hidden = hidden parameters in order {sorted(hp)}.")

# decay (lifetime) with a reset bias: post_update_step once per call
for name, (dev, w0) in {"decay_cs": (cs(0.001, lifetime=10.0, reset=0.2, reset_std=0.0), [[0.5, -0.5, 0.0]]),
                        "decay_sbr": (SoftBoundsReferenceDevice(dw_min=0.001, lifetime=3.0, reset=-0.1, reset_std=0.0,
                                                                w_max=0.6, w_min=-0.6, **NOVAR),
                                      [[0.55, -0.5, 0.05]])}.items():
    cfg = SingleRPUConfig(device=dev)
    cfg.forward.is_perfect = True
    t = AnalogTile(1, 3, cfg)
    t.set_weights(f32(w0))
    out = [t.get_weights()[0].numpy()[0].copy()]
    for _ in range(6):
        t.post_update_step()
        out.append(t.get_weights()[0].numpy()[0].copy())
    arrays[f"{name}_w"] = np.stack(out).astype(np.float32)
    meta[name] = f"{type(dev).__name__} lifetime {dev.lifetime}, reset {dev.reset}: weights {w0} after 0..6 post_update_step calls."
# decay of a transfer compound: both A and C leak
cfg = perfect(UnitCellRPUConfig(device=TransferCompound(unit_cell_devices=[cs(0.01, lifetime=5.0, reset_std=0.0)] * 2,
                                                        transfer_every=0.0, fast_lr=0.1), update=mc(**UP31)))
t = AnalogTile(1, 2, cfg)
t.set_weights(f32([[0.4, -0.2]]))
t.set_learning_rate(0.1)
t.update(f32([[1.0, -1.0]]), f32([[1.0]]))
t.post_update_step()
hp = t.get_hidden_parameters()
arrays["decay_tt_AC"] = np.stack([hp["hidden_weights_0"].numpy()[0], hp["hidden_weights_1"].numpy()[0]]).astype(np.float32)
meta["decay_tt"] = ("TransferCompound of two ConstantStep dw 0.01 lifetime 5: set_weights [[0.4, -0.2]], one update "
                    "x [1, -1], d [1], lr 0.1 (fast_lr 0.1), then post_update_step: rows A, C.")


# ------------------------------------------------------------------------------------------ configurations
def plain(v):
    """A config as JSON-able data: dataclasses by field, enums by name, classes by name."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        out = {"__class__": type(v).__name__}
        for f in dataclasses.fields(v):
            out[f.name] = plain(getattr(v, f.name))
        return out
    if isinstance(v, enum.Enum):
        return v.name
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, type):
        return v.__name__
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    return v


configs = {}
dev_for = {"ConstantStep": ConstantStepDevice, "SoftBoundsReference": SoftBoundsReferenceDevice}
for alg in ("sgd", "ttv1", "tiki-taka", "tt", "ttv2", "c-ttv2", "chopped-ttv2", "ttv3", "agad", "ttv4", "mp",
            "mixed-precision"):
    for dname, dcls in dev_for.items():
        configs[f"build_config:{alg}:{dname}"] = plain(build_config(alg, dcls))
configs["build_config:sgd:ConstantStep:n_devices=3"] = plain(build_config("sgd", ConstantStepDevice, n_devices=3))
preset_classes = sorted(n for n in dir(presets) if n.endswith("Preset") and isinstance(getattr(presets, n), type))
for n in preset_classes:
    cls = getattr(presets, n)
    try:
        configs[f"preset:{n}"] = plain(cls())
    except TypeError:
        pass
meta["configs"] = ("configs.json: every build_config(algorithm, device class) for the algorithm names of aihwkit 1.1.0 "
                   "(ConstantStep and SoftBoundsReference devices) and every preset class of "
                   "aihwkit.simulator.presets (RPU configs, devices, unit cells), as nested field dicts.")
try:
    build_config("foo", ConstantStepDevice)
except Exception as exc:  # noqa: BLE001
    meta["build_config_unknown"] = f"{type(exc).__name__}: {exc}"

np.savez_compressed(f"{OUT}/fixtures.npz", **arrays)
with open(f"{OUT}/fixtures.json", "w") as fh:
    json.dump(meta, fh, indent=1, sort_keys=True)
with gzip.open(f"{OUT}/configs.json.gz", "wt") as fh:
    json.dump(configs, fh, sort_keys=True, default=str, separators=(",", ":"))
print(len(arrays), "arrays,", len(configs), "configs")
