"""Reading result files into the per-kind records that tables and figures take (plain dicts of arrays).

The domain packages draw and tabulate records (``crossbar_sim.lowrank.report``, ``crossbar_sim.lowrank.plots``,
``crossbar_sim.nn.report``) without knowing the file layout; this module is the one place that reads it for them.
"""
from __future__ import annotations

import numpy as np

from ..errors import FormatError
from .record import DONE_STATUSES
from .store import file_kind, read_runs, run_budget, run_metrics


def require_kind(f, *kinds: str, what: str = "this figure") -> str:
    """The file's kind; one :class:`FormatError` line when it is not one of ``kinds`` (naming the command that
    reads it)."""
    k = file_kind(f)
    if k not in kinds:
        readers = {"least_squares": "plot --kind convergence-vs-asymmetry|loss|weights|pulses",
                   "network": "plot --kind accuracy-vs-tau|accuracy-vs-epoch|weights|pulses",
                   "lm": "lowrank --report, or plot --kind lm-perplexity|lm-memory|lm-energy"}
        raise FormatError(f"{f.filename} holds {k.replace('_', '-')} runs; {what} needs {' or '.join(kinds)} runs "
                          f"(for this file: crossbar-sim {readers.get(k, 'inspect')}).")
    return k


def lm_records(f, done_only: bool = False) -> list[dict]:
    """The language-model runs of an open file as report/plot records: ``point`` (method, rank, backend, seed),
    ``status``, ``final_val_ppl``, ``wall_time_s``, ``budget``, ``metrics`` (timing included), ``config``,
    ``index``."""
    require_kind(f, "lm", what="a language-model table")
    out = []
    for r in read_runs(f):
        if done_only and r["status"] not in DONE_STATUSES:
            continue
        cfg = r["config"]
        point = dict(r["point"])
        method = point.get("method", r.get("method", cfg.get("method")))
        rank = point.get("rank", r.get("rank"))
        if rank is None or rank == -1:
            optim = cfg.get("optim") or {}
            rank = optim.get("rank") if isinstance(optim, dict) and method in ("galore", "osd") else None
        point.update(method=method, rank=rank, backend=point.get("backend", r.get("backend", cfg.get("backend"))),
                     seed=point.get("seed", 0))
        out.append({"run_id": r["run_id"], "point": point, "status": r["status"],
                    "final_val_ppl": float(r.get("final_val_ppl", np.nan)), "wall_time_s": r["wall_time_s"],
                    "budget": run_budget(f, r["run_id"]), "metrics": run_metrics(f, r["run_id"]), "config": cfg,
                    "index": r["index"]})
    return out


def net_records(f, done_only: bool = True) -> list[dict]:
    """The network runs of an open file: the :func:`read_runs` row plus ``net`` (its NetConfig dict), ``tau``
    (the device bound the run used) and ``metrics`` (per epoch)."""
    require_kind(f, "network", what="a network figure")
    out = []
    for r in read_runs(f):
        if done_only and r["status"] not in DONE_STATUSES:
            continue
        net = r["config"].get("net", {})
        dev = net.get("device") or {}
        tau = dev.get("w_max", net.get("tau")) if isinstance(dev, dict) else net.get("tau")
        out.append(dict(r, net=net, tau=tau, metrics=run_metrics(f, r["run_id"])))
    return out
