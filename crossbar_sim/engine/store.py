"""The HDF5 result store of crossbar-sim (format ``crossbar-sim``, ``format_version`` 1).

Layout (``/work/shared/DESIGN.md``)::

    /                       attrs: format="crossbar-sim", format_version, package_version, created, argv
    /sweep                  attrs: spec (JSON), axes (JSON: name -> values), seed, n_points, ...
                            dataset: points (one row per run: run_id, index, seed, one column per axis)
    /runs/<run_id>          attrs: config (JSON), seed, status, wall_time_s, error, point (JSON), index,
                                   error_floor, final_loss
    /runs/<run_id>/metrics/<name>    1-D float64, one value per recorded step; attrs: units
    /runs/<run_id>/metrics/steps     the recorded step indices (int64)
    /runs/<run_id>/tiles/<layer>/            attrs: kind (store.TILE_KINDS | DigitalWeights), shape
                          <layer>/counters/<name>          counters of a compound tile (transfers, reads)
                          <layer>/state/...                the full ``get_state()`` of the final tile
                          <layer>/<array>/device/<param>   per-device parameters (out_size, in_size)
                          <layer>/<array>/counters/<name>  scalar int64 counters of the array
                          <layer>/<array>/pulse_counts     (out_size, in_size, 2) int64, [..., 0] up, [..., 1] down
                          <layer>/<array>/snapshots/<step>/weights   (out_size, in_size) float32
                          <layer>/<array>/g_plus, g_minus/...      the two arrays of a one-sided pair (device,
                                                                   counters, pulse_counts); <array> itself holds
                                                                   the pair's weight w = g_plus - g_minus
    /runs/<run_id>/budget   reserved for memory and energy totals (low-rank and energy reports)

Crash safety. Only the parent process of a sweep writes. A run is written into ``/_staging/<run_id>`` and
moved to ``/runs/<run_id>`` before the file is closed, so a group under ``/runs`` is complete by construction
(readers ignore ``/_staging``; ``--resume`` deletes it). Because a process killed in the middle of an HDF5
write can leave the whole file unreadable, every finished run is first written, whole, into its own small
file in the journal directory ``<out>.journal/`` (temporary name, then ``os.replace``); the journal is
deleted once every run of the sweep is in the main file. If the main file is found unreadable on
``--resume``, it is rebuilt from the journal. Files created whole are written to a temporary name and
renamed into place.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import sys
from typing import Any, Iterable

import numpy as np

from .. import __version__
from ..errors import FormatError

FORMAT_NAME = "crossbar-sim"
FORMAT_VERSION = 1

#: the layer name of the single weight matrix of the least-squares task
LS_LAYER = "linear"

#: units of the per-device parameters written under ``device/`` (names of ``DeviceArrays.as_dict``)
DEVICE_PARAM_UNITS = {
    "scale_up": "weight units per up pulse at w + ref = 0",
    "scale_down": "weight units per down pulse at w + ref = 0",
    "shape_up": "model shape parameter of up pulses (linear family: slope, 1/weight units)",
    "shape_down": "model shape parameter of down pulses (linear family: slope, 1/weight units)",
    "reference": "reference offset ref (weight units); bounds apply to w + ref",
    "min_bound": "lower device bound b_min of w + ref (weight units)",
    "max_bound": "upper device bound b_max of w + ref (weight units)",
    "fixed_point_up": "fixed point of up pulses, w + ref frame (weight units; linear family)",
    "fixed_point_down": "fixed point of down pulses, w + ref frame (weight units; linear family)",
    "rel_noise_up": "relative cycle-to-cycle noise of one up pulse (dimensionless; linear family)",
    "rel_noise_down": "relative cycle-to-cycle noise of one down pulse (dimensionless; linear family)",
    "reset_bias": "value a device returns to on reset (weight units)",
    "weight_min": "lower bound of the hidden weight w, b_min - ref (weight units)",
    "weight_max": "upper bound of the hidden weight w, b_max - ref (weight units)",
}

COUNTER_UNITS = {
    "n_updates": "rank-1 updates (samples)",
    "n_pulse_cycles": "pulse cycles (rank-1 updates that sent pulse trains)",
    "n_slots": "pulse-train time slots",
    "n_pulses": "device pulses",
    "n_pulses_up": "device up pulses",
    "n_pulses_down": "device down pulses",
    "n_forward": "forward MVM samples",
    "n_backward": "backward MVM samples",
    "mvm": "MVM read cycles",
    "dac": "DAC conversions",
    "adc": "ADC conversions",
    "n_transfers": "Tiki-Taka transfers",
    "n_transfer_reads": "columns read by transfers",
    "n_refresh_checks": "refresh checks of a one-sided pair (each reads every column of both arrays)",
    "n_refreshed": "weights refreshed (both devices reset, the difference re-written)",
    "n_refresh_writes": "column writes of refreshes (one per column and array)",
}

STEPS_UNITS = "training steps (one step = one gradient of the task, i.e. n_samples rank-1 updates)"

#: statuses of a finished run; ``failed`` runs are retried by ``--resume``
DONE_STATUSES = ("complete", "diverged")


def _h5py():
    import h5py

    return h5py


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


# ---------------------------------------------------------------------------------------------- opening
def open_results(path: str, mode: str = "r"):
    """Open a crossbar-sim result file, checking that it is one (format name and version).

    Raises
    ------
    FormatError
        The file does not exist, is not HDF5, is truncated, is not a crossbar-sim file or has a
        ``format_version`` this version of crossbar-sim does not read.
    """
    h5py = _h5py()
    if not os.path.exists(path):
        raise FormatError(f"{path}: no such file.")
    if os.path.isdir(path):
        raise FormatError(f"{path} is a directory, not an HDF5 result file.")
    try:
        is_h5 = h5py.is_hdf5(path)
    except OSError as exc:  # pragma: no cover - permission errors and the like
        raise FormatError(f"{path}: cannot read it ({exc}).") from None
    if not is_h5:
        raise FormatError(f"{path} is not an HDF5 file (no HDF5 signature); expected a crossbar-sim result file.")
    try:
        f = h5py.File(path, mode)
    except OSError as exc:
        msg = str(exc)
        if "truncated" in msg.lower() or "eof" in msg.lower():
            raise FormatError(f"{path} is a truncated HDF5 file ({_short(msg)}); it cannot be read.") from None
        raise FormatError(f"{path} is a damaged HDF5 file ({_short(msg)}); it cannot be read.") from None
    try:
        check_format(f, path)
    except BaseException:
        f.close()
        raise
    return f


def _short(msg: str) -> str:
    """The first line of an HDF5 error message, without the library's bracketed error stack."""
    msg = msg.strip().splitlines()[0] if msg.strip() else msg
    return msg.split(" (")[0][:160]


