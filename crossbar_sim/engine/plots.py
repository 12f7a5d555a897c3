"""Figures from result files: ``compute_*`` return arrays, ``plot_*(ax, data, ...)`` draw on a given Axes.

No global ``matplotlib.pyplot`` state: :func:`make_figure` builds a :class:`matplotlib.figure.Figure` with the
Agg canvas, so the library is safe in scripts, notebooks and worker processes.

Kinds:

* ``convergence-vs-asymmetry``: the theorems of arXiv 2406.12774 on the quantity they bound. Per run, the
  asymptotic squared gradient norm ``G`` (tail mean of ``||grad f(W_k)||^2``) and, for analog SGD, its own
  bound ``4 sigma^2 S_K`` (:mod:`crossbar_sim.least_squares.theory`). Panels, each drawn when the sweep has the
  runs for it: (a) ``G`` against tau, every analog SGD point beside its bound; (b) against the learning rate;
  (c) against the gradient-noise level; (d) the training curves at one tau, with the averaging window shaded.
* ``loss``: training curves (loss or another metric), one panel per tau, mean and band over seeds; a panel with
  more configurations than :data:`MAX_CURVES` shows one mean and band per algorithm instead.
* ``weights``: weight histograms of one run's tile against the device bounds.
* ``pulses``: per-device pulse-count heatmaps of one run's tile.

Colours are the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies), and every
algorithm also has its own marker. Legends sit outside the axes, so they cover no data.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from ..config import parse_assignments
from ..errors import ConfigError, FormatError
from ..least_squares import theory
from .store import DONE_STATUSES, LS_LAYER, file_kind, open_results, read_runs, run_metrics

#: figures of least-squares sweeps
LS_KINDS = ("convergence-vs-asymmetry", "loss", "weights", "pulses")
#: figures of network sweeps (weights and pulses work on network runs too)
NET_KINDS = ("accuracy-vs-tau", "accuracy-vs-epoch")
#: figures of language-model sweeps
LM_KINDS = ("lm-perplexity", "lm-memory", "lm-energy")
KINDS = LS_KINDS + NET_KINDS + LM_KINDS

ALGO_LABELS = {"analog_sgd": "Analog SGD", "tiki_taka": "Tiki-Taka", "ttv2": "Tiki-Taka v2",
               "chopped_ttv2": "chopped TTv2", "agad": "AGAD", "digital_sgd": "Digital SGD"}
#: Okabe & Ito (2008) colour-blind-safe palette
ALGO_COLORS = {"analog_sgd": "#D55E00", "tiki_taka": "#0072B2", "ttv2": "#56B4E9", "chopped_ttv2": "#009E73",
               "agad": "#E69F00", "digital_sgd": "#000000"}
ALGO_MARKERS = {"analog_sgd": "o", "tiki_taka": "s", "ttv2": "D", "chopped_ttv2": "v", "agad": "P",
                "digital_sgd": "^"}
#: the lower-bound instance (two-point noise) of analog SGD
LOWER_BOUND_COLOR = "#CC79A7"
LOWER_BOUND_MARKER = "D"
#: most curves one panel of ``loss`` draws before it aggregates them per algorithm
MAX_CURVES = 8
#: the quantities panels are drawn against (the x axes of :func:`compute_convergence_vs_asymmetry`)
PANEL_AXES = ("tau", "lr", "noise_std")
_METRICS = ("grad_norm2", "error_floor", "final_loss")


# ------------------------------------------------------------------------------------------ file names
def figure_path(out_h5: str, kind: str, figures_dir: str | None = None) -> str:
    """Where a sweep writes figure ``kind`` of result file ``out_h5``: ``<stem>_<kind>.png``.

    ``my.h5`` -> ``my_convergence_vs_asymmetry.png``, next to the result file, or in ``figures_dir`` when given;
    so two sweeps with different ``--out`` never overwrite each other's figures.
    """
    stem = os.path.splitext(os.path.basename(str(out_h5)))[0] or "results"
    name = f"{stem}_{str(kind).replace('-', '_')}.png"
    folder = figures_dir if figures_dir else os.path.dirname(os.path.abspath(str(out_h5)))
    return os.path.join(folder, name)


# ------------------------------------------------------------------------------------------ selection
def parse_where(items) -> dict:
    """``["algorithm=analog_sgd", "tau=0.6"]`` -> ``{"algorithm": "analog_sgd", "tau": 0.6}`` (the one
    KEY=VALUE parser, :func:`crossbar_sim.config.parse_assignments`)."""
    return parse_assignments(items, "--where")


def _run_value(run: dict, key: str):
    if key in run["point"]:
        return run["point"][key]
    if key in run and not isinstance(run[key], dict):
        return run[key]
    net = run["config"].get("net")
    if isinstance(net, dict):  # a network run
        if key in net:
            return net[key]
        dev = net.get("device") or {}
        if key == "tau":
            return dev.get("w_max", net.get("tau"))
        return dev.get(key)
    if key in run["config"] and not isinstance(run["config"][key], dict):  # a language-model run (flat config)
        return run["config"][key]
    train = run["config"].get("train", {})
    if key in train:
        return train[key]
    if key in run["config"].get("task", {}):
        return run["config"]["task"][key]
    dev = train.get("device", {})
    if key == "tau" and "w_max" in dev:
        return dev["w_max"]
    return dev.get(key)


def select_runs(runs: list[dict], where: dict | None = None, run_ids=None) -> list[dict]:
    """Runs whose point/config matches every ``where`` item (and whose id is in ``run_ids`` if given)."""
    out = []
    for r in runs:
        if run_ids and r["run_id"] not in run_ids:
            continue
        ok = True
        for k, v in (where or {}).items():
            rv = _run_value(r, k)
            if isinstance(v, (int, float)) and isinstance(rv, (int, float)) and not isinstance(v, bool):
                ok = np.isclose(float(rv), float(v), rtol=1e-9, atol=0)
            else:
                ok = str(rv) == str(v)
            if not ok:
                break
        if ok:
            out.append(r)
    return out


def _finished(f, where=None, run_ids=None) -> list[dict]:
    if "runs" not in f:
        raise FormatError("The file has no /runs group (no run was written to it).")
    runs = [r for r in select_runs(read_runs(f), where, run_ids) if r["status"] in DONE_STATUSES]
    if not runs:
        raise FormatError("No finished runs match the selection.")
    return runs


def _floor_fraction(f) -> float:
    if "sweep" in f:
        return float(json.loads(f["sweep"].attrs.get("spec", "{}")).get("floor_fraction", 0.2))
    return 0.2


def _algorithm(run: dict) -> str:
    return str((run["config"].get("train") or {}).get("algorithm", "run"))


def _value(run: dict, key: str):
    """A run's value of ``key`` for grouping; tau of digital SGD is None (it has no device)."""
    if key == "tau":
        return theory.device_tau(run["config"])
    if key == "algorithm":
        return _algorithm(run)
    return _run_value(run, key)


