"""Training configurations of aihwkit 1.1.0, one to one: ``build_config`` and the preset RPU configurations.

* :func:`build_config` (aihwkit ``build_config``, ``simulator/configs/helpers.py``) turns an algorithm name and a
  device into a tile configuration with aihwkit's exact parameters. Names (case-insensitive): ``sgd``;
  ``tiki-taka`` / ``tt`` / ``ttv1``; ``ttv2``; ``c-ttv2`` / ``chopped-ttv2`` / ``ttv3``; ``agad`` / ``ttv4``;
  ``mp`` / ``mixed-precision``. What each builds (aihwkit's choices, kept even where they surprise):

  ======== ==================================================================================================
  sgd      a plain tile (``n_devices > 1``: a vector unit cell of that many devices, ``single_random`` policy)
  ttv1     Tiki-Taka v1 (``TransferCompound``): transfer read without noise/bound management, transfer write
           with the update parameters given, ``units_in_mbatch``
  ttv2     a **chopped** compound with ``in_chop_prob = 0`` (no chopping), ``fast_lr = 1``, no auto-scaling, the
           fast update at ``desired_bl = 5``, the write at BL 1 without management (not aihwkit's
           ``BufferedTransferCompound``: that is our ``algorithm = "ttv2"``)
  c-ttv2   chopped TTv2: random choppers (``in_chop_prob = 0.1``), ``fast_lr = 0.1``, ``auto_scale``, BL 5
  agad     AGAD (``DynamicTransferCompound``): regular choppers every 10 sweeps, ``fast_lr = 0.1``, ``auto_scale``,
           ``tail_weightening = 5``, the write at BL 1 with management, BL 5
  mp       mixed precision (``MixedPrecisionCompound`` with its defaults)
  ======== ==================================================================================================

* :data:`RPU_PRESETS`: aihwkit's preset RPU configurations (``simulator/presets/configs.py``) by their class names
  (``ReRamESPreset``, ``EcRam4Preset``, ``TikiTakaReRamSBPreset``, ``ChoppedTTv2EcRamPreset``, ``AGADIdealizedPreset``,
  ``MixedPrecisionPCMPreset``, ...): the device preset of :mod:`crossbar_sim.device_models.presets`, aihwkit's
  preset periphery (``PresetIOParameters``: output bound 20, output noise 0.1) and update (BL 31 with management),
  and each compound's parameters. :func:`get_rpu_preset` returns one.
* :data:`OUR_PRESETS`: our own defaults for chopped TTv2 and AGAD (``ours-c-ttv2``, ``ours-agad``), which converge on
  least squares where aihwkit's presets stall; see their docstrings for the setting and the reason.

Every name is reachable from a run config (``algorithm_preset`` of the least-squares ``TrainConfig`` and of the
network ``NetConfig``), hence from sweep specs and ``crossbar-sim train --set algorithm_preset=c-ttv2``:
:func:`tile_config_for` resolves it. ``crossbar-sim devices`` lists them. ``tests/test_golden_issue19.py`` checks
every parameter against aihwkit 1.1.0's own objects (``tests/data/aihwkit_issue19/configs.json.gz``).

Not reproduced: ``construction_seed`` (our tiles are seeded by the run); aihwkit's ``FloatingPointPreset`` and the
inference preset ``StandardHWATrainingPreset``.

>>> from crossbar_sim.presets import build_config
>>> cfg = build_config("c-ttv2", "SoftBoundsReference")
>>> type(cfg.device).__name__, cfg.device.fast_lr, cfg.device.auto_scale, cfg.update.desired_bl
('ChoppedTransfer', 0.1, True, 5)
"""
from __future__ import annotations

import dataclasses

from .config import Config
from .errors import ConfigError
from .tiles.buffered import ChoppedTransfer, DynamicTransfer
from .tiles.mixed_precision import MixedPrecisionCompound, MixedPrecisionTileConfig
from .tiles.onesided import OneSidedTileConfig, OneSidedUnitCell
from .tiles.params import IOParameters, TileConfig, UpdateParameters
from .tiles.tiki_taka import CompoundTileConfig, TransferCompound
from .tiles.vector import VectorTileConfig, VectorUnitCell

