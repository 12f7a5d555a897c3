"""Vector and reference unit cells: several devices per weight, ``w = sum_k gamma_k w_k``.

aihwkit ``VectorUnitCell`` and ``ReferenceUnitCell`` (``configs/compounds.py``, ``rpu_vector_device.cpp``; read, not
copied). A cell holds ``n`` device arrays, each drawn from its own device config with its own device-to-device
variation; the weight the periphery reads is ``sum_k gamma_k w_k`` (``gamma_vec``; empty: ``1/n`` each).

* **Granularity** (update management): the mean of the devices' granularities.
* **Update policy** (``update_policy``), chosen per update vector (sample), as aihwkit's CPU simulator does (its
  CUDA simulator chooses once per mini-batch):

  - ``all``: every device receives the update. aihwkit gives every device the same coincidence counts (each its
    own cycle-to-cycle noise); here each device draws its own pulse trains with the same probabilities (the same
    expected counts; identical counts with the deterministic pulse types ``mean_count`` and
    ``deterministic_implicit``).
  - ``single_fixed``: only device ``first_update_idx`` (changeable with :meth:`VectorTile.set_hidden_update_index`).
  - ``single_sequential``: the next device (``(idx + 1) mod n``) before each sample; the first sample goes to
    ``first_update_idx + 1``.
  - ``single_random``: a uniformly drawn device per sample.
* **set_weights**: with ``single_fixed`` only the current device is written (the others keep theirs); with the
  other policies every device is written with ``w`` (each clipped to its bounds; with ``1/n`` gammas the weight is
  ``w``), as aihwkit.
* **ReferenceUnitCell**: two devices, ``single_fixed`` on device 0 and ``gamma_vec = (1, -1)``, so
  ``w = w_0 - w_1`` and the reference ``w_1`` stays 0 unless set (``set_hidden_update_index(1)``,
  ``set_weights(R)``, ``set_hidden_update_index(0)``). One device given is duplicated (aihwkit); more than two is an
  error here (aihwkit silently keeps the first two).
* ``DifferenceUnitCell`` is aihwkit's deprecated alias of ``OneSidedUnitCell``; it is registered as that alias
  (:class:`~crossbar_sim.tiles.onesided.OneSidedUnitCell`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import validation as V
from ..config import Config
from ..errors import ConfigError, ShapeError
from ..rng import key_from_seedseq, make_seedseq
from .analog import AnalogTile, TileBase, check_state
from .params import IOParameters, TileConfig, UpdateParameters

UPDATE_POLICIES = ("all", "single_fixed", "single_sequential", "single_random")


def _default_devices():
    from crossbar_sim.device_models import SoftBoundsDevice

    return (SoftBoundsDevice(), SoftBoundsDevice())


@dataclass(frozen=True, repr=False)
class VectorUnitCell(Config):
    """Several devices per weight, ``w = sum_k gamma_k w_k`` (aihwkit ``VectorUnitCell``; see the module docstring).

    Parameters
    ----------
    unit_cell_devices : tuple of PulsedDevice
        The devices of one weight (at least one), each a device model.
    update_policy : str
        ``all``, ``single_fixed``, ``single_sequential`` or ``single_random``.
    first_update_idx : int
        Device of ``single_fixed`` (and the start of ``single_sequential``), in ``[0, n)``.
    gamma_vec : tuple of float
        Weights of the devices in ``w`` (empty: ``1/n`` each); if given, one per device.
    """

    unit_cell_devices: tuple = field(default_factory=_default_devices)
    update_policy: str = "all"
    first_update_idx: int = 0
    gamma_vec: tuple = ()

    def validate(self) -> None:
        from crossbar_sim.device_models import PulsedDevice

        owner = type(self).__name__
        devs = self.unit_cell_devices
        if not isinstance(devs, (tuple, list)) or not all(isinstance(d, PulsedDevice) for d in devs):
            raise ConfigError(f"The 'unit_cell_devices' parameter of {owner} must be a list of device models "
                              f"(aihwkit: 'unit_cell_devices should be a list of devices'). Got {devs!r}.")
        if len(devs) == 0:
            raise ConfigError(f"The 'unit_cell_devices' parameter of {owner} must hold at least one device.")
        V.check_choice(self.update_policy, "update_policy", owner, UPDATE_POLICIES)
        V.check_int(self.first_update_idx, "first_update_idx", owner, 0, len(devs) - 1)
        if len(self.gamma_vec) not in (0, len(devs)):
            raise ConfigError(f"The 'gamma_vec' parameter of {owner} must be empty or have one entry per device "
                              f"({len(devs)}; aihwkit: 'Gamma vector should have the same length as number of devices "
                              f"(or empty)!'). Got {self.gamma_vec!r}.")
        for g in self.gamma_vec:
            V.check_float(g, "gamma_vec", owner)

    @property
    def n_devices(self) -> int:
        return len(self.unit_cell_devices)

    def gammas(self) -> np.ndarray:
        """The device weights ``gamma_k`` (float32)."""
        if self.gamma_vec:
            return np.asarray(self.gamma_vec, np.float32)
        return np.full(self.n_devices, 1.0 / self.n_devices, np.float32)

    def granularity(self) -> float:
        """The mean of the devices' granularities (aihwkit's vector cell)."""
        return float(np.mean([d.granularity() for d in self.unit_cell_devices]))

    @property
    def n_states(self) -> float:
        """The mean of the devices' numbers of states (aihwkit ``calcNumStates`` of a vector cell)."""
        return float(np.mean([(d.w_max - d.w_min) / d.granularity() for d in self.unit_cell_devices]))


