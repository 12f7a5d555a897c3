"""The HDF5 result store of crossbar-sim (format ``crossbar-sim``, ``format_version`` 2): one writer for every run
kind (least squares, networks, the low-rank language model).

Layout (``/work/shared/DESIGN.md``)::

    /                       attrs: format="crossbar-sim", format_version, package_version, created, argv
    /sweep                  attrs: kind, spec (JSON), resolved (JSON: every run's resolved config), axes (JSON),
                                   seed, n_points, name, description
                            dataset: points (one row per run: run_id, index, run_seed, one column per axis)
    /runs/<run_id>          attrs: kind, config (JSON), seed, status, wall_time_s, error, point (JSON), index,
                                   summary scalars (error_floor, final_loss / final_test_acc / final_val_ppl ...)
    /runs/<run_id>/metrics/steps     the axis (training steps or epochs; attr ``axis``), an HDF5 dimension scale
    /runs/<run_id>/metrics/<name>    1-D float64 attached to that scale; attrs: units (short: "1", "s", "J", "%",
                                     "B"), description (prose)
    /runs/<run_id>/timing/<name>     wall-clock series on the same axis (not reproducible by nature)
    /runs/<run_id>/tiles/<layer>/    attrs: kind, shape
                          <layer>/state/...                the full ``get_state()`` of the final tile (load_tile)
                          <layer>/counters/<name>          counters of a compound tile (transfers, reads)
                          <layer>/<array>/device/<param>   per-device parameters (out_size, in_size)
                          <layer>/<array>/counters/<name>  scalar int64 counters of the array
                          <layer>/<array>/pulse_counts     (out_size, in_size, 2) int64, [..., 0] up, [..., 1] down
                          <layer>/<array>/snapshots/<step>/weights   (out_size, in_size) float32
                          <layer>/<array>/g_plus, g_minus/...      the two arrays of a one-sided pair
                          <layer>/tile<i>_<j>/...          the blocks of a layer mapped onto several tiles
    /runs/<run_id>/budget   attrs: energy_<category>_J, count_<event>, memory_<part>_bytes, const_<constant>
    /runs/<run_id>/<extra>  kind-specific trees (e.g. inference evaluations)

Crash safety and concurrency.
* One process owns an output: :class:`OutputLock` (``<out>.lock``, an exclusive ``flock``) is held for a whole
  sweep; a second writer is refused with one line naming the owner's PID. Readers never lock the file
  (HDF5 file locking is off), so a notebook holding the file open never breaks the writer.
* Only the parent process writes. Every finished run is first written whole into its own file in the journal
  ``<out>.journal/`` (temporary name, fsync, ``os.replace``, fsync of the folder), then copied into the main file
  under ``/_staging/<run_id>`` and moved to ``/runs/<run_id>``, where the attribute ``_written`` marks it whole.
* ``--resume`` checks the main file against the journal and rebuilds from the journal whatever the journal
  proves: the whole file when it is unreadable, a run that is missing, half-written or differs. The journal is
  deleted once every run of the sweep is in the main file.
* Before a record is written the free space is checked; a full disk is one line naming the path
  (:class:`~crossbar_sim.errors.DiskFullError`), and the runs already written stay.
"""
from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import shutil
import sys
from typing import Any, Iterable

import numpy as np

from .. import __version__
from ..errors import DiskFullError, FormatError, OutputBusyError
from .record import DONE_STATUSES, RunRecord

FORMAT_NAME = "crossbar-sim"
FORMAT_VERSION = 2
#: versions the readers understand (version 1: crossbar-sim 0.1, before the common engine; read-only)
READABLE_VERSIONS = (1, 2)

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

