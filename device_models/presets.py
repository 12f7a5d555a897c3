"""Device presets: parameters fitted to published measurements, each with its source.

The numbers are those of IBM aihwkit's presets (``aihwkit/simulator/presets/devices.py``, MIT licence),
which cite the paper each was fitted to; they are facts restated here, with our own model classes. A preset is
a plain device config (a frozen dataclass of one of our models), so it can be inspected, overridden
(``get_preset("EcRam", dw_min=1e-3)``) and written to JSON like any other device.

>>> from crossbar_sim.device_models import get_preset, list_presets
>>> sorted(list_presets())[:3]
['Capacitor', 'EcRam', 'EcRamMO']
>>> get_preset("ReRamES").dw_min
0.00135

What our models do not carry, and how each preset handles it:

* Capacitor: aihwkit's leakage (``lifetime = 1e6`` mini-batches, ``lifetime_dtod = 0.3``) is modelled: the weight
  decays towards its reset value by ~1e-6 of its distance per mini-batch (``post_update_step``).
* ReRAM array (IEDM 2022): aihwkit's ``corrupt_devices_prob`` is 0 by default (13.5 % / 9.8 % measured); we
  do not model corrupt devices.
* PCM (Nandakumar et al. 2020): the measured device only potentiates gradually (SET); aihwkit uses it only
  as a plus-minus pair with periodic refresh. ``PCM`` is that pair (aihwkit ``PCMPresetUnitCell``: a
  :class:`~crossbar_sim.tiles.onesided.OneSidedUnitCell` of the fitted unit device, refresh after every mini-batch,
  refresh reads with aihwkit's preset periphery, ``out_bound`` 20 and ``out_noise`` 0.1). ``PCMUnit`` is the
  fitted unit device alone (aihwkit ``PCMPresetDevice``), kept because it is the pair's device and to reproduce
  the single-device approximation earlier versions called ``PCM``: used directly, its depression is the
  fitted ExpStep ``A_down`` branch and its weights cannot go below 0. A pair preset is not a device model:
  :func:`get_preset` returns the unit cell, and device parameters given to it (``get_preset("PCM",
  dw_min=0.02)``) go to its unit device.
"""
from __future__ import annotations

from crossbar_sim.errors import ConfigError

from .base import PulsedDevice
from .constant_step import ConstantStepDevice
from .exp_step import ExpStepDevice
from .linear_step import LinearStepDevice
from .soft_bounds_reference import SoftBoundsReferenceDevice

GONG_2018 = "Gong et al., Nat. Commun. 9, 2102 (2018), https://www.nature.com/articles/s41467-018-04485-1"
LI_2018 = "Li et al., VLSI Technology 2018, https://ieeexplore.ieee.org/abstract/document/8510648"
TANG_2018 = "Tang et al., IEDM 2018, https://ieeexplore.ieee.org/document/8614551"
KIM_2019 = "Kim et al., IEDM 2019, https://ieeexplore.ieee.org/document/8993463"
GV_2016 = ("Gokmen & Vlasov, Front. Neurosci. 10:333 (2016), "
           "https://www.frontiersin.org/articles/10.3389/fnins.2016.00333/full")
RASCH_2019 = "Rasch, Gokmen & Haensch, IEEE Design & Test (2019), https://arxiv.org/abs/1906.02698"
NANDAKUMAR_2020 = ("Nandakumar et al., Front. Neurosci. 14:406 (2020), "
                   "https://www.frontiersin.org/articles/10.3389/fnins.2020.00406/full")
GONG_RASCH_2022 = "Gong, Rasch et al., IEDM 2022, https://ieeexplore.ieee.org/stamp/stamp.jsp?arnumber=10019569"
AIHWKIT = "numbers as in IBM aihwkit presets/devices.py (MIT licence)"


def _reram_es():
    """ReRAM, exponential step: aihwkit ``ReRamESPresetDevice``, a fit of ExpStep to Gong et al. 2018."""
    return ExpStepDevice(dw_min=0.00135, up_down=0.259359, w_max=1.0, w_min=-1.0, a=-0.5, b=-0.5,
                         gamma_up=5.0, gamma_down=5.0, A_up=-1.18445, A_down=-0.081404,
                         dw_min_dtod=0.2, up_down_dtod=0.05, w_max_dtod=0.3, w_min_dtod=0.3,
                         dw_min_std=5.0, write_noise_std=75.0)


def _reram_sb():
    """ReRAM, soft bounds: aihwkit ``ReRamSBPresetDevice``, a loose SoftBounds fit to Gong et al. 2018
    (symmetric point assumed calibrated away by a reference device)."""
    return SoftBoundsReferenceDevice(dw_min=0.002, up_down=0.0, w_max=1.25, w_min=-0.75, mult_noise=False,
                                     dw_min_dtod=0.3, up_down_dtod=0.01, w_max_dtod=0.3 / 1.25,
                                     w_min_dtod=0.3 / 0.75, dw_min_std=3.75, write_noise_std=56.0)