@dataclass(frozen=True, repr=False)
class ReferenceUnitCell(VectorUnitCell):
    """A device and a fixed reference device per weight, ``w = w_0 - w_1`` (aihwkit ``ReferenceUnitCell``).

    Same fields as :class:`VectorUnitCell` with aihwkit's defaults ``update_policy = "single_fixed"``,
    ``gamma_vec = (1, -1)``; exactly two devices (one given is duplicated).
    """

    update_policy: str = "single_fixed"
    gamma_vec: tuple = (1.0, -1.0)

    def __post_init__(self):
        devs = self.unit_cell_devices
        if isinstance(devs, (tuple, list)) and len(devs) == 1:
            object.__setattr__(self, "unit_cell_devices", (devs[0], devs[0]))
        super().__post_init__()

    def validate(self) -> None:
        devs = self.unit_cell_devices
        if isinstance(devs, (tuple, list)) and len(devs) != 2:
            raise ConfigError(f"The 'unit_cell_devices' parameter of ReferenceUnitCell must hold one or two devices "
                              f"(aihwkit: 'ReferenceUnitCell expects two unit_cell_devices'). Got {len(devs)}.")
        super().validate()


@dataclass(frozen=True, repr=False)
class VectorTileConfig(Config):
    """A vector-cell tile: the cell plus the tile's update and periphery (aihwkit ``UnitCellRPUConfig``)."""

    device: VectorUnitCell = field(default_factory=VectorUnitCell)
    update: UpdateParameters = field(default_factory=UpdateParameters)
    forward: IOParameters = field(default_factory=IOParameters)
    backward: IOParameters = field(default_factory=IOParameters)

    def validate(self) -> None:
        owner = type(self).__name__
        if not isinstance(self.device, VectorUnitCell):
            raise ConfigError(f"The 'device' parameter of {owner} must be a VectorUnitCell. Got {self.device!r}.")
        for name, typ in (("update", UpdateParameters), ("forward", IOParameters), ("backward", IOParameters)):
            if not isinstance(getattr(self, name), typ):
                raise ConfigError(f"The '{name}' parameter of {owner} must be a {typ.__name__}. Got "
                                  f"{getattr(self, name)!r}.")


_SUMMED = ("n_pulses", "n_pulses_up", "n_pulses_down", "n_pulse_cycles", "n_slots")
VECTOR_COUNTER_NAMES = ("n_updates", "n_forward", "n_backward", "mvm", "dac", "adc")