AIHWKIT_SOURCE = "aihwkit 1.1.0 simulator/configs/helpers.py build_config"
PRESETS_SOURCE = "aihwkit 1.1.0 simulator/presets/configs.py"

#: build_config's algorithm names (aihwkit's aliases) -> the canonical name
ALGORITHM_ALIASES = {
    "sgd": "sgd",
    "tiki-taka": "ttv1", "tt": "ttv1", "ttv1": "ttv1",
    "ttv2": "ttv2",
    "chopped-ttv2": "c-ttv2", "ttv3": "c-ttv2", "c-ttv2": "c-ttv2",
    "agad": "agad", "ttv4": "agad",
    "mp": "mp", "mixed-precision": "mp",
}


def _io(io) -> IOParameters:
    if io is None:
        return IOParameters()
    if isinstance(io, type):
        io = io()
    if not isinstance(io, IOParameters):
        raise ConfigError(f"The 'io_parameters' argument of build_config must be an IOParameters. Got {io!r}.")
    return io


def _up(up) -> UpdateParameters:
    if up is None:
        return UpdateParameters()
    if isinstance(up, type):
        up = up()
    if not isinstance(up, UpdateParameters):
        raise ConfigError(f"The 'up_parameters' argument of build_config must be an UpdateParameters. Got {up!r}.")
    return up


def resolve_device(device):
    """A device config from a device config, a device class (aihwkit style) or a model / preset name."""
    from .device_models import get_device
    from .tiles.onesided import is_array_device

    if isinstance(device, str):
        return get_device(device)
    if isinstance(device, type) and issubclass(device, Config):
        device = device()
    if not is_array_device(device):
        raise ConfigError(f"The 'device' argument must be a device model, a unit cell, a device class or a device "
                          f"name. Got {device!r}.")
    return device


def _no_management(io: IOParameters) -> IOParameters:
    return io.replace(noise_management="none", bound_management="none")


