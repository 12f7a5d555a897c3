"""Tables and figures of network runs, from records (plain dicts; :func:`crossbar_sim.engine.results.net_records`
reads them from a result file).

``plot_*(ax, records, ...)`` draw on a given Axes (no global pyplot state).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

ALGO_LABELS = {"analog_sgd": "Analog SGD", "tiki_taka": "Tiki-Taka v1", "ttv2": "TTv2", "chopped_ttv2": "chopped TTv2",
               "agad": "AGAD", "digital_sgd": "Digital SGD"}
#: Okabe-Ito colours (colour-blind safe) and one marker per algorithm
ALGO_STYLE = {"analog_sgd": ("#D55E00", "o"), "tiki_taka": ("#0072B2", "s"), "ttv2": ("#CC79A7", "^"),
              "chopped_ttv2": ("#E69F00", "v"), "agad": ("#009E73", "D"), "digital_sgd": ("#000000", "*")}


def _group_key(r: dict, without=("seed",)) -> tuple:
    return tuple((k, v) for k, v in r["point"].items() if k not in without)


def accuracy_table(rows: list[dict]) -> str:
    """Final and best test accuracy (%) per sweep point without its seed: mean +- std over seeds."""
    groups: dict = defaultdict(list)
    for r in rows:
        if r["status"] in ("complete", "diverged") and "final_test_acc" in r:
            groups[_group_key(r)].append(r)
    if not groups:
        return ""
    lines = ["test accuracy % (final, and best over epochs; mean +- std over seeds):"]
    labels = {k: ", ".join(f"{a}={v}" for a, v in k) or "run" for k in groups}
    w = max(len(x) for x in labels.values()) + 2
    for k, rs in groups.items():
        fin = 100 * np.array([r["final_test_acc"] for r in rs])
        best = 100 * np.array([r["best_test_acc"] for r in rs])
        sd = (lambda a: f" +- {np.std(a, ddof=1):.2f}" if len(a) > 1 else "")
        lines.append(f"  {labels[k].ljust(w)}final {fin.mean():6.2f}{sd(fin)}   best {best.mean():6.2f}{sd(best)}"
                     f"   (n={len(rs)}" + (", diverged" if any(r["status"] == "diverged" for r in rs) else "") + ")")
    near_chance = [r for rs in groups.values() for r in rs
                   if r["config"].get("net", {}).get("algorithm") != "digital_sgd" and r["final_test_acc"] < 0.2]
    if near_chance:
        lines.append(f"  note: {len(near_chance)} analog run(s) near chance (~10 %). In the paper's FCN setting analog "
                     f"layers often stay there for many epochs while the last layer's learnable out scale shrinks "
                     f"(analog SGD at tau 0.78 for ~30 epochs, also in aihwkit); it is expected after a few epochs.")
    return "\n".join(lines)


def _algo(r):
    return r["net"].get("algorithm", r["point"].get("algorithm", "?"))


def plot_accuracy_vs_tau(ax, records: list[dict], metric: str = "final_test_acc") -> None:
    """Test accuracy (%) against the device bound tau, one line per algorithm: mean over seeds, error bars the
    standard deviation; digital SGD (no device) as a horizontal band."""
    by: dict = defaultdict(lambda: defaultdict(list))
    digital = []
    for r in records:
        if _algo(r) == "digital_sgd":
            digital.append(100 * r[metric])
        elif r.get("tau") is not None:
            by[_algo(r)][float(r["tau"])].append(100 * r[metric])
    for alg, cells in by.items():
        taus = sorted(cells)
        mean = [np.mean(cells[t]) for t in taus]
        err = [np.std(cells[t], ddof=1) if len(cells[t]) > 1 else 0.0 for t in taus]
        color, marker = ALGO_STYLE.get(alg, ("grey", "x"))
        n = max(len(v) for v in cells.values())
        ax.errorbar(taus, mean, yerr=err, color=color, marker=marker, capsize=3, lw=1.6,
                    label=f"{ALGO_LABELS.get(alg, alg)} (n={n})")
    if digital:
        m, s = float(np.mean(digital)), float(np.std(digital, ddof=1)) if len(digital) > 1 else 0.0
        ax.axhline(m, color="black", ls="--", lw=1.2, label=f"Digital SGD (n={len(digital)})")
        if s > 0:
            ax.axhspan(m - s, m + s, color="black", alpha=0.08)
    ax.set_xlabel(r"device bound $\tau$ ($w_{max} = -w_{min} = \tau$; smaller = more asymmetric)")
    ax.set_ylabel("test accuracy (%)" + (" (final)" if metric == "final_test_acc" else " (best epoch)"))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def plot_accuracy_vs_epoch(ax, records: list[dict]) -> None:
    """Test accuracy (%) against epoch, mean over seeds per sweep point (one line per algorithm and tau)."""
    groups: dict = defaultdict(list)
    for r in records:
        m = r["metrics"]
        if "test_acc" in m and len(m["test_acc"]):
            groups[(_algo(r), None if _algo(r) == "digital_sgd" else r.get("tau"))].append(m)
    taus = sorted({t for _, t in groups if t is not None})
    styles = ["-", "--", "-.", ":"]
    for (alg, tau), ms in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        n = min(len(m["test_acc"]) for m in ms)
        acc = 100 * np.mean([m["test_acc"][:n] for m in ms], axis=0)
        color, marker = ALGO_STYLE.get(alg, ("grey", "x"))
        ls = styles[taus.index(tau) % len(styles)] if tau is not None else "-"
        label = ALGO_LABELS.get(alg, alg) + ("" if tau is None else f", tau={tau:g}")
        ax.plot(ms[0]["steps"][:n], acc, ls, color=color, marker=marker, markevery=max(1, n // 6), ms=4, lw=1.4,
                label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
