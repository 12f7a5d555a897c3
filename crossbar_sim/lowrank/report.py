"""Tables of low-rank runs: one row per (backend, method, rank) with means over seeds, and its text form.

``records`` are dicts with ``point`` (method, rank, backend, seed), ``status``, ``final_val_ppl``, ``wall_time_s``,
``budget`` (the budget attributes), ``metrics``, ``config`` and ``index``, as
:func:`crossbar_sim.engine.results.lm_records` reads them from a result file or :func:`result_records` builds
them from in-memory results.
"""
from __future__ import annotations

import json
import math

import numpy as np

from ..energy import CATEGORIES
from .train import METHODS


def _point_json(p) -> dict:
    return {k: p[k] for k in ("method", "rank", "seed", "backend", "run_seed") if k in p}


def label_of(p) -> str:
    r = "" if p["rank"] is None else f" r={p['rank']}"
    return f"{p['method']}{r} {p['backend']} s{p['seed']}"


# ---------------------------------------------------------------------------------------------- table
TABLE_COLUMNS = ("method", "rank", "backend", "val_ppl", "opt_state_bytes", "matrix_state_bytes", "pulse_cycles",
                 "device_pulses", "energy_total_J") + tuple(f"E_{c}" for c in CATEGORIES) + ("wall_time_s", "n_seeds")


def table_rows(records: list[dict]) -> list[dict]:
    """One row per (backend, method, rank): means over seeds. ``records`` from :func:`records.read_runs` or
    :func:`result_records`."""
    groups: dict = {}
    for r in records:
        p = r["point"]
        groups.setdefault((p["backend"], p["method"], p["rank"]), []).append(r)
    order = {m: i for i, m in enumerate(METHODS)}
    rows = []
    for (backend, method, rank), rs in sorted(groups.items(), key=lambda kv: (kv[0][0] != "analog", order[kv[0][1]],
                                                                              kv[0][2] or 0)):
        ok = [r for r in rs if r["status"] == "complete"] or rs
        b = [r["budget"] for r in ok]

        def mean(key):
            vals = [float(x.get(key, float("nan"))) for x in b]
            return float(np.mean(vals)) if vals else float("nan")

        row = {"method": method, "rank": rank, "backend": backend,
               "val_ppl": float(np.mean([r["final_val_ppl"] for r in ok])),
               "val_ppl_std": float(np.std([r["final_val_ppl"] for r in ok])),
               "opt_state_bytes": mean("memory_optimizer_state_total_bytes"),
               "matrix_state_bytes": mean("memory_optimizer_state_matrices_bytes"),
               "pulse_cycles": mean("count_n_pulse_cycles"), "device_pulses": mean("count_n_pulses"),
               "energy_total_J": mean("energy_total_J"),
               "wall_time_s": float(np.mean([r["wall_time_s"] for r in ok])), "n_seeds": len(ok),
               "status": ",".join(sorted({r["status"] for r in rs}))}
        for c in CATEGORIES:
            row[f"E_{c}"] = mean(f"energy_{c}_J")
        rows.append(row)
    return rows


def result_records(results: list) -> list[dict]:
    """Records like :func:`records.read_runs` from in-memory ``(point, LowRankResult)`` pairs."""
    out = []
    for p, res in results:
        budget = res.budget.as_attrs() if res.budget is not None else {}
        budget.update({f"memory_{k}_bytes": v for k, v in res.memory.items()})
        out.append({"point": _point_json(p), "status": res.status, "final_val_ppl": res.final_val_ppl,
                    "wall_time_s": res.wall_time_s, "budget": budget, "metrics": res.metrics,
                    "config": res.config, "index": p["index"]})
    return out


def _fmt_bytes(b) -> str:
    if not math.isfinite(b):
        return "nan"
    for unit, f in (("MB", 1e6), ("kB", 1e3)):
        if b >= f:
            return f"{b / f:.1f} {unit}"
    return f"{b:.0f} B"


def format_table(rows: list[dict]) -> str:
    """The closing table: method, rank, perplexity, digital optimiser-state bytes, pulse cycles, pulses,
    energy by category, wall time."""
    cats = [c for c in CATEGORIES if any(r[f"E_{c}"] > 0 for r in rows)]
    short = {"device_pulses": "pulses", "pulse_drivers": "drivers", "array_read": "array", "dac": "DAC",
             "adc": "ADC", "optimizer_compute": "opt.", "gradient_compute": "grad.", "model_compute": "model",
             "state_memory": "mem."}
    head = (f"{'method':<9} {'rank':>4} {'backend':<7} {'val ppl':>13} {'opt state':>10} {'(matrices)':>10} "
            f"{'pulse cyc':>10} {'dev pulses':>11} {'energy J':>9} "
            + " ".join(f"{short[c]:>8}" for c in cats) + f" {'wall s':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ppl = f"{r['val_ppl']:.3f}" + (f"+-{r['val_ppl_std']:.3f}" if r["n_seeds"] > 1 else "")
        lines.append(
            f"{r['method']:<9} {('-' if r['rank'] is None else r['rank']):>4} {r['backend']:<7} {ppl:>13} "
            f"{_fmt_bytes(r['opt_state_bytes']):>10} {_fmt_bytes(r['matrix_state_bytes']):>10} "
            f"{r['pulse_cycles']:10.3g} {r['device_pulses']:11.3g} {r['energy_total_J']:9.3g} "
            + " ".join(f"{r[f'E_{c}']:8.2g}" for c in cats) + f" {r['wall_time_s']:7.0f}")
    lines.append("energy columns in J by category (their sum is 'energy J'); opt state = digital optimiser state "
                 "of every parameter (float32); (matrices) = of the projected weight matrices only")
    return "\n".join(lines)


def save_table(rows: list[dict], path: str) -> None:
    with open(path, "w") as fh:
        json.dump(rows, fh, indent=1)