def _identity_keys(runs: list[dict]) -> list[str]:
    keys = {k for r in runs for k in r["point"] if k != "seed"} | {"algorithm", *PANEL_AXES}
    return sorted(keys)


# ------------------------------------------------------------------------------------------ theory
def compute_run_theory(f, where: dict | None = None) -> list[dict]:
    """One row per finished run: its identity (swept values), ``G``, its bound and the rest of
    :func:`crossbar_sim.least_squares.theory.run_theory`."""
    runs = _finished(f, where)
    frac = _floor_fraction(f)
    keys = _identity_keys(runs)
    rows = []
    for r in runs:
        m = run_metrics(f, r["run_id"])
        th = theory.run_theory(r["config"], m.get("steps", np.zeros(0, np.int64)), m, frac)
        th["final_loss"] = float(m["loss"][-1]) if "loss" in m and len(m["loss"]) else float("nan")
        rows.append({**th, "run_id": r["run_id"], "point": r["point"], "algorithm": _algorithm(r),
                     "seed": r["point"].get("seed", r["seed"]), "identity": {k: _value(r, k) for k in keys},
                     "run": r})
    return rows


def _y(row: dict, metric: str) -> float:
    return {"grad_norm2": row["grad_norm2"], "error_floor": row["loss_floor"], "final_loss": row["final_loss"]}[metric]


def _is_lower_bound(ident: dict) -> bool:
    return ident.get("noise_dist") == "two_point"


def _mean_std(v) -> tuple[float, float]:
    v = np.asarray(v, np.float64)
    return float(np.mean(v)), (float(np.std(v, ddof=1)) if v.size > 1 else 0.0)


def _fmt_key(k: str, v) -> str:
    names = {"lr": "lr {v:g}", "tau": "tau {v:g}", "noise_std": "noise std {v:g}", "n_samples": "{v} samples",
             "noise_dist": "{v} noise", "w_star_dist": "W* {v}"}
    if isinstance(v, float):
        return names.get(k, k + " {v:g}").format(v=v)
    return names.get(k, k + " {v}").format(v=v)


def _series_label(ident: dict, varying: list[str]) -> str:
    label = ALGO_LABELS.get(ident["algorithm"], ident["algorithm"])
    if _is_lower_bound(ident):
        label += ", Theorem-3 noise"
    skip = {"algorithm", "noise_dist", "w_star_dist", "n_samples"}
    parts = [_fmt_key(k, ident[k]) for k in varying if k not in skip and ident.get(k) is not None]
    return label + (f" ({', '.join(parts)})" if parts else "")


