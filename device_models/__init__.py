"""Device response models of crossbar-sim (SPEC section 1) and their registry.

>>> from crossbar_sim.device_models import get_device
>>> get_device("SoftBounds", w_max=0.8, w_min=-0.8)
SoftBoundsDevice(w_max=0.8, w_min=-0.8)
"""
from __future__ import annotations

from crossbar_sim.errors import ConfigError

from .base import DeviceArrays, PulsedDevice
from .constant_step import ConstantStepDevice
from .device_file import load_device_file, save_device_file
from .exp_step import ExpStepDevice
from .linear_step import LinearStepDevice
from .lookup_table import LookupTableDevice
from .piecewise import PiecewiseStepDevice
from .pow_step import PowStepDevice
from .pow_step_reference import PowStepReferenceDevice
from .soft_bounds import SoftBoundsDevice
from .soft_bounds_pmax import SoftBoundsPmaxDevice
from .soft_bounds_reference import SoftBoundsReferenceDevice, asymmetric_linear_device
from .presets import PRESETS, get_preset, list_presets, preset_name, preset_source

#: name -> device class; the CLI lists these
DEVICE_MODELS: dict[str, type[PulsedDevice]] = {}


def register_device(cls: type[PulsedDevice]) -> type[PulsedDevice]:
    """Add a device model to the registry under ``cls.name`` (and its class name)."""
    DEVICE_MODELS[cls.name] = cls
    return cls


for _cls in (ConstantStepDevice, SoftBoundsDevice, SoftBoundsReferenceDevice, LinearStepDevice, ExpStepDevice,
             PowStepDevice, PiecewiseStepDevice, LookupTableDevice, SoftBoundsPmaxDevice, PowStepReferenceDevice):
    register_device(_cls)


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "").removesuffix("device")


def get_device_class(name: str) -> type[PulsedDevice]:
    """The device class registered as ``name`` (case, dashes and a trailing 'Device' ignored)."""
    key = _norm(name)
    for reg, cls in DEVICE_MODELS.items():
        if _norm(reg) == key or _norm(cls.__name__) == key:
            return cls
    raise ConfigError(f"Unknown device {name!r}; known devices: {', '.join(sorted(DEVICE_MODELS))}.")


def get_device(name: str, **params) -> PulsedDevice:
    """Build the device registered as ``name`` with ``params`` (unknown parameter names raise).

    ``name`` may also be a preset (:func:`list_presets`): its fitted parameters, with ``params`` overriding.
    """
    if preset_name(name) is not None and not any(_norm(name) == _norm(r) for r in DEVICE_MODELS):
        return get_preset(name, **params)
    cls = get_device_class(name)
    return cls.from_dict({"type": cls.__name__, **params})


__all__ = [
    "DEVICE_MODELS",
    "DeviceArrays",
    "PulsedDevice",
    "ConstantStepDevice",
    "SoftBoundsDevice",
    "SoftBoundsReferenceDevice",
    "LinearStepDevice",
    "ExpStepDevice",
    "PowStepDevice",
    "PowStepReferenceDevice",
    "SoftBoundsPmaxDevice",
    "PiecewiseStepDevice",
    "LookupTableDevice",
    "asymmetric_linear_device",
    "get_device",
    "get_preset",
    "load_device_file",
    "save_device_file",
    "list_presets",
    "PRESETS",
    "get_device_class",
    "register_device",
]
