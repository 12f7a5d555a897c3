"""Where a weight matrix of the language model lives, and how a weight change is written there.

Three holders share one interface (``forward(X)``, ``backward(D)``, ``read()``, ``apply(update)``,
``apply_rank1(X, D, lr)``, ``counters``, ``arrays``):

* :class:`DigitalMatrix`: floating-point weights (``float32``, or ``float64`` for gradient checks); MVMs are
  BLAS products whose flops are counted; updates are exact.
* :class:`AnalogMatrix`: an :class:`~crossbar_sim.tiles.analog.AnalogTile`. Forward ``W x`` and backward ``W^T d`` go
  through the tile's periphery (or perfect). Every weight change is written to the devices as pulses:

  - a factored update ``delta = A B`` (rank r: GaLore, OSD) is ``r`` rank-1 pulsed updates, one pulse cycle
    each, in one ``tile.update`` call with the batch ``x_k = B[k]`` (length ``in``), ``d_k = A[:, k]``
    (length ``out``), ``lr = 1`` (the learning rate is already in the factors);
  - a dense update ``delta`` (full-rank AdamW) is written *line by line along the smaller dimension*, the
    scheme least-squares uses for its "full" gradient (:mod:`crossbar_sim.least_squares.task`): when ``out <= in``, row by
    row (``d = e_i``, ``x = delta[i]``: only row ``i``'s output line fires, so only row ``i``'s devices get
    pulses), otherwise column by column (``x = e_j``, ``d = delta[:, j]``): ``min(out, in)`` pulse cycles.
    (A dense matrix has rank ``min(out, in)`` in general, so no outer-product scheme needs fewer cycles.)

* :class:`TikiTakaMatrix`: a :class:`~crossbar_sim.tiles.tiki_taka.TikiTakaTile`, the analog-native reference: every
  token's rank-1 gradient term ``(x_t, d_t)`` is pulsed onto A (``fast_lr``) and A's columns are transferred
  to C on schedule; no digital optimiser state at all.

The weights start from the same digital initialisation in every holder (``set_weights`` programs the devices,
clipped to their bounds). Analog holders map the model's weights onto conductances with a fixed digital scale
``weight_scale`` (alpha): ``W = alpha W_tile`` (aihwkit's weight scaling with a fixed, not learned, factor). Reads
are ``alpha`` times the tile's outputs, writes are ``delta / alpha``: the LLaMA initialisation (std 0.02) with
alpha 0.2 occupies std 0.1 of a +-0.6 device range, where the periphery's 0.06 output noise does not drown it,
and one device step ``dw_min`` is ``alpha dw_min`` in model units.
"""
from __future__ import annotations

import numpy as np

from ..tiles.tiki_taka import CompoundTileConfig, TikiTakaTile
from ..errors import ConfigError
from ..tiles.params import TileConfig
from ..tiles.analog import AnalogTile
from .optim import WeightUpdate

#: counters every holder reports (missing ones are 0)
COUNTERS = ("mvm", "dac", "adc", "n_pulses", "n_pulse_cycles", "n_slots", "n_updates", "digital_mvm_flops")


class DigitalMatrix:
    """Floating-point weights ``W`` (``out x in``) with the holder interface."""

    kind = "digital"

    def __init__(self, w: np.ndarray, dtype=np.float32):
        self.w = np.array(w, dtype=dtype)
        self.dtype = dtype
        self.flops = 0

    @property
    def shape(self):
        return self.w.shape

    def forward(self, X: np.ndarray) -> np.ndarray:
        self.flops += 2 * X.shape[0] * self.w.size
        return X.astype(self.dtype, copy=False) @ self.w.T

    def backward(self, D: np.ndarray) -> np.ndarray:
        self.flops += 2 * D.shape[0] * self.w.size
        return D.astype(self.dtype, copy=False) @ self.w

    def read(self) -> np.ndarray:
        return self.w.copy()

    def apply(self, upd: WeightUpdate) -> None:
        upd.apply_to(self.w)

    def apply_rank1(self, X, D, lr: float) -> None:
        self.w -= lr * (D.astype(self.dtype).T @ X.astype(self.dtype))

    @property
    def counters(self) -> dict:
        out = dict.fromkeys(COUNTERS, 0)
        out["digital_mvm_flops"] = int(self.flops)
        return out

    @property
    def arrays(self) -> dict:
        return {}

    def get_state(self) -> dict:
        return {"kind": "DigitalMatrix", "weights": self.w.copy(), "flops": int(self.flops)}

    def set_state(self, st: dict) -> None:
        self.w = np.array(st["weights"], dtype=self.dtype)
        self.flops = int(st["flops"])


