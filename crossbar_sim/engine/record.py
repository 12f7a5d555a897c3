"""What a run returns to the parent process, whatever its kind: one :class:`RunRecord`.

A record is plain data (NumPy arrays, numbers, strings, dicts and the run's tile objects, all picklable), so it
travels from a worker process or a Dask worker to the parent, which alone writes it into the result file
(:mod:`crossbar_sim.engine.store`). The store writes every kind the same way::

    /runs/<id>            attrs: kind, config (JSON), seed, status, error, wall_time_s, point, index,
                                 the summary scalars (error_floor, final_test_acc, final_val_ppl, ...)
    /runs/<id>/metrics/   steps (the axis: training steps or epochs; an HDF5 dimension scale) and one 1-D dataset
                          per metric attached to it; attrs: units (a short parseable unit), description
    /runs/<id>/timing/    wall-clock metrics on the same axis (they differ between two runs of the same config)
    /runs/<id>/tiles/<layer>/...   every array of every tile (device parameters, counters, pulse counts,
                                   snapshots, the full tile state)
    /runs/<id>/budget     attrs: memory and energy totals by category
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: statuses of a finished run; ``failed`` runs are retried by ``--resume``
DONE_STATUSES = ("complete", "diverged")


@dataclass
class RunRecord:
    """One finished (or failed) run.

    Attributes
    ----------
    kind : str
        The run kind (``least_squares``, ``network``, ``lm``).
    config : dict
        The run's configuration (``to_dict`` form, JSON-able): ``{section: config dict}``.
    seed : int
        The run seed.
    status, error : str
        ``complete``, ``diverged`` (kept, with its record so far) or ``failed`` (retried on ``--resume``).
    wall_time_s : float
        Training time of the run (compilation excluded: the kernels are compiled before the runs start).
    axis : str
        What the metric axis counts: ``step`` or ``epoch``.
    steps : ndarray of int64
        The axis values at which the metrics were recorded.
    metrics : dict of str -> ndarray
        One value per recorded axis value. Deterministic: the same config and seed give the same values.
    units, descriptions : dict of str -> str
        Short parseable units (``"1"``, ``"s"``, ``"J"``, ``"%"``, ``"B"``) and prose, per metric and timing entry.
    timing : dict of str -> ndarray
        Wall-clock series on the same axis (stored apart from the metrics: they differ from run to run).
    summary : dict of str -> float
        Scalars stored as attributes of the run group (``error_floor``, ``final_test_acc`` ...).
    tiles : dict of str -> object
        The final tile of every weight layer, by layer name (an AnalogTile, one-sided pair, Tiki-Taka or buffered
        tile, a TileArray of them, or a digital weight holder).
    snapshots : dict of str -> dict of int -> dict of str -> ndarray
        ``{layer: {step: {array: weights}}}``: weights read during training.
    budget : dict or None
        Scalar attributes of the ``budget`` group (energy by category, counts, memory bytes).
    extra : dict
        Further groups of the run (a tree of dicts and arrays, written with :func:`store.write_tree`).
    inference : dict or None
        The evaluation of the final weights on inference tiles when the config asks for one
        (:func:`crossbar_sim.inference.evaluate_after_training`; written under ``/runs/<id>/inference``).
    """

    kind: str
    config: dict
    seed: int
    status: str = "complete"
    error: str = ""
    wall_time_s: float = 0.0
    axis: str = "step"
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    metrics: dict = field(default_factory=dict)
    units: dict = field(default_factory=dict)
    descriptions: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    tiles: dict = field(default_factory=dict)
    snapshots: dict = field(default_factory=dict)
    budget: dict | None = None
    extra: dict = field(default_factory=dict)
    inference: dict | None = None

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES

    def nbytes(self) -> int:
        """Rough size of the arrays the record holds (for the free-space check before it is written)."""
        total = 0

        def walk(v: Any) -> None:
            nonlocal total
            if isinstance(v, np.ndarray):
                total += v.nbytes
            elif isinstance(v, dict):
                for x in v.values():
                    walk(x)
            elif isinstance(v, (list, tuple)):
                for x in v:
                    walk(x)

        walk([self.metrics, self.timing, self.snapshots, self.extra])
        for t in self.tiles.values():
            st = t.get_state() if hasattr(t, "get_state") else {}
            walk(st)
            total += sum(np.asarray(v).nbytes for v in getattr(getattr(t, "devices", None), "as_dict",
                                                                   lambda: {})().values())
        return int(total)


def failed_record(kind: str, config: dict, seed: int, error: str, wall_time_s: float = 0.0) -> RunRecord:
    """The record of a run that raised an unexpected error (kept in the file, retried on ``--resume``)."""
    return RunRecord(kind=kind, config=config, seed=int(seed), status="failed", error=error,
                     wall_time_s=float(wall_time_s))
