"""Update and IO (periphery) parameters of a tile, with aihwkit's names and defaults.

:class:`UpdateParameters` controls the stochastic pulse scheme (SPEC section 3), :class:`IOParameters` the
periphery of a matrix-vector multiply (SPEC section 2). :class:`TileConfig` bundles them with a device
model (aihwkit's ``SingleRPUConfig``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..validation import check_bool, check_choice, check_float, check_int
from ..config import Config
from ..errors import ConfigError

PULSE_TYPES = ("stochastic_compressed", "stochastic", "mean_count", "deterministic_implicit", "expected", "none",
               "none_with_device")


@dataclass(frozen=True, repr=False)
class UpdateParameters(Config):
    """How a rank-1 update ``W <- W - lr d x^T`` is written to the devices.

    Parameters
    ----------
    desired_bl : int
        Length of the pulse trains (maximum, with update-BL management), in [1, 4096].
    update_bl_management : bool
        Shorten the pulse trains to ``ceil(lr max|x| max|d| / g)`` slots (forces update management on).
    update_management : bool
        Balance the x and d probabilities (``B max|x| = A max|d|``).
    um_grad_scale : float
        Scale of ``max|d|`` in update management (aihwkit), > 0.
    pulse_type : str
        ``stochastic_compressed`` (default; random pulse trains, one pulse per coincidence), ``stochastic``
        (aihwkit's uncompressed CPU variant: the same trains and coincidence statistics, the positive and negative
        inputs merely applied in two passes, which only reorders the devices' noise draws; it runs the same
        kernel),
        ``mean_count`` (aihwkit MeanCount: deterministic rounded counts), ``deterministic_implicit``
        (``round(BL p_d p_x)`` coincidences), ``expected`` (the expected change through the device response,
        no pulse quantisation), ``none`` (exact floating-point update, no bounds: digital) or
        ``none_with_device`` (exact update clipped to the device bounds).
    closed_form : bool
        Apply several same-sign pulses on a linear-response device in one step where that is exact
        (additive noise, constant steps) or matches the first three moments (multiplicative noise with
        small steps); otherwise every pulse is simulated one by one. See ``kernels/update.py``.
    """

    desired_bl: int = 31
    update_bl_management: bool = True
    update_management: bool = True
    um_grad_scale: float = 1.0
    pulse_type: str = "stochastic_compressed"
    closed_form: bool = True

    def validate(self) -> None:
        owner = type(self).__name__
        check_int(self.desired_bl, "desired_bl", owner, 1, 4096)
        check_bool(self.update_bl_management, "update_bl_management", owner)
        check_bool(self.update_management, "update_management", owner)
        check_float(self.um_grad_scale, "um_grad_scale", owner, 0.0, closed_lo=False)
        check_choice(self.pulse_type, "pulse_type", owner, PULSE_TYPES)
        check_bool(self.closed_form, "closed_form", owner)


NOISE_MANAGEMENT = ("abs_max", "none", "constant")
BOUND_MANAGEMENT = ("iterative", "none")
W_NOISE_TYPES = ("none", "additive_constant")


@dataclass(frozen=True, repr=False)
class IOParameters(Config):
    """Periphery of one matrix-vector multiply (aihwkit ``IOParameters``).

    Order of operations (SPEC section 2): noise management (scale inputs by ``max|x|``), bound management
    (divide by ``2^r``), DAC (round to ``2 inp_bound inp_res``, then clip to ``+-inp_bound``), array
    ``W x`` (with weight read noise if ``w_noise_type`` is set), output noise, ADC (round to
    ``2 out_bound out_res``), clip to ``+-out_bound``, rescale.

    Parameters
    ----------
    is_perfect : bool
        Switch every non-ideality off (exact ``W x``).
    inp_bound, inp_res, inp_sto_round, inp_noise : float, float, bool, float
        DAC range, resolution (fraction of the full range ``2 inp_bound``; 0 = no quantisation), stochastic
        rounding, and additive input noise.
    out_bound, out_res, out_sto_round, out_noise : float, float, bool, float
        ADC range, resolution, stochastic rounding, and additive output noise (normalised units).
    w_noise, w_noise_type : float, str
        Weight read noise ``w_noise * ||x||_2 * xi`` per output when ``w_noise_type='additive_constant'``.
    noise_management : str
        ``abs_max`` (inputs scaled by their maximum), ``none``, or ``constant`` (scaled by ``nm_thres``).
    nm_thres : float
        Scale used by ``noise_management='constant'``.
    bound_management : str
        ``iterative`` (repeat with inputs halved while an output saturates) or ``none``.
    max_bm_factor : int
        Largest input down-scaling factor of bound management.
    max_bm_res : float
        Bound management stops once ``2^r`` exceeds ``max_bm_res / input step``.
    """

    is_perfect: bool = False
    inp_bound: float = 1.0
    inp_res: float = 1.0 / (2**7 - 2)
    inp_sto_round: bool = False
    inp_noise: float = 0.0
    out_bound: float = 12.0
    out_res: float = 1.0 / (2**9 - 2)
    out_sto_round: bool = False
    out_noise: float = 0.06
    w_noise: float = 0.0
    w_noise_type: str = "none"
    noise_management: str = "abs_max"
    nm_thres: float = 1.0
    bound_management: str = "iterative"
    max_bm_factor: int = 1000
    max_bm_res: float = 0.25

    def validate(self) -> None:
        owner = type(self).__name__
        check_bool(self.is_perfect, "is_perfect", owner)
        check_float(self.inp_bound, "inp_bound", owner, 0.0, closed_lo=False)
        check_float(self.inp_res, "inp_res", owner, 0.0, 1.0)
        check_bool(self.inp_sto_round, "inp_sto_round", owner)
        check_float(self.inp_noise, "inp_noise", owner, 0.0)
        check_float(self.out_bound, "out_bound", owner, 0.0, closed_lo=False)
        check_float(self.out_res, "out_res", owner, 0.0, 1.0)
        check_bool(self.out_sto_round, "out_sto_round", owner)
        check_float(self.out_noise, "out_noise", owner, 0.0)
        check_float(self.w_noise, "w_noise", owner, 0.0)
        check_choice(self.w_noise_type, "w_noise_type", owner, W_NOISE_TYPES)
        check_choice(self.noise_management, "noise_management", owner, NOISE_MANAGEMENT)
        check_float(self.nm_thres, "nm_thres", owner, 0.0, closed_lo=False)
        check_choice(self.bound_management, "bound_management", owner, BOUND_MANAGEMENT)
        check_int(self.max_bm_factor, "max_bm_factor", owner, 1, 2**30)
        check_float(self.max_bm_res, "max_bm_res", owner, 0.0, closed_lo=False)

    @classmethod
    def perfect(cls) -> "IOParameters":
        """Exact MVM, no periphery."""
        return cls(is_perfect=True)


def _default_device():
    from crossbar_sim.device_models import ConstantStepDevice

    return ConstantStepDevice()


@dataclass(frozen=True, repr=False)
class TileConfig(Config):
    """Everything that defines a tile except its size and seed (aihwkit ``SingleRPUConfig``).

    Parameters
    ----------
    device : PulsedDevice
        Device model of every cross-point.
    update : UpdateParameters
        Pulse scheme.
    forward, backward : IOParameters
        Periphery of the forward (``W x``) and backward (``W^T d``) passes. The backward pass never uses
        bound management (as in aihwkit).
    """

    device: Config = field(default_factory=_default_device)
    update: UpdateParameters = field(default_factory=UpdateParameters)
    forward: IOParameters = field(default_factory=IOParameters)
    backward: IOParameters = field(default_factory=IOParameters)

    def validate(self) -> None:
        from crossbar_sim.device_models import PulsedDevice

        if not isinstance(self.device, PulsedDevice):
            raise ConfigError(f"The 'device' parameter of TileConfig must be a device model. Got {self.device!r}.")
        for name, typ in (("update", UpdateParameters), ("forward", IOParameters), ("backward", IOParameters)):
            if not isinstance(getattr(self, name), typ):
                raise ConfigError(
                    f"The '{name}' parameter of TileConfig must be a {typ.__name__}. Got {getattr(self, name)!r}."
                )

    @classmethod
    def perfect(cls, device=None, update=None) -> "TileConfig":
        """A tile with perfect periphery in both directions."""
        kw = {}
        if device is not None:
            kw["device"] = device
        if update is not None:
            kw["update"] = update
        return cls(forward=IOParameters.perfect(), backward=IOParameters.perfect(), **kw)
