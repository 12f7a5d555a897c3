"""Figures from result files: ``compute_*`` return arrays, ``plot_*(ax, data, ...)`` draw on a given Axes.

No global ``matplotlib.pyplot`` state: :func:`make_figure` builds a :class:`matplotlib.figure.Figure` with the
Agg canvas, so the library is safe in scripts, notebooks and worker processes.

Kinds: ``convergence-vs-asymmetry`` (error floor vs tau per algorithm, seed error bars, the paper's predicted
floor shape for analog SGD), ``loss`` (loss curves, log scale), ``weights`` (weight histograms against the
device bounds), ``pulses`` (per-device pulse-count heatmaps).
"""
from __future__ import annotations

import json
import os
from collections import defaultdict

import numpy as np

from ..config import parse_assignments
from ..errors import ConfigError, FormatError
from .store import LS_LAYER, file_kind, open_results, read_runs

#: figures of least-squares sweeps
LS_KINDS = ("convergence-vs-asymmetry", "loss", "weights", "pulses")
#: figures of network sweeps (weights and pulses work on network runs too)
NET_KINDS = ("accuracy-vs-tau", "accuracy-vs-epoch")
#: figures of language-model sweeps
LM_KINDS = ("lm-perplexity", "lm-memory", "lm-energy")
KINDS = LS_KINDS + NET_KINDS + LM_KINDS

ALGO_LABELS = {"analog_sgd": "Analog SGD", "tiki_taka": "Tiki-Taka", "ttv2": "Tiki-Taka v2",
               "chopped_ttv2": "chopped TTv2", "agad": "AGAD", "digital_sgd": "Digital SGD"}
ALGO_COLORS = {"analog_sgd": "#d62728", "tiki_taka": "#1f77b4", "ttv2": "#9467bd", "chopped_ttv2": "#8c564b",
               "agad": "#ff7f0e", "digital_sgd": "#2ca02c"}


# ------------------------------------------------------------------------------------------ selection
def parse_where(items) -> dict:
    """``["algorithm=analog_sgd", "tau=0.6"]`` -> ``{"algorithm": "analog_sgd", "tau": 0.6}`` (the one
    KEY=VALUE parser, :func:`crossbar_sim.config.parse_assignments`)."""
    return parse_assignments(items, "--where")


def _run_value(run: dict, key: str):
    if key in run["point"]:
        return run["point"][key]
    if key in run:
        return run[key]
    net = run["config"].get("net")
    if isinstance(net, dict):
        if key in net:
            return net[key]
        dev = net.get("device") or {}
        if key == "tau":
            return dev.get("w_max", net.get("tau"))
        return dev.get(key)
    if key in run["config"] and not isinstance(run["config"][key], dict):
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


# ------------------------------------------------------------------------------------------ theory
def predicted_floor_shape(tau, w_star_inf: float, sigma: float) -> np.ndarray:
    """The paper's asymptotic-error bound ``4 sigma^2 S`` with ``S = (r^2/tau^2) / (1 - r^2/tau^2)``,
    ``r = |W*|_inf`` (arXiv 2406.12774); ``nan`` where ``tau <= r`` (W* is not reachable)."""
    tau = np.asarray(tau, np.float64)
    q = (w_star_inf / tau) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(q < 1.0, q / (1.0 - q), np.nan)
    return 4.0 * sigma**2 * s


def _task_constants(config: dict) -> tuple[float, float]:
    """``|W*|_inf`` and the gradient-noise std of a run's least-squares task."""
    from ..config import Config
    from ..least_squares.task import LeastSquares

    spec = Config.from_dict(config["task"])
    return float(np.abs(LeastSquares(spec).W_star).max()), float(spec.noise_std)