def build_config(algorithm: str, device, io_parameters=None, up_parameters=None, n_devices: int = 1,
                 construction_seed: int = 0):
    """The tile configuration of aihwkit's ``build_config(algorithm, device, ...)`` (see the module docstring).

    Parameters
    ----------
    algorithm : str
        One of aihwkit's names (case-insensitive): sgd, tiki-taka, tt, ttv1, ttv2, chopped-ttv2, ttv3, c-ttv2,
        agad, ttv4, mp, mixed-precision.
    device : PulsedDevice, unit cell, device class or name
        The device of every array (a fresh copy each, as aihwkit's factory).
    io_parameters : IOParameters, optional
        Periphery of the forward and backward passes (default ``IOParameters()``, aihwkit's defaults); the transfer
        reads of the Tiki-Taka family use it with noise and bound management off (AGAD: as given; the tile turns
        them off, as aihwkit's C++ does with a warning).
    up_parameters : UpdateParameters, optional
        The update parameters the preset starts from (default ``UpdateParameters()``); the preset then sets what
        aihwkit sets (``desired_bl = 5`` of the fast update, the BL-1 transfer writes).
    n_devices : int
        ``sgd`` only: more than one device per weight makes a vector unit cell (``single_random`` policy).
    construction_seed : int
        Accepted for aihwkit compatibility; ignored (tiles take their seed from the run).

    Returns
    -------
    TileConfig, VectorTileConfig, OneSidedTileConfig, CompoundTileConfig or MixedPrecisionTileConfig
        Build the tile with :func:`crossbar_sim.tiles.factory.build_tile`.
    """
    del construction_seed
    if not isinstance(algorithm, str) or algorithm.lower() not in ALGORITHM_ALIASES:
        raise ConfigError(f"Algorithm {algorithm!r} is not known (aihwkit: 'Algorithm {algorithm} is not known'); "
                          f"known: {', '.join(ALGORITHM_ALIASES)}.")
    name = ALGORITHM_ALIASES[algorithm.lower()]
    dev = resolve_device(device)
    io, up = _io(io_parameters), _up(up_parameters)
    if int(n_devices) != 1 and name != "sgd":
        raise ConfigError(f"The 'n_devices' argument of build_config applies to 'sgd' only. Got n_devices={n_devices} "
                          f"with {algorithm!r}.")
    kw = dict(forward=io, backward=io)
    if name == "sgd":
        if int(n_devices) < 1:
            raise ConfigError(f"The 'n_devices' argument of build_config must be >= 1. Got {n_devices}.")
        if n_devices == 1:
            return array_tile_config(dev, up, **kw)
        return VectorTileConfig(device=VectorUnitCell(unit_cell_devices=(dev,) * int(n_devices),
                                                      update_policy="single_random"), update=up, **kw)
    if name == "ttv1":
        comp = TransferCompound(device_a=dev, device_c=dev, transfer_forward=_no_management(io), transfer_update=up,
                                units_in_mbatch=True)
        return CompoundTileConfig(device=comp, update=up, **kw)
    bl1 = up.replace(desired_bl=1, update_bl_management=False, update_management=False)
    if name == "ttv2":
        comp = ChoppedTransfer(device_a=dev, device_c=dev, transfer_forward=_no_management(io), transfer_update=bl1,
                               in_chop_prob=0.0, units_in_mbatch=False, auto_scale=False, fast_lr=1.0)
        return CompoundTileConfig(device=comp, update=up.replace(desired_bl=5), **kw)
    if name == "c-ttv2":
        comp = ChoppedTransfer(device_a=dev, device_c=dev, transfer_forward=_no_management(io), transfer_update=bl1,
                               units_in_mbatch=False, auto_scale=True, fast_lr=0.1)
        return CompoundTileConfig(device=comp, update=up.replace(desired_bl=5), **kw)
    if name == "agad":
        comp = DynamicTransfer(device_a=dev, device_c=dev, transfer_forward=io,
                               transfer_update=up.replace(desired_bl=1, update_bl_management=True,
                                                          update_management=True),
                               auto_scale=True, fast_lr=0.1, units_in_mbatch=False)
        return CompoundTileConfig(device=comp, update=up.replace(desired_bl=5), **kw)
    return MixedPrecisionTileConfig(device=MixedPrecisionCompound(device=dev), update=up, **kw)


def array_tile_config(dev, up, forward, backward):
    """The config of one array of ``dev``: a plain tile, a one-sided pair or a vector cell."""
    if isinstance(dev, OneSidedUnitCell):
        return OneSidedTileConfig(device=dev, update=up, forward=forward, backward=backward)
    if isinstance(dev, VectorUnitCell):
        return VectorTileConfig(device=dev, update=up, forward=forward, backward=backward)
    return TileConfig(device=dev, update=up, forward=forward, backward=backward)


# ------------------------------------------------------------------------------------------ aihwkit's presets
def preset_io() -> IOParameters:
    """aihwkit ``PresetIOParameters``: the defaults with output bound 20 and output noise 0.1."""
    return IOParameters(out_bound=20.0, out_noise=0.1)


def preset_update(**kw) -> UpdateParameters:
    """aihwkit ``PresetUpdateParameters``: BL 31 with update and update-BL management (the defaults)."""
    return UpdateParameters(**kw)


def _dev(name, **kw):
    from .device_models import get_preset

    return get_preset(name, **kw)


#: (aihwkit class-name stem, our device preset) of the devices with single, vector and Tiki-Taka presets
_DEVICES = {"ReRamES": "ReRamES", "ReRamSB": "ReRamSB", "Capacitor": "Capacitor", "EcRam": "EcRam",
            "EcRamMO": "EcRamMO", "Idealized": "Idealized"}
