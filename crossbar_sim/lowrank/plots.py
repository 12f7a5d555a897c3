"""Figures of a low-rank sweep: validation perplexity vs step, optimiser-state memory vs rank, energy breakdown.

``plot_*(ax, records, ...)`` draw on a given Axes (no global pyplot state); :func:`write_figures` makes the three
PNG files. ``records`` are dicts as :func:`crossbar_sim.engine.results.lm_records` returns them.
"""
from __future__ import annotations

import os

import numpy as np

from ..energy import CATEGORIES
from .memory import matrix_state_floats

COLORS = {"adamw": "black", "galore": "tab:blue", "osd": "tab:red", "tiki_taka": "tab:green"}


def _label(p) -> str:
    r = "" if p["rank"] is None else f" r={p['rank']}"
    return f"{p['method']}{r}" + ("" if p["backend"] == "analog" else " (digital)")


def plot_val_ppl(ax, records, backend=None):
    """Validation perplexity against training step, one line per run (dashed: digital backend)."""
    ranks = sorted({r["point"]["rank"] for r in records if r["point"]["rank"] is not None})
    styles = ["-", "--", "-.", ":"]
    for r in records:
        p = r["point"]
        if backend and p["backend"] != backend:
            continue
        m = r["metrics"]
        if "val_ppl" not in m or len(m["val_ppl"]) == 0:
            continue
        ls = styles[ranks.index(p["rank"]) % len(styles)] if p["rank"] is not None else "-"
        lw = 1.0 if p["backend"] == "digital" else 1.8
        ax.plot(m["steps"], m["val_ppl"], ls, color=COLORS[p["method"]], lw=lw, alpha=0.9 if lw > 1 else 0.6,
                label=_label(p) + ("" if p["seed"] == 0 else f" s{p['seed']}"))
    ax.set_xlabel("training step")
    ax.set_ylabel("validation perplexity (per character)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)


def plot_memory_vs_rank(ax, records, shapes=None):
    """Digital optimiser-state bytes of the weight matrices against rank: measured (markers) and the closed
    forms for the run's matrix shapes (lines); full-rank AdamW as a horizontal line, Tiki-Taka at 0 digital."""
    if shapes is None and records:
        from .lm import LMConfig
        from ..config import Config

        lm = Config.from_dict(records[0]["config"]["lm"]) if isinstance(records[0]["config"].get("lm"), dict) \
            else LMConfig()
        shapes = list(lm.matrix_shapes().values())
    smax = max(min(s) for s in shapes)
    rr = np.arange(1, smax + 1)
    for method in ("galore", "osd"):
        closed = [4 * sum(sum(matrix_state_floats(method, m, n, int(r)).values()) for m, n in shapes) for r in rr]
        ax.plot(rr, closed, "-", color=COLORS[method], lw=1, alpha=0.6, label=f"{method} closed form")
    full = 4 * sum(sum(matrix_state_floats("adamw", m, n).values()) for m, n in shapes)
    ax.axhline(full, color=COLORS["adamw"], lw=1, ls="--", label="full-rank AdamW closed form")
    for r in records:
        p = r["point"]
        b = r["budget"].get("memory_optimizer_state_matrices_bytes")
        if b is None:
            continue
        x = p["rank"] if p["rank"] is not None else (smax if p["method"] == "adamw" else 0.5)
        ax.plot([x], [max(b, 1.0)], "o", color=COLORS[p["method"]], ms=6, mfc="none" if p["backend"] == "digital"
                else COLORS[p["method"]])
    ax.plot([], [], "o", color=COLORS["tiki_taka"], label="Tiki-Taka: 0 digital (drawn at 1 B)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("rank r")
    ax.set_ylabel("optimiser state of the weight matrices (bytes, float32)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def plot_energy_breakdown(ax, records, backend="analog"):
    """Stacked bars of training energy by category, one bar per run (log-scale totals printed on top)."""
    recs = [r for r in records if r["point"]["backend"] == backend and r["budget"]]
    if not recs:
        recs = [r for r in records if r["budget"]]
    labels = [_label(r["point"]) for r in recs]
    x = np.arange(len(recs))
    bottom = np.zeros(len(recs))
    cmap = __import__("matplotlib").colormaps["tab10"]
    for i, c in enumerate(CATEGORIES):
        vals = np.array([float(r["budget"].get(f"energy_{c}_J", 0.0)) for r in recs])
        if not np.any(vals > 0):
            continue
        ax.bar(x, vals, bottom=bottom, color=cmap(i % 10), label=c)
        bottom += vals
    for xi, t in zip(x, bottom):
        ax.text(xi, t, f"{t:.2g} J", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("training energy (J)")
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)


def write_figures(records, outdir: str, prefix: str = "lowrank") -> list[str]:
    """``<prefix>_val_ppl.png``, ``<prefix>_memory_vs_rank.png``, ``<prefix>_energy.png``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    os.makedirs(outdir or ".", exist_ok=True)
    paths = []
    for name, fn, size in (("val_ppl", plot_val_ppl, (7, 4.5)), ("memory_vs_rank", plot_memory_vs_rank, (6, 4.5)),
                           ("energy", plot_energy_breakdown, (8, 4.8))):
        fig = Figure(figsize=size, dpi=120)
        ax = fig.add_subplot(111)
        fn(ax, records)
        fig.tight_layout()
        path = os.path.join(outdir, f"{prefix}_{name}.png")
        fig.savefig(path)
        paths.append(path)
    return paths


_XAXES = {"opt_state_bytes": "digital optimiser state, all parameters (bytes, float32)",
          "energy_J": "training energy (J)"}


def plot_tradeoff(ax, rows, x: str = "opt_state_bytes", backend: str = "analog", paired=None, inset: bool = True,
                  legend: bool = True):
    """Validation perplexity against ``x`` (``opt_state_bytes`` or ``energy_J``), one point per method and rank
    with its 95 % intervals on both axes; GaLore's and OSD's ranks joined by a line and labelled. ``rows`` from
    :func:`crossbar_sim.lowrank.stats.cell_table`; ``paired`` (from :func:`~crossbar_sim.lowrank.stats.
    paired_table`) rings the OSD points whose paired difference from GaLore is significant after Holm's
    correction. With ``inset``, a zoom on the low-rank methods is drawn when a far-away point (Tiki-Taka's
    energy) squeezes them."""
    sig = {(p["backend"], p["rank"]) for p in (paired or []) if p.get("holm")}
    by_method: dict = {}
    for r in rows:
        if r["backend"] != backend or r["n"] == 0:
            continue
        by_method.setdefault(r["method"], []).append(r)
    names = {"adamw": "full-rank AdamW", "galore": "GaLore", "osd": "OSD", "tiki_taka": "Tiki-Taka"}

    def draw(a, methods, labels):
        for method in methods:
            rs = sorted(by_method[method], key=lambda r: r["rank"] or 0)
            xs = np.array([r[x].mean for r in rs])
            ys = np.array([r["val_ppl"].mean for r in rs])
            xerr = np.nan_to_num(np.array([r[x].half for r in rs]))
            yerr = np.nan_to_num(np.array([r["val_ppl"].half for r in rs]))
            a.errorbar(xs, ys, yerr=yerr, xerr=xerr, fmt="o-" if len(rs) > 1 else "s", color=COLORS[method], ms=5,
                       lw=1, capsize=2, label=names[method] if labels else None)
            for r, xi, yi in zip(rs, xs, ys):
                if r["rank"] is not None:
                    a.annotate(f"r{r['rank']}", (xi, yi), textcoords="offset points",
                               xytext=(5, 4 if method == "osd" else -10), fontsize=7, color=COLORS[method])
                if method == "osd" and (backend, r["rank"]) in sig:
                    a.plot([xi], [yi], "o", ms=11, mfc="none", mec="black", mew=1.2)

    draw(ax, list(by_method), True)
    if sig:
        ax.plot([], [], "o", ms=9, mfc="none", mec="black", label="OSD vs GaLore significant (Holm)")
    xs_all = [r[x].mean for rs in by_method.values() for r in rs if r[x].mean > 0]
    if x == "opt_state_bytes" or (xs_all and max(xs_all) > 8 * min(xs_all)):  # log where values span decades
        ax.set_xscale("log")
    else:
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4), useOffset=False)
    low = [m for m in by_method if m != "tiki_taka"]
    if inset and "tiki_taka" in by_method and low and x == "energy_J":
        lx = [r[x].mean for m in low for r in by_method[m]]
        tt = by_method["tiki_taka"][0][x].mean
        if min(lx) - tt > 3 * (max(lx) - min(lx)):
            ins = ax.inset_axes([0.2, 0.33, 0.45, 0.5])
            draw(ins, low, False)
            ins.tick_params(labelsize=6)
            ins.grid(True, alpha=0.3)
            ins.set_title("zoom: low-rank and full-rank", fontsize=6)
    ax.set_xlabel(_XAXES[x])
    ax.set_ylabel("validation perplexity (per character)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"{backend} backend", fontsize=9)
    if legend:
        ax.legend(fontsize=7, loc="upper right" if x == "opt_state_bytes" else "best")


def write_tradeoff_figure(rows, path: str, paired=None, backends=("digital", "analog")) -> str:
    """The figure of issue 21: perplexity against optimiser-state memory (left) and energy (right), one row of
    panels per backend; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    backends = [b for b in backends if any(r["backend"] == b and r["n"] for r in rows)]
    fig = Figure(figsize=(11, 4.2 * len(backends)), dpi=120)
    axes = fig.subplots(len(backends), 2, squeeze=False)
    for i, b in enumerate(backends):
        for j, x in enumerate(("opt_state_bytes", "energy_J")):
            plot_tradeoff(axes[i][j], rows, x, b, paired)
    fig.suptitle("Validation perplexity vs optimiser-state memory and training energy (mean and 95 % t-interval "
                 "over seeds)\nTiki-Taka's digital state is that of the embedding, head and norms only", fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path