def _capacitor():
    """Capacitor: aihwkit ``CapacitorPresetDevice``, a LinearStep fit to Li et al. 2018, with its leakage (lifetime
    1e6 mini-batches)."""
    return LinearStepDevice(dw_min=0.005, up_down=0.0, w_max=1.0, w_min=-1.0, mult_noise=False,
                            gamma_up=0.05, gamma_down=0.05, dw_min_dtod=0.1, up_down_dtod=0.06,
                            w_max_dtod=0.07, w_min_dtod=0.07, gamma_up_dtod=0.01, gamma_down_dtod=0.01,
                            dw_min_std=0.3, write_noise_std=0.0, mean_bound_reference=True, lifetime=1e6,
                            lifetime_dtod=0.3)


def _ecram():
    """Li-based ECRAM: aihwkit ``EcRamPresetDevice``, a LinearStep fit to Tang et al. 2018 (range shifted
    so that the symmetric point is at zero)."""
    return LinearStepDevice(dw_min=0.002, up_down=0.0, w_max=1.1724, w_min=-0.8276, mult_noise=True,
                            gamma_up=0.1153, gamma_down=0.5085, dw_min_dtod=0.1, up_down_dtod=0.01,
                            w_max_dtod=0.05, w_min_dtod=0.05, gamma_up_dtod=0.05, gamma_down_dtod=0.05,
                            dw_min_std=0.3, write_noise_std=0.0, mean_bound_reference=True)


def _ecram_mo():
    """Metal-oxide ECRAM: aihwkit ``EcRamMOPresetDevice``, LinearStep, data of Kim et al. 2019."""
    return LinearStepDevice(dw_min=2.8214e-4, up_down=0.0, w_max=1.1714, w_min=-0.8286, mult_noise=True,
                            gamma_up=0.4152, gamma_down=0.7342, dw_min_dtod=0.1, up_down_dtod=0.01,
                            w_max_dtod=0.05, w_min_dtod=0.05, gamma_up_dtod=0.05, gamma_down_dtod=0.05,
                            dw_min_std=2.0, write_noise_std=0.0, mean_bound_reference=True)


def _idealized():
    """Idealized constant step (10000 states): aihwkit ``IdealizedPresetDevice``, the specifications of
    Gokmen & Vlasov 2016 with no device-to-device asymmetry and 8x more states, as in Rasch et al. 2019."""
    return ConstantStepDevice(dw_min=0.0002, dw_min_dtod=0.3, dw_min_std=0.3, up_down=0.0, up_down_dtod=0.0,
                              w_max=1.0, w_min=-1.0, w_max_dtod=0.3, w_min_dtod=0.3)


def _gokmen_vlasov():
    """Gokmen-Vlasov constant step (1200 states): aihwkit ``GokmenVlasovPresetDevice``, the RPU
    specifications of Gokmen & Vlasov 2016 scaled to the weight range [-1, 1]."""
    return ConstantStepDevice(dw_min=0.0016, dw_min_dtod=0.3, dw_min_std=0.3, up_down=0.0, up_down_dtod=0.01,
                              w_max=1.0, w_min=-1.0, w_max_dtod=0.3, w_min_dtod=0.3)


def _pcm_unit():
    """PCM (Ge2Sb2Te5) unit device: aihwkit ``PCMPresetDevice``, ExpStep with complex cycle-to-cycle noise
    fitted to Nandakumar et al. 2020. One-directional: meant as the device of the ``PCM`` pair; used alone it
    is the single-device approximation (see the module docstring)."""
    return ExpStepDevice(dw_min=0.01, up_down=0.0, w_max=2.0, w_min=0.0, a=-1.0, b=0.0, gamma_up=2.5,
                         gamma_down=2.5, A_up=-27.235, A_down=-2.235, dw_min_dtod=0.2, up_down_dtod=0.05,
                         w_max_dtod=0.1, w_min_dtod=0.0, dw_min_std=0.6, dw_min_std_add=0.042,
                         dw_min_std_slope=0.108, write_noise_std=0.0, reset=0.01, reset_dtod=0.02)


def _pcm():
    """PCM plus-minus pair with refresh: aihwkit ``PCMPresetUnitCell`` (a ``OneSidedUnitCell`` of the unit device
    fitted to Nandakumar et al. 2020; refresh checked after every mini-batch, read through aihwkit's preset
    periphery ``PresetIOParameters``: out_bound 20, out_noise 0.1; re-written with BL 31 and update
    management)."""
    from crossbar_sim.tiles.onesided import OneSidedUnitCell
    from crossbar_sim.tiles.params import IOParameters, UpdateParameters

    return OneSidedUnitCell(unit_device=_pcm_unit(), refresh_every=1, units_in_mbatch=True,
                            refresh_forward=IOParameters(out_bound=20.0, out_noise=0.1),
                            refresh_update=UpdateParameters(desired_bl=31))