#: descriptions of the per-device parameters written under ``device/`` (names of ``DeviceArrays.as_dict``)
DEVICE_PARAM_DESCRIPTIONS = {
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

#: the layer name of the single weight matrix of the least-squares task
LS_LAYER = "linear"

#: tile kinds made of arrays A and C (their buffers and choppers live in the stored state)
COMPOUND_KINDS = ("TikiTakaTile", "BufferedTransferTile")
#: every tile kind :func:`tile_from_state` rebuilds (the vector cell and mixed precision of issue 19 too)
TILE_KINDS = ("AnalogTile", "OneSidedTile") + COMPOUND_KINDS + ("VectorTile", "MixedPrecisionTile")


def h5py_module():
    """h5py, imported on first use (``crossbar-sim --help`` must not pay for it)."""
    import h5py

    return h5py


def h5file(path: str, mode: str = "r"):
    """An ``h5py.File`` without HDF5 file locking: readers never block the writer (one writer is enforced by
    :class:`OutputLock` instead)."""
    return h5py_module().File(path, mode, locking=False)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


# ---------------------------------------------------------------------------------------------- opening
def open_results(path: str, mode: str = "r"):
    """Open a crossbar-sim result file, checking that it is one (format name and a readable version).

    Raises
    ------
    FormatError
        The file does not exist, is not HDF5, is truncated, is not a crossbar-sim file or has a
        ``format_version`` this version of crossbar-sim does not read (the message says which to use).
    """
    h5py = h5py_module()
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
        f = h5file(path, mode)
    except OSError as exc:
        msg = str(exc)
        busy = writer_pid(path)
        if busy:
            raise FormatError(f"{path} is being written by a running crossbar-sim process (PID {busy}); try "
                              f"again in a moment.") from None
        if "truncated" in msg.lower() or "eof" in msg.lower():
            raise FormatError(f"{path} is a truncated HDF5 file ({short_error(msg)}); it cannot be read.") from None
        raise FormatError(f"{path} is a damaged HDF5 file ({short_error(msg)}); it cannot be read.") from None
    try:
        check_format(f, path, writable=mode != "r")
    except BaseException:
        f.close()
        raise
    return f


def short_error(msg: str) -> str:
    """The first line of an HDF5 error message, without the library's bracketed error stack."""
    msg = msg.strip().splitlines()[0] if msg.strip() else msg
    return msg.split(" (")[0][:160]


def check_format(f, path: str = "", writable: bool = False) -> int:
    """The ``format_version`` of an open file; :class:`FormatError` unless it is a crossbar-sim file of a version
    this code reads (``writable``: of the version it writes)."""
    path = path or f.filename
    try:
        name = f.attrs.get("format")
        version = f.attrs.get("format_version")
    except (OSError, RuntimeError, KeyError) as exc:
        raise FormatError(f"{path} is a damaged HDF5 file ({short_error(str(exc))}); it cannot be read.") from None
    if isinstance(name, bytes):
        name = name.decode()
    if name != FORMAT_NAME:
        raise FormatError(
            f"{path} is an HDF5 file but not a crossbar-sim result file (root attribute format={name!r}).")
    try:
        v = int(version)
    except (TypeError, ValueError):
        raise FormatError(f"{path} has an invalid format_version {version!r}.") from None
    wrote = f.attrs.get("package_version", "?")
    if v not in READABLE_VERSIONS:
        raise FormatError(
            f"{path} has format_version {v} (written by crossbar-sim {wrote}); this crossbar-sim ({__version__}) "
            f"reads format_version {', '.join(map(str, READABLE_VERSIONS))}: open it with crossbar-sim {wrote}.")
    if writable and v != FORMAT_VERSION:
        raise FormatError(
            f"{path} has format_version {v} (written by crossbar-sim {wrote}); this crossbar-sim ({__version__}) "
            f"only reads it. Resume or extend it with crossbar-sim {wrote}, or write to another --out.")
    return v


# ---------------------------------------------------------------------------------------------- one writer
def lock_path(out: str) -> str:
    return os.fspath(out) + ".lock"


def writer_pid(out: str) -> int | None:
    """The PID of the process holding ``out``'s writer lock, or None when no one writes it."""
    p = lock_path(out)
    if not os.path.exists(p):
        return None
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            try:
                return int(os.pread(fd, 32, 0).decode().split()[0])
            except (ValueError, IndexError, OSError):
                return -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class OutputLock:
    """Exclusive ownership of an output file for the lifetime of a sweep (``<out>.lock``, ``flock``).

    The lock dies with its process (the kernel releases it), so a killed sweep never leaves a stale lock behind.
    """

    def __init__(self, out: str):
        self.out = os.fspath(out)
        self.path = lock_path(self.out)
        self.fd = None

    def acquire(self) -> "OutputLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise FormatError(f"--out {self.out}: cannot create {self.path} ({exc.strerror}).") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                pid = os.pread(fd, 64, 0).decode().strip() or "?"
            finally:
                os.close(fd)
            raise OutputBusyError(f"{self.out} is being written by another crossbar-sim process (PID {pid}); wait "
                                  f"for it to finish or choose another --out.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {now_iso()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


# ---------------------------------------------------------------------------------------------- generic trees
def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dumps(obj) -> str:
    """JSON of ``obj`` with sorted keys (NumPy scalars and arrays as numbers and lists)."""
    return json.dumps(obj, sort_keys=True, default=_json_default)


def loads_attr(g, name: str, default):
    """A JSON attribute of ``g``; :class:`FormatError` naming it when it does not parse."""
    raw = g.attrs.get(name)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        raise FormatError(f"{g.file.filename}:{g.name} has a damaged attribute {name!r} (not JSON).") from None


def _has_array(v) -> bool:
    if isinstance(v, np.ndarray):
        return True
    if isinstance(v, dict):
        return any(_has_array(x) for x in v.values())
    return False


def create_dataset(g, name, data, **attrs):
    """A dataset, gzip-compressed when large; ``attrs`` become its attributes."""
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
            create_dataset(g, k, v)
        elif isinstance(v, dict) and _has_array(v):
            write_tree(g.create_group(k), v)
        else:
            leaves[k] = v
    g.attrs["json"] = dumps(leaves)


def read_tree(g) -> dict:
    """Inverse of :func:`write_tree`."""
    h5py = h5py_module()
    out: dict[str, Any] = loads_attr(g, "json", {})
    for k, v in g.items():
        if isinstance(v, h5py.Dataset):
            out[k] = v[()]
        else:
            out[k] = read_tree(v)
    return out


# ---------------------------------------------------------------------------------------------- tiles
def tile_from_state(state: dict):
    """Rebuild a tile of any kind in :data:`TILE_KINDS` from its ``get_state()``
    (:func:`crossbar_sim.tiles.factory.tile_from_state`)."""
    from ..tiles.factory import tile_from_state as rebuild

    return rebuild(state)


def _tile_kind(tile) -> str:
    return getattr(tile, "kind", None) or type(tile).__name__


def _write_counters(g, counters: dict) -> None:
    cnt = g.create_group("counters")
    for k, v in counters.items():
        if np.isscalar(v):
            cnt.create_dataset(k, data=np.int64(v)).attrs["units"] = "1"
            cnt[k].attrs["description"] = COUNTER_UNITS.get(k, "")


def _write_device_arrays(g, tile) -> None:
    """``device``, ``counters`` and ``pulse_counts`` of one AnalogTile."""
    dev = g.create_group("device")
    dev.attrs["model"] = type(tile.config.device).__name__
    dev.attrs["config"] = tile.config.device.to_json()
    dev.attrs["granularity"] = float(tile.devices.granularity)
    for k, v in tile.devices.as_dict().items():
        create_dataset(dev, k, np.asarray(v), units="1", description=DEVICE_PARAM_DESCRIPTIONS.get(k, ""))
    create_dataset(dev, "weight_min", np.asarray(tile.devices.w_lo), units="1",
                   description=DEVICE_PARAM_DESCRIPTIONS["weight_min"])
    create_dataset(dev, "weight_max", np.asarray(tile.devices.w_hi), units="1",
                   description=DEVICE_PARAM_DESCRIPTIONS["weight_max"])
    _write_counters(g, tile.counters)
    create_dataset(g, "pulse_counts", tile.pulse_counts, units="1",
                   description="pulses per device; [..., 0] up pulses, [..., 1] down pulses")


def _write_pair_group(g, pair) -> None:
    """A one-sided pair: the weight ``g_plus - g_minus`` as one array (its bounds, pair counters, pulses per
    weight on each side) and ``g_plus``/``g_minus`` as device arrays of their own."""
    dev = g.create_group("device")
    dev.attrs["model"] = type(pair.config.device).__name__
    dev.attrs["config"] = pair.config.device.to_json()
    dev.attrs["granularity"] = float(pair.granularity)
    create_dataset(dev, "weight_min", pair.w_min_bound, units="1", description="lower bound of g_plus - g_minus")
    create_dataset(dev, "weight_max", pair.w_max_bound, units="1", description="upper bound of g_plus - g_minus")
    _write_counters(g, pair.counters)
    create_dataset(g, "pulse_counts", pair.pulse_counts, units="1",
                   description="pulses per weight; [..., 0] on g_plus (raising w), [..., 1] on g_minus (lowering "
                               "w); every pulse is a potentiation of its device")
    for sub_name, sub in pair.tiles.items():
        _write_device_arrays(g.create_group(sub_name), sub)


def _write_analog_array(g, tile) -> None:
    from ..tiles.onesided import OneSidedTile

    if isinstance(tile, OneSidedTile):
        _write_pair_group(g, tile)
    else:
        _write_device_arrays(g, tile)


def _write_snapshots(g, steps: dict, name: str) -> None:
    """``<array>/snapshots/<step>/weights`` from ``{step: {array: weights}}``."""
    have = [s for s in sorted(steps) if name in steps[s]]
    if not have:
        return
    sg = g.require_group("snapshots")
    sg.attrs["units"] = "1"
    sg.attrs["description"] = "weights as read (apparent weights), weight units; group names are axis values"
    for step in have:
        create_dataset(sg.create_group(str(int(step))), "weights", np.asarray(steps[step][name], np.float32))


def _array_names(tile) -> dict:
    """The analog arrays of one tile by name (``W``; ``A``, ``C`` of a compound) and whether it is compound."""
    kind = _tile_kind(tile)
    if kind in COMPOUND_KINDS:
        return {k: v for k, v in tile.tiles.items() if k in ("A", "C")}
    if kind in ("AnalogTile", "OneSidedTile"):
        return {"W": tile}
    if kind == "MixedPrecisionTile" and _tile_kind(tile.array) in ("AnalogTile", "OneSidedTile"):
        return {"W": tile.array}  # its analog array; chi is in the state (a vector cell: state and snapshots only)
    return {}


def write_tile(layer, tile, snapshots: dict | None = None) -> None:
    """Everything of one layer's final tile into the group ``layer``: device arrays, counters, pulse counts, the
    full state, and the weight snapshots ``{step: {array: weights}}`` (array names as ``tile_arrays`` gives)."""
    snapshots = snapshots or {}
    kind = _tile_kind(tile)
    layer.attrs["kind"] = kind
    if kind == "TileArray":
        layer.attrs["shape"] = np.asarray([tile.out_size, tile.in_size], np.int64)
        layer.attrs["blocks"] = dumps([[s.start, s.stop, o.start, o.stop] for s, o, _ in tile.parts])
        parts = [tile.part_name(k) for k in range(len(tile.parts))]
        for name, (_, _, t) in zip(parts, tile.parts):
            sub = {step: {a[len(name) + 1:]: w for a, w in arrays.items() if a.startswith(name + "/")}
                   for step, arrays in snapshots.items()}
            write_tile(layer.create_group(name), t, sub)
        rest = sorted({a for arrays in snapshots.values() for a in arrays if a.split("/")[0] not in parts})
        for name in rest:  # the layer's digital parameters (bias, out scales) inference needs
            _write_snapshots(layer.require_group(name), snapshots, name)
        return
    if kind not in TILE_KINDS:  # digital weights (a DigitalTile, a digital matrix of the language model)
        layer.attrs["kind"] = "DigitalWeights"
        names = sorted({a for arrays in snapshots.values() for a in arrays})
        for name in names:
            _write_snapshots(layer.require_group(name), snapshots, name)
        return
    state = tile.get_state()
    layer.attrs["shape"] = np.asarray(state["shape"], np.int64)
    arrays = _array_names(tile)
    for name, arr in arrays.items():
        g = layer.create_group(name)
        _write_analog_array(g, arr)
        _write_snapshots(g, snapshots, name)
    for name in sorted({a for arrays_ in snapshots.values() for a in arrays_} - set(arrays)):
        _write_snapshots(layer.require_group(name), snapshots, name)  # digital buffers of the buffered family
    if kind in COMPOUND_KINDS:
        _write_counters(layer, tile.counters)
    st = layer.create_group("state")
    st.attrs["note"] = "full get_state() of the final tile; crossbar_sim.engine.store.load_tile rebuilds it"
    write_tree(st, state)


# ---------------------------------------------------------------------------------------------- one run
def attach_axis(g) -> None:
    """Make ``metrics/steps`` of a run group an HDF5 dimension scale and attach every metric and timing series of
    its length to it (done in the file that keeps the run: references do not survive a copy between files)."""
    if "metrics" not in g or "steps" not in g["metrics"]:
        return
    axis = g["metrics"]["steps"]
    if not axis.is_scale:
        axis.make_scale(str(axis.attrs.get("axis", "step")))
    for group in ("metrics", "timing"):
        if group not in g:
            continue
        for name, ds in g[group].items():
            if ds is not axis and name != "steps" and ds.shape == axis.shape and not ds.dims[0]:
                ds.dims[0].attach_scale(axis)


def write_record(parent, run_id: str, rec: RunRecord, point: dict | None = None, index: int = -1,
                 scales: bool = True) -> None:
    """Write one :class:`~crossbar_sim.engine.record.RunRecord` as group ``parent/run_id`` (must not exist).

    ``scales``: attach the metrics to their axis (:func:`attach_axis`); a journal part is written without, and
    the merge into the main file attaches them there."""
    g = parent.create_group(run_id)
    g.attrs["kind"] = rec.kind
    g.attrs["config"] = dumps(rec.config)
    g.attrs["seed"] = np.uint64(rec.seed)
    g.attrs["status"] = rec.status
    g.attrs["wall_time_s"] = float(rec.wall_time_s)
    g.attrs["error"] = rec.error or ""
    g.attrs["point"] = dumps(point or {})
    g.attrs["index"] = int(index)
    for k, v in rec.summary.items():
        g.attrs[k] = v
    if rec.done:
        m = g.create_group("metrics")
        create_dataset(m, "steps", np.asarray(rec.steps, np.int64), units="1", axis=rec.axis,
                       description=rec.descriptions.get("steps", f"the recorded {rec.axis}s"))
        for k, v in rec.metrics.items():
            create_dataset(m, k, np.asarray(v, np.float64), units=rec.units.get(k, "1"),
                           description=rec.descriptions.get(k, ""))
        if rec.timing:
            t = g.create_group("timing")
            t.attrs["description"] = "wall-clock series (they differ between two runs of the same config and seed)"
            for k, v in rec.timing.items():
                create_dataset(t, k, np.asarray(v, np.float64), units=rec.units.get(k, "s"),
                               description=rec.descriptions.get(k, ""))
        if rec.tiles or rec.snapshots:
            tg = g.create_group("tiles")
            for layer in list(rec.tiles) + [n for n in rec.snapshots if n not in rec.tiles]:
                write_tile(tg.create_group(layer), rec.tiles.get(layer), rec.snapshots.get(layer, {}))
        if rec.budget is not None:
            b = g.create_group("budget")
            for k, v in rec.budget.items():
                b.attrs[k] = v
        for name, tree in rec.extra.items():
            write_tree(g.create_group(name), tree)
        if rec.inference is not None:
            from ..inference.results import write_inference

            write_inference(g, rec.inference)
        if scales:
            attach_axis(g)
    g.attrs["_written"] = True  # last: a run group without it is half-written


def load_tile(file, path: str):
    """Rebuild the final tile of a stored run so that it continues bit-identically.

    Parameters
    ----------
    file : str or h5py.File
        Result file (or an open one).
    path : str
        A run (``/runs/0003``; its only analog layer), a layer (``/runs/0003/tiles/linear``), a block of a layer
        mapped onto several tiles (``.../tiles/fc1/tile0_1``) or the state group itself.

    Returns
    -------
    AnalogTile, OneSidedTile, TikiTakaTile or BufferedTransferTile
    """
    h5py = h5py_module()
    if isinstance(file, (str, os.PathLike)):
        with open_results(os.fspath(file)) as f:
            return load_tile(f, path)
    f = file
    if path not in f and f"/runs/{path}" in f:
        path = f"/runs/{path}"
    if path not in f:
        raise FormatError(f"{f.filename}: no object {path!r}; {what_exists(f, path)}")
    g = f[path]
    if "state" in g and isinstance(g["state"], h5py.Group):
        return tile_from_state(read_tree(g["state"]))
    if "json" in g.attrs and g.name.endswith("/state"):
        return tile_from_state(read_tree(g))
    layers = [] if "tiles" not in g else [(n, lg) for n, lg in g["tiles"].items()]
    with_state = [(n, lg) for n, lg in layers if "state" in lg]
    if len(with_state) == 1:
        return tile_from_state(read_tree(with_state[0][1]["state"]))
    if layers:
        names = ", ".join(f"{g.name}/tiles/{n}" + ("" if "state" in lg else f" ({lg.attrs.get('kind', '?')})")
                          for n, lg in layers)
        if not with_state:
            raise FormatError(f"{f.filename}:{path} holds no tile state (digital weights only; digital runs have no "
                              f"tile); its layers: {names}.")
        raise FormatError(f"{f.filename}:{path} has several tiles; name one of: {names} (a layer of several "
                          f"blocks: add /tile<i>_<j>).")
    kind = g.attrs.get("kind")
    if kind == "TileArray":
        blocks = ", ".join(f"{g.name}/{n}" for n in g)
        raise FormatError(f"{f.filename}:{path} is a layer of several tiles; name one block: {blocks}.")
    raise FormatError(f"{f.filename}:{path} holds no tile state (digital runs have no tile).")


def what_exists(f, path: str) -> str:
    """What does exist near a missing path: the children of its deepest existing parent."""
    parts = path.strip("/").split("/")
    for k in range(len(parts) - 1, -1, -1):
        parent = "/" + "/".join(parts[:k])
        if parent in f and hasattr(f[parent], "keys"):
            keys = list(f[parent].keys())
            shown = ", ".join(keys[:12]) + (", ..." if len(keys) > 12 else "")
            return f"{parent} holds: {shown or 'nothing'}."
    return "the file is empty."


# ---------------------------------------------------------------------------------------------- sweep files
def points_table(points: list[dict], axes: list[str]) -> np.ndarray:
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


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return "no space left" in text or "disk quota" in text or "file write failed" in text


def atomic_h5(path: str, fill) -> None:
    """Create ``path`` whole: write it under a temporary name, fsync it, rename it into place, fsync the folder.

    A full disk raises :class:`~crossbar_sim.errors.DiskFullError` (one line naming the path); the temporary
    file is removed and ``path`` keeps its earlier content.
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with h5file(tmp, "w") as f:
            fill(f)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(os.path.dirname(os.path.abspath(path)))
    except (OSError, RuntimeError) as exc:
        if _is_disk_full(exc):
            raise DiskFullError(f"{os.path.dirname(os.path.abspath(path))}: the disk is full (writing {path}); the "
                                f"runs already saved are kept: free some space and run the same command with "
                                f"--resume.") from None
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def check_free_space(path: str, need_bytes: int) -> None:
    """:class:`DiskFullError` if the file system of ``path`` has less than ``need_bytes`` (plus a margin) free."""
    d = os.path.dirname(os.path.abspath(path))
    try:
        free = shutil.disk_usage(d).free
    except OSError:
        return
    need = int(need_bytes * 1.2) + (4 << 20)
    if free < need:
        raise DiskFullError(f"{d}: the disk is full ({free / 2**20:.1f} MiB free, about {need / 2**20:.1f} MiB "
                            f"needed to save the next run); the runs already saved are kept: free some space and "
                            f"run the same command with --resume.")


def write_header(f, argv, sweep: dict) -> None:
    f.attrs["format"] = FORMAT_NAME
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["package_version"] = __version__
    f.attrs["created"] = now_iso()
    f.attrs["argv"] = dumps(list(argv))
    s = f.create_group("sweep")
    s.attrs["kind"] = sweep["kind"]
    s.attrs["spec"] = dumps(sweep["spec"])
    s.attrs["resolved"] = dumps(sweep["resolved"])
    s.attrs["axes"] = dumps(sweep["axes"])
    s.attrs["seed"] = np.uint64(sweep["seed"])
    s.attrs["n_points"] = len(sweep["points"])
    s.attrs["name"] = sweep.get("name", "")
    s.attrs["description"] = sweep.get("description", "")
    for k, v in sweep.get("attrs", {}).items():
        s.attrs[k] = v
    create_dataset(s, "points", points_table(sweep["points"], list(sweep["axes"])))
    f.create_group("runs")


def merge_journal_part(f, journal: str, rid: str) -> None:
    """Move run ``rid`` from its journal file ``<journal>/<rid>.h5`` into the open main file ``f``, through a
    staging group, so that a crash leaves the run either absent or complete (re-merged on the next open)."""
    with h5file(os.path.join(journal, rid + ".h5"), "r") as part:
        staging = f.require_group("_staging")
        if rid in staging:
            del staging[rid]
        if rid in f["runs"]:
            del f["runs"][rid]
        part.copy(part["runs"][rid], staging, rid)
        attach_axis(staging[rid])
        f.move(f"_staging/{rid}", f"runs/{rid}")
        del f["_staging"]


def resolved_diff(a, b, prefix: str = "") -> list[str]:
    """The dotted keys at which two JSON trees differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += resolved_diff(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".") or "spec"]


def _at(tree, dotted: str):
    if isinstance(tree, dict) and "config" in tree and not dotted.startswith(("config", "seed")):
        tree = tree["config"]
    for k in dotted.split("."):
        if not isinstance(tree, dict) or k not in tree:
            return None
        tree = tree[k]
    return tree


class SweepStore:
    """The result file of one sweep, written only by the parent process (see the module docstring).

    Parameters
    ----------
    path : str
        The HDF5 file (e.g. ``results.h5``).
    sweep : dict
        An expanded sweep (:func:`crossbar_sim.engine.spec.expand`): ``kind``, ``spec``, ``resolved`` (every
        run's resolved configuration, device files included), ``axes``, ``seed``, ``points``, ``name``.
    argv : list of str
        The command line, stored in the root attributes.
    resume : bool
        Continue an existing file of the same sweep (its finished runs are kept and skipped).
    overwrite : bool
        Replace an existing file.

    The caller holds the :class:`OutputLock` of ``path`` for as long as the store is used.
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
            if os.path.isdir(self.path):
                raise FormatError(f"--out {self.path} is a directory; --overwrite replaces files only.")
            if exists:
                os.remove(self.path)
            if os.path.isdir(self.journal):
                shutil.rmtree(self.journal)
            exists = False
        if exists:
            self._open_existing(argv)
        elif os.path.isdir(self.journal) and resume:
            self._rebuild_from_journal(argv, reason="the result file is missing")
        else:
            if os.path.isdir(self.journal):
                shutil.rmtree(self.journal)
            atomic_h5(self.path, lambda f: write_header(f, argv, sweep))
        os.makedirs(self.journal, exist_ok=True)
        header = os.path.join(self.journal, "sweep.h5")
        if not os.path.exists(header):
            atomic_h5(header, lambda f: write_header(f, argv, sweep))
        self._merge_journal()

    # ------------------------------------------------------------------ resume
    def _check_same_sweep(self, stored_spec, stored_resolved, where: str) -> None:
        new = self.sweep["resolved"]
        if (stored_spec or {}).get("seed") != self.sweep["spec"].get("seed"):
            raise FormatError(f"{where} holds a different sweep: the sweep seed differs (stored "
                              f"{(stored_spec or {}).get('seed')!r}, now {self.sweep['spec'].get('seed')!r}); resume "
                              f"with the same seed, or choose another --out.")
        if stored_resolved is None or set(stored_resolved) != set(new):
            n_old = len(stored_resolved or {})
            raise FormatError(f"{where} holds a different sweep ({n_old} runs stored, {len(new)} now: the axes or "
                              f"cases differ); resume with the same experiment and --set overrides, or choose "
                              f"another --out.")
        counts: dict = {}
        for rid in new:
            for key in resolved_diff(stored_resolved[rid], new[rid]):
                counts.setdefault(key.removeprefix("config."), []).append(rid)
        if counts:
            parts = [f"{k} ({len(v)} run{'s' if len(v) > 1 else ''}: stored "
                     f"{_at(stored_resolved[v[0]], k)!r}, now {_at(new[v[0]], k)!r})" for k, v in counts.items()]
            shown = "; ".join(parts[:4]) + (f"; and {len(parts) - 4} more keys" if len(parts) > 4 else "")
            raise FormatError(
                f"{where} holds a different sweep: its resolved configuration differs at {shown}. Resume with the "
                f"same experiment, --set overrides and device files, or choose another --out.")

    def _open_existing(self, argv) -> None:
        try:
            f = open_results(self.path, "a")
        except FormatError as exc:
            if os.path.isdir(self.journal) and "format_version" not in str(exc):
                self._rebuild_from_journal(argv, reason=str(exc).rstrip("."))
                return
            raise
        rebuild = None
        with f:
            if "sweep" not in f or "runs" not in f:
                rebuild = "it lacks its /sweep or /runs group"
            else:
                self._check_same_sweep(loads_attr(f["sweep"], "spec", None),
                                       loads_attr(f["sweep"], "resolved", None), self.path)
                if "_staging" in f:  # a write interrupted before its run was moved into /runs
                    del f["_staging"]
                for rid in list(f["runs"].keys()):
                    a = f["runs"][rid].attrs
                    if a.get("status") not in DONE_STATUSES or not a.get("_written", False):
                        del f["runs"][rid]  # failed runs are retried; half-written ones re-merged or re-run
                resumes = loads_attr(f, "resumed_argv", [])
                resumes.append({"argv": argv, "at": now_iso()})
                f.attrs["resumed_argv"] = dumps(resumes)
        if rebuild is not None:
            if not os.path.isdir(self.journal):
                raise FormatError(f"{self.path}: {rebuild}, and there is no journal to rebuild it from.")
            self._rebuild_from_journal(argv, reason=rebuild)

    def _rebuild_from_journal(self, argv, reason: str) -> None:
        header = os.path.join(self.journal, "sweep.h5")
        if not os.path.exists(header):
            raise FormatError(f"{self.path}: {reason}; its journal {self.journal} has no sweep header to rebuild it.")
        self.messages.append(f"{self.path}: {reason}; rebuilding it from the journal {self.journal}.")

        def fill(f):
            with h5file(header, "r") as src:
                check_format(src, header, writable=True)
                self._check_same_sweep(loads_attr(src["sweep"], "spec", None),
                                       loads_attr(src["sweep"], "resolved", None), f"the journal {self.journal}")
                for k, v in src.attrs.items():
                    f.attrs[k] = v
                src.copy(src["sweep"], f, "sweep")
                f.create_group("runs")

        atomic_h5(self.path, fill)

    def _journal_parts(self) -> list[str]:
        if not os.path.isdir(self.journal):
            return []
        return sorted(n[:-3] for n in os.listdir(self.journal)
                      if n.endswith(".h5") and n != "sweep.h5" and ".tmp" not in n)

    def _merge_journal(self) -> None:
        done = set(self.done_ids())
        missing = [r for r in self._journal_parts() if r not in done]
        if missing:
            try:
                with h5file(self.path, "a") as f:
                    for rid in missing:
                        merge_journal_part(f, self.journal, rid)
            except (OSError, RuntimeError, KeyError) as exc:
                if _is_disk_full(exc):
                    raise DiskFullError(f"{os.path.dirname(os.path.abspath(self.path))}: the disk is full (merging "
                                        f"the journal into {self.path}); every finished run is kept in "
                                        f"{self.journal}: free some space and run the same command with "
                                        f"--resume.") from None
                raise

    # ------------------------------------------------------------------ writing
    def done_ids(self) -> list[str]:
        """Run ids of the finished runs in the main file."""
        with open_results(self.path) as f:
            return [rid for rid, g in f["runs"].items()
                    if g.attrs.get("status") in DONE_STATUSES and g.attrs.get("_written", False)]

    def write(self, run_id: str, rec: RunRecord, point: dict, index: int) -> None:
        """Write a finished run: journal part first (atomic), then into the main file (staging + move)."""
        check_free_space(self.path, 2 * rec.nbytes())
        os.makedirs(self.journal, exist_ok=True)
        part = os.path.join(self.journal, run_id + ".h5")
        try:
            if rec.done:
                atomic_h5(part, lambda f: write_record(f.create_group("runs"), run_id, rec, point, index,
                                                       scales=False))
                with h5file(self.path, "a") as f:
                    merge_journal_part(f, self.journal, run_id)
            else:  # a failed run is recorded in the main file only (it is retried on --resume)
                with h5file(self.path, "a") as f:
                    staging = f.require_group("_staging")
                    if run_id in f["runs"]:
                        del f["runs"][run_id]
                    write_record(staging, run_id, rec, point, index)
                    f.move(f"_staging/{run_id}", f"runs/{run_id}")
                    del f["_staging"]
        except (OSError, RuntimeError) as exc:
            if _is_disk_full(exc):
                raise DiskFullError(f"{os.path.dirname(os.path.abspath(self.path))}: the disk is full (saving run "
                                    f"{run_id} to {self.path}); the runs already saved are kept (in the journal "
                                    f"{self.journal}): free some space and run the same command with "
                                    f"--resume.") from None
            raise

    def finish(self) -> bool:
        """Delete the journal once every point of the sweep is finished in the main file; True if so."""
        ids = {p["run_id"] for p in self.sweep["points"]}
        if ids <= set(self.done_ids()):
            shutil.rmtree(self.journal, ignore_errors=True)
            return True
        return False


# ---------------------------------------------------------------------------------------------- reading
def file_kind(f) -> str:
    """The run kind of a result file (``least_squares``, ``network``, ``lm``; files of format 1 by their layout)."""
    if "sweep" in f and f["sweep"].attrs.get("kind") is not None:
        k = f["sweep"].attrs["kind"]
        k = k.decode() if isinstance(k, bytes) else str(k)
        return {"lowrank": "lm"}.get(k, k)
    runs = f["runs"] if "runs" in f else {}
    for g in runs.values():
        cfg = loads_attr(g, "config", {})
        if "net" in cfg:
            return "network"
        if "method" in cfg:
            return "lm"
        return "least_squares"
    return "least_squares"


def read_runs(f) -> list[dict]:
    """Summaries of the runs in an open result file, any kind: run_id, kind, index, point, status, seed, wall time,
    error, config and every scalar summary attribute (``error_floor``, ``final_test_acc``, ``final_val_ppl`` ...)."""
    if "runs" not in f:
        raise FormatError(f"{f.filename} has no /runs group; it is damaged or not a result file.")
    kind = file_kind(f)
    skip = {"config", "point", "status", "seed", "wall_time_s", "error", "index", "kind", "_written"}
    out = []
    for rid, g in f["runs"].items():
        a = g.attrs
        row = {
            "run_id": rid,
            "kind": str(a.get("kind", kind)),
            "index": int(a.get("index", -1)),
            "point": loads_attr(g, "point", {}),
            "status": str(a.get("status", "")),
            "seed": int(a.get("seed", 0)),
            "wall_time_s": float(a.get("wall_time_s", np.nan)),
            "error": str(a.get("error", "")),
            "config": loads_attr(g, "config", {}),
        }
        for k, v in a.items():
            if k not in skip and k not in row and np.ndim(v) == 0 and not isinstance(v, (str, bytes)):
                row[k] = float(v) if isinstance(v, (float, np.floating)) else v.item() if hasattr(v, "item") else v
        out.append(row)
    out.sort(key=lambda r: (r["index"], r["run_id"]))
    return out


def run_metrics(f, run_id: str) -> dict:
    """``{"steps": ..., name: ...}`` of one run (empty for a failed run); timing series included."""
    g = f["runs"][run_id]
    out = {}
    if "metrics" in g:
        out.update({k: v[()] for k, v in g["metrics"].items()})
    if "timing" in g:
        out.update({k: v[()] for k, v in g["timing"].items() if k not in out})
    return out


def run_budget(f, run_id: str) -> dict:
    """The ``budget`` attributes of a run ({} without one)."""
    g = f["runs"][run_id]
    if "budget" not in g:
        return {}
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in g["budget"].attrs.items()}


def eprint(msg: str) -> None:
    print(msg, file=sys.stderr)