class VectorTile(TileBase):
    """A ``out_size x in_size`` array of vector unit cells (see the module docstring).

    Same interface as :class:`~crossbar_sim.tiles.analog.AnalogTile`; usable as an array of a Tiki-Taka tile and
    as the analog array of mixed precision. ``tiles`` gives the device arrays (``d0``, ``d1``, ...).
    """

    def __init__(self, out_size: int, in_size: int, config: VectorTileConfig | None = None, seed=None,
                 threads=None):
        if config is None:
            config = VectorTileConfig()
        if not isinstance(config, VectorTileConfig):
            raise ConfigError(f"The 'config' parameter of VectorTile must be a VectorTileConfig. Got {config!r}.")
        self.config = config
        cell = config.device
        ss = make_seedseq(seed)
        seeds = ss.spawn(cell.n_devices + 3)
        self.devs = [AnalogTile(out_size, in_size, TileConfig(device=d, update=config.update, forward=config.forward,
                                                              backward=config.backward), seed=seeds[k], threads=threads)
                     for k, d in enumerate(cell.unit_cell_devices)]
        self.out_size, self.in_size = self.devs[0].out_size, self.devs[0].in_size
        self._gammas = cell.gammas()
        self._keys = {"forward": key_from_seedseq(seeds[-3]), "backward": key_from_seedseq(seeds[-2])}
        self._t = {"forward": 0, "backward": 0}
        self.policy_rng = np.random.default_rng(seeds[-1])
        self.current_idx = int(cell.first_update_idx)
        self._counters = {k: 0 for k in VECTOR_COUNTER_NAMES}

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple[int, int]:
        return (self.out_size, self.in_size)

    @property
    def tiles(self) -> dict:
        return {f"d{k}": t for k, t in enumerate(self.devs)}

    @property
    def granularity(self) -> float:
        return float(np.mean([t.granularity for t in self.devs]))

    @property
    def counters(self) -> dict:
        out = dict(self._counters)
        for k in _SUMMED:
            out[k] = int(sum(t.counters[k] for t in self.devs))
        return out

    @property
    def pulse_counts(self) -> np.ndarray:
        """(out_size, in_size, 2) int64: up and down pulses summed over the cell's devices."""
        return np.sum([t.pulse_counts for t in self.devs], axis=0)

    def _sum(self, name: str) -> np.ndarray:
        out = np.zeros(self.shape, np.float32)
        for g, t in zip(self._gammas, self.devs):
            out += g * getattr(t, name)
        return out

    @property
    def w_min_bound(self) -> np.ndarray:
        return self._sum_bounds(lo=True)

    @property
    def w_max_bound(self) -> np.ndarray:
        return self._sum_bounds(lo=False)

    def _sum_bounds(self, lo: bool) -> np.ndarray:
        out = np.zeros(self.shape, np.float32)
        for g, t in zip(self._gammas, self.devs):
            out += g * (t.w_min_bound if (g >= 0) == lo else t.w_max_bound)
        return out

    @property
    def _w_app(self) -> np.ndarray:
        """Apparent weights ``sum_k gamma_k w_k`` (a fresh array; what MVMs and compound tiles read)."""
        return self._sum("_w_app")

    # ------------------------------------------------------------------ weights
    def read_weights(self) -> np.ndarray:
        return self._w_app

    def hidden_weights(self) -> np.ndarray:
        return self._sum("_w")

    def set_weights(self, w) -> None:
        """``single_fixed``: write ``w`` onto the current device only; other policies: onto every device."""
        w = np.asarray(w)
        if w.shape != self.shape:
            raise ShapeError(f"'w' must have shape {self.shape}. Got shape {w.shape} instead.")
        if self.config.device.update_policy == "single_fixed":
            self.devs[self.current_idx].set_weights(w)
        else:
            for t in self.devs:
                t.set_weights(w)

    def set_hidden_update_index(self, idx: int) -> None:
        """Select the device that ``single_fixed`` updates and ``set_weights`` writes (aihwkit
        ``set_hidden_update_index``)."""
        self.current_idx = V.check_int(idx, "idx", "VectorTile.set_hidden_update_index", 0, len(self.devs) - 1)

    def _mvm_weights(self) -> np.ndarray:
        return self._w_app

    def _mvm_counters(self) -> dict:
        return self._counters

    # ------------------------------------------------------------------ update
    def update(self, x, d, lr: float) -> None:
        """Pulsed update by the cell's policy, samples one after the other."""
        X, D, lr = self._update_args(x, d, lr)
        self._update(X, D, lr)

    def _update(self, X, D, lr: float, granularity=None, update=None) -> None:
        g = self.granularity if granularity is None else float(granularity)
        policy = self.config.device.update_policy
        B = X.shape[0]
        if policy == "all":
            for t in self.devs:
                t._update(X, D, lr, g, update)
        elif policy == "single_fixed":
            self.devs[self.current_idx]._update(X, D, lr, g, update)
        else:
            n = len(self.devs)
            if policy == "single_sequential":
                idx = (self.current_idx + 1 + np.arange(B)) % n
            else:
                idx = np.minimum((self.policy_rng.random(B) * n).astype(np.int64), n - 1)
            self.current_idx = int(idx[-1]) if B else self.current_idx
            s0 = 0
            while s0 < B:  # runs of samples that go to the same device
                s1 = s0 + 1
                while s1 < B and idx[s1] == idx[s0]:
                    s1 += 1
                self.devs[int(idx[s0])]._update(X[s0:s1], D[s0:s1], lr, g, update)
                s0 = s1
        self._counters["n_updates"] += B

    # ------------------------------------------------------------------ state
    def total_counters(self) -> dict:
        return self.counters

    def get_state(self) -> dict:
        return {
            "kind": "VectorTile",
            "shape": list(self.shape),
            "config": self.config.to_json(),
            "devices": [t.get_state() for t in self.devs],
            "current_idx": int(self.current_idx),
            "policy_rng": self.policy_rng.bit_generator.state,
            "counters": dict(self._counters),
            "rng": self._rng_state(),
        }

    def set_state(self, state: dict) -> None:
        self.config = check_state(state, self.shape)
        for t, st in zip(self.devs, state["devices"]):
            t.set_state(st)
        self.current_idx = int(state["current_idx"])
        self.policy_rng.bit_generator.state = state["policy_rng"]
        self._counters = {k: int(state["counters"].get(k, 0)) for k in VECTOR_COUNTER_NAMES}
        self._set_rng_state(state["rng"])

    def __repr__(self) -> str:
        return f"VectorTile({self.out_size}, {self.in_size}, {self.config.device!r})"
