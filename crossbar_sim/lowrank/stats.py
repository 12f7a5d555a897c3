"""Statistics of low-rank sweeps over seeds: means with t-intervals, paired differences, multiple comparisons,
when a curve has flattened, and rankings by energy under other constants.

Every seed label of a sweep gives every method the same initial weights, the same batches and the same tile
seeds (:func:`crossbar_sim.engine.kinds.lm_run_seed`), so two methods' results at one label are a *pair*: the
difference ``a - b`` per label removes the variance the methods share (init, data order), and its t-interval
over labels is the honest measure of "a beats b". Intervals are Student-t intervals, ``mean +- t_{1-a/2, n-1}
s / sqrt(n)``, which assume roughly normal per-seed values (or differences); with 3-5 seeds that is an
assumption, stated with every table.

``records`` everywhere are dicts as :func:`crossbar_sim.engine.results.lm_records` returns them (``point`` with
``method``, ``rank``, ``seed``, ``backend``; ``status``; ``final_val_ppl``; ``budget`` attributes; ``metrics``).
Diverged runs are left out of the statistics and counted (``n_diverged``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

#: order of methods in every table
METHOD_ORDER = ("adamw", "galore", "osd", "tiki_taka")


def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom (scipy)."""
    from scipy.stats import t

    if df < 1:
        raise ConfigError(f"A t quantile needs df >= 1. Got {df}.")
    return float(t.ppf(q, df))


@dataclass(frozen=True)
class Interval:
    """A mean and its two-sided t-interval: ``lo <= mean <= hi``; ``half`` is the half-width."""

    mean: float
    lo: float
    hi: float
    half: float
    std: float
    n: int
    confidence: float

    def excludes(self, value: float = 0.0) -> bool:
        return not (self.lo <= value <= self.hi)

    def __str__(self) -> str:
        return f"{self.mean:.4g} +- {self.half:.2g}" if self.n > 1 else f"{self.mean:.4g}"