def _panel(rows: list[dict], x_key: str, metric: str) -> dict | None:
    """Series of ``metric`` against ``x_key``: runs grouped by their identity without ``x_key`` (and seed);
    a group with at least two values of ``x_key`` is a series."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        x = row["identity"].get(x_key)
        if x is None or isinstance(x, (str, bool)):
            continue
        key = tuple((k, v) for k, v in sorted(row["identity"].items()) if k != x_key)
        groups[key].append(row)
    series = []
    order = {a: i for i, a in enumerate(ALGO_LABELS)}
    for key, rs in groups.items():
        xs = sorted({float(r["identity"][x_key]) for r in rs})
        if len(xs) < 2:
            continue
        per_x = [[r for r in rs if float(r["identity"][x_key]) == x] for x in xs]
        ident = dict(key)
        ys = [[_y(r, metric) for r in g] for g in per_x]
        s = {"identity": ident, "algorithm": ident["algorithm"], "x": np.array(xs),
             "mean": np.array([_mean_std(v)[0] for v in ys]), "std": np.array([_mean_std(v)[1] for v in ys]),
             "n": np.array([len(v) for v in ys]), "values": [np.asarray(v) for v in ys],
             "run_ids": [[r["run_id"] for r in g] for g in per_x], "bound": None}
        if metric == "grad_norm2" and all(r["applies"] for r in rs):
            bs = [[r["bound"] for r in g] for g in per_x]
            s["bound"] = np.array([_mean_std(v)[0] for v in bs])
            s["bound_std"] = np.array([_mean_std(v)[1] for v in bs])
            s["ratio_max"] = float(np.nanmax([r["ratio"] for r in rs]))
            s["ratios"] = [np.array([r["ratio"] for r in g]) for g in per_x]  # each run against its own bound
        s["slope"] = theory.loglog_slope(s["x"], s["mean"])
        series.append(s)
    if not series:
        return None
    series.sort(key=lambda s: (_is_lower_bound(s["identity"]), order.get(s["algorithm"], 99),
                               sorted((k, str(v)) for k, v in s["identity"].items())))
    keys = sorted({k for s in series for k in s["identity"]})
    # a key is common when every series that has it (digital SGD has no tau) has the same value
    varying = [k for k in keys if len({str(s["identity"].get(k)) for s in series
                                       if s["identity"].get(k) is not None}) > 1]
    common = {k: next((s["identity"][k] for s in series if s["identity"].get(k) is not None), None)
              for k in keys if k not in varying and k != "algorithm"}
    for s in series:
        s["label"] = _series_label(s["identity"], varying)
    refs = []
    if x_key == "tau":  # digital SGD has no device: one horizontal band per matching configuration
        shown = [{k: v for k, v in s["identity"].items() if k not in ("algorithm", "tau")} for s in series]
        dig: dict[tuple, list[dict]] = defaultdict(list)
        for row in rows:
            if row["identity"].get("tau") is None and row["algorithm"] == "digital_sgd":
                ident = {k: v for k, v in row["identity"].items() if k not in ("algorithm", "tau")}
                if ident in shown:
                    dig[tuple(sorted(ident.items()))].append(row)
        for key, rs in dig.items():
            m, sd = _mean_std([_y(r, metric) for r in rs])
            ident = {"algorithm": "digital_sgd", **dict(key)}
            refs.append({"identity": ident, "algorithm": "digital_sgd", "mean": m, "std": sd, "n": len(rs),
                         "label": _series_label(ident, varying) + ", no device"})
    return {"x_key": x_key, "series": series, "refs": refs, "common": common, "varying": varying}


def compute_convergence_vs_asymmetry(f, metric: str = "grad_norm2", where: dict | None = None) -> dict:
    """The data of the ``convergence-vs-asymmetry`` figure.

    Parameters
    ----------
    f : h5py.File
        An open result file.
    metric : {"grad_norm2", "error_floor", "final_loss"}
        ``grad_norm2``: the asymptotic squared gradient norm G (the quantity Theorem 2 bounds); ``error_floor``:
        the tail mean of the loss; ``final_loss``: the last recorded loss.
    where : dict, optional
        Restrict to runs matching these point/config values.

    Returns
    -------
    dict
        ``panels``: ``{"tau"|"lr"|"noise_std": panel or None}``, each panel ``{"series", "refs", "common",
        "varying"}``, each series ``{"identity", "algorithm", "label", "x", "mean", "std", "n", "values",
        "bound" (mean over seeds of 4 sigma^2 S_K, or None), "bound_std", "ratio_max", "slope"}``; ``curves``
        (panel d, :func:`compute_training_curves`) or None; ``check``: Theorem 2 over every run it applies to
        (``n_runs``, ``n_below``, ``ratio_max``, ``worst`` run id); ``metric``, ``floor_fraction``, ``sigma2``.
    """
    if metric not in _METRICS:
        raise ConfigError(f"metric must be one of {', '.join(_METRICS)}. Got {metric!r}.")
    rows = compute_run_theory(f, where)
    if not any(np.isfinite(_y(r, metric)) for r in rows):
        have = sorted(run_metrics(f, rows[0]["run_id"]))
        raise FormatError(f"The runs have no least-squares record to plot ({metric} needs the metrics grad_norm2 "
                          f"and loss of a least-squares run; run {rows[0]['run_id']} has {', '.join(have) or 'none'}).")
    panels = {x: _panel(rows, x, metric) for x in PANEL_AXES}
    if all(p is None for p in panels.values()):
        raise FormatError("No sweep axis to plot against: convergence-vs-asymmetry needs runs at two or more "
                          "values of tau, lr or noise_std.")
    applied = [r for r in rows if r["applies"]]
    check = {"n_runs": len(applied), "n_below": sum(1 for r in applied if r["grad_norm2"] <= r["bound"]),
             "ratio_max": float(max((r["ratio"] for r in applied), default=float("nan"))),
             "worst": max(applied, key=lambda r: r["ratio"])["run_id"] if applied else None}
    sig = sorted({r["sigma2"] for r in applied})
    entries = sorted({int(r["run"]["config"]["task"].get("out_size", 1)) * int(r["run"]["config"]["task"].get("in_size", 1))
                      for r in applied})
    lower = [s["identity"] for p in panels.values() if p is not None for s in p["series"]
             if _is_lower_bound(s["identity"])]
    out = {"panels": panels, "check": check, "metric": metric, "floor_fraction": _floor_fraction(f),
           "sigma2": sig, "entries": entries, "lower_bound": lower[0] if lower else None, "curves": None}
    out["curves"] = compute_training_curves(f, rows, panels)
    return out


def compute_training_curves(f, rows: list[dict], panels: dict) -> dict | None:
    """Panel (d): ``||grad f||^2`` against the step for the configurations of panel (a) at one tau (that of
    panel (b) if drawn, else the smallest), mean and min-max band over seeds, with each analog SGD bound."""
    pa = panels.get("tau")
    if pa is None:
        return None
    pb = panels.get("lr")
    taus = sorted({float(t) for s in pa["series"] for t in s["x"]})
    tau = None
    if pb is not None:
        tb = {s["identity"].get("tau") for s in pb["series"]} - {None}
        tau = float(next(iter(tb))) if len(tb) == 1 and float(next(iter(tb))) in taus else None
    tau = taus[0] if tau is None else tau
    wanted = [(dict(s["identity"], tau=tau), s) for s in pa["series"]] + [(r["identity"], r) for r in pa["refs"]]
    curves = []
    for ident, src in wanted:
        rs = [r for r in rows if all(_same(r["identity"].get(k), v) for k, v in ident.items())]
        if not rs:
            continue
        ms = [run_metrics(f, r["run_id"]) for r in rs]
        ms = [m for m in ms if "grad_norm2" in m]
        if not ms:
            continue
        n = min(len(m["steps"]) for m in ms)
        y = np.stack([np.asarray(m["grad_norm2"][:n], np.float64) for m in ms])
        bound = [r["bound"] for r in rs if r["applies"]]
        curves.append({"label": src["label"], "algorithm": ident["algorithm"], "identity": ident,
                       "steps": np.asarray(ms[0]["steps"][:n]), "mean": y.mean(axis=0), "lo": y.min(axis=0),
                       "hi": y.max(axis=0), "n": len(ms), "bound": float(np.mean(bound)) if bound else None})
    if not curves:
        return None
    total = max(int(c["steps"][-1]) for c in curves)
    frac = _floor_fraction(f)
    return {"tau": tau, "curves": curves, "window": ((1.0 - frac) * total, total), "fraction": frac}


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return bool(np.isclose(float(a), float(b), rtol=1e-9, atol=0))
    return a == b


# ------------------------------------------------------------------------------------------ loss curves
def compute_loss_curves(f, where: dict | None = None, run_ids=None, metric: str = "loss",
                        max_curves: int = MAX_CURVES) -> dict:
    """Training curves of ``metric``: one facet per tau (when the runs have several), in each facet one curve
    per configuration (mean over seeds, min-max band); a facet with more than ``max_curves`` configurations
    shows one mean and band per algorithm, labelled with the number of configurations it pools.

    Runs without a device (digital SGD) appear in every facet.

    Returns
    -------
    dict
        ``facets``: list of ``{"tau", "curves", "aggregated"}``; each curve ``{"label", "algorithm", "steps",
        "mean", "lo", "hi", "n"}``; ``metric``; ``aggregated`` (any facet pooled).
    """
    runs = _finished(f, where, run_ids)
    ms = {r["run_id"]: run_metrics(f, r["run_id"]) for r in runs}
    lacking = [r["run_id"] for r in runs if metric not in ms[r["run_id"]]]
    if lacking:
        have = sorted(k for k in ms[lacking[0]] if k != "steps")
        raise FormatError(f"Run {lacking[0]} has no metric {metric!r} ({len(lacking)} of {len(runs)} runs lack it); "
                          f"its metrics: {', '.join(have) or 'none'}.")
    keys = _identity_keys(runs)
    ident = {r["run_id"]: {k: _value(r, k) for k in keys} for r in runs}
    taus = sorted({ident[r["run_id"]]["tau"] for r in runs} - {None})
    facet_taus = taus if len(taus) > 1 else [None]
    order = {a: i for i, a in enumerate(ALGO_LABELS)}

    def sort_key(key):
        return (_is_lower_bound(dict(key)), order.get(dict(key)["algorithm"], 99), str(key))

    raw = []
    for tau in facet_taus:
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for r in runs:
            if tau is None or ident[r["run_id"]]["tau"] in (None, tau):
                groups[tuple(sorted((k, v) for k, v in ident[r["run_id"]].items() if k != "tau"))].append(r)
        raw.append((tau, groups))
    # labels and line styles are the same in every facet: one configuration, one look
    shown = sorted({k for _, g in raw if len(g) <= max_curves for k in g}, key=sort_key)
    varying = [k for k in keys if k != "tau" and len({str(dict(key).get(k)) for key in shown}) > 1]
    style = {}
    for key in shown:
        style[key] = sum(1 for k in style if dict(k)["algorithm"] == dict(key)["algorithm"])
    facets, any_agg = [], False
    for tau, groups in raw:
        aggregated = len(groups) > max_curves
        any_agg |= aggregated
        if aggregated:
            pooled: dict[tuple, list[tuple]] = defaultdict(list)
            for key in groups:
                pooled[(("algorithm", dict(key)["algorithm"]),)].append(key)
            items = [(k, [r for key in ks for r in groups[key]], len(ks)) for k, ks in pooled.items()]
        else:
            items = [(k, g, 1) for k, g in groups.items()]
        curves = []
        for key, g, n_conf in sorted(items, key=lambda it: sort_key(it[0])):
            d = dict(key)
            n = min(len(ms[r["run_id"]]["steps"]) for r in g)
            y = np.stack([np.asarray(ms[r["run_id"]][metric][:n], np.float64) for r in g])
            if aggregated:
                label = (f"{ALGO_LABELS.get(d['algorithm'], d['algorithm'])}: mean of {n_conf} configurations "
                         f"({len(g)} runs)" + (f", tau {tau:g} panel" if tau is not None else ""))
            else:
                label = _series_label(d, varying)
                if d["algorithm"] == "digital_sgd" and tau is not None:
                    label += ", no device"
            curves.append({"label": label, "algorithm": d["algorithm"], "identity": d, "style": style.get(key, 0),
                           "steps": np.asarray(ms[g[0]["run_id"]]["steps"][:n]), "mean": y.mean(axis=0),
                           "lo": y.min(axis=0), "hi": y.max(axis=0), "n": len(g)})
        facets.append({"tau": tau, "curves": curves, "aggregated": aggregated})
    units = f["runs"][runs[0]["run_id"]]["metrics"][metric].attrs.get("units", "")
    return {"facets": facets, "metric": metric, "units": str(units), "aggregated": any_agg}


# ------------------------------------------------------------------------------------------ one run's tile
ANALOG_LAYER_KINDS = ("AnalogTile", "OneSidedTile", "TikiTakaTile", "BufferedTransferTile", "TileArray")


def _analog_layers(g) -> list[str]:
    """The analog layers of a run group (least squares: ``linear``; networks and the language model: theirs)."""
    if "tiles" not in g:
        return []
    return [n for n, lg in g["tiles"].items() if lg.attrs.get("kind") in ANALOG_LAYER_KINDS]


def _pick_run(f, where, run_id, layer: str | None = None) -> tuple[dict, int, str]:
    """The run to draw, how many runs matched (the first one is drawn) and its layer."""
    runs = select_runs(read_runs(f), where, [run_id] if run_id else None)
    runs = [r for r in runs if r["status"] in DONE_STATUSES and _analog_layers(f["runs"][r["run_id"]])]
    if not runs:
        raise FormatError("No finished analog run matches the selection (use --run ID or --where KEY=VALUE; digital "
                          "runs have no tiles; crossbar-sim inspect FILE lists the runs).")
    run = runs[0]
    layers = _analog_layers(f["runs"][run["run_id"]])
    if layer is None:
        layer = LS_LAYER if LS_LAYER in layers else layers[0]
    elif layer not in layers:
        raise FormatError(f"Run {run['run_id']} has no analog layer {layer!r}; its analog layers: {', '.join(layers)}.")
    return run, len(runs), layer


def _array_groups(layer_group, prefix: str = ""):
    """(name, group) of every array below a layer group (the blocks of a TileArray as ``tile0_0/A``)."""
    for name, g in layer_group.items():
        if name in ("state", "counters") or not hasattr(g, "keys"):
            continue
        if g.attrs.get("kind") in ANALOG_LAYER_KINDS + ("DigitalWeights",):
            yield from _array_groups(g, f"{prefix}{name}/")
        else:
            yield f"{prefix}{name}", g


def selection_note(data: dict) -> str | None:
    """One line saying which run was drawn when several matched (None when the choice was unique)."""
    n = data.get("n_matching", 1)
    if n <= 1:
        return None
    return (f"{n} runs match; drawing run {data['run_id']} ({_fmt_point(data['point'])}). Choose another with "
            f"--run ID or narrow the match with --where KEY=VALUE (crossbar-sim inspect FILE lists the runs).")


def _need(g, name: str, run_id: str):
    if name not in g:
        raise FormatError(f"Run {run_id} has no {g.name}/{name} (written by a run kind that does not store it).")
    return g[name]


def compute_weights(f, run_id: str | None = None, where: dict | None = None, step: int | None = None,
                    layer: str | None = None) -> dict:
    """Weights of every array of one run's layer at a snapshot step (default: the last), with device bounds."""
    run, n, layer = _pick_run(f, where, run_id, layer)
    rid = run["run_id"]
    arrays = []
    for name, g in _array_groups(f["runs"][rid]["tiles"][layer]):
        if "snapshots" not in g or "device" not in g:
            continue
        snaps = sorted(int(s) for s in g["snapshots"])
        if not snaps:
            continue
        st = snaps[-1] if step is None else step
        if str(st) not in g["snapshots"]:
            raise FormatError(f"Run {rid} has no snapshot at step {st}; snapshots: {snaps}.")
        dev = _need(g, "device", rid)
        arrays.append({"name": name, "step": st, "weights": g["snapshots"][str(st)]["weights"][()],
                       "w_lo": _need(dev, "weight_min", rid)[()], "w_hi": _need(dev, "weight_max", rid)[()]})
    if not arrays:
        raise FormatError(f"Run {rid} has no weight snapshots under /runs/{rid}/tiles/{layer}/<array>/snapshots.")
    return {"run_id": rid, "point": run["point"], "arrays": arrays, "n_matching": n, "layer": layer}