def check_format(f, path: str = "") -> None:
    """Raise :class:`FormatError` unless ``f`` is a crossbar-sim file of a version this code reads."""
    path = path or f.filename
    try:
        name = f.attrs.get("format")
        version = f.attrs.get("format_version")
    except (OSError, RuntimeError, KeyError) as exc:
        raise FormatError(f"{path} is a damaged HDF5 file ({_short(str(exc))}); it cannot be read.") from None
    if isinstance(name, bytes):
        name = name.decode()
    if name != FORMAT_NAME:
        raise FormatError(
            f"{path} is an HDF5 file but not a crossbar-sim result file (root attribute format={name!r}).")
    try:
        v = int(version)
    except (TypeError, ValueError):
        raise FormatError(f"{path} has an invalid format_version {version!r}.") from None
    if v != FORMAT_VERSION:
        raise FormatError(
            f"{path} has format_version {v}, which this crossbar-sim ({__version__}) cannot read "
            f"(it reads format_version {FORMAT_VERSION}).")


# ---------------------------------------------------------------------------------------------- generic trees
def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=_json_default)


def _has_array(v) -> bool:
    if isinstance(v, np.ndarray):
        return True
    if isinstance(v, dict):
        return any(_has_array(x) for x in v.values())
    return False


def _create_dataset(g, name, data, **attrs):
    data = np.asarray(data)
    kw = {}
    if data.size >= 4096 and data.ndim >= 1:
        kw = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    ds = g.create_dataset(name, data=data, **kw)
    for k, v in attrs.items():
        ds.attrs[k] = v
    return ds