#: (in_chop_prob, fast_lr, auto_granularity, fast update desired_bl) of aihwkit's TTv2* / ChoppedTTv2* presets
_CHOPPED = {
    "TTv2": {"ReRamES": (0.0, 0.5, 1000.0, 31), "ReRamSB": (0.0, 0.5, 1000.0, 31), "Capacitor": (0.0, 0.1, 1000.0, 31),
             "EcRam": (0.0, 0.1, 500.0, 100), "EcRamMO": (0.0, 0.1, 500.0, 100), "Idealized": (0.0, 0.1, 500.0, 100)},
    "ChoppedTTv2": {"ReRamES": (0.01, 0.5, 1000.0, 31), "ReRamSB": (0.01, 0.5, 1000.0, 31),
                    "Capacitor": (0.01, 0.1, 1000.0, 31),
                    "EcRam": (0.01, 1.0, 500.0, 100),  # aihwkit sets no fast_lr here: the class default 1.0
                    "EcRamMO": (0.001, 0.1, 500.0, 100), "Idealized": (0.001, 0.1, 500.0, 100)},
}
#: (in_chop_prob, fast_lr, auto_granularity, tail_weightening, desired_bl) of aihwkit's AGAD* presets
_AGAD = {"ReRamES": (0.02, 0.5, 1000.0, 5.0, 31), "ReRamSB": (0.02, 0.5, 1000.0, 5.0, 31),
         "Capacitor": (0.01, 0.1, 1000.0, 20.0, 31), "EcRam": (0.005, 0.1, 750.0, 50.0, 31),
         "EcRamMO": (0.005, 0.1, 500.0, 50.0, 100), "Idealized": (0.005, 0.1, 500.0, 50.0, 100)}


def _tt_device(stem):
    # aihwkit's ReRamSB Tiki-Taka family presets subtract each device's symmetric point
    return _dev(stem, subtract_symmetry_point=True) if stem == "ReRamSB" else _dev(stem)


def _single(stem):
    return lambda: TileConfig(device=_dev(stem), update=preset_update(), forward=preset_io(), backward=preset_io())


def _vector(stem, n):
    return lambda: VectorTileConfig(device=VectorUnitCell(unit_cell_devices=(_dev(stem),) * n,
                                                          update_policy="single_random"),
                                    update=preset_update(), forward=preset_io(), backward=preset_io())


def _tikitaka(stem):
    def make():
        dev = _tt_device(stem)
        comp = TransferCompound(device_a=dev, device_c=dev, transfer_forward=_no_management(preset_io()),
                                transfer_update=preset_update(), units_in_mbatch=True, transfer_every=1.0)
        return CompoundTileConfig(device=comp, update=preset_update(), forward=preset_io(), backward=preset_io())
    return make


def _chopped(family, stem):
    p, fast_lr, ag, bl = _CHOPPED[family][stem]

    def make():
        dev = _tt_device(stem)
        comp = ChoppedTransfer(device_a=dev, device_c=dev, transfer_forward=_no_management(preset_io()),
                               transfer_update=preset_update(desired_bl=1, update_bl_management=False,
                                                             update_management=False),
                               in_chop_prob=p, fast_lr=fast_lr, auto_granularity=ag, auto_scale=True,
                               units_in_mbatch=False)
        return CompoundTileConfig(device=comp, update=preset_update(desired_bl=bl), forward=preset_io(),
                                  backward=preset_io())
    return make


def _agad(stem):
    p, fast_lr, ag, tw, bl = _AGAD[stem]

    def make():
        dev = _tt_device(stem)
        comp = DynamicTransfer(device_a=dev, device_c=dev, transfer_forward=_no_management(preset_io()),
                               transfer_update=preset_update(desired_bl=1, update_bl_management=False,
                                                             update_management=False),
                               in_chop_prob=p, fast_lr=fast_lr, auto_granularity=ag, tail_weightening=tw,
                               auto_scale=True, units_in_mbatch=False)
        return CompoundTileConfig(device=comp, update=preset_update(desired_bl=bl), forward=preset_io(),
                                  backward=preset_io())
    return make


def _mixed(stem):
    return lambda: MixedPrecisionTileConfig(device=MixedPrecisionCompound(device=_dev(stem)), update=preset_update(),
                                            forward=preset_io(), backward=preset_io())


def _pcm():
    return OneSidedTileConfig(device=_dev("PCM"), update=preset_update(), forward=preset_io(), backward=preset_io())