def compute_pulses(f, run_id: str | None = None, where: dict | None = None, layer: str | None = None) -> dict:
    """Per-device pulse counts (up + down, up, down) of every array of one run's layer."""
    run, n, layer = _pick_run(f, where, run_id, layer)
    rid = run["run_id"]
    arrays = []
    for name, g in _array_groups(f["runs"][rid]["tiles"][layer]):
        if "pulse_counts" not in g:
            continue
        pc = g["pulse_counts"][()]
        arrays.append({"name": name, "up": pc[..., 0], "down": pc[..., 1], "total": pc.sum(axis=-1)})
    if not arrays:
        raise FormatError(f"Run {rid} has no pulse counts under /runs/{rid}/tiles/{layer}/<array>/pulse_counts.")
    return {"run_id": rid, "point": run["point"], "arrays": arrays, "n_matching": n, "layer": layer}


# ------------------------------------------------------------------------------------------ draw
def _series_style(s: dict) -> dict:
    if _is_lower_bound(s["identity"]):
        return {"color": LOWER_BOUND_COLOR, "marker": LOWER_BOUND_MARKER}
    return {"color": ALGO_COLORS.get(s["algorithm"], "#999999"), "marker": ALGO_MARKERS.get(s["algorithm"], "o")}


def _log_x_ticks(ax, xs) -> None:
    from matplotlib.ticker import (
        FixedLocator,
        NullFormatter,
        NullLocator,
        ScalarFormatter,
    )

    ax.xaxis.set_major_locator(FixedLocator(sorted(xs)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _legend_below(ax, ncol: int = 2, handles=None, labels=None) -> None:
    """A legend under the axes (it covers no data), in the given order or the drawing order."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol, fontsize=7,
                  frameon=False, handlelength=2.2, columnspacing=1.2)


_X_LABELS = {"tau": r"device asymmetry $\tau$  ($w_{max} = -w_{min} = \tau$)", "lr": r"learning rate $\alpha$",
             "noise_std": r"gradient noise std per entry  ($\sigma^2 = $ entries $\times$ std$^2$)"}
_Y_LABELS = {"grad_norm2": r"asymptotic $\|\nabla f(W_k)\|^2$", "error_floor": "error floor (tail mean of the loss)",
             "final_loss": "final loss"}


def plot_theory_panel(ax, panel: dict, metric: str = "grad_norm2", show_slope: bool = False,
                      legend: bool = True) -> None:
    """One panel of ``convergence-vs-asymmetry``: measured points (mean, seed std bars) and, for analog SGD,
    each point's own bound ``4 sigma^2 S_K`` (hollow markers, dotted, joined to the point by a thin line)."""
    xs, handles, labels = set(), [], []

    def slope(v):
        return f", slope {v:.2f}" if show_slope and np.isfinite(v) else ""

    for s in panel["series"]:
        st = _series_style(s)
        h = ax.errorbar(s["x"], s["mean"], yerr=s["std"], color=st["color"], marker=st["marker"],
                        linestyle="-", linewidth=1.3, markersize=5, capsize=2.5, zorder=3)
        handles.append(h)
        labels.append(s["label"] + slope(s["slope"]))
        xs.update(float(x) for x in s["x"])
        if s.get("bound") is not None:
            hb, = ax.plot(s["x"], s["bound"], color=st["color"], marker=st["marker"], markerfacecolor="white",
                          linestyle=":", linewidth=1.1, markersize=5, zorder=2)
            handles.append(hb)
            labels.append(r"$\uparrow$ its bound $4\sigma^2 S_K$, run by run" + slope(theory.loglog_slope(s["x"], s["bound"])))
            for x, y0, y1 in zip(s["x"], s["mean"], s["bound"]):
                ax.plot([x, x], [y0, y1], color=st["color"], linewidth=0.6, alpha=0.35, zorder=1)
    for r in panel.get("refs", []):
        h = ax.axhline(r["mean"], color=ALGO_COLORS["digital_sgd"], linestyle="--", linewidth=1.0, zorder=2)
        handles.append(h)
        labels.append(r["label"])
        if r["std"] > 0:
            ax.axhspan(r["mean"] - r["std"], r["mean"] + r["std"], color="0.5", alpha=0.15, linewidth=0, zorder=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_x_ticks(ax, xs)
    ax.set_xlabel(_X_LABELS.get(panel["x_key"], panel["x_key"]))
    ax.set_ylabel(_Y_LABELS[metric])
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", axis="y", alpha=0.1)
    if legend:
        _legend_below(ax, handles=handles, labels=labels)


def plot_convergence_vs_asymmetry(ax, data: dict) -> None:
    """Panel (a) alone (``G`` against tau with the bounds), for callers that draw on one Axes."""
    panel = data["panels"].get("tau") or next(p for p in data["panels"].values() if p is not None)
    plot_theory_panel(ax, panel, data["metric"])


def plot_training_curves(ax, curves: dict) -> None:
    """Panel (d): ``||grad f(W_k)||^2`` against the step (mean over seeds, a running mean over 10 records;
    band: min-max over seeds), the averaging window shaded, each analog SGD bound as a dotted line."""
    for c in curves["curves"]:
        st = _series_style(c)
        y = _running_mean(c["mean"], 10)
        ax.plot(c["steps"], y, color=st["color"], linewidth=1.2, label=c["label"],
                linestyle="--" if c["algorithm"] == "digital_sgd" else "-")
        if c["n"] > 1:
            ax.fill_between(c["steps"], _running_mean(c["lo"], 10), _running_mean(c["hi"], 10), color=st["color"],
                            alpha=0.12, linewidth=0)
        if c.get("bound") is not None:
            ax.axhline(c["bound"], color=st["color"], linestyle=":", linewidth=1.1,
                       label=r"$\uparrow$ its bound $4\sigma^2 S_K$ (mean over seeds)")
    lo, hi = curves["window"]
    ax.axvspan(lo, hi, color="0.85", alpha=0.6, linewidth=0, zorder=0)
    ax.annotate(f"averaged:\nlast {curves['fraction']:.0%}", ((lo + hi) / 2, 0.97), xycoords=("data", "axes fraction"),
                ha="center", va="top", fontsize=7, color="0.3")
    ax.set_yscale("log")
    ax.set_xlabel("training step $k$")
    ax.set_ylabel(r"$\|\nabla f(W_k)\|^2$ (running mean, 10 records)")
    ax.grid(True, which="major", alpha=0.3)


def _running_mean(y, w: int) -> np.ndarray:
    y = np.asarray(y, np.float64)
    if y.size < 2 * w:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    out = np.empty_like(y)
    out[w - 1:] = (c[w:] - c[:-w]) / w
    out[:w - 1] = c[1:w] / np.arange(1, w)
    return out


_METRIC_LABELS = {"loss": r"loss $f(W) = \frac{1}{2}\|AW^T - B\|^2$", "grad_norm2": r"$\|\nabla f(W_k)\|^2$",
                  "dist2": r"$\|W_k - W^*\|^2$", "w_inf": r"$\|W_k\|_\infty$", "pulses": "device pulses so far"}


def plot_loss(ax, facet: dict, metric: str = "loss") -> None:
    """One facet of ``loss``: mean over seeds (min-max band), log scale; colour by algorithm, line style by
    configuration."""
    styles = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1))]
    for c in facet["curves"]:
        color = LOWER_BOUND_COLOR if _is_lower_bound(c["identity"]) else ALGO_COLORS.get(c["algorithm"], "#999999")
        ax.plot(c["steps"], c["mean"], label=c["label"], linewidth=2.2 if facet.get("aggregated") else 1.1,
                color=color, linestyle=styles[c.get("style", 0) % len(styles)])
        if c["n"] > 1:
            ax.fill_between(c["steps"], c["lo"], c["hi"], color=color, alpha=0.12, linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(_METRIC_LABELS.get(metric, metric))
    if facet.get("tau") is not None:
        ax.set_title(rf"$\tau$ = {facet['tau']:g}", fontsize=9)
    ax.grid(True, which="both", alpha=0.25)


def plot_weights(ax, array: dict, bins: int = 40) -> None:
    """Histogram of one array's weights with its device bounds (mean bound lines, range shaded)."""
    w = np.asarray(array["weights"]).ravel()
    lo, hi = np.asarray(array["w_lo"]).ravel(), np.asarray(array["w_hi"]).ravel()
    span = max(float(hi.max() - lo.min()), 1e-12)
    rng = (float(lo.min()) - 0.02 * span, float(hi.max()) + 0.02 * span)
    ax.hist(w, bins=bins, range=rng, color="#0072B2", alpha=0.85)
    for b, name in ((lo, "lower"), (hi, "upper")):
        ax.axvline(float(b.mean()), color="#D55E00", linestyle="--", linewidth=1,
                   label=f"{name} bound (mean {b.mean():.3g})")
        if b.max() > b.min():
            ax.axvspan(float(b.min()), float(b.max()), color="#D55E00", alpha=0.1)
    ax.set_xlabel(f"weight of array {array['name']} at step {array['step']}")
    ax.set_ylabel("devices")
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)