def mean_interval(values, confidence: float = 0.95) -> Interval:
    """Mean of ``values`` with its ``confidence`` Student-t interval (NaN half-width for one value).

    Raises ConfigError on no values, a non-finite value, or a confidence outside (0, 1).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ConfigError("mean_interval needs at least one value.")
    if not np.all(np.isfinite(x)):
        raise ConfigError("mean_interval needs finite values (leave diverged runs out).")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"The 'confidence' must be in (0, 1). Got {confidence}.")
    m = float(np.mean(x))
    if x.size == 1:
        return Interval(m, float("nan"), float("nan"), float("nan"), float("nan"), 1, confidence)
    s = float(np.std(x, ddof=1))
    half = t_quantile(0.5 + confidence / 2, x.size - 1) * s / math.sqrt(x.size)
    return Interval(m, m - half, m + half, half, s, int(x.size), confidence)


@dataclass(frozen=True)
class PairedDifference:
    """``a - b`` over paired samples: the mean difference, its t-interval, t statistic and two-sided p-value.

    ``significant`` is ``p < 1 - confidence`` (the interval excludes 0); ``diffs`` are the per-pair values.
    """

    interval: Interval
    t: float
    p: float
    diffs: tuple

    @property
    def mean(self) -> float:
        return self.interval.mean

    @property
    def n(self) -> int:
        return self.interval.n

    @property
    def significant(self) -> bool:
        return bool(self.p < 1.0 - self.interval.confidence)


def paired_difference(a, b, confidence: float = 0.95) -> PairedDifference:
    """Paired t-test of ``a - b`` (``a[i]`` and ``b[i]`` from the same seed label): needs >= 2 pairs.

    With all differences equal the interval has zero width: ``p`` is 0 for a non-zero difference, 1 for none.
    """
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ConfigError(f"paired_difference needs as many values in a as in b. Got {a.size} and {b.size}.")
    if a.size < 2:
        raise ConfigError(f"paired_difference needs at least 2 pairs. Got {a.size}.")
    d = a - b
    iv = mean_interval(d, confidence)
    se = iv.std / math.sqrt(d.size)
    if se == 0.0:
        t, p = (math.copysign(math.inf, iv.mean), 0.0) if iv.mean != 0 else (0.0, 1.0)
    else:
        from scipy.stats import t as tdist

        t = iv.mean / se
        p = float(2.0 * tdist.sf(abs(t), d.size - 1))
    return PairedDifference(iv, float(t), float(p), tuple(float(x) for x in d))


def holm(pvalues, alpha: float = 0.05) -> list[bool]:
    """Holm-Bonferroni: which of ``pvalues`` are rejected at family-wise error ``alpha`` (in the input order)."""
    p = np.asarray(pvalues, np.float64)
    order = np.argsort(p, kind="stable")
    out = np.zeros(p.size, bool)
    for k, i in enumerate(order):
        if p[i] <= alpha / (p.size - k):
            out[i] = True
        else:
            break
    return out.tolist()


# ---------------------------------------------------------------------------------------------- records
def _key(p) -> tuple:
    return (p["backend"], p["method"], p["rank"])


def _sort_key(k):
    backend, method, rank = k
    return (backend != "digital", METHOD_ORDER.index(method) if method in METHOD_ORDER else 99, rank or 0)


def group_records(records) -> dict:
    """``{(backend, method, rank): [record, ...]}`` in table order (digital first, then analog)."""
    groups: dict = {}
    for r in records:
        groups.setdefault(_key(r["point"]), []).append(r)
    return {k: sorted(groups[k], key=lambda r: r["point"]["seed"]) for k in sorted(groups, key=_sort_key)}


def _ok(rs):
    return [r for r in rs if r["status"] == "complete" and math.isfinite(r["final_val_ppl"])]


def _budget_value(r, key):
    return float(r["budget"].get(key, float("nan")))


def total_energy(record, constants=None) -> float:
    """Training energy (J) of a stored run, under its own constants or re-priced (:func:`energy.reprice`)."""
    if constants is None:
        return _budget_value(record, "energy_total_J")
    from ..energy import reprice

    return reprice(record["budget"], constants).total_J


def cell_table(records, confidence: float = 0.95, constants=None) -> list[dict]:
    """One row per (backend, method, rank): validation perplexity, optimiser-state bytes and energy, each the
    mean over seeds with its t-interval (:class:`Interval`), plus ``n`` and ``n_diverged``."""
    rows = []
    for (backend, method, rank), rs in group_records(records).items():
        ok = _ok(rs)
        row = {"backend": backend, "method": method, "rank": rank, "n": len(ok), "n_diverged": len(rs) - len(ok)}
        if ok:
            row["val_ppl"] = mean_interval([r["final_val_ppl"] for r in ok], confidence)
            row["opt_state_bytes"] = mean_interval(
                [_budget_value(r, "memory_optimizer_state_total_bytes") for r in ok], confidence)
            row["matrix_state_bytes"] = mean_interval(
                [_budget_value(r, "memory_optimizer_state_matrices_bytes") for r in ok], confidence)
            row["energy_J"] = mean_interval([total_energy(r, constants) for r in ok], confidence)
            row["pulse_cycles"] = float(np.mean([_budget_value(r, "count_n_pulse_cycles") for r in ok]))
        rows.append(row)
    return rows


def paired_table(records, a: str = "osd", b: str = "galore", metric: str = "final_val_ppl",
                 confidence: float = 0.95, alpha: float = 0.05) -> list[dict]:
    """``a - b`` paired by seed label, one row per (backend, rank) where both ran (diverged pairs dropped):
    :class:`PairedDifference` under ``diff``, and ``holm``: significant after Holm's correction over all rows."""
    groups = group_records(records)
    rows = []
    for (backend, method, rank), ra in groups.items():
        if method != a:
            continue
        rb = groups.get((backend, b, rank))
        if not rb:
            continue
        va = {r["point"]["seed"]: r for r in _ok(ra)}
        vb = {r["point"]["seed"]: r for r in _ok(rb)}
        seeds = sorted(set(va) & set(vb))
        if len(seeds) < 2:
            continue
        get = (lambda r: r[metric]) if metric in ("final_val_ppl", "wall_time_s") else \
            (lambda r: _budget_value(r, metric))
        d = paired_difference([get(va[s]) for s in seeds], [get(vb[s]) for s in seeds], confidence)
        rows.append({"backend": backend, "rank": rank, "a": a, "b": b, "metric": metric, "seeds": seeds,
                     "diff": d, "a_mean": float(np.mean([get(va[s]) for s in seeds])),
                     "b_mean": float(np.mean([get(vb[s]) for s in seeds]))})
    rej = holm([r["diff"].p for r in rows], alpha) if rows else []
    for r, h in zip(rows, rej):
        r["holm"] = h
    return rows


