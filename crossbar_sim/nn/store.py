"""Writing a network training run to HDF5 (DESIGN.md layout, format_version 1).

::

    /                                        attrs: format, format_version, package_version, created, argv
    /runs/<run_id>                           attrs: config (JSON), seed, status, wall_time_s, error
    /runs/<run_id>/metrics/<name>            1-D, one value per recorded epoch; attrs: units
    /runs/<run_id>/metrics/steps             the epochs the metrics belong to (0 = before training)
    /runs/<run_id>/tiles/<layer>/<array>/snapshots/<epoch>/weights
    /runs/<run_id>/tiles/<layer>/<array>/device/<param>, counters/<name>   (at the end of the run)

The file is created through a temporary file renamed into place; each epoch re-opens it, appends the new
metric values and snapshots and sets the status, and closes it, so a run that crashes or diverges keeps its
record up to its last finished epoch. :class:`RunWriter` is the one place that knows the layout (to be
switched over to the project's common store when it lands).
"""
from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile

import h5py
import numpy as np

FORMAT = "crossbar-sim"
FORMAT_VERSION = 1


class RunWriter:
    """Incremental writer of one run."""

    def __init__(self, path, run_id: str, config: dict, seed: int, units: dict):
        from crossbar_sim import __version__

        self.path = str(path)
        self.run_id = run_id
        self.units = dict(units)
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        if os.path.exists(self.path):
            if not _is_ours(self.path):
                from crossbar_sim.errors import FormatError

                raise FormatError(f"{self.path} exists and is not a crossbar-sim result file; refusing to overwrite it.")
            self._add_run(config, seed)  # another run in the same results file
            return
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(self.path), suffix=".tmp", dir=d)
        os.close(fd)
        try:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["package_version"] = __version__
                f.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
                f.attrs["argv"] = json.dumps(sys.argv)
                self._create_group(f, config, seed)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _add_run(self, config, seed):
        with h5py.File(self.path, "a") as f:
            key = f"runs/{self.run_id}"
            if key in f:
                del f[key]  # a re-run replaces an earlier (complete or not) run of the same name
            self._create_group(f, config, seed)

    def _create_group(self, f, config, seed):
        g = f.create_group(f"runs/{self.run_id}")
        g.attrs["config"] = json.dumps(config, sort_keys=True)
        g.attrs["seed"] = int(seed)
        g.attrs["status"] = "running"
        g.attrs["wall_time_s"] = 0.0
        g.attrs["error"] = ""
        m = g.create_group("metrics")
        m.create_dataset("steps", shape=(0,), maxshape=(None,), dtype=np.int64)
        m["steps"].attrs["units"] = "epoch (0: before training)"
        for name, unit in self.units.items():
            ds = m.create_dataset(name, shape=(0,), maxshape=(None,), dtype=np.float64)
            ds.attrs["units"] = unit

    def append(self, epoch: int, metrics: dict, snapshots: dict | None = None, status="running",
               wall_time_s=0.0, error="") -> None:
        """Add one epoch's metric values (and snapshots {layer: {array: weights}}) and set the status."""
        with h5py.File(self.path, "a") as f:
            g = f[f"runs/{self.run_id}"]
            m = g["metrics"]
            n = m["steps"].shape[0]
            m["steps"].resize((n + 1,))
            m["steps"][n] = epoch
            for name in self.units:
                ds = m[name]
                ds.resize((n + 1,))
                ds[n] = float(metrics.get(name, np.nan))
            for layer, arrays in (snapshots or {}).items():
                for arr, w in arrays.items():
                    key = f"tiles/{layer}/{arr}/snapshots/{epoch}"
                    if key in g:
                        del g[key]
                    g.create_group(key).create_dataset("weights", data=np.asarray(w, np.float32))
            g.attrs["status"] = status
            g.attrs["wall_time_s"] = float(wall_time_s)
            g.attrs["error"] = error

    def finish(self, status: str, wall_time_s: float, error: str = "", tiles: dict | None = None) -> None:
        """Final status; ``tiles`` {layer: {array: {"device": {...}, "counters": {...}}}} written once."""
        with h5py.File(self.path, "a") as f:
            g = f[f"runs/{self.run_id}"]
            for layer, arrays in (tiles or {}).items():
                for arr, parts in arrays.items():
                    for part, items in parts.items():
                        key = f"tiles/{layer}/{arr}/{part}"
                        if key in g:
                            del g[key]
                        grp = g.create_group(key)
                        for name, v in items.items():
                            grp.create_dataset(name, data=np.asarray(v))
            g.attrs["wall_time_s"] = float(wall_time_s)
            g.attrs["error"] = error
            g.attrs["status"] = status  # last: the run is complete only once everything else is written


def _is_ours(path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT
    except OSError:
        return False


def list_runs(path) -> list:
    with h5py.File(path, "r") as f:
        return sorted(f["runs"]) if "runs" in f else []


def read_run(path, run_id: str | None = None) -> dict:
    """Metrics, status and config of a run (the first one if ``run_id`` is None)."""
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            from crossbar_sim.errors import FormatError

            raise FormatError(f"{path} is not a crossbar-sim result file.")
        runs = f["runs"]
        rid = run_id or sorted(runs)[0]
        g = runs[rid]
        out = {"run_id": rid, "status": g.attrs["status"], "error": g.attrs["error"],
               "wall_time_s": float(g.attrs["wall_time_s"]), "config": json.loads(g.attrs["config"]),
               "seed": int(g.attrs["seed"]), "metrics": {k: g["metrics"][k][()] for k in g["metrics"]}}
        out["snapshots"] = {}
        if "tiles" in g:
            for layer in g["tiles"]:
                found = {}

                def visit(name, obj, found=found):  # arrays may nest: a tile array's "tile0_0/A"
                    if isinstance(obj, h5py.Group) and name.endswith("/snapshots"):
                        found[name[: -len("/snapshots")]] = sorted(int(k) for k in obj)

                g["tiles"][layer].visititems(visit)
                if found:
                    out["snapshots"][layer] = found
        return out