def plot_pulses(ax, array: dict, fig=None) -> None:
    """Heatmap of the pulses each device received (up + down)."""
    tot = np.asarray(array["total"], np.float64)
    im = ax.imshow(tot, aspect="auto", interpolation="nearest", cmap="viridis")
    ax.set_xlabel("input line (column j)")
    ax.set_ylabel("output line (row i)")
    if tot.shape[0] <= 10:
        ax.set_yticks(range(tot.shape[0]))
    ax.set_title(f"array {array['name']}: {int(tot.sum()):,} pulses "
                 f"(up {int(np.sum(array['up'])):,}, down {int(np.sum(array['down'])):,})", fontsize=8)
    if fig is not None:
        fig.colorbar(im, ax=ax, label="pulses per device")


# ------------------------------------------------------------------------------------------ text
def _check_sentence(check: dict) -> str:
    n, below = check["n_runs"], check["n_below"]
    if not n:
        return "Theorem 2 applies to none of these runs (no analog SGD on the asymmetric linear device)."
    if below == n:
        return (f"Theorem 2 held in every run: all {n} analog SGD runs lie below their own bound "
                f"(largest G / bound {check['ratio_max']:.2f}).")
    return (f"Theorem 2's asymptotic term was exceeded in {n - below} of {n} analog SGD runs "
            f"(largest G / bound {check['ratio_max']:.2f}, run {check['worst']}); the comparison leaves out the "
            f"theorem's transient and learning-rate terms, so a run still far from its floor can exceed it.")


