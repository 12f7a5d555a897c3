"""Hardware-aware training as aihwkit 1.1.0 offers it: weight noise in the forward pass, and weight clipping.

:class:`WeightModifier` (aihwkit ``WeightModifierParameter``) and :class:`WeightClip` (``WeightClipParameter``) are
fields of :class:`~crossbar_sim.nn.training.NetConfig` (``modifier``, ``clip``), so they are sweep axes and
``--set`` keys (``--set modifier.kind=add_normal --set modifier.std_dev=0.05``; aihwkit's ``type`` is ``kind`` here).

Per mini-batch (aihwkit's ``InferenceTile``: RPUCuda ``fb_weights``), for every weight tile of the network (each
tile of a tile array on its own):

1. :func:`modify_weights` draws one modified copy ``W'`` of the weights the tile reads (``a`` = the tile's
   abs-max weight, or ``assumed_wmax``):

       add_normal   W' = W + std_dev a xi
       mult_normal  W' = W (1 + std_dev xi)
       then         W'_ij = 0 with probability pdrop (drop connect)

   and the forward *and* the backward pass of the whole mini-batch read ``W'``;
2. the pulsed (or digital) update acts on the devices' own weights, not on ``W'``;
3. :func:`clip_weights` then clips the weights to ``+-c`` (``fixed_value``: ``c = fixed_value``;
   ``layer_gaussian``: ``c = sigma * std(W)`` over the tile, unbiased; ``average_channel_max``: ``c`` = the mean
   over output lines of ``max_j |W_ij|``; a positive ``fixed_value`` also caps the other two).

Where we differ from aihwkit 1.1.0:

* ``mult_normal`` is ``W (1 + std_dev xi)`` as aihwkit's torch tile; its RPUCuda (CPU/GPU) tile multiplies the
  relative std by ``a`` as well (``W (1 + std_dev a xi)``); both agree for ``a = 1``.
* The copy is drawn at the start of each mini-batch, so the first mini-batch is noisy too (RPUCuda draws it after
  each update, so its first mini-batch reads the clean weights); the order clip -> modifier per step is kept.
* ``pdrop`` acts with ``kind = none`` too (aihwkit returns early for NONE and ignores pdrop).
* Only ``none``, ``add_normal`` and ``mult_normal`` of aihwkit's modifier types; no ``enable_during_test``,
  ``copy_last_column`` or per-sample noise. The modifier acts on every weight layer, analog or digital (aihwkit's
  digital layers are plain torch layers; here a digital layer stands for aihwkit's floating-point
  ``InferenceRPUConfig`` training, which does apply it).
* Clipping writes the clipped weights directly (``set_weights``: an ideal write, no pulses counted), on the array
  the network reads: ``W`` of an analog tile, ``C`` of a Tiki-Taka-family tile (with ``gamma = 0``); it is refused
  on one-sided pairs (re-splitting a pair is not a clip).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import Config
from ..errors import ConfigError
from ..kernels import modifier as KM
from ..kernels.rng import sub_key_py
from ..validation import check_bool, check_choice, check_float

MODIFIER_TYPES = {"none": KM.MOD_NONE, "add_normal": KM.MOD_ADD_NORMAL, "mult_normal": KM.MOD_MULT_NORMAL}
CLIP_TYPES = ("none", "fixed_value", "layer_gaussian", "average_channel_max")


@dataclass(frozen=True, repr=False)
class WeightModifier(Config):
    """Weight noise of the forward and backward pass during training, one draw per mini-batch.

    Parameters
    ----------
    kind : str
        aihwkit's ``type`` (renamed: ``type`` is the config's class key in JSON): ``none``, ``add_normal``
        (``W + std_dev a xi``) or ``mult_normal`` (``W (1 + std_dev xi)``).
    std_dev : float
        Noise strength (additive: relative to ``a``).
    pdrop : float
        Probability that a weight reads 0 in a mini-batch (drop connect), in [0, 1).
    rel_to_actual_wmax : bool
        ``a`` = the tile's abs-max weight (aihwkit default), else ``assumed_wmax``.
    assumed_wmax : float
        ``a`` when ``rel_to_actual_wmax`` is False.
    """

    kind: str = "none"
    std_dev: float = 0.0
    pdrop: float = 0.0
    rel_to_actual_wmax: bool = True
    assumed_wmax: float = 1.0

    def validate(self) -> None:
        owner = type(self).__name__
        check_choice(self.kind, "kind", owner, tuple(MODIFIER_TYPES))
        check_float(self.std_dev, "std_dev", owner, 0.0, 1e3)
        check_float(self.pdrop, "pdrop", owner, 0.0, 1.0, closed_hi=False)
        check_bool(self.rel_to_actual_wmax, "rel_to_actual_wmax", owner)
        check_float(self.assumed_wmax, "assumed_wmax", owner, 0.0, 1e6, closed_lo=False)

    @property
    def active(self) -> bool:
        return (self.kind != "none" and self.std_dev > 0.0) or self.pdrop > 0.0


@dataclass(frozen=True, repr=False)
class WeightClip(Config):
    """Weight clipping after every optimiser step (aihwkit ``WeightClipParameter``, defaults: none, 2.5, -1).

    Parameters
    ----------
    kind : str
        aihwkit's ``type`` (renamed, as for :class:`WeightModifier`): ``none``, ``fixed_value``, ``layer_gaussian``
        or ``average_channel_max``.
    fixed_value : float
        The clip value of ``fixed_value``; if > 0, also an upper limit of the other types' clip value.
    sigma : float
        ``layer_gaussian``: clip at ``sigma`` standard deviations of the tile's weights.
    """

    kind: str = "none"
    fixed_value: float = -1.0
    sigma: float = 2.5

    def validate(self) -> None:
        owner = type(self).__name__
        check_choice(self.kind, "kind", owner, CLIP_TYPES)
        check_float(self.fixed_value, "fixed_value", owner, -1e9, 1e9)
        check_float(self.sigma, "sigma", owner, 0.0, 1e6, closed_lo=False)
        if self.kind == "fixed_value" and self.fixed_value <= 0:
            raise ConfigError(f"The 'fixed_value' parameter of {owner} must be > 0 with kind 'fixed_value'. "
                              f"Got {self.fixed_value!r} instead.")

    @property
    def active(self) -> bool:
        return self.kind != "none"

    def clip_value(self, w: np.ndarray) -> float:
        """The clip value ``c`` for the weights ``w`` of one tile (inf: no clipping)."""
        if self.kind == "fixed_value":
            return float(self.fixed_value)
        w = np.asarray(w, np.float64)
        if self.kind == "layer_gaussian":
            c = self.sigma * float(w.std(ddof=1)) if w.size > 1 else np.inf
        elif self.kind == "average_channel_max":
            c = float(np.abs(w).max(axis=1).mean())
        else:
            return np.inf
        return min(c, self.fixed_value) if self.fixed_value > 0 else c


def weight_tiles(model) -> list:
    """``[(name, tile)]`` of every tile that holds weights of ``model`` (a Sequential): one per weight layer, or
    one per block of a tile array (``layer0/tile1_0``)."""
    out = []
    for name, layer in model.weight_layers().items():
        tile = layer.tile
        if hasattr(tile, "parts"):
            out.extend((f"{name}/{tile.part_name(k)}", t) for k, (_, _, t) in enumerate(tile.parts))
        else:
            out.append((name, tile))
    return out


def modify_weights(model, modifier: WeightModifier, key) -> None:
    """Give every weight tile of ``model`` its modified copy for one mini-batch (stream ``key``: one per batch)."""
    kind = MODIFIER_TYPES[modifier.kind]
    for k, (_, tile) in enumerate(weight_tiles(model)):
        w = np.ascontiguousarray(tile.read_weights(), np.float32)
        a = float(np.abs(w).max()) if modifier.rel_to_actual_wmax else float(modifier.assumed_wmax)
        if a <= 0.0:
            a = 1.0  # aihwkit: an all-zero tile counts as a = 1
        out = np.empty_like(w)
        KM.weight_modifier(w, out, kind, float(modifier.std_dev), a, float(modifier.pdrop), sub_key_py(key, k))
        tile.set_forward_weights(out)


def clear_modified_weights(model) -> None:
    """Back to the tiles' own weights (after the mini-batch's backward pass)."""
    for _, tile in weight_tiles(model):
        tile.set_forward_weights(None)


def _clip_target(tile, name):
    """The array a clip writes: the tile itself, or C of a Tiki-Taka-family tile (gamma = 0)."""
    if hasattr(tile, "plus") and hasattr(tile, "minus"):
        raise ConfigError(f"Weight clipping is not supported on one-sided pairs (layer {name}).")
    if hasattr(tile, "a") and hasattr(tile, "c"):
        if tile.config.device.gamma != 0.0:
            raise ConfigError(f"Weight clipping of a Tiki-Taka tile needs gamma = 0 (layer {name}, gamma "
                              f"{tile.config.device.gamma:g}).")
        return tile.c
    return tile


def clip_weights(model, clip: WeightClip) -> int:
    """Clip every weight tile of ``model`` to ``+-c`` (see the module docstring); returns the weights changed."""
    n = 0
    for name, tile in weight_tiles(model):
        target = _clip_target(tile, name)
        w = target.hidden_weights() if hasattr(target, "hidden_weights") else target.read_weights()
        c = clip.clip_value(w)
        over = np.abs(w) > c
        if np.any(over):
            n += int(np.count_nonzero(over))
            target.set_weights(np.clip(w, -c, c))
    return n


def check_hwa(config) -> None:
    """The HWA fields of a network config are usable with its device (clipping refuses one-sided pairs)."""
    from ..tiles.onesided import OneSidedUnitCell

    clip = getattr(config, "clip", None)
    if clip is not None and clip.active and isinstance(getattr(config, "device", None), OneSidedUnitCell):
        raise ConfigError("The 'clip' parameter of NetConfig: weight clipping is not supported on one-sided pairs "
                          "(device OneSidedUnitCell).")
