"""Sweeps of low-rank runs: methods x ranks x seeds (x backends) -> runs -> HDF5 record -> table and figures.

A spec is a dict (the named experiment ``lowrank_shakespeare`` holds the default one)::

    name, description, seed             # the sweep's seed; run seeds come from (seed, seed label)
    methods = ["adamw", "galore", "osd", "tiki_taka"]
    ranks = [4, 8, 16]                  # for galore / osd (adamw and tiki_taka run once per seed)
    seeds = [0]                         # seed labels; every method with the same label sees the same
                                        # initial weights, the same batches and the same tile seeds
    backends = ["analog"]               # and/or "digital"
    lr = {"adamw": 3e-3, ...}           # peak learning rate per method
    run = {...}                         # LowRankRunConfig fields, nested ones as dicts (lm, data, tile, ...)
    optim = {"galore": {...}, "osd": {...}, "adamw": {...}}   # optimiser fields per method

Every point is built and validated before any run starts. A run is a pure function of its config and seed;
the parent process writes every result (:class:`~crossbar_sim.lowrank.records.LowRankStore`).
"""
from __future__ import annotations

import json
import math
import time
from typing import Callable

import numpy as np

from ..config import apply_overrides
from ..energy import CATEGORIES
from ..errors import ConfigError
from ..engine.spec import _flatten
from .optim import AdamWConfig, GaLoreConfig, OSDConfig
from .train import METHODS, LowRankRunConfig, train_lm

SPEC_KEYS = ("name", "description", "seed", "methods", "ranks", "seeds", "backends", "lr", "run", "optim")
_OPTIM = {"adamw": AdamWConfig, "galore": GaLoreConfig, "osd": OSDConfig}


def check_spec(spec: dict) -> dict:
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"Unknown spec key(s) {unknown}; allowed: {', '.join(SPEC_KEYS)}.")
    for m in spec.get("methods", []):
        if m not in METHODS:
            raise ConfigError(f"Unknown method {m!r} in 'methods'; allowed: {', '.join(METHODS)}.")
    for r in spec.get("ranks", []):
        if not isinstance(r, int) or isinstance(r, bool) or r < 1:
            raise ConfigError(f"'ranks' must be positive integers. Got {r!r}.")
    if not spec.get("methods"):
        raise ConfigError("The spec needs at least one method.")
    if any(m in ("galore", "osd") for m in spec["methods"]) and not spec.get("ranks"):
        raise ConfigError("GaLore and OSD need at least one rank ('ranks').")
    return spec


def point_config(spec: dict, method: str, rank, backend: str) -> LowRankRunConfig:
    """The run config of one point (validated)."""
    run = _flatten(spec.get("run", {}))
    lr = spec.get("lr", {}).get(method)
    base = LowRankRunConfig(method=method, backend=backend)
    if lr is not None:
        run["lr"] = lr
    cfg = apply_overrides(base, run)
    if method in _OPTIM:
        opt = _OPTIM[method]()
        over = _flatten(spec.get("optim", {}).get(method, {}))
        if rank is not None:
            over["rank"] = rank
        opt = apply_overrides(opt, over)
        cfg = cfg.replace(optim=opt)
    return cfg


def run_seed(sweep_seed: int, label: int) -> int:
    return int(np.random.SeedSequence([int(sweep_seed), int(label)]).generate_state(1, np.uint64)[0] >> 1)


def expand(spec: dict) -> dict:
    """``{"spec", "axes", "seed", "points": [{run_id, index, method, rank, seed, backend, run_seed, config}]}``."""
    check_spec(spec)
    points = []
    backends = spec.get("backends", ["analog"])
    for backend in backends:
        for method in spec["methods"]:
            if method == "tiki_taka" and backend == "digital":
                continue  # Tiki-Taka is analog only
            ranks = spec.get("ranks", []) if method in ("galore", "osd") else [None]
            for rank in ranks:
                for label in spec.get("seeds", [0]):
                    cfg = point_config(spec, method, rank, backend)
                    i = len(points)
                    points.append({"run_id": f"{i:04d}", "index": i, "method": method, "rank": rank,
                                   "seed": int(label), "backend": backend,
                                   "run_seed": run_seed(spec.get("seed", 0), label), "config": cfg})
    if not points:
        raise ConfigError("The spec expands to no runs (Tiki-Taka runs only on the analog backend).")
    axes = {"method": spec["methods"], "rank": spec.get("ranks", []), "seed": spec.get("seeds", [0]),
            "backend": backends}
    return {"spec": spec, "axes": axes, "seed": int(spec.get("seed", 0)), "points": points,
            "name": spec.get("name", ""), "description": spec.get("description", "")}