# ------------------------------------------------------------------------------------------ compute
def compute_convergence_vs_asymmetry(f, metric: str = "error_floor", where: dict | None = None) -> dict:
    """Error floor (or final loss) vs tau for each (algorithm, lr), mean and std over seeds.

    Parameters
    ----------
    f : h5py.File
        An open result file.
    metric : {"error_floor", "final_loss"}
    where : dict, optional
        Restrict to runs matching these point/config values.

    Returns
    -------
    dict
        ``series``: list of ``{"algorithm", "lr", "label", "tau", "mean", "std", "n", "values"}`` (arrays over
        tau); ``theory``: ``{"tau", "shape", "scale", "w_star_inf", "sigma"}`` for analog SGD (the shape
        ``4 sigma^2 S`` and the constant ``scale`` fitted in log space to the analog SGD floors) or None;
        ``metric``.
    """
    if metric not in ("error_floor", "final_loss"):
        raise ConfigError(f"metric must be 'error_floor' or 'final_loss'. Got {metric!r}.")
    runs = [r for r in select_runs(read_runs(f), where) if r["status"] in ("complete", "diverged")]
    groups: dict[tuple, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        tau = _run_value(r, "tau")
        if tau is None:
            continue
        key = (r["config"]["train"]["algorithm"], float(r["config"]["train"]["lr"]))
        groups[key][float(tau)].append(r[metric])
    if not groups:
        raise FormatError("No finished runs with a tau (device w_max) to plot against.")
    lrs_per_algo = defaultdict(set)
    for algo, lr in groups:
        lrs_per_algo[algo].add(lr)
    series = []
    order = {a: i for i, a in enumerate(ALGO_LABELS)}
    for (algo, lr) in sorted(groups, key=lambda k: (order.get(k[0], 99), -k[1])):
        by_tau = groups[(algo, lr)]
        taus = np.array(sorted(by_tau))
        vals = [np.asarray(by_tau[t], np.float64) for t in taus]
        label = ALGO_LABELS.get(algo, algo)
        if len(lrs_per_algo[algo]) > 1 or algo == "analog_sgd":
            label += f" (lr {lr:g})"
        series.append({
            "algorithm": algo, "lr": lr, "label": label, "tau": taus,
            "mean": np.array([np.mean(v) for v in vals]),
            "std": np.array([np.std(v, ddof=1) if v.size > 1 else 0.0 for v in vals]),
            "n": np.array([v.size for v in vals]),
            "values": vals,
        })
    theory = None
    analog = [s for s in series if s["algorithm"] == "analog_sgd"]
    analog_runs = [r for r in runs if r["config"]["train"]["algorithm"] == "analog_sgd"]
    if analog and analog_runs:
        w_inf, sigma = _task_constants(analog_runs[0]["config"])
        xs, ys = [], []
        for s in analog:
            shape = predicted_floor_shape(s["tau"], w_inf, sigma)
            ok = np.isfinite(shape) & (shape > 0) & (s["mean"] > 0)
            xs.append(shape[ok])
            ys.append(s["mean"][ok])
        x, y = np.concatenate(xs), np.concatenate(ys)
        if x.size and sigma > 0:
            scale = float(np.exp(np.mean(np.log(y) - np.log(x))))  # least squares in log space
            all_tau = np.concatenate([s["tau"] for s in analog])
            lo = max(all_tau.min() * 0.95, w_inf * 1.02)
            grid = np.geomspace(lo, all_tau.max() * 1.05, 200)
            theory = {"tau": grid, "shape": predicted_floor_shape(grid, w_inf, sigma), "scale": scale,
                      "w_star_inf": w_inf, "sigma": sigma}
    frac = 0.2
    if "sweep" in f:
        frac = float(json.loads(f["sweep"].attrs.get("spec", "{}")).get("floor_fraction", 0.2))
    return {"series": series, "theory": theory, "metric": metric, "floor_fraction": frac}


def compute_loss_curves(f, where: dict | None = None, run_ids=None, group_seeds: bool = True) -> dict:
    """Loss vs step per configuration: mean over seeds with min/max envelope (or one curve per run)."""
    runs = [r for r in select_runs(read_runs(f), where, run_ids) if r["status"] in ("complete", "diverged")]
    if not runs:
        raise FormatError("No finished runs match the selection.")
    groups = defaultdict(list)
    for r in runs:
        if group_seeds:
            key = tuple(sorted((k, v) for k, v in r["point"].items() if k != "seed"))
            key = key or (("run", r["config"]["train"]["algorithm"]),)
        else:
            key = (("run", r["run_id"]),)
        groups[key].append(r)
    curves = []
    for key, rs in groups.items():
        ms = [f["runs"][r["run_id"]]["metrics"] for r in rs]
        n = min(m["steps"].shape[0] for m in ms)
        steps = ms[0]["steps"][:n]
        losses = np.stack([m["loss"][:n] for m in ms])
        label = ", ".join(f"{k}={v}" for k, v in key)
        curves.append({"label": label, "algorithm": rs[0]["config"]["train"]["algorithm"], "steps": steps,
                       "mean": losses.mean(axis=0), "lo": losses.min(axis=0), "hi": losses.max(axis=0),
                       "n": len(rs)})
    return {"curves": curves}


ANALOG_LAYER_KINDS = ("AnalogTile", "OneSidedTile", "TikiTakaTile", "BufferedTransferTile", "TileArray")


def _analog_layers(g) -> list[str]:
    """The analog layers of a run group (least squares: ``linear``; networks: their weight layers)."""
    if "tiles" not in g:
        return []
    return [n for n, lg in g["tiles"].items() if lg.attrs.get("kind") in ANALOG_LAYER_KINDS]


def _pick_run(f, where, run_id, layer: str | None = None) -> tuple[dict, str]:
    """The run (and its layer) a weights/pulses figure shows; says which one it picked when several match."""
    runs = select_runs(read_runs(f), where, [run_id] if run_id else None)
    runs = [r for r in runs if r["status"] in ("complete", "diverged") and _analog_layers(f["runs"][r["run_id"]])]
    if not runs:
        raise FormatError("No finished analog run matches the selection (use --run ID or --where KEY=VALUE; "
                          "digital runs have no tiles).")
    run = runs[0]
    if len(runs) > 1:
        import sys

        print(f"plot: {len(runs)} runs match; showing run {run['run_id']} ({_fmt_point(run['point'])}); choose "
              f"another with --run ID or more --where KEY=VALUE.", file=sys.stderr)
    layers = _analog_layers(f["runs"][run["run_id"]])
    if layer is None:
        layer = LS_LAYER if LS_LAYER in layers else layers[0]
    elif layer not in layers:
        raise FormatError(f"Run {run['run_id']} has no analog layer {layer!r}; its analog layers: "
                          f"{', '.join(layers)}.")
    return run, layer


def _array_groups(layer_group, prefix: str = ""):
    """(name, group) of every array below a layer group (the blocks of a TileArray as ``tile0_0/A``)."""
    for name, g in layer_group.items():
        if name in ("state", "counters") or not hasattr(g, "keys"):
            continue
        if g.attrs.get("kind") in ANALOG_LAYER_KINDS or g.attrs.get("kind") == "DigitalWeights":
            yield from _array_groups(g, f"{prefix}{name}/")
        else:
            yield f"{prefix}{name}", g


def compute_weights(f, run_id: str | None = None, where: dict | None = None, step: int | None = None,
                    layer: str | None = None) -> dict:
    """Weights of every array of one run's tile at a snapshot step (default: the last), with device bounds."""
    run, layer = _pick_run(f, where, run_id, layer)
    arrays = []
    for name, g in _array_groups(f["runs"][run["run_id"]]["tiles"][layer]):
        if "snapshots" not in g or "device" not in g:
            continue
        snaps = sorted(int(s) for s in g["snapshots"])
        st = snaps[-1] if step is None else step
        if str(st) not in g["snapshots"]:
            raise FormatError(f"Run {run['run_id']} has no snapshot at step {st}; snapshots: {snaps}.")
        arrays.append({"name": name, "step": st, "weights": g["snapshots"][str(st)]["weights"][()],
                       "w_lo": g["device"]["weight_min"][()], "w_hi": g["device"]["weight_max"][()]})
    if not arrays:
        raise FormatError(f"Run {run['run_id']} layer {layer} has no weight snapshots of its device arrays.")
    return {"run_id": run["run_id"], "point": run["point"], "arrays": arrays, "layer": layer}


def compute_pulses(f, run_id: str | None = None, where: dict | None = None, layer: str | None = None) -> dict:
    """Per-device pulse counts (up + down, up, down) of every array of one run's tile."""
    run, layer = _pick_run(f, where, run_id, layer)
    arrays = []
    for name, g in _array_groups(f["runs"][run["run_id"]]["tiles"][layer]):
        if "pulse_counts" not in g:
            continue
        pc = g["pulse_counts"][()]
        arrays.append({"name": name, "up": pc[..., 0], "down": pc[..., 1], "total": pc.sum(axis=-1)})
    if not arrays:
        raise FormatError(f"Run {run['run_id']} layer {layer} has no pulse counts.")
    return {"run_id": run["run_id"], "point": run["point"], "arrays": arrays, "layer": layer}


# ------------------------------------------------------------------------------------------ draw
def plot_convergence_vs_asymmetry(ax, data: dict) -> None:
    """Error floor vs tau (log-log), one line per (algorithm, lr), seed std as error bars."""
    markers = {"analog_sgd": "o", "tiki_taka": "s", "ttv2": "D", "chopped_ttv2": "v", "agad": "P", "digital_sgd": "^"}
    styles = ["-", "--", ":", "-."]
    seen = defaultdict(int)
    for s in data["series"]:
        k = seen[s["algorithm"]]
        seen[s["algorithm"]] += 1
        ax.errorbar(s["tau"], s["mean"], yerr=s["std"], label=f"{s['label']} (n={int(s['n'].min())} seeds)",
                    color=ALGO_COLORS.get(s["algorithm"]), marker=markers.get(s["algorithm"], "o"),
                    linestyle=styles[k % len(styles)], capsize=3, markersize=5,
                    markerfacecolor="white" if k else None)
    th = data.get("theory")
    if th is not None:
        ax.plot(th["tau"], th["scale"] * th["shape"], color="0.3", linestyle="--", linewidth=1.2,
                label=(f"{th['scale']:.2g} x 4$\\sigma^2$S (paper's bound shape, constant fitted)"))
        ax.axvline(th["w_star_inf"], color="0.6", linewidth=0.8, linestyle=":")
        ax.annotate(r"$\tau = |W^*|_\infty$", (th["w_star_inf"], 0.02), xycoords=("data", "axes fraction"),
                    rotation=90, fontsize=7, color="0.4", ha="right", va="bottom")
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, ScalarFormatter

    taus = sorted({float(t) for s in data["series"] for t in s["tau"]})
    if taus:
        ax.xaxis.set_major_locator(FixedLocator(taus))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(r"device asymmetry $\tau$ ($w_{max} = -w_{min} = \tau$)")
    frac = data.get("floor_fraction", 0.2)
    ylabel = f"error floor (mean loss, last {frac:.0%} of steps)" if data["metric"] == "error_floor" else "final loss"
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, frameon=False)