def _caption(data: dict) -> str:
    frac = data["floor_fraction"]
    ent = "/".join(str(e) for e in data.get("entries", [])) or "n"
    g_line = (f"G: mean of the exact $\\|\\nabla f(W_k)\\|_F^2$ over the last {frac:.0%} of the steps, at the weights "
              f"read from the tile; points: mean over seeds, bars: std over seeds. Bound: the asymptotic term "
              f"$4\\sigma^2 S_K$ of Theorem 2 ({theory.PAPER}),")
    s_line = (f"$S_K$ = mean over the same steps of $q_k/(1-q_k)$, $q_k = \\|W_k\\|_\\infty^2/\\tau^2$ from the run's "
              f"own weights; $\\sigma^2 = E\\|noise\\|_F^2$ = {ent} entries $\\times$ std$^2$ (the total variance, "
              f"not one entry's).")
    tt_line = ("Digital SGD and Tiki-Taka: noise floors that fall with lr (b). Tiki-Taka's grows with $\\tau$ in (a): "
               "its array A holds a leaky sum of about $\\tau/E|g|$ gradients, so its effective lr grows with $\\tau$.")
    lines = [_check_sentence(data["check"]), g_line, s_line, tt_line]
    lb = data.get("lower_bound")
    if lb is not None:
        rows = f" and A {lb.get('n_samples')} rows ($A^TA \\approx I$)" if lb.get("n_samples") else ""
        lines.append("Theorem-3 noise: the paper's lower-bound construction, two-point noise $\\pm\\sqrt{g_i^2 + "
                     f"std^2}}$ (same variance), on a problem with every $|W^*_i|$ equal{rows}; its drift floor is "
                     "then $\\sigma^2 S$, 1/4 of the bound (derived in least_squares/theory.py).")
    return "\n".join(lines)