def _registry() -> dict:
    out = {}
    for stem in (*_DEVICES, "GokmenVlasov"):
        out[f"{stem}Preset"] = (_single(stem), f"single device {stem}")
    out["PCMPreset"] = (_pcm, "one-sided PCM pair (PCMPresetUnitCell)")
    for n in (2, 4):
        for stem in _DEVICES:
            out[f"{stem}{n}Preset"] = (_vector(stem, n), f"VectorUnitCell of {n} {stem} devices, single_random")
    for stem in _DEVICES:
        out[f"TikiTaka{stem}Preset"] = (_tikitaka(stem), f"Tiki-Taka v1 (TransferCompound) on {stem}")
    for family in ("TTv2", "ChoppedTTv2"):
        for stem in _DEVICES:
            p, lr, ag, bl = _CHOPPED[family][stem]
            out[f"{family}{stem}Preset"] = (_chopped(family, stem),
                                            f"ChoppedTransferCompound on {stem}: in_chop_prob {p:g}, fast_lr {lr:g}, "
                                            f"auto_scale, auto_granularity {ag:g}, BL {bl}")
    for stem in _DEVICES:
        p, lr, ag, tw, bl = _AGAD[stem]
        out[f"AGAD{stem}Preset"] = (_agad(stem), f"DynamicTransferCompound (AGAD) on {stem}: in_chop_prob {p:g} "
                                                 f"regular, fast_lr {lr:g}, auto_scale, auto_granularity {ag:g}, "
                                                 f"tail_weightening {tw:g}, BL {bl}")
    for stem in (*_DEVICES, "GokmenVlasov", "PCM"):
        out[f"MixedPrecision{stem}Preset"] = (_mixed(stem), f"MixedPrecisionCompound on {stem}")
    return out


#: aihwkit preset RPU configuration class name -> (factory, description)
RPU_PRESETS = _registry()


# ------------------------------------------------------------------------------------------ our own defaults
def _our_write(up: UpdateParameters) -> UpdateParameters:
    """The transfer write of our presets: up to 31 pulses per element and read, with management (Tiki-Taka v1's)."""
    return up.replace(desired_bl=31, update_bl_management=True, update_management=True)


def _ours_c_ttv2(dev, io, up):
    """Chopped TTv2, crossbar-sim's default (``ours-c-ttv2``).

    Setting (changes to aihwkit's ``c-ttv2``): ``auto_scale`` off with a fixed ``fast_lr = 0.1``; the fast update with
    the update parameters given (BL 31 with management by default, not BL 5); the write onto C at up to 31 pulses per
    element and read, with update management (aihwkit: one pulse at most, BL 1 without management); regular choppers
    every 50 sweeps (``in_chop_prob = 0.02``, ``in_chop_random = False``; aihwkit: random, 0.1); buffer unit half an
    A step (``buffer_granularity = 0.5``).

    Reason, measured on the sampled-target least-squares task (10 x 40, W* uniform in +-0.4, fresh Gaussian inputs,
    lr 0.01, 20k steps, SoftBoundsReference without variations, perfect periphery; the experiment
    ``presets_aihwkit``, README "aihwkit's training presets"): with aihwkit's setting the loss only goes from 11.4 to
    10.1 (tau 0.6 and 1.0, 3 seeds; aihwkit 1.1.0 itself on the same task: 10.0 to 10.3). ``auto_scale`` sets the
    fast learning rate to ``fast_lr * BL * g_A / (m_x m_d)``, about 1e-4 here: it does not depend on the SGD learning
    rate and is tuned for DNN layers, whose inputs and errors are of order one per line; with 40 Gaussian inputs A
    gets a small fraction of a pulse per sample. Turning it off alone does not converge either (loss 3.4 at tau 1.0,
    3 seeds; aihwkit 1.1.0: 3.3): one pulse per read caps C's speed at one granularity step per sweep (40 samples),
    and random choppers every ~10 sweeps cancel much of what A has integrated. With the changes the loss is 0.0019 at tau 1.0 and 0.0010 at tau 0.6 after 20k steps (below 0.05 after
    4400 and 8000 steps).
    """
    comp = ChoppedTransfer(device_a=dev, device_c=dev, transfer_forward=_no_management(io),
                           transfer_update=_our_write(up), in_chop_prob=0.02, in_chop_random=False, auto_scale=False,
                           fast_lr=0.1, buffer_granularity=0.5, units_in_mbatch=False)
    return CompoundTileConfig(device=comp, update=up, forward=io, backward=io)