def _run_point(args):
    """Worker entry: run one point, return the result plus its arrays (weights, pulse counts)."""
    cfg_json, seed, corpus = args
    from ..config import Config
    from .train import LowRankTrainer, blas_threads
    from ..errors import DivergenceError

    cfg = Config.from_json(cfg_json)
    t0 = time.perf_counter()
    with blas_threads(1):
        tr = LowRankTrainer(cfg, seed, corpus)
        status, error = "complete", ""
        try:
            tr.run()
        except DivergenceError as exc:
            status, error = "diverged", str(exc)
        res = tr.result(time.perf_counter() - t0, status, error)
        return res, _arrays_of(tr)


def _arrays_of(tr) -> dict:
    weights, pulses = {}, {}
    for name, h in tr.model.mats.items():
        arrays = h.arrays
        if not arrays:
            weights[f"{name}/W"] = h.read()
        for a, t in arrays.items():
            weights[f"{name}/{a}"] = t.read_weights()
            pulses[f"{name}/{a}"] = t.pulse_counts.copy()
    return {"final_weights": weights, "pulse_counts": pulses}


def run_sweep(sweep: dict, out: str, argv=(), resume=False, overwrite=False, workers: int = 1,
              progress: bool = True, on_result: Callable | None = None, corpus=None) -> list:
    """Run every point not yet in ``out``; return ``[(point, result)]`` of the runs done now."""
    from .records import LowRankStore
    from .text import load_shakespeare

    store = LowRankStore(out, {k: v for k, v in sweep.items()},
                         argv=argv, resume=resume, overwrite=overwrite)
    done = store.done_ids()
    todo = [p for p in sweep["points"] if p["run_id"] not in done]
    if corpus is None and todo:
        corpus = load_shakespeare(todo[0]["config"].data)
    results = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="runs", unit="run", dynamic_ncols=True)

    def finish(p, res, arrays):
        store.write(p["run_id"], res, _point_json(p), p["index"], **arrays)
        results.append((p, res))
        if on_result is not None:
            on_result(p, res)
        if bar is not None:
            bar.set_postfix_str(f"{label_of(p)}: ppl {res.final_val_ppl:.3f}")
            bar.update(1)

    if workers <= 1:
        for p in todo:
            if bar is not None:
                bar.set_description(f"runs ({label_of(p)})")
            res, arrays = _run_point_progress(p, corpus, progress)
            finish(p, res, arrays)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers) as ex:
            futs = {ex.submit(_run_point, (p["config"].to_json(), p["run_seed"], corpus)): p for p in todo}
            for fut in as_completed(futs):
                res, arrays = fut.result()
                finish(futs[fut], res, arrays)
    if bar is not None:
        bar.close()
    store.finish()
    return results


def _run_point_progress(p, corpus, progress):
    from .train import LowRankTrainer, blas_threads
    from ..errors import DivergenceError

    cfg = p["config"]
    t0 = time.perf_counter()
    inner = None
    if progress:
        from tqdm import tqdm

        inner = tqdm(total=cfg.steps, desc=label_of(p), unit="step", leave=False, dynamic_ncols=True)

    def cb(step, info):
        if inner is not None:
            inner.update(step - inner.n)
            if info.get("val_ppl") is not None:
                inner.set_postfix(val_ppl=f"{info['val_ppl']:.3f}")

    with blas_threads(1):
        tr = LowRankTrainer(cfg, p["run_seed"], corpus)
        status, error = "complete", ""
        try:
            tr.run(cb)
        except DivergenceError as exc:
            status, error = "diverged", str(exc)
        res = tr.result(time.perf_counter() - t0, status, error)
    if inner is not None:
        inner.close()
    return res, _arrays_of(tr)


def _point_json(p) -> dict:
    return {k: p[k] for k in ("method", "rank", "seed", "backend", "run_seed")}


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
