"""Inference results in a run's HDF5 group, and the accuracy-against-time figure.

Layout (one group per noise model and compensation)::

    /runs/<run_id>/inference/<label>_<compensation>/     attrs: metric, compensation, noise_model (JSON),
                                                                config (JSON), seed, draws, reference,
                                                                package_version, created
        times    (n_t,)          units "s"
        values   (draws, n_t)    units "1"   the metric of every draw at every time
        mean     (n_t,)          units "1"
        std      (n_t,)          units "1"   over draws, ddof 1

Units are short strings with the prose in a ``description`` attribute. :func:`add_to_file` writes a whole batch of
results through a temporary copy of the file that replaces the original by ``os.replace`` only once it is
complete, so a crash leaves the old file untouched.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile

import numpy as np

from ..errors import ConfigError, FormatError

METRIC_DESCRIPTION = {
    "test_acc": "fraction of test images classified correctly through the inference tiles",
    "loss": "least-squares loss 1/2 ||Y - B||^2 of the reads Y through the inference tile",
}


def group_names(result: dict) -> list:
    """The groups :func:`write_inference` creates for ``result``: ``<label>_<compensation>``."""
    cfg = result["config"]
    label = cfg.get("label") or _short_name(cfg["noise_model"])
    return [f"{label}_{c}" for c in cfg["compensation"]]


def _short_name(noise_dict: dict) -> str:
    from .noise import get_noise_model

    return get_noise_model(noise_dict).short_name


def write_inference(run_group, result: dict, replace: bool = False) -> list:
    """Write ``result`` (:func:`~crossbar_sim.inference.evaluate.evaluate_trained`) below an open run group.

    Raises :class:`ConfigError` if a group exists and ``replace`` is False. Returns the group names written.
    """
    from .. import __version__

    root = run_group.require_group("inference")
    names = group_names(result)
    cfg = result["config"]
    for name, comp in zip(names, cfg["compensation"]):
        if name in root:
            if not replace:
                raise ConfigError(f"{run_group.name}/inference/{name} exists; pass --replace (replace=True) to "
                                  f"overwrite it, or --label to write beside it.")
            del root[name]
        g = root.create_group(name)
        g.attrs["metric"] = result["metric"]
        g.attrs["metric_description"] = METRIC_DESCRIPTION.get(result["metric"], "")
        g.attrs["compensation"] = comp
        g.attrs["noise_model"] = json.dumps(cfg["noise_model"], sort_keys=True)
        g.attrs["config"] = json.dumps(cfg, sort_keys=True)
        g.attrs["seed"] = int(result["seed"])
        g.attrs["draws"] = int(cfg["draws"])
        g.attrs["reference"] = float(result["reference"])
        g.attrs["reference_description"] = "the metric of the trained weights on the training tiles"
        g.attrs["package_version"] = __version__
        g.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
        _dataset(g, "times", result["times"], "s", "time after programming (aihwkit t_inference)")
        _dataset(g, "values", result[f"{comp}/values"], "1", f"{result['metric']} of every draw (rows) at every "
                 f"time (columns)")
        _dataset(g, "mean", result[f"{comp}/mean"], "1", f"mean {result['metric']} over draws")
        _dataset(g, "std", result[f"{comp}/std"], "1", f"standard deviation of {result['metric']} over draws "
                 f"(ddof 1)")
    return names


def _dataset(g, name, data, units, description):
    ds = g.create_dataset(name, data=np.asarray(data, np.float64))
    ds.attrs["units"] = units
    ds.attrs["description"] = description


def read_inference(run_group) -> dict:
    """``{group name: {"times", "mean", "std", "values", attrs...}}`` of a run group (empty if none)."""
    out = {}
    if "inference" not in run_group:
        return out
    for name, g in run_group["inference"].items():
        d = {k: g[k][()] for k in ("times", "mean", "std", "values") if k in g}
        d.update({k: (v.decode() if isinstance(v, bytes) else v) for k, v in g.attrs.items()})
        out[name] = d
    return out


def stored_result(run_group, label: str, compensations) -> dict:
    """The groups ``<label>_<c>`` of a run group put back together in the form of
    :func:`~crossbar_sim.inference.evaluate.evaluate_trained`'s result (FormatError if one is missing)."""
    stored = read_inference(run_group)
    out = None
    for c in compensations:
        name = f"{label}_{c}"
        if name not in stored:
            raise FormatError(f"{run_group.name} has no inference/{name}; stored: {', '.join(sorted(stored)) or 'none'}.")
        g = stored[name]
        if out is None:
            out = {"metric": g["metric"], "reference": float(g["reference"]), "times": g["times"],
                   "config": json.loads(g["config"]), "seed": int(g["seed"])}
            out["config"]["compensation"] = list(compensations)
        for k in ("values", "mean", "std"):
            out[f"{c}/{k}"] = g[k]
    return out