def _ours_agad(dev, io, up):
    """AGAD, crossbar-sim's default (``ours-agad``).

    Setting (changes to aihwkit's ``agad``): ``auto_scale`` off with a fixed ``fast_lr = 0.1``; the fast update with
    the update parameters given (BL 31 by default, not 5); the write onto C at up to 31 pulses per element and read
    (aihwkit: BL 1, which with management is one pulse); buffer unit half an A step. Choppers as aihwkit's (regular,
    every 10 sweeps; ``tail_weightening = 5``).

    Reason: as for ``ours-c-ttv2`` (auto-scaling starves A on a task whose inputs are not normalised per line, and one
    pulse per read caps C's speed): aihwkit's ``agad`` takes the loss from 11.4 to 10.0 in 20k steps; ours to 0.0008
    at tau 1.0 and 0.0006 at tau 0.6 (below 0.05 after 3000 and 4600 steps; 3 seeds). AGAD's reference is the running
    mean of past reads, not a chopper-averaged A, so it keeps aihwkit's shorter chopper period (with 50 sweeps its
    writes start only after 2000 samples and the loss oscillates between 0.005 and 0.05, one seed).
    """
    comp = DynamicTransfer(device_a=dev, device_c=dev, transfer_forward=_no_management(io),
                           transfer_update=_our_write(up), in_chop_prob=0.1, auto_scale=False, fast_lr=0.1,
                           buffer_granularity=0.5, units_in_mbatch=False)
    return CompoundTileConfig(device=comp, update=up, forward=io, backward=io)


#: our algorithm presets: name -> (builder(device, io, up) -> tile config, description)
OUR_PRESETS = {
    "ours-c-ttv2": (_ours_c_ttv2, "chopped TTv2, crossbar-sim default: fast_lr 0.1 without auto_scale, write up to 31 "
                                  "pulses per read, regular choppers every 50 sweeps, buffer unit 0.5 g_A"),
    "ours-agad": (_ours_agad, "AGAD, crossbar-sim default: fast_lr 0.1 without auto_scale, write up to 31 pulses per "
                              "read, buffer unit 0.5 g_A"),
}


def _key(name: str) -> str:
    return name.lower().replace("_", "-").replace(" ", "")


def preset_kind(name: str) -> str | None:
    """``"algorithm"`` (a build_config name), ``"ours"``, ``"rpu"`` (an aihwkit RPU preset class) or None."""
    if not isinstance(name, str):
        return None
    k = _key(name)
    if k in ALGORITHM_ALIASES:
        return "algorithm"
    if k in OUR_PRESETS:
        return "ours"
    if _rpu_name(name) is not None:
        return "rpu"
    return None


def _rpu_name(name: str) -> str | None:
    k = _key(name).replace("-", "")
    for reg in RPU_PRESETS:
        r = reg.lower()
        if k in (r, r.removesuffix("preset")):
            return reg
    return None


def known_presets() -> list[str]:
    """Every name ``algorithm_preset`` accepts."""
    return [*ALGORITHM_ALIASES, *OUR_PRESETS, *RPU_PRESETS]


def check_preset_name(name: str, where: str) -> None:
    """Raise one :class:`ConfigError` line unless ``name`` is a known preset."""
    if preset_kind(name) is None:
        raise ConfigError(f"The '{where}' parameter names no preset: {name!r}. Known: the build_config names "
                          f"{', '.join(ALGORITHM_ALIASES)}; ours {', '.join(OUR_PRESETS)}; or an aihwkit preset class "
                          f"such as ChoppedTTv2EcRamPreset (crossbar-sim devices --presets lists all "
                          f"{len(RPU_PRESETS)}).")