def _sum_counters(tiles) -> dict:
    out = dict.fromkeys(COUNTERS, 0)
    for t in tiles:
        for k in COUNTERS:
            out[k] += int(t.counters.get(k, 0))
    return out


class _TileMatrix:
    """A tile holding ``W / alpha`` (``alpha`` = ``weight_scale``): the model reads and multiplies ``alpha W_tile``."""

    tile_class = AnalogTile

    def __init__(self, w: np.ndarray, config, seed=None, weight_scale: float = 1.0):
        out_size, in_size = np.shape(w)
        self.alpha = float(weight_scale)
        self.tile = self.tile_class(out_size, in_size, config, seed=seed)
        self.tile.set_weights(np.asarray(w, np.float64) / self.alpha)

    @property
    def shape(self):
        return self.tile.shape

    def forward(self, X: np.ndarray) -> np.ndarray:
        return self.alpha * self.tile.forward(X)

    def backward(self, D: np.ndarray) -> np.ndarray:
        return self.alpha * self.tile.backward(D)

    def read(self) -> np.ndarray:
        """The model's weights ``alpha W_tile``."""
        return self.alpha * self.tile.read_weights()

    def apply_rank1(self, X, D, lr: float) -> None:
        """Every sample's rank-1 term ``(x_t, alpha d_t)`` (the gradient of ``W_tile``) pulsed onto the tile
        (analog SGD: onto W; Tiki-Taka: onto A, transferring on schedule)."""
        self.tile.update(X, self.alpha * np.asarray(D), lr)


class AnalogMatrix(_TileMatrix):
    """An :class:`AnalogTile` holding ``W``; updates written as pulses (see the module docstring)."""

    kind = "analog"

    def __init__(self, w: np.ndarray, config: TileConfig, seed=None, weight_scale: float = 1.0):
        super().__init__(w, config, seed, weight_scale)
        self.dense_cycles = 0

    def apply(self, upd: WeightUpdate) -> None:
        if upd.decay:
            raise ConfigError("Weight decay of analog weights is not supported (every device would have to be "
                              "read and rewritten each step); set the optimiser's weight_decay to 0.")
        if upd.dense is None:  # r rank-1 pulse cycles: x_k = right[k], d_k = left[:, k] / alpha
            self.tile.update(np.ascontiguousarray(upd.right, np.float32),
                             np.ascontiguousarray(upd.left.T / self.alpha, np.float32), 1.0)
            return
        delta = np.asarray(upd.dense / self.alpha, np.float32)
        m, n = delta.shape
        if m <= n:  # row by row: d = e_i, x = delta[i]
            self.tile.update(delta, np.eye(m, dtype=np.float32), 1.0)
        else:  # column by column: x = e_j, d = delta[:, j]
            self.tile.update(np.eye(n, dtype=np.float32), np.ascontiguousarray(delta.T), 1.0)
        self.dense_cycles += min(m, n)

    @property
    def counters(self) -> dict:
        return _sum_counters([self.tile])

    @property
    def arrays(self) -> dict:
        return {"W": self.tile}

    def get_state(self) -> dict:
        return {"kind": "AnalogMatrix", "tile": self.tile.get_state(), "dense_cycles": self.dense_cycles}

    def set_state(self, st: dict) -> None:
        self.tile.set_state(st["tile"])
        self.dense_cycles = int(st["dense_cycles"])


class TikiTakaMatrix(_TileMatrix):
    """A :class:`TikiTakaTile` holding ``W`` (= C, gamma 0); per-token rank-1 terms pulsed onto A."""

    kind = "tiki_taka"

    tile_class = TikiTakaTile

    def __init__(self, w: np.ndarray, config: CompoundTileConfig, seed=None, weight_scale: float = 1.0):
        super().__init__(w, config, seed, weight_scale)

    def apply(self, upd: WeightUpdate) -> None:
        raise ConfigError("A Tiki-Taka tile takes rank-1 gradient terms (apply_rank1), not optimiser updates.")

    @property
    def counters(self) -> dict:
        # the compound's own counters are its forward/backward/transfer reads; A and C count their pulses
        out = _sum_counters([self.tile.a, self.tile.c])
        for k in ("mvm", "dac", "adc"):
            out[k] += int(self.tile.counters.get(k, 0))
        return out

    @property
    def arrays(self) -> dict:
        return {"A": self.tile.a, "C": self.tile.c}

    def get_state(self) -> dict:
        return {"kind": "TikiTakaMatrix", "tile": self.tile.get_state()}

    def set_state(self, st: dict) -> None:
        self.tile.set_state(st["tile"])