def add_to_file(path, results: dict, replace: bool = False) -> None:
    """Write ``{run_id: result}`` into result file ``path`` through a temporary copy renamed into place."""
    import h5py

    path = os.fspath(path)
    if os.path.isdir(path + ".journal"):
        raise FormatError(f"{path} has an unfinished sweep journal ({path}.journal): finish or --resume the sweep "
                          f"before evaluating it.")
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=d)
    os.close(fd)
    try:
        shutil.copy2(path, tmp)
        with h5py.File(tmp, "a") as f:
            for rid, res in results.items():
                write_inference(f["runs"][rid], res, replace)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


#: line style and marker of each compensation in :func:`plot_inference`
CURVE_STYLES = {"none": ("--", "s"), "global": ("-", "o"), "per_column": ("-.", "^")}


def plot_inference(ax, curves: list, metric: str = "test_acc", max_legend_runs: int = 12,
                   legend: bool = True) -> None:
    """Metric against log time on ``ax``.

    ``curves``: ``[{"run", "times", "mean", "std", "compensation", "color", "reference"}]``: one colour per run, one
    line style per compensation (``none`` dashed, ``global`` solid, ``per_column`` dash-dot), error bars one
    standard deviation over draws, the trained weights' own metric as a dotted line in the run's colour. The
    legend (if ``legend``) names the runs (up to ``max_legend_runs``) and the compensations. Times of 0 are left out
    (log axis).
    """
    from matplotlib.lines import Line2D

    scale = 100.0 if metric == "test_acc" else 1.0
    runs, comps = {}, []
    for c in curves:
        t = np.asarray(c["times"], np.float64)
        keep = t > 0
        ls, mk = CURVE_STYLES.get(c.get("compensation"), ("-", "x"))
        ax.errorbar(t[keep], scale * np.asarray(c["mean"])[keep], yerr=scale * np.asarray(c["std"])[keep],
                    ls=ls, marker=mk, ms=4, capsize=3, color=c.get("color"))
        ref = c.get("reference")
        if c["run"] not in runs and ref is not None and np.isfinite(ref):
            ax.axhline(scale * ref, color=c.get("color"), ls=":", lw=1)
        runs.setdefault(c["run"], c.get("color"))
        if c.get("compensation") not in comps:
            comps.append(c.get("compensation"))
    ax.set_xscale("log")
    ax.set_xlabel("time after programming (s)")
    ax.set_ylabel("test accuracy (%)" if metric == "test_acc" else "loss 1/2 ||Y - B||^2")
    if metric == "loss":
        ax.set_yscale("log")
    ticks = {1.0: "1 s", 3600.0: "1 h", 86400.0: "1 day", 2592000.0: "1 month", 31536000.0: "1 year"}
    lo, hi = ax.get_xlim()
    shown = {t: s for t, s in ticks.items() if lo <= t <= hi}
    if shown:
        sec = ax.secondary_xaxis("top")
        sec.set_xticks(list(shown), list(shown.values()))
        sec.tick_params(labelsize=8)
    ax.grid(True, which="major", alpha=0.3)
    if not legend:
        return
    handles = [Line2D([], [], color=col, lw=2, label=str(r)) for r, col in list(runs.items())[:max_legend_runs]]
    if len(runs) > max_legend_runs:
        handles.append(Line2D([], [], color="none", label=f"(+{len(runs) - max_legend_runs} runs)"))
    for comp in comps if len(comps) > 1 else ():
        ls, mk = CURVE_STYLES.get(comp, ("-", "x"))
        handles.append(Line2D([], [], color="k", ls=ls, marker=mk, ms=4,
                              label="no compensation" if comp == "none" else f"{comp} compensation"))
    handles.append(Line2D([], [], color="k", ls=":", lw=1, label="trained weights (no programming)"))
    ax.legend(handles=handles, fontsize=7, loc="best")