def get_rpu_preset(name: str):
    """The tile config of aihwkit's preset RPU configuration ``name`` (e.g. ``"AGADEcRamPreset"``; the ``Preset``
    suffix and case are optional)."""
    reg = _rpu_name(name)
    if reg is None:
        raise ConfigError(f"Unknown aihwkit preset {name!r}; known: {', '.join(RPU_PRESETS)}.")
    return RPU_PRESETS[reg][0]()


def tile_config_for(name: str, device, forward=None, backward=None, update=None, extra: dict | None = None):
    """The tile config of preset ``name`` for a run: a build_config name or one of ours with the run's ``device``,
    periphery and update parameters (as aihwkit's ``build_config(name, device, io_parameters, up_parameters)``); an
    aihwkit RPU preset as it is (its own device, periphery and update). ``extra``: fields of the compound (or of
    the mixed-precision compound) to change on top (a run's ``transfer_extra``)."""
    kind = preset_kind(name)
    if kind is None:
        check_preset_name(name, "algorithm_preset")
    if kind == "rpu":
        cfg = get_rpu_preset(name)
    else:
        dev = resolve_device(device)
        io = _io(forward)
        up = _up(update)
        if kind == "ours":
            cfg = OUR_PRESETS[_key(name)][0](dev, io, up)
        else:
            cfg = build_config(name, dev, io_parameters=io, up_parameters=up)
        if backward is not None:
            cfg = cfg.replace(backward=backward)
    if extra:
        cfg = with_compound_options(cfg, extra, f"transfer_extra of preset {name!r}")
    return cfg


def with_compound_options(cfg, extra: dict, where: str):
    """``cfg`` with ``extra`` (compound field -> value) applied to its compound device (one line on a bad key)."""
    from .config import apply_overrides

    dev = cfg.device
    if not isinstance(dev, (TransferCompound, MixedPrecisionCompound)):
        raise ConfigError(f"{where}: {type(dev).__name__} has no compound options; transfer_extra applies to the "
                          f"Tiki-Taka family and mixed precision.")
    try:
        dev = apply_overrides(dev, dict(extra), strict=True)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return cfg.replace(device=dev)


def describe_presets() -> list[dict]:
    """One row per preset name (for ``crossbar-sim devices``): name, kind, what it builds, source."""
    rows = []
    seen = {}
    for alias, canon in ALGORITHM_ALIASES.items():
        seen.setdefault(canon, []).append(alias)
    for canon, aliases in seen.items():
        cfg = build_config(canon, "ConstantStep")
        rows.append({"name": canon, "aliases": aliases, "kind": "build_config", "config": type(cfg).__name__,
                     "compound": type(cfg.device).__name__, "source": AIHWKIT_SOURCE,
                     "parameters": _set_fields(cfg)})
    for name, (builder, desc) in OUR_PRESETS.items():
        cfg = builder(resolve_device("ConstantStep"), IOParameters(), UpdateParameters())
        rows.append({"name": name, "aliases": [], "kind": "ours", "config": type(cfg).__name__,
                     "compound": desc, "source": "crossbar-sim (crossbar_sim/presets.py)",
                     "parameters": _set_fields(cfg)})
    for name, (factory, desc) in RPU_PRESETS.items():
        cfg = factory()
        rows.append({"name": name, "aliases": [], "kind": "aihwkit preset", "config": type(cfg).__name__,
                     "compound": desc, "source": f"{PRESETS_SOURCE} {name}", "parameters": _set_fields(cfg)})
    return rows


def _set_fields(cfg, prefix="", base=None) -> dict:
    """The fields ``cfg`` sets, as dotted keys: differing from ``base`` (default: the class defaults), a nested
    config compared with its field's default in the parent; device models are left out (build_config takes the
    device as an argument)."""
    from .device_models import PulsedDevice

    if base is None or type(base) is not type(cfg):
        base = type(cfg)()
    out = {}
    for f in dataclasses.fields(cfg):
        v, d = getattr(cfg, f.name), getattr(base, f.name)
        if isinstance(v, PulsedDevice) or v == d:
            continue
        if isinstance(v, Config):
            out.update(_set_fields(v, f"{prefix}{f.name}.", d))
        else:
            out[f"{prefix}{f.name}"] = v
    return out
