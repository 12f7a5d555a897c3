"""Drift compensation: a digital scale on a tile's outputs from a calibration read (aihwkit 1.1.0
``inference/compensation/drift.py``).

Right after programming, every input line of the tile is read once with a one-hot input (aihwkit's read-out
tensor ``eye(in_size)``): ``Y_ref[j, i]`` ~ ``W_prog[i, j]``. At each drift time the same read gives ``Y_t``, and
the tile's outputs are multiplied by

    global      alpha   = max(mean_ij |Y_ref|, 1e-4) / max(mean_ij |Y_t|, 1e-4)              (one scalar per tile)
    per column  alpha_i = max(mean_j |Y_ref[j, i]|, 1e-4) / max(mean_j |Y_t[j, i]|, 1e-4)    (one per output line)

``readout`` says how the calibration reads are taken: ``forward`` (aihwkit's default) through the tile's forward
periphery with all its non-idealities (output noise, ADC, bounds), ``exact`` as the ideal product (``Y = W^T``).
``exact_reference`` (aihwkit ``GlobalDriftCompensationWithExactReference``) takes the reference from the target
weights before programming noise, exactly. aihwkit applies ``alpha`` only in eval mode; an inference tile is only
used in eval mode.

Where we differ: aihwkit's ``PerColumnDriftCompensation`` is not exported and has no exact-reference variant; ours
offers both. aihwkit calls our per-column "output line" a column of its (out, in) weight matrix's transposed read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..config import Config
from ..errors import ConfigError
from ..validation import check_bool, check_choice

#: aihwkit's clamp of the read-out means
READOUT_MIN = 1e-4
READOUTS = ("forward", "exact")


@dataclass(frozen=True, repr=False)
class DriftCompensation(Config):
    """Base: how the calibration reads are taken.

    Parameters
    ----------
    readout : str
        ``forward`` (through the tile's forward periphery, aihwkit) or ``exact`` (ideal reads).
    exact_reference : bool
        Reference from the target (unprogrammed) weights, exactly, instead of a read of the programmed tile.
    """

    readout: str = "forward"
    exact_reference: bool = False

    short_name: ClassVar[str] = "base"
    #: one scale per output line (True) or per tile
    per_output: ClassVar[bool] = False

    def validate(self) -> None:
        owner = type(self).__name__
        check_choice(self.readout, "readout", owner, READOUTS)
        check_bool(self.exact_reference, "exact_reference", owner)

    def reduce(self, Y: np.ndarray):
        """The read-out of ``|Y|`` (in_size, out_size): its mean, or the mean over inputs per output line."""
        return Y.mean(axis=0) if self.per_output else np.float64(Y.mean())

    def alpha(self, y_ref: np.ndarray, y_now: np.ndarray):
        """The output scale from the reference read ``y_ref`` and the current read ``y_now`` (in_size, out_size)."""
        ref = np.maximum(self.reduce(np.abs(np.asarray(y_ref, np.float64))), READOUT_MIN)
        now = np.maximum(self.reduce(np.abs(np.asarray(y_now, np.float64))), READOUT_MIN)
        return ref / now


@dataclass(frozen=True, repr=False)
class GlobalDriftCompensation(DriftCompensation):
    """One scalar per tile: the ratio of the mean absolute calibration reads (aihwkit's default)."""

    short_name: ClassVar[str] = "global"


@dataclass(frozen=True, repr=False)
class PerColumnDriftCompensation(DriftCompensation):
    """One scale per output line ``i``: the ratio of the mean absolute reads of that line over the inputs."""

    short_name: ClassVar[str] = "per_column"
    per_output: ClassVar[bool] = True


#: compensations by name (``none``: no compensation)
COMPENSATIONS = {"none": None, "global": GlobalDriftCompensation, "per_column": PerColumnDriftCompensation}


def get_compensation(name, readout: str = "forward", exact_reference: bool = False):
    """A compensation from its name (``none``, ``global``, ``per_column``), or itself (a :class:`DriftCompensation`
    or None)."""
    if name is None or isinstance(name, DriftCompensation):
        return name
    if isinstance(name, str) and name in COMPENSATIONS:
        cls = COMPENSATIONS[name]
        return None if cls is None else cls(readout=readout, exact_reference=exact_reference)
    raise ConfigError(f"Unknown drift compensation {name!r}; known: {', '.join(COMPENSATIONS)}.")


def compensation_name(comp) -> str:
    """The short name of a compensation (``none`` for None)."""
    return "none" if comp is None else comp.short_name