def write_tree(g, tree: dict) -> None:
    """Write a nested dict: arrays -> datasets, dicts holding arrays -> groups, the rest -> one JSON attr.

    :func:`read_tree` returns the same dict (arrays with their dtypes, JSON leaves exactly).
    """
    leaves = {}
    for k, v in tree.items():
        if isinstance(v, np.ndarray):
            _create_dataset(g, k, v)
        elif isinstance(v, dict) and _has_array(v):
            write_tree(g.create_group(k), v)
        else:
            leaves[k] = v
    g.attrs["json"] = dumps(leaves)


def read_tree(g) -> dict:
    """Inverse of :func:`write_tree`."""
    h5py = _h5py()
    out: dict[str, Any] = json.loads(g.attrs.get("json", "{}"))
    for k, v in g.items():
        if isinstance(v, h5py.Dataset):
            out[k] = v[()]
        else:
            out[k] = read_tree(v)
    return out


# ---------------------------------------------------------------------------------------------- one run
def error_floor(steps: np.ndarray, loss: np.ndarray, total_steps: int, fraction: float = 0.2) -> float:
    """Mean of ``loss`` over the recorded steps in the last ``fraction`` of training (``step >= (1-f) T``).

    This is the *error floor* the sweeps store and plot: the level where a run stalls, averaged over the
    tail to reduce the gradient-noise jitter of single readings.
    """
    steps = np.asarray(steps)
    loss = np.asarray(loss, np.float64)
    if loss.size == 0:
        return float("nan")
    sel = steps >= (1.0 - fraction) * total_steps
    if not np.any(sel):
        sel = steps == steps.max()
    return float(np.mean(loss[sel]))


def error_floor_definition(fraction: float = 0.2) -> str:
    return (f"mean of the recorded loss over the last {fraction:.0%} of the training steps "
            f"(recorded steps t >= {1 - fraction:g} * steps)")


ERROR_FLOOR_DEFINITION = error_floor_definition(0.2)

#: tile kinds made of arrays A and C (their buffers and choppers live in the stored state)
COMPOUND_KINDS = ("TikiTakaTile", "BufferedTransferTile")
#: every tile kind :func:`tile_from_state` rebuilds
TILE_KINDS = ("AnalogTile", "OneSidedTile") + COMPOUND_KINDS


def tile_from_state(state: dict):
    """Rebuild a tile (AnalogTile, OneSidedTile, TikiTakaTile or BufferedTransferTile) from its ``get_state()``."""
    from .. import device_models  # noqa: F401 - registers the device configs the stored config JSON names

    kind = state.get("kind")
    if kind == "AnalogTile":
        from ..tiles.analog import AnalogTile

        return AnalogTile.from_state(state)
    if kind == "OneSidedTile":
        from ..tiles.onesided import OneSidedTile

        return OneSidedTile.from_state(state)
    if kind == "TikiTakaTile":
        from ..tiles.tiki_taka import TikiTakaTile

        return TikiTakaTile.from_state(state)
    if kind == "BufferedTransferTile":
        from ..tiles.buffered import BufferedTransferTile

        return BufferedTransferTile.from_state(state)
    raise FormatError(f"Unknown tile kind {kind!r} in the stored state; cannot rebuild the tile.")


def _write_array_group(g, tile, snapshots: dict, name: str) -> None:
    """``<array>/device``, ``counters``, ``pulse_counts`` and ``snapshots`` of one analog array (an AnalogTile, or
    a one-sided pair, whose two arrays go below it as ``g_plus`` and ``g_minus``)."""
    from ..tiles.onesided import OneSidedTile

    if isinstance(tile, OneSidedTile):
        _write_pair_group(g, tile)
    else:
        _write_device_arrays(g, tile)
    _write_snapshots(g, snapshots, name)