def steps_to_flatten(steps, curve, rel_tol: float = 0.01) -> int:
    """The first recorded step from which ``curve`` stays within ``rel_tol`` (relative) of its final value:
    the step after which the run no longer improves (or worsens) by more than ``rel_tol``."""
    steps = np.asarray(steps)
    c = np.asarray(curve, np.float64)
    if c.size == 0 or c.size != steps.size:
        raise ConfigError("steps_to_flatten needs one curve value per step.")
    inside = np.abs(c - c[-1]) <= rel_tol * abs(c[-1])
    outside = np.nonzero(~inside)[0]
    return int(steps[0] if outside.size == 0 else steps[min(outside[-1] + 1, steps.size - 1)])


def flatten_summary(records, rel_tol: float = 0.01, metric: str = "val_ppl") -> dict:
    """``{(backend, method, rank): (median, max)}`` over seeds of :func:`steps_to_flatten`."""
    out = {}
    for k, rs in group_records(records).items():
        st = [steps_to_flatten(r["metrics"]["steps"], r["metrics"][metric], rel_tol) for r in _ok(rs)]
        if st:
            out[k] = (float(np.median(st)), int(max(st)))
    return out


def energy_ranking(records, constants=None, backend: str = "analog") -> list[tuple]:
    """``[(label, mean energy J), ...]`` of every (method, rank) on ``backend``, cheapest first, under the
    run's own constants or ``constants`` (an EnergyConstants or scenario name: re-priced, no retraining)."""
    out = []
    for (bk, method, rank), rs in group_records(records).items():
        ok = _ok(rs)
        if bk != backend or not ok:
            continue
        out.append((label(method, rank), float(np.mean([total_energy(r, constants) for r in ok]))))
    return sorted(out, key=lambda x: x[1])


def label(method: str, rank) -> str:
    names = {"adamw": "AdamW", "galore": "GaLore", "osd": "OSD", "tiki_taka": "Tiki-Taka"}
    return names.get(method, method) + ("" if rank is None else f" r{rank}")


# ---------------------------------------------------------------------------------------------- formatting
def _bytes(b: float) -> str:
    return f"{b / 1e3:.1f} kB" if b >= 1e3 else f"{b:.0f} B"


def format_cell_table(rows, markdown: bool = True) -> str:
    """The perplexity / memory / energy table (95 % t-intervals over seeds)."""
    head = ["backend", "method", "rank", "n", "val ppl (95% CI)", "opt. state (all)", "opt. state (matrices)",
            "energy J (95% CI)", "pulse cycles"]
    lines = []
    for r in rows:
        if r["n"] == 0:
            lines.append([r["backend"], r["method"], str(r["rank"] or "-"), "0", "diverged", "", "", "", ""])
            continue
        p, e = r["val_ppl"], r["energy_J"]
        lines.append([r["backend"], r["method"], str(r["rank"] or "-"),
                      str(r["n"]) + (f" ({r['n_diverged']} div.)" if r["n_diverged"] else ""),
                      f"{p.mean:.3f} [{p.lo:.3f}, {p.hi:.3f}]", _bytes(r["opt_state_bytes"].mean),
                      _bytes(r["matrix_state_bytes"].mean), f"{e.mean:.4g} [{e.lo:.4g}, {e.hi:.4g}]",
                      f"{r['pulse_cycles']:.3g}"])
    return _render(head, lines, markdown)


def format_paired_table(rows, markdown: bool = True) -> str:
    """``a - b`` per (backend, rank): mean, 95 % interval, p, significance (raw and Holm-corrected)."""
    head = ["backend", "rank", "pairs", "a mean", "b mean", "a - b (95% CI)", "p", "significant", "Holm"]
    lines = []
    for r in rows:
        d = r["diff"]
        lines.append([r["backend"], str(r["rank"]), str(d.n), f"{r['a_mean']:.3f}", f"{r['b_mean']:.3f}",
                      f"{d.mean:+.3f} [{d.interval.lo:+.3f}, {d.interval.hi:+.3f}]", f"{d.p:.3g}",
                      "yes" if d.significant else "no", "yes" if r.get("holm") else "no"])
    return _render(head, lines, markdown)


def _render(head, lines, markdown):
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(row) + " |" for row in lines]
        return "\n".join(out)
    w = [max(len(h), *(len(r[i]) for r in lines)) if lines else len(h) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w[i]) for i, h in enumerate(head))]
    out += ["  ".join(c.ljust(w[i]) for i, c in enumerate(row)) for row in lines]
    return "\n".join(out)