def _ls_title(f) -> str:
    runs = [r for r in read_runs(f) if r["status"] in DONE_STATUSES] if "runs" in f else []
    base = ("Analog SGD stalls at a floor set by the device asymmetry, below its Theorem-2 bound; "
            "Tiki-Taka's and digital SGD's floors fall with the learning rate")
    if not runs:
        return base
    t = runs[0]["config"].get("task", {})
    steps = sorted({(r["config"].get("train") or {}).get("steps") for r in runs} - {None})
    dev = next(((r["config"].get("train") or {}).get("device", {}) for r in runs
                if _algorithm(r) != "digital_sgd"), {})
    dname = "asymmetric linear device" if dev.get("type") == "SoftBoundsReferenceDevice" else dev.get("type", "")
    seeds = {str(r["point"].get("seed")) for r in runs if "seed" in r["point"]}
    return (f"{base}\nleast squares, A {t.get('n_samples')}x{t.get('in_size')}, gradient noise std "
            f"{t.get('noise_std')} per entry; {dname} (dw_min {dev.get('dw_min', '?'):g}); "
            f"{'/'.join(map(str, steps))} steps" + (f"; {len(seeds)} seeds" if len(seeds) > 1 else ""))


def theory_summary(path: str, where: dict | None = None) -> str | None:
    """The printed summary of a sweep with Theorem 2's quantities, per tau: analog SGD's G against its bound
    ``4 sigma^2 S_K``, the Tiki-Taka and digital SGD floors, the check over every run, and the slopes against
    the learning rate. None when the sweep has no series against tau."""
    with open_results(path) as f:
        try:
            data = compute_convergence_vs_asymmetry(f, where=where)
        except FormatError:
            return None
    pa = data["panels"].get("tau")
    if pa is None:
        return None
    frac = data["floor_fraction"]
    sig = ", ".join(f"{s:g}" for s in data["sigma2"]) or "n/a"
    lines = [(f"Theorem 2 of {theory.PAPER}: G = mean ||grad f(W_k)||^2 over the last {frac:.0%} of the steps; "
              f"bound = 4 sigma^2 S_K from each run's own ||W_k||_inf (sigma^2 = E||noise||^2 = {sig}); "
              "mean +- std over seeds.")]

    def cell(m, sd, n):
        return f"{m:.3g} +- {sd:.2g}" if n > 1 else f"{m:.3g}"

    bounded = [s for s in pa["series"] if s.get("bound") is not None]
    others = [s for s in pa["series"] if s.get("bound") is None]
    for s in bounded:
        base = {k: v for k, v in s["identity"].items() if k not in ("algorithm", "tau")}
        mates = [o for o in others if {k: v for k, v in o["identity"].items() if k not in ("algorithm", "tau")} == base]
        refs = [r for r in pa["refs"] if {k: v for k, v in r["identity"].items() if k != "algorithm"} == base]
        head = ["tau", f"{ALGO_LABELS['analog_sgd']} G", "bound 4 sigma^2 S_K", "G/bound (max)"]
        head += [f"{ALGO_LABELS.get(o['algorithm'], o['algorithm'])} G" for o in mates]
        head += ["digital SGD G (no device)" for _ in refs]
        table = []
        for i, x in enumerate(s["x"]):
            ratio = float(np.max(s["ratios"][i]))
            row = [f"{x:g}", cell(s["mean"][i], s["std"][i], s["n"][i]), cell(s["bound"][i], s["bound_std"][i],
                                                                           s["n"][i]), f"{ratio:.3f}"]
            for o in mates:
                j = np.flatnonzero(np.isclose(o["x"], x))
                row.append(cell(o["mean"][j[0]], o["std"][j[0]], o["n"][j[0]]) if j.size else "")
            for r in refs:
                row.append(cell(r["mean"], r["std"], r["n"]))
            table.append(row)
        common = ", ".join(_fmt_key(k, v) for k, v in sorted(base.items())
                           if v is not None and k not in ("noise_dist", "w_star_dist") or
                           (k == "noise_dist" and v != "gaussian") or (k == "w_star_dist" and v != "uniform"))
        title = "lower-bound instance (Theorem-3 two-point noise)" if _is_lower_bound(s["identity"]) else "per tau"
        lines.append(f"{title}: {common}")
        widths = [max(len(h), *(len(r[c]) for r in table)) + 2 for c, h in enumerate(head)]
        lines.append("  " + "".join(h.rjust(w) for h, w in zip(head, widths)))
        lines.extend("  " + "".join(v.rjust(w) for v, w in zip(r, widths)) for r in table)
    pb = data["panels"].get("lr")
    if pb is not None:
        taus = sorted({s["identity"].get("tau") for s in pb["series"]} - {None})
        slopes = ", ".join(f"{s['label']} {s['slope']:.2f}" for s in pb["series"] if np.isfinite(s["slope"]))
        lines.append(f"log-log slope of G against the learning rate (1: falls with lr, 0: a floor)"
                     f"{' at tau ' + ', '.join(f'{t:g}' for t in taus) if taus else ''}: {slopes}")
    pc = data["panels"].get("noise_std")
    if pc is not None:
        slopes = ", ".join(f"{s['label']} {s['slope']:.2f}" for s in pc["series"] if np.isfinite(s["slope"]))
        lines.append(f"log-log slope of G against the noise std (2: G ~ sigma^2, as the bound): {slopes}")
    lines.append(_check_sentence(data["check"]))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ figures
def _savefig(fig, out: str) -> None:
    """Write a figure whole: temporary name, then rename into place (the folder is created if needed)."""
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    root, ext = os.path.splitext(out)
    tmp = f"{root}.tmp-{os.getpid()}{ext or '.png'}"
    try:
        fig.savefig(tmp, dpi=150, bbox_inches="tight")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


_PANEL_TITLES = {"tau": "(a) against the device asymmetry", "lr": "(b) against the learning rate",
                 "noise_std": "(c) against the gradient noise"}


def _panel_title(letter_title: str, panel: dict) -> str:
    common = ", ".join(_fmt_key(k, v) for k, v in sorted(panel["common"].items())
                       if k in ("lr", "tau", "noise_std") and v is not None)
    return letter_title + (f" ({common})" if common else "")