def plot_loss(ax, data: dict) -> None:
    """Loss curves on a log scale (mean over seeds, shaded min-max)."""
    for c in data["curves"]:
        color = ALGO_COLORS.get(c["algorithm"])
        line, = ax.plot(c["steps"], c["mean"], label=c["label"], linewidth=1.1,
                        color=color if len(data["curves"]) <= 3 else None)
        if c["n"] > 1:
            ax.fill_between(c["steps"], c["lo"], c["hi"], color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(r"loss $f(W) = \frac{1}{2}\|AW^T - B\|^2$")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=6, frameon=False, ncol=2 if len(data["curves"]) > 8 else 1)


def plot_weights(ax, array: dict, bins: int = 40) -> None:
    """Histogram of one array's weights with its device bounds (mean bound lines, range shaded)."""
    w = np.asarray(array["weights"]).ravel()
    lo, hi = np.asarray(array["w_lo"]).ravel(), np.asarray(array["w_hi"]).ravel()
    span = max(float(hi.max() - lo.min()), 1e-12)
    rng = (float(lo.min()) - 0.02 * span, float(hi.max()) + 0.02 * span)
    ax.hist(w, bins=bins, range=rng, color="#1f77b4", alpha=0.85)
    for b, name in ((lo, "lower"), (hi, "upper")):
        ax.axvline(float(b.mean()), color="#d62728", linestyle="--", linewidth=1,
                   label=f"{name} bound (mean {b.mean():.3g})")
        if b.max() > b.min():
            ax.axvspan(float(b.min()), float(b.max()), color="#d62728", alpha=0.1)
    ax.set_xlabel(f"weight of array {array['name']} at step {array['step']}")
    ax.set_ylabel("devices")
    ax.legend(fontsize=7, frameon=False, loc="upper center")


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