def _reram_array_om():
    """ReRAM array, optimized material: aihwkit ``ReRamArrayOMPresetDevice``, SoftBoundsReference fitted to
    the array measurements of Gong, Rasch et al., IEDM 2022 (symmetric point subtracted, 5 % reference
    error; corrupt devices not modelled)."""
    return SoftBoundsReferenceDevice(enforce_consistency=True, dw_min_dtod_log_normal=True, dw_min=0.0949,
                                     up_down=0.0, w_max=1.0, w_min=-1.0, mult_noise=False, dw_min_dtod=0.7829,
                                     up_down_dtod=0.01, w_max_dtod=0.3499, w_min_dtod=0.5695, dw_min_std=0.4158,
                                     write_noise_std=1.4113, subtract_symmetry_point=True, reference_std=0.05)


def _reram_array_hfo2():
    """ReRAM array, baseline HfO2: aihwkit ``ReRamArrayHfO2PresetDevice``, SoftBoundsReference fitted to
    Gong, Rasch et al., IEDM 2022 (symmetric point subtracted, 5 % reference error)."""
    return SoftBoundsReferenceDevice(enforce_consistency=True, dw_min_dtod_log_normal=True, dw_min=0.4622,
                                     up_down=0.0, w_max=1.0, w_min=-1.0, mult_noise=False, dw_min_dtod=0.7125,
                                     up_down_dtod=0.01, w_max_dtod=0.4295, w_min_dtod=0.5990, dw_min_std=0.2174,
                                     write_noise_std=0.5841, subtract_symmetry_point=True, reference_std=0.05)


#: name -> (factory, source)
PRESETS = {
    "ReRamES": (_reram_es, f"ExpStep fit to {GONG_2018}; {AIHWKIT}"),
    "ReRamSB": (_reram_sb, f"SoftBounds(Reference) loose fit to {GONG_2018}; {AIHWKIT}"),
    "Capacitor": (_capacitor, f"LinearStep fit to {LI_2018} (leakage: lifetime 1e6 mini-batches); {AIHWKIT}"),
    "EcRam": (_ecram, f"LinearStep fit to {TANG_2018}; {AIHWKIT}"),
    "EcRamMO": (_ecram_mo, f"LinearStep fit to {KIM_2019}; {AIHWKIT}"),
    "PCM": (_pcm, f"plus-minus pair with refresh (OneSidedUnitCell, aihwkit PCMPresetUnitCell) of the ExpStep "
                  f"unit device fitted to {NANDAKUMAR_2020}; {AIHWKIT}"),
    "PCMUnit": (_pcm_unit, f"ExpStep unit device fitted to {NANDAKUMAR_2020} (aihwkit PCMPresetDevice), alone: "
                           f"the single-device approximation of earlier versions' PCM; {AIHWKIT}"),
    "Idealized": (_idealized, f"ConstantStep after {GV_2016} with 10000 states, as {RASCH_2019}; {AIHWKIT}"),
    "GokmenVlasov": (_gokmen_vlasov, f"ConstantStep, RPU specifications of {GV_2016}; {AIHWKIT}"),
    "ReRamArrayOM": (_reram_array_om, f"SoftBoundsReference fit to {GONG_RASCH_2022} (optimized material); "
                                      f"{AIHWKIT}"),
    "ReRamArrayHfO2": (_reram_array_hfo2, f"SoftBoundsReference fit to {GONG_RASCH_2022} (baseline HfO2); "
                                          f"{AIHWKIT}"),
}


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "").removesuffix("preset")


def preset_name(name: str) -> str | None:
    """The registered preset name matching ``name`` (case, dashes, underscores ignored), or None."""
    key = _norm(name)
    for reg in PRESETS:
        if _norm(reg) == key:
            return reg
    return None


def list_presets() -> dict:
    """``name -> (device config, source string)`` of every preset (fresh config objects; ``PCM`` is a
    :class:`~crossbar_sim.tiles.onesided.OneSidedUnitCell`, the others are device models)."""
    return {name: (factory(), source) for name, (factory, source) in PRESETS.items()}


def preset_source(name: str) -> str:
    reg = preset_name(name)
    if reg is None:
        raise ConfigError(f"Unknown preset {name!r}; known presets: {', '.join(PRESETS)}.")
    return PRESETS[reg][1]


def get_preset(name: str, **overrides) -> PulsedDevice:
    """The device config of preset ``name``, with ``overrides`` applied (unknown names raise; on a unit cell,
    device parameters go to its unit device)."""
    reg = preset_name(name)
    if reg is None:
        raise ConfigError(f"Unknown preset {name!r}; known presets: {', '.join(PRESETS)}.")
    dev = PRESETS[reg][0]()
    return dev.replace(**overrides) if overrides else dev