def _write_pair_group(g, pair) -> None:
    """A one-sided pair: the weight ``g_plus - g_minus`` as one array (its bounds, pair counters, pulses per
    weight on each side) and ``g_plus``/``g_minus`` as device arrays of their own."""
    dev = g.create_group("device")
    dev.attrs["model"] = type(pair.config.device).__name__
    dev.attrs["config"] = pair.config.device.to_json()
    dev.attrs["granularity"] = float(pair.granularity)
    _create_dataset(dev, "weight_min", pair.w_min_bound, units="lower bound of g_plus - g_minus (weight units)")
    _create_dataset(dev, "weight_max", pair.w_max_bound, units="upper bound of g_plus - g_minus (weight units)")
    cnt = g.create_group("counters")
    for k, v in pair.counters.items():
        cnt.create_dataset(k, data=np.int64(v)).attrs["units"] = COUNTER_UNITS.get(k, "")
    _create_dataset(g, "pulse_counts", pair.pulse_counts,
                    units="pulses per weight; [..., 0] on g_plus (raising w), [..., 1] on g_minus (lowering w); "
                          "every pulse is a potentiation of its device")
    for sub_name, sub in pair.tiles.items():
        _write_device_arrays(g.create_group(sub_name), sub)


def _write_device_arrays(g, tile) -> None:
    """``device``, ``counters`` and ``pulse_counts`` of one AnalogTile."""
    dev = g.create_group("device")
    dev.attrs["model"] = type(tile.config.device).__name__
    dev.attrs["config"] = tile.config.device.to_json()
    dev.attrs["granularity"] = float(tile.devices.granularity)
    for k, v in tile.devices.as_dict().items():
        _create_dataset(dev, k, np.asarray(v), units=DEVICE_PARAM_UNITS.get(k, ""))
    _create_dataset(dev, "weight_min", np.asarray(tile.devices.w_lo), units=DEVICE_PARAM_UNITS["weight_min"])
    _create_dataset(dev, "weight_max", np.asarray(tile.devices.w_hi), units=DEVICE_PARAM_UNITS["weight_max"])
    cnt = g.create_group("counters")
    for k, v in tile.counters.items():
        cnt.create_dataset(k, data=np.int64(v)).attrs["units"] = COUNTER_UNITS.get(k, "")
    _create_dataset(g, "pulse_counts", tile.pulse_counts,
                    units="pulses per device; [..., 0] up pulses, [..., 1] down pulses")


def _write_snapshots(g, snapshots: dict, name: str) -> None:
    sg = g.create_group("snapshots")
    sg.attrs["units"] = "weights as read (apparent weights), weight units; group names are training steps"
    for step in sorted(snapshots):
        arrays = snapshots[step]
        if name in arrays:
            _create_dataset(sg.create_group(str(int(step))), "weights", np.asarray(arrays[name], np.float32))


def write_run(parent, run_id: str, result, point: dict | None = None, index: int = -1,
              floor_fraction: float = 0.2) -> None:
    """Write one :class:`~crossbar_sim.least_squares.training.RunResult` as group ``parent/run_id`` (must not exist)."""
    g = parent.create_group(run_id)
    g.attrs["config"] = dumps(result.config)
    g.attrs["seed"] = np.uint64(result.seed)
    g.attrs["status"] = result.status
    g.attrs["wall_time_s"] = float(result.wall_time_s)
    g.attrs["error"] = result.error or ""
    g.attrs["point"] = dumps(point or {})
    g.attrs["index"] = int(index)
    if result.status not in DONE_STATUSES:
        return
    from ..least_squares.training import METRIC_UNITS

    total = int(result.config.get("train", {}).get("steps", int(result.steps.max()) if result.steps.size else 0))
    loss = result.metrics.get("loss", np.zeros(0))
    g.attrs["final_loss"] = float(loss[-1]) if len(loss) else float("nan")
    g.attrs["error_floor"] = error_floor(result.steps, loss, total, floor_fraction)
    g.attrs["error_floor_definition"] = error_floor_definition(floor_fraction)
    m = g.create_group("metrics")
    _create_dataset(m, "steps", np.asarray(result.steps, np.int64), units=STEPS_UNITS)
    for k, v in result.metrics.items():
        _create_dataset(m, k, np.asarray(v, np.float64), units=METRIC_UNITS.get(k, ""))
    layer = g.create_group("tiles").create_group(LS_LAYER)
    state = result.tile_state
    if state is None:  # digital SGD: floating-point weights, no devices
        layer.attrs["kind"] = "DigitalWeights"
        names = sorted({a for arrays in result.snapshots.values() for a in arrays})
        for name in names:
            _write_snapshots(layer.create_group(name), result.snapshots, name)
        return
    layer.attrs["kind"] = state["kind"]
    layer.attrs["shape"] = np.asarray(state["shape"], np.int64)
    tile = tile_from_state(state)
    compound = state["kind"] in COMPOUND_KINDS
    arrays = {k: v for k, v in tile.tiles.items() if k in ("A", "C")} if compound else {"W": tile}
    for name, arr in arrays.items():
        _write_array_group(layer.create_group(name), arr, result.snapshots, name)
    if compound:
        cnt = layer.create_group("counters")
        for k, v in tile.counters.items():
            cnt.create_dataset(k, data=np.int64(v)).attrs["units"] = COUNTER_UNITS.get(k, "")
    st = layer.create_group("state")
    st.attrs["note"] = "full get_state() of the final tile; crossbar_sim.engine.store.load_tile rebuilds it"
    write_tree(st, state)