# ------------------------------------------------------------------------------------------ figures
def _savefig(fig, out: str) -> None:
    """Write a figure whole: temporary name, then rename into place."""
    root, ext = os.path.splitext(out)
    tmp = f"{root}.tmp-{os.getpid()}{ext or '.png'}"
    try:
        fig.savefig(tmp, dpi=150, bbox_inches="tight")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def figure_path(out_h5: str, kind: str, figures_dir: str | None = None) -> str:
    """Where a sweep's figure goes: ``my.h5`` -> ``my_<kind>.png`` next to it (or in ``figures_dir``), so two
    sweeps with different ``--out`` never overwrite each other's figures."""
    stem = os.path.splitext(os.path.basename(out_h5))[0]
    folder = figures_dir if figures_dir is not None else os.path.dirname(os.path.abspath(out_h5))
    return os.path.join(folder, f"{stem}_{kind.replace('-', '_')}.png")


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


def _figure_of_records(kind: str, f):
    """Network and language-model figures (drawn by their packages from records)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .results import lm_records, net_records

    name = f["sweep"].attrs.get("name", "") if "sweep" in f else ""
    if kind in NET_KINDS:
        from ..nn.report import plot_accuracy_vs_epoch, plot_accuracy_vs_tau

        recs = net_records(f)
        if not recs:
            raise FormatError(f"{f.filename}: no finished network run to plot.")
        fig = Figure(figsize=(6.4, 4.4))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        if kind == "accuracy-vs-tau":
            plot_accuracy_vs_tau(ax, recs)
            ax.set_title(f"{name or 'network sweep'}: test accuracy against device asymmetry", fontsize=10)
        else:
            plot_accuracy_vs_epoch(ax, recs)
            ax.set_title(f"{name or 'network sweep'}: test accuracy per epoch (mean over seeds)", fontsize=10)
        return fig
    from ..lowrank.plots import plot_energy_breakdown, plot_memory_vs_rank, plot_val_ppl

    recs = lm_records(f, done_only=True)
    if not recs:
        raise FormatError(f"{f.filename}: no finished language-model run to plot.")
    fig = Figure(figsize=(7.0, 4.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    {"lm-perplexity": plot_val_ppl, "lm-memory": plot_memory_vs_rank, "lm-energy": plot_energy_breakdown}[kind](
        ax, recs)
    return fig


def make_figure(path: str, kind: str, out: str, where: dict | None = None, run_id: str | None = None,
                metric: str = "error_floor", step: int | None = None, layer: str | None = None) -> str:
    """Draw figure ``kind`` from result file ``path`` into ``out`` (PNG, PDF, SVG by extension)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if kind not in KINDS:
        raise ConfigError(f"Unknown plot kind {kind!r}; allowed: {', '.join(KINDS)}.")
    check_figure_out(out)
    with open_results(path) as f:
        name = f["sweep"].attrs.get("name", "") if "sweep" in f else ""
        fk = file_kind(f)
        if kind in ("convergence-vs-asymmetry", "loss") and fk != "least_squares":
            from .results import require_kind

            require_kind(f, "least_squares", what=f"--kind {kind}")
        if kind in NET_KINDS + LM_KINDS:
            fig = _figure_of_records(kind, f)
        elif kind == "convergence-vs-asymmetry":
            data = compute_convergence_vs_asymmetry(f, metric=metric, where=where)
            fig = Figure(figsize=(5.6, 4.0))
            FigureCanvasAgg(fig)
            ax = fig.add_subplot()
            plot_convergence_vs_asymmetry(ax, data)
            ax.set_title(_ls_title(f, name), fontsize=8)
        elif kind == "loss":
            data = compute_loss_curves(f, where=where, run_ids=[run_id] if run_id else None)
            fig = Figure(figsize=(6.0, 4.0))
            FigureCanvasAgg(fig)
            plot_loss(fig.add_subplot(), data)
        elif kind == "weights":
            data = compute_weights(f, run_id=run_id, where=where, step=step, layer=layer)
            fig = Figure(figsize=(4.2 * len(data["arrays"]), 3.4))
            FigureCanvasAgg(fig)
            for i, arr in enumerate(data["arrays"]):
                plot_weights(fig.add_subplot(1, len(data["arrays"]), i + 1), arr)
            fig.suptitle(f"run {data['run_id']} layer {data['layer']}: {_fmt_point(data['point'])}", fontsize=9)
        else:
            data = compute_pulses(f, run_id=run_id, where=where, layer=layer)
            fig = Figure(figsize=(4.6 * len(data["arrays"]), 3.4))
            FigureCanvasAgg(fig)
            for i, arr in enumerate(data["arrays"]):
                plot_pulses(fig.add_subplot(1, len(data["arrays"]), i + 1), arr, fig=fig)
            fig.suptitle(f"run {data['run_id']} layer {data['layer']}: {_fmt_point(data['point'])}", fontsize=9)
    fig.tight_layout()
    _savefig(fig, out)
    return out


def _ls_title(f, name: str) -> str:
    runs = read_runs(f)
    if not runs:
        return name
    t = runs[0]["config"].get("task", {})
    steps = sorted({r["config"]["train"]["steps"] for r in runs})
    dev = runs[0]["config"]["train"].get("device", {}).get("type", "")
    dev = "asymmetric linear device" if dev == "SoftBoundsReferenceDevice" else dev
    return (f"{name or 'sweep'}: least squares {t.get('n_samples')}x{t.get('in_size')}, "
            f"gradient noise $\\sigma$={t.get('noise_std')}, {'/'.join(map(str, steps))} steps, {dev}")


def _fmt_point(point: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())