def _draw_convergence(fig, f, data: dict) -> None:
    panels = [(k, p) for k, p in data["panels"].items() if p is not None]
    n = len(panels) + (data["curves"] is not None)
    ncols = 2 if n > 1 else 1
    nrows = (n + ncols - 1) // ncols
    fig.set_size_inches(6.0 * ncols, 4.9 * nrows + 1.3)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]
    for ax, (key, panel) in zip(axes, panels):
        plot_theory_panel(ax, panel, data["metric"], show_slope=key in ("lr", "noise_std"))
        ax.set_title(_panel_title(_PANEL_TITLES[key], panel), fontsize=9, loc="left")
    if data["curves"] is not None:
        ax = axes[len(panels)]
        plot_training_curves(ax, data["curves"])
        ax.set_title(f"(d) training curves at $\\tau$ = {data['curves']['tau']:g}", fontsize=9, loc="left")
        _legend_below(ax)
    fig.suptitle(_ls_title(f), fontsize=11)
    fig.supxlabel(_caption(data), fontsize=8, x=0.01, ha="left", multialignment="left")


SAVE_EXTENSIONS = (".png", ".pdf", ".svg")


def check_figure_out(out: str) -> str:
    """A figure path: an existing folder and a known extension, else one :class:`ConfigError` line."""
    ext = os.path.splitext(out)[1].lower()
    if ext not in SAVE_EXTENSIONS:
        raise ConfigError(f"-o {out}: the extension must be one of {', '.join(SAVE_EXTENSIONS)}.")
    d = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(d):
        raise ConfigError(f"-o {out}: the folder {d} does not exist.")
    if not os.access(d, os.W_OK):
        raise ConfigError(f"-o {out}: the folder {d} is not writable.")
    return out


def _figure_of_records(kind: str, f, fig) -> None:
    """Network and language-model figures (drawn by their packages from records)."""
    from .results import lm_records, net_records

    name = f["sweep"].attrs.get("name", "") if "sweep" in f else ""
    if kind in NET_KINDS:
        from ..nn.report import plot_accuracy_vs_epoch, plot_accuracy_vs_tau

        recs = net_records(f)
        if not recs:
            raise FormatError(f"{f.filename}: no finished network run to plot.")
        fig.set_size_inches(6.4, 4.6)
        ax = fig.add_subplot()
        if kind == "accuracy-vs-tau":
            plot_accuracy_vs_tau(ax, recs)
            ax.set_title(f"{name or 'network sweep'}: test accuracy against device asymmetry", fontsize=10)
        else:
            plot_accuracy_vs_epoch(ax, recs)
            ax.set_title(f"{name or 'network sweep'}: test accuracy per epoch (mean over seeds)", fontsize=10)
        return
    from ..lowrank.plots import plot_energy_breakdown, plot_memory_vs_rank, plot_val_ppl

    recs = lm_records(f, done_only=True)
    if not recs:
        raise FormatError(f"{f.filename}: no finished language-model run to plot.")
    fig.set_size_inches(7.0, 4.8)
    ax = fig.add_subplot()
    {"lm-perplexity": plot_val_ppl, "lm-memory": plot_memory_vs_rank, "lm-energy": plot_energy_breakdown}[kind](
        ax, recs)


def make_figure(path: str, kind: str, out: str, where: dict | None = None, run_id: str | None = None,
                metric: str | None = None, step: int | None = None,
                on_note: Callable[[str], None] | None = None, layer: str | None = None) -> str:
    """Draw figure ``kind`` from result file ``path`` into ``out`` (PNG, PDF, SVG by extension).

    ``metric``: the y value of ``convergence-vs-asymmetry`` (``grad_norm2``, default; ``error_floor``;
    ``final_loss``) or the metric of ``loss`` (default ``loss``). ``on_note`` receives a line when the figure
    drew one run of several that matched (weights, pulses) or pooled configurations (loss).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if kind not in KINDS:
        raise ConfigError(f"Unknown plot kind {kind!r}; allowed: {', '.join(KINDS)}.")
    check_figure_out(out)
    note = on_note or (lambda msg: None)
    with open_results(path) as f:
        fig = Figure(layout="constrained")
        FigureCanvasAgg(fig)
        if kind in ("convergence-vs-asymmetry", "loss") and file_kind(f) != "least_squares":
            from .results import require_kind

            require_kind(f, "least_squares", what=f"--kind {kind}")
        if kind in NET_KINDS + LM_KINDS:
            _figure_of_records(kind, f, fig)
        elif kind == "convergence-vs-asymmetry":
            data = compute_convergence_vs_asymmetry(f, metric=metric or "grad_norm2", where=where)
            _draw_convergence(fig, f, data)
        elif kind == "loss":
            data = compute_loss_curves(f, where=where, run_ids=[run_id] if run_id else None, metric=metric or "loss")
            nf = len(data["facets"])
            ncols = min(3, nf)
            nrows = (nf + ncols - 1) // ncols
            fig.set_size_inches(4.3 * ncols + 0.5, 3.4 * nrows + 1.2)
            handles, first = {}, None
            for i, facet in enumerate(data["facets"]):
                ax = fig.add_subplot(nrows, ncols, i + 1, sharey=first)
                first = first or ax
                plot_loss(ax, facet, data["metric"])
                for h, lab in zip(*ax.get_legend_handles_labels()):
                    handles.setdefault(lab, h)
            fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(3, len(handles)),
                       fontsize=7, frameon=False)
            fig.suptitle(f"{data['metric']} during training" + (" (mean over seeds, band: min-max)"), fontsize=10)
            if data["aggregated"]:
                note(f"more than {MAX_CURVES} configurations per panel: drew one mean and band per algorithm; "
                     f"select configurations with --where KEY=VALUE (e.g. --where lr=0.01) to see them one by one.")
        elif kind == "weights":
            data = compute_weights(f, run_id=run_id, where=where, step=step, layer=layer)
            fig.set_size_inches(4.2 * len(data["arrays"]), 3.8)
            for i, arr in enumerate(data["arrays"]):
                plot_weights(fig.add_subplot(1, len(data["arrays"]), i + 1), arr)
            fig.suptitle(f"run {data['run_id']} layer {data['layer']}: {_fmt_point(data['point'])}", fontsize=9)
        else:
            data = compute_pulses(f, run_id=run_id, where=where, layer=layer)
            fig.set_size_inches(4.6 * len(data["arrays"]), 3.4)
            for i, arr in enumerate(data["arrays"]):
                plot_pulses(fig.add_subplot(1, len(data["arrays"]), i + 1), arr, fig=fig)
            fig.suptitle(f"run {data['run_id']} layer {data['layer']}: {_fmt_point(data['point'])}", fontsize=9)
        if kind in ("weights", "pulses") and selection_note(data):
            note(selection_note(data))
    _savefig(fig, out)
    return out


def _fmt_point(point: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())