def load_tile(file, path: str):
    """Rebuild the final tile of a stored run so that it continues bit-identically.

    Parameters
    ----------
    file : str or h5py.File
        Result file (or an open one).
    path : str
        A run (``/runs/0003``), its layer (``/runs/0003/tiles/linear``) or the state group itself.

    Returns
    -------
    AnalogTile, OneSidedTile, TikiTakaTile or BufferedTransferTile
    """
    h5py = _h5py()
    if isinstance(file, (str, os.PathLike)):
        with open_results(os.fspath(file)) as f:
            return load_tile(f, path)
    f = file
    if path not in f:
        raise FormatError(f"{f.filename}: no object {path!r}.")
    g = f[path]
    candidates = [g]
    if "state" in g:
        candidates.insert(0, g["state"])
    if "tiles" in g:
        for layer in g["tiles"].values():
            if isinstance(layer, h5py.Group) and "state" in layer:
                candidates.insert(0, layer["state"])
                break
    for c in candidates:
        if isinstance(c, h5py.Group) and "json" in c.attrs:
            state = read_tree(c)
            if state.get("kind") in TILE_KINDS:
                return tile_from_state(state)
    raise FormatError(f"{f.filename}:{path} holds no tile state (digital runs have no tile).")


# ---------------------------------------------------------------------------------------------- sweep files
def _points_table(points: list[dict], axes: list[str]) -> np.ndarray:
    """A structured array: run_id, index, run_seed and one column per axis (missing values: nan / '')."""
    fields: list[tuple] = [("run_id", "S16"), ("index", "<i8"), ("run_seed", "<u8")]
    for ax in axes:
        vals = [p["values"][ax] for p in points if ax in p["values"]]
        if vals and all(isinstance(v, bool) for v in vals):
            fields.append((ax, "?"))
        elif vals and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            fields.append((ax, "<f8" if any(isinstance(v, float) for v in vals) else "<i8"))
        else:
            n = max([len(str(v).encode()) for v in vals] + [1])
            fields.append((ax, f"S{n}"))
    table = np.zeros(len(points), dtype=fields)
    for i, p in enumerate(points):
        table[i]["run_id"] = p["run_id"].encode()
        table[i]["index"] = p["index"]
        table[i]["run_seed"] = p["seed"]
        for ax in axes:
            kind = table.dtype[ax].kind
            v = p["values"].get(ax)
            if v is None:
                table[i][ax] = np.nan if kind == "f" else (b"" if kind == "S" else 0)
            else:
                table[i][ax] = str(v).encode() if kind == "S" else v
    return table


def merge_journal_part(f, journal: str, rid: str) -> None:
    """Move run ``rid`` from its journal file ``<journal>/<rid>.h5`` into the open main file ``f``, through a
    staging group, so that a crash leaves the run either absent or complete (re-merged on the next open)."""
    h5py = _h5py()
    with h5py.File(os.path.join(journal, rid + ".h5"), "r") as part:
        staging = f.require_group("_staging")
        if rid in staging:
            del staging[rid]
        if rid in f["runs"]:
            del f["runs"][rid]
        part.copy(part["runs"][rid], staging, rid)
        f.move(f"_staging/{rid}", f"runs/{rid}")
        del f["_staging"]


