"""HDF5 records of low-rank runs, in the layout of ``/work/shared/DESIGN.md`` (format ``crossbar-sim``,
``format_version`` 1)::

    /                          attrs: format, format_version, package_version, created, argv
    /sweep                     attrs: spec (JSON), axes (JSON), seed, n_points, name, description, kind="lowrank"
                               dataset: points (run_id, index, run_seed, method, rank, seed)
    /runs/<run_id>             attrs: config (JSON), seed, status, wall_time_s, error, point (JSON), index,
                                      final_val_ppl, method, rank
    /runs/<run_id>/metrics/<name>    1-D float64 (steps: int64), attrs: units
    /runs/<run_id>/budget      attrs: energy_<category>_J, energy_total_J, latency_analog_s, count_<event>,
                                      memory_<part>_bytes, const_<constant> (the energy constants used)
    /runs/<run_id>/tiles/<matrix>/<array>/counters/<name>    scalar int64, attrs: units
    /runs/<run_id>/tiles/<matrix>/<array>/pulse_counts       (out, in, 2) int64, [..., 0] up, [..., 1] down
    /runs/<run_id>/tiles/<matrix>/<array>/snapshots/<step>/weights   final weights (out, in) float32

This is a minimal writer of that layout: the shared store (``crossbar_sim.engine.store``, built on another branch)
had not landed on main when this module was written; the layout and the crash-safety rules are the same, so
``crossbar-sim inspect`` reads these files. Crash safety: only the parent process writes; every finished run
is first written whole into its own file in the journal folder ``<out>.journal/`` (temporary name, then
``os.replace``), then copied into the main file under ``/_staging/<run_id>`` and moved to ``/runs/<run_id>``;
the journal is deleted when every run is in the main file. ``--resume`` skips runs found in either, and
rebuilds the main file from the journal if the main file is unreadable.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil

import numpy as np

from .. import __version__
from ..errors import FormatError
from ..engine.store import _atomic_h5, _h5py, merge_journal_part

FORMAT_NAME = "crossbar-sim"
FORMAT_VERSION = 1
DONE = ("complete", "diverged")

COUNTER_UNITS = {
    "n_updates": "rank-1 updates (samples)", "n_pulse_cycles": "pulse cycles (rank-1 updates that sent pulses)",
    "n_slots": "pulse-train time slots", "n_pulses": "device pulses", "n_pulses_up": "device up pulses",
    "n_pulses_down": "device down pulses", "n_forward": "forward MVM samples", "n_backward": "backward MVM samples",
    "mvm": "MVM read cycles", "dac": "DAC conversions", "adc": "ADC conversions",
    "n_transfers": "Tiki-Taka transfers", "n_transfer_reads": "columns read by transfers",
}


def dumps(obj) -> str:
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        raise TypeError(type(o).__name__)

    return json.dumps(obj, sort_keys=True, default=default)


def check_format(f, path="") -> None:
    name = f.attrs.get("format")
    if isinstance(name, bytes):
        name = name.decode()
    if name != FORMAT_NAME:
        raise FormatError(f"{path or f.filename} is not a crossbar-sim result file (format={name!r}).")
    if int(f.attrs.get("format_version", -1)) != FORMAT_VERSION:
        raise FormatError(f"{path or f.filename} has format_version {f.attrs.get('format_version')!r}; this "
                          f"crossbar-sim reads {FORMAT_VERSION}.")


def open_results(path: str, mode: str = "r"):
    """Open and check a result file (:class:`FormatError` if missing, damaged or not ours)."""
    h5py = _h5py()
    if not os.path.exists(path):
        raise FormatError(f"{path}: no such file.")
    try:
        f = h5py.File(path, mode)
    except OSError as exc:
        raise FormatError(f"{path} is not a readable HDF5 file ({str(exc).splitlines()[0][:120]}).") from None
    try:
        check_format(f, path)
    except BaseException:
        f.close()
        raise
    return f


def _header(f, sweep: dict, argv) -> None:
    f.attrs["format"] = FORMAT_NAME
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["package_version"] = __version__
    f.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    f.attrs["argv"] = dumps(list(argv))
    s = f.create_group("sweep")
    s.attrs["kind"] = "lowrank"
    s.attrs["spec"] = dumps(sweep["spec"])
    s.attrs["axes"] = dumps(sweep["axes"])
    s.attrs["seed"] = int(sweep["seed"])
    s.attrs["n_points"] = len(sweep["points"])
    s.attrs["name"] = sweep.get("name", "")
    s.attrs["description"] = sweep.get("description", "")
    pts = sweep["points"]
    table = np.zeros(len(pts), dtype=[("run_id", "S16"), ("index", "<i8"), ("run_seed", "<u8"), ("method", "S16"),
                                      ("rank", "<i8"), ("seed", "<i8"), ("backend", "S8")])
    for i, p in enumerate(pts):
        table[i] = (p["run_id"].encode(), p["index"], p["run_seed"], p["method"].encode(),
                    -1 if p["rank"] is None else p["rank"], p["seed"], p["backend"].encode())
    s.create_dataset("points", data=table)
    f.create_group("runs")


def write_run(parent, run_id: str, result, point: dict, index: int, final_weights: dict | None = None,
              pulse_counts: dict | None = None) -> None:
    """Write one :class:`~crossbar_sim.lowrank.train.LowRankResult` as ``parent/run_id``."""
    from .train import METRIC_UNITS

    g = parent.create_group(run_id)
    g.attrs["config"] = dumps(result.config)
    g.attrs["seed"] = int(result.seed)
    g.attrs["status"] = result.status
    g.attrs["wall_time_s"] = float(result.wall_time_s)
    g.attrs["error"] = result.error or ""
    g.attrs["point"] = dumps(point)
    g.attrs["index"] = int(index)
    g.attrs["method"] = point["method"]
    g.attrs["rank"] = -1 if point["rank"] is None else int(point["rank"])
    g.attrs["final_val_ppl"] = float(result.final_val_ppl)
    m = g.create_group("metrics")
    m.create_dataset("steps", data=np.asarray(result.steps, np.int64)).attrs["units"] = "training steps"
    for k, v in result.metrics.items():
        m.create_dataset(k, data=np.asarray(v, np.float64)).attrs["units"] = METRIC_UNITS.get(k, "")
    b = g.create_group("budget")
    if result.budget is not None:
        for k, v in result.budget.as_attrs().items():
            b.attrs[k] = v
    for k, v in result.memory.items():
        b.attrs[f"memory_{k}_bytes"] = int(v)
    b.attrs["units"] = "energy in J, latency in s, memory in bytes, counts dimensionless"
    tiles = g.create_group("tiles")
    for name, info in result.tiles.items():
        tg = tiles.create_group(name)
        tg.attrs["kind"] = info["kind"]
        tg.attrs["shape"] = np.asarray(info["shape"], np.int64)
        for arr, counters in info["arrays"].items():
            ag = tg.create_group(arr)
            cg = ag.create_group("counters")
            for k, v in counters.items():
                cg.create_dataset(k, data=np.int64(v)).attrs["units"] = COUNTER_UNITS.get(k, "")
            key = f"{name}/{arr}"
            if pulse_counts and key in pulse_counts:
                ag.create_dataset("pulse_counts", data=pulse_counts[key], compression="gzip").attrs["units"] = \
                    "pulses per device; [..., 0] up, [..., 1] down"
            if final_weights and key in final_weights:
                step = int(result.steps[-1]) if len(result.steps) else 0
                sg = ag.create_group("snapshots").create_group(str(step))
                sg.create_dataset("weights", data=np.asarray(final_weights[key], np.float32))
        if not info["arrays"] and final_weights and f"{name}/W" in final_weights:
            step = int(result.steps[-1]) if len(result.steps) else 0
            tg.create_group("W").create_group("snapshots").create_group(str(step)).create_dataset(
                "weights", data=np.asarray(final_weights[f"{name}/W"], np.float32))


class LowRankStore:
    """The result file of one ``crossbar-sim lowrank`` sweep (written only by the parent process)."""

    def __init__(self, path: str, sweep: dict, argv=(), resume: bool = False, overwrite: bool = False):
        self.path = os.fspath(path)
        self.sweep = sweep
        self.journal = self.path + ".journal"
        exists = os.path.exists(self.path)
        if exists and not (resume or overwrite):
            raise FormatError(f"{self.path} already exists; pass --resume to continue it, --overwrite to replace "
                              f"it, or choose another --out.")
        if overwrite and not resume:
            if exists:
                os.remove(self.path)
            shutil.rmtree(self.journal, ignore_errors=True)
            exists = False
        if exists:
            try:
                with open_results(self.path) as f:
                    stored = json.loads(f["sweep"].attrs["spec"])
            except FormatError:
                if not os.path.isdir(self.journal):
                    raise
                os.replace(self.path, self.path + ".damaged")  # keep it for inspection; rebuilt below
                exists = False
                stored = None
            if stored is not None and stored != json.loads(dumps(sweep["spec"])):
                raise FormatError(f"{self.path} holds a different sweep (its spec differs); use another --out.")
        if not exists:
            _atomic_h5(self.path, lambda f: _header(f, sweep, argv))
        os.makedirs(self.journal, exist_ok=True)
        self._merge_journal()

    def _journal_ids(self) -> list[str]:
        if not os.path.isdir(self.journal):
            return []
        return sorted(n[:-3] for n in os.listdir(self.journal) if n.endswith(".h5") and ".tmp" not in n)

    def done_ids(self) -> set[str]:
        with open_results(self.path) as f:
            return {rid for rid, g in f["runs"].items() if g.attrs.get("status") in DONE}

    def _merge_one(self, f, rid: str) -> None:
        merge_journal_part(f, self.journal, rid)

    def _merge_journal(self) -> None:
        done = self.done_ids()
        todo = [r for r in self._journal_ids() if r not in done]
        if todo:
            with _h5py().File(self.path, "a") as f:
                for rid in todo:
                    self._merge_one(f, rid)

    def write(self, run_id: str, result, point: dict, index: int, **extra) -> None:
        part = os.path.join(self.journal, run_id + ".h5")
        _atomic_h5(part, lambda f: write_run(f.create_group("runs"), run_id, result, point, index, **extra))
        with _h5py().File(self.path, "a") as f:
            self._merge_one(f, run_id)

    def finish(self) -> bool:
        ids = {p["run_id"] for p in self.sweep["points"]}
        if ids <= self.done_ids():
            shutil.rmtree(self.journal, ignore_errors=True)
            return True
        return False


def read_runs(path: str) -> list[dict]:
    """Summaries of every run: point, status, final perplexity, metrics, budget attributes."""
    out = []
    with open_results(path) as f:
        for rid, g in f["runs"].items():
            row = {"run_id": rid, "point": json.loads(g.attrs["point"]), "status": str(g.attrs["status"]),
                   "wall_time_s": float(g.attrs["wall_time_s"]), "final_val_ppl": float(g.attrs["final_val_ppl"]),
                   "config": json.loads(g.attrs["config"]), "index": int(g.attrs["index"])}
            row["metrics"] = {k: v[()] for k, v in g["metrics"].items()} if "metrics" in g else {}
            row["budget"] = {k: (v.item() if hasattr(v, "item") else v) for k, v in g["budget"].attrs.items()} \
                if "budget" in g else {}
            out.append(row)
    out.sort(key=lambda r: r["index"])
    return out
