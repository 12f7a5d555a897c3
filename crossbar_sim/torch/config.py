"""The configuration of an analog torch layer: which tile its weights live on, and aihwkit's mapping options.

:class:`AnalogConfig` holds the tile settings of :class:`~crossbar_sim.nn.training.NetConfig` under the same names
and defaults (the paper's setting: Tiki-Taka v1 on SoftBoundsReference ``tau = 0.78``, aihwkit's periphery and
pulse update, fast_lr 0.01, one column transfer per mini-batch, digital bias, learnable output scales, tiles of at
most 512 x 512), so the torch layers build their tiles with the very function the NumPy networks use
(:func:`crossbar_sim.nn.models.make_layer_tile`), and :meth:`AnalogConfig.from_net_config` carries a ``NetConfig``
over field by field. ``docs/torch_frontend.md`` maps aihwkit's ``rpu_config`` names onto these fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ..config import Config
from ..errors import ConfigError
from ..nn.models import ALGORITHMS
from ..tiles.params import IOParameters, UpdateParameters
from ..tiles.tiki_taka import TransferParams
from ..validation import check_bool, check_choice, check_float, check_int


def _paper_transfer():
    return TransferParams(fast_lr=0.01, n_reads_per_transfer=1, transfer_every=1.0)


@dataclass(frozen=True, repr=False)
class AnalogConfig(Config):
    """The tiles of an analog torch layer (aihwkit ``rpu_config`` plus ``MappingParameter``).

    Parameters
    ----------
    algorithm : str
        ``analog_sgd`` (one array; a one-sided unit cell such as the ``PCM`` preset makes it a plus-minus pair
        with refresh), ``tiki_taka`` (v1), ``ttv2``, ``chopped_ttv2``, ``agad``, ``mixed_precision``, or
        ``digital_sgd`` (a floating-point tile with the same layer machinery: a reference, not analog).
    algorithm_preset : str
        Instead of ``algorithm``: one of aihwkit's training presets (:mod:`crossbar_sim.presets`; aihwkit's
        ``build_config`` names such as ``c-ttv2`` or ``mp`` with this config's device, update and periphery, an
        aihwkit preset RPU config such as ``AGADEcRamPreset`` with its own, or ours, ``ours-c-ttv2``);
        ``transfer_extra`` changes compound fields on top. ``crossbar-sim devices --presets`` lists them.
    tau : float
        Bounds ``w_max = -w_min = tau`` of the default device (SoftBoundsReference with aihwkit's variations),
        used when ``device`` is None.
    device : PulsedDevice, OneSidedUnitCell or None
        Device of every analog array.
    update, forward, backward : UpdateParameters, IOParameters
        Pulse scheme and periphery of the tiles (aihwkit defaults).
    transfer : TransferParams
        Transfer hyper-parameters of the Tiki-Taka family (the paper's: fast_lr 0.01, one column per mini-batch).
    transfer_extra : dict
        Further parameters of the TTv2 / c-TTv2 / AGAD compounds (e.g. ``{"in_chop_prob": 0.05}``).
    learn_out_scaling : bool
        One learnable output scale per tile, initialised to 1 (aihwkit ``learn_out_scaling``).
    digital_bias : bool
        The bias is a digital parameter (True) or an extra tile column driven by a constant 1 (False; a layer
        split over several tiles always has a digital bias, as aihwkit).
    max_input_size, max_output_size : int
        Largest tile (aihwkit ``MappingParameter``, 512); a larger layer lives on a grid of near-equal tiles, each
        with its own periphery, pulse update and output scale. 0: no split in that direction.
    """

    algorithm: str = "tiki_taka"
    tau: float = 0.78
    device: Any = None
    update: UpdateParameters = field(default_factory=UpdateParameters)
    forward: IOParameters = field(default_factory=IOParameters)
    backward: IOParameters = field(default_factory=IOParameters)
    transfer: TransferParams = field(default_factory=_paper_transfer)
    transfer_extra: dict = field(default_factory=dict)
    algorithm_preset: str = ""
    learn_out_scaling: bool = True
    digital_bias: bool = True
    max_input_size: int = 512
    max_output_size: int = 512

    def validate(self) -> None:
        from crossbar_sim.tiles.onesided import check_array_device

        owner = type(self).__name__
        check_choice(self.algorithm, "algorithm", owner, ALGORITHMS)
        check_float(self.tau, "tau", owner, 0.0, 1e6, closed_lo=False)
        check_array_device(self.device, "device", owner, optional=True)
        for name, typ in (("update", UpdateParameters), ("forward", IOParameters), ("backward", IOParameters),
                          ("transfer", TransferParams)):
            if not isinstance(getattr(self, name), typ):
                raise ConfigError(f"The '{name}' parameter of {owner} must be a {typ.__name__}. Got "
                                  f"{getattr(self, name)!r} instead.")
        if not isinstance(self.transfer_extra, dict):
            raise ConfigError(f"The 'transfer_extra' parameter of {owner} must be a dict. Got "
                              f"{self.transfer_extra!r} instead.")
        from crossbar_sim.least_squares.training import check_run_preset

        check_run_preset(self, owner, "tiki_taka")
        check_bool(self.learn_out_scaling, "learn_out_scaling", owner)
        check_bool(self.digital_bias, "digital_bias", owner)
        check_int(self.max_input_size, "max_input_size", owner, 0, 1 << 30)
        check_int(self.max_output_size, "max_output_size", owner, 0, 1 << 30)

    def resolved_device(self):
        """The device of the analog arrays: ``device``, or SoftBoundsReference(w_max = -w_min = tau) with aihwkit's
        default variations (as :meth:`crossbar_sim.nn.training.NetConfig.resolved_device`)."""
        if self.device is not None:
            return self.device
        from crossbar_sim.device_models import asymmetric_linear_device

        return asymmetric_linear_device(self.tau, dw_min=1e-3, variations=True)

    @property
    def is_digital(self) -> bool:
        from crossbar_sim.nn.models import is_digital

        return is_digital(self)

    @classmethod
    def from_net_config(cls, cfg) -> AnalogConfig:
        """The tile settings of a :class:`~crossbar_sim.nn.training.NetConfig` (same field names)."""
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})