def _atomic_h5(path: str, fill) -> None:
    """Create ``path`` whole: write it under a temporary name, then rename it into place."""
    h5py = _h5py()
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            fill(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_header(f, argv, sweep: dict) -> None:
    f.attrs["format"] = FORMAT_NAME
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["package_version"] = __version__
    f.attrs["created"] = now_iso()
    f.attrs["argv"] = dumps(list(argv))
    s = f.create_group("sweep")
    s.attrs["spec"] = dumps(sweep["spec"])
    s.attrs["axes"] = dumps(sweep["axes"])
    s.attrs["seed"] = np.uint64(sweep["seed"])
    s.attrs["n_points"] = len(sweep["points"])
    s.attrs["name"] = sweep.get("name", "")
    s.attrs["description"] = sweep.get("description", "")
    s.attrs["error_floor_definition"] = error_floor_definition(sweep.get("floor_fraction", 0.2))
    _create_dataset(s, "points", _points_table(sweep["points"], list(sweep["axes"])))
    f.create_group("runs")


class SweepStore:
    """The result file of one sweep, written only by the parent process (see the module docstring).

    Parameters
    ----------
    path : str
        The HDF5 file (e.g. ``results.h5``).
    sweep : dict
        ``{"spec": ..., "axes": {name: values}, "seed": int, "points": [{"run_id", "index", "seed",
        "values"}, ...], "name", "description"}`` (see :func:`crossbar_sim.engine.spec.expand`).
    argv : list of str
        The command line, stored in the root attributes.
    resume : bool
        Continue an existing file of the same sweep (its finished runs are kept and skipped).
    overwrite : bool
        Replace an existing file.
    """

    def __init__(self, path: str, sweep: dict, argv: Iterable[str] = (), resume: bool = False,
                 overwrite: bool = False):
        self.path = os.fspath(path)
        self.sweep = sweep
        self.journal = self.path + ".journal"
        self.messages: list[str] = []
        argv = list(argv)
        exists = os.path.exists(self.path)
        if exists and not (resume or overwrite):
            raise FormatError(
                f"{self.path} already exists; pass --resume to continue that sweep, --overwrite to replace it, "
                f"or choose another --out.")
        if overwrite and not resume:
            for p in (self.path,):
                if os.path.exists(p):
                    os.remove(p)
            if os.path.isdir(self.journal):
                shutil.rmtree(self.journal)
            exists = False
        if exists:
            self._open_existing(argv)
        else:
            if os.path.isdir(self.journal) and resume:
                self._rebuild_from_journal(argv, reason="the result file is missing")
            else:
                if os.path.isdir(self.journal):
                    shutil.rmtree(self.journal)
                _atomic_h5(self.path, lambda f: _write_header(f, argv, sweep))
        os.makedirs(self.journal, exist_ok=True)
        header = os.path.join(self.journal, "sweep.h5")
        if not os.path.exists(header):
            _atomic_h5(header, lambda f: _write_header(f, argv, sweep))
        self._merge_journal()

    # ------------------------------------------------------------------ resume
    def _open_existing(self, argv) -> None:
        try:
            f = open_results(self.path, "a")
        except FormatError as exc:
            if os.path.isdir(self.journal):
                self._rebuild_from_journal(argv, reason=str(exc))
                return
            raise
        with f:
            stored = json.loads(f["sweep"].attrs["spec"]) if "sweep" in f else None
            if stored != json.loads(dumps(self.sweep["spec"])):
                raise FormatError(
                    f"{self.path} holds a different sweep (its stored spec differs from this one: "
                    f"{_spec_diff(stored, json.loads(dumps(self.sweep['spec'])))}); use the same experiment and "
                    f"--set overrides to resume it, or another --out.")
            if "_staging" in f:  # a write interrupted before its run was moved into /runs
                del f["_staging"]
            for rid in list(f["runs"].keys()):
                if f["runs"][rid].attrs.get("status") not in DONE_STATUSES:
                    del f["runs"][rid]  # failed runs are retried
            resumes = json.loads(f.attrs.get("resumed_argv", "[]"))
            resumes.append({"argv": argv, "at": now_iso()})
            f.attrs["resumed_argv"] = dumps(resumes)

    def _rebuild_from_journal(self, argv, reason: str) -> None:
        h5py = _h5py()
        header = os.path.join(self.journal, "sweep.h5")
        if not os.path.exists(header):
            raise FormatError(f"{self.path}: {reason}; its journal {self.journal} has no sweep header to rebuild it.")
        self.messages.append(f"{self.path}: {reason}; rebuilding it from the journal {self.journal}.")

        def fill(f):
            with h5py.File(header, "r") as src:
                for k, v in src.attrs.items():
                    f.attrs[k] = v
                src.copy(src["sweep"], f, "sweep")
                f.create_group("runs")
                stored = json.loads(f["sweep"].attrs["spec"])
                if stored != json.loads(dumps(self.sweep["spec"])):
                    raise FormatError(
                        f"{self.path}: the journal {self.journal} belongs to a different sweep; remove it or "
                        f"choose another --out.")

        _atomic_h5(self.path, fill)

    def _journal_parts(self) -> list[str]:
        if not os.path.isdir(self.journal):
            return []
        return sorted(n[:-3] for n in os.listdir(self.journal)
                      if n.endswith(".h5") and n != "sweep.h5" and ".tmp" not in n)

    def _merge_journal(self) -> None:
        done = set(self.done_ids())
        missing = [r for r in self._journal_parts() if r not in done]
        if missing:
            with _h5py().File(self.path, "a") as f:
                for rid in missing:
                    self._merge_part(f, rid)

    def _merge_part(self, f, rid: str) -> None:
        merge_journal_part(f, self.journal, rid)

    # ------------------------------------------------------------------ writing
    def done_ids(self) -> list[str]:
        """Run ids of the finished runs in the main file."""
        with open_results(self.path) as f:
            return [rid for rid, g in f["runs"].items() if g.attrs.get("status") in DONE_STATUSES]

    def write(self, run_id: str, result, point: dict, index: int) -> None:
        """Write a finished run: journal part first (atomic), then into the main file (staging + move)."""
        h5py = _h5py()
        os.makedirs(self.journal, exist_ok=True)
        part = os.path.join(self.journal, run_id + ".h5")

        frac = self.sweep.get("floor_fraction", 0.2)

        def fill(f):
            write_run(f.create_group("runs"), run_id, result, point, index, frac)

        if result.status in DONE_STATUSES:
            _atomic_h5(part, fill)
            with h5py.File(self.path, "a") as f:
                self._merge_part(f, run_id)
        else:  # a failed run is recorded in the main file only (it is retried on --resume)
            with h5py.File(self.path, "a") as f:
                staging = f.require_group("_staging")
                if run_id in f["runs"]:
                    del f["runs"][run_id]
                write_run(staging, run_id, result, point, index, self.sweep.get("floor_fraction", 0.2))
                f.move(f"_staging/{run_id}", f"runs/{run_id}")
                del f["_staging"]

    def finish(self) -> bool:
        """Delete the journal once every point of the sweep is finished in the main file; True if so."""
        ids = {p["run_id"] for p in self.sweep["points"]}
        if ids <= set(self.done_ids()):
            shutil.rmtree(self.journal, ignore_errors=True)
            return True
        return False


def _spec_diff(a, b, prefix="") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _spec_diff(a.get(k), b.get(k), f"{prefix}{k}.")
    return f"{prefix.rstrip('.') or 'spec'}: stored {a!r}, now {b!r}"


# ---------------------------------------------------------------------------------------------- reading
def read_runs(f) -> list[dict]:
    """Summaries of the runs in an open result file: run_id, point, status, seed, floor, final loss, config."""
    out = []
    for rid, g in f["runs"].items():
        a = g.attrs
        out.append({
            "run_id": rid,
            "index": int(a.get("index", -1)),
            "point": json.loads(a.get("point", "{}")),
            "status": str(a.get("status", "")),
            "seed": int(a.get("seed", 0)),
            "wall_time_s": float(a.get("wall_time_s", np.nan)),
            "error_floor": float(a.get("error_floor", np.nan)),
            "final_loss": float(a.get("final_loss", np.nan)),
            "error": str(a.get("error", "")),
            "config": json.loads(a.get("config", "{}")),
        })
    out.sort(key=lambda r: (r["index"], r["run_id"]))
    return out


def run_metrics(f, run_id: str) -> dict:
    """``{"steps": ..., name: ...}`` of one run (empty for a failed run)."""
    g = f["runs"][run_id]
    if "metrics" not in g:
        return {}
    return {k: v[()] for k, v in g["metrics"].items()}


def eprint(msg: str) -> None:
    print(msg, file=sys.stderr)
