"""``convert_to_analog``: put the Linear and Conv layers of any torch module onto tiles (aihwkit's function)."""
from __future__ import annotations

import copy
import fnmatch

import numpy as np
from torch import nn

from ..errors import ConfigError
from .config import AnalogConfig
from .layers import ANALOG_LAYERS, AnalogLayerBase


def _targets(module: nn.Module, skip, prefix: str = "", out=None) -> list:
    """``(parent, attribute name, qualified name, child)`` of every layer to convert, in module order."""
    out = [] if out is None else out
    for name, child in module.named_children():
        qual = f"{prefix}{name}"
        if any(fnmatch.fnmatchcase(qual, pat) for pat in skip):
            continue  # a skipped container keeps its whole subtree digital
        if type(child) in ANALOG_LAYERS:  # exact types: nn.MultiheadAttention's out_proj (a Linear subclass whose
            out.append((module, name, qual, child))  # weight the attention reads directly) stays digital
        elif not isinstance(child, AnalogLayerBase):
            _targets(child, skip, qual + ".", out)
    return out


def convert_to_analog(module: nn.Module, config: AnalogConfig | None = None, skip=(), seed=None,
                      inplace: bool = False) -> nn.Module:
    """A copy of ``module`` whose ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` layers are analog layers.

    Each converted layer gets the digital layer's weight and bias, programmed onto its tiles (clipped to the device
    bounds), and its own tile seed. Layers already analog, subclasses of those types (e.g. the output projection of
    ``nn.MultiheadAttention``) and everything else stay as they are.

    Parameters
    ----------
    module : torch.nn.Module
        On the CPU, float32. A bare ``nn.Linear`` / ``nn.Conv*d`` is converted itself.
    config : AnalogConfig, optional
        The tiles of every converted layer (default ``AnalogConfig()``).
    skip : iterable of str
        Qualified names (``"classifier"``, ``"features.0"``) or ``fnmatch`` patterns (``"head.*"``) of layers or
        containers to keep digital; a name that matches nothing raises :class:`ConfigError`.
    seed : int, numpy.random.SeedSequence or None
        Tile seeds: spawned from this seed, one per converted layer in module order; None draws each from torch's
        default generator.
    inplace : bool
        Convert ``module`` itself instead of a deep copy (aihwkit's default is a copy, as here).
    """
    if not isinstance(module, nn.Module):
        raise ConfigError(f"convert_to_analog: 'module' must be a torch.nn.Module. Got {type(module).__name__}.")
    if isinstance(skip, str):
        skip = (skip,)
    skip = tuple(skip)
    for p in module.parameters():
        if p.device.type != "cpu":
            raise ConfigError(f"convert_to_analog: the module has parameters on '{p.device}', but the tiles run on the "
                              f"CPU: convert module.cpu().")
    names = [n for n, _ in module.named_modules() if n]
    for pat in skip:
        if not any(fnmatch.fnmatchcase(n, pat) for n in names):
            raise ConfigError(f"convert_to_analog: 'skip' entry {pat!r} matches no submodule; submodules: "
                              f"{', '.join(names) or '(none)'}.")
    if type(module) in ANALOG_LAYERS:
        s = None if seed is None else (seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed))
        return ANALOG_LAYERS[type(module)].from_digital(module, config, s)
    if not inplace:
        module = copy.deepcopy(module)
    targets = _targets(module, skip)
    seeds = [None] * len(targets)
    if seed is not None:
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        seeds = ss.spawn(len(targets))
    for (parent, name, qual, child), s in zip(targets, seeds):
        try:
            analog = ANALOG_LAYERS[type(child)].from_digital(child, config, s)
        except ConfigError as exc:
            raise ConfigError(f"convert_to_analog: layer '{qual}': {exc} (keep it digital with skip=['{qual}'])") \
                from None
        analog.train(child.training)
        setattr(parent, name, analog)
    return module
