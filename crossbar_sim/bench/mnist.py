"""Benchmark of network training on tiles: one MNIST epoch in the paper's setting, and where the time goes.

The workload is the paper's (``experiments/mnist_paper.py``): SoftBoundsReference tau = 0.78 with aihwkit's default
variations, full cycle-level stochastic pulse update (BL 31, UBLM + UM), full default periphery (forward with
noise and bound management, backward), digital bias and output scale; FCN batch 10, CNN batch 8; Tiki-Taka
with fast_lr 0.01 and one column transfer per mini-batch.

aihwkit reference: with ``aihwkit_python`` (``crossbar-sim bench --kind mnist --aihwkit-python PATH``) every timed
run is followed by the same run in aihwkit: ``crossbar_sim/bench/aihwkit_epoch.py`` (numpy, torch and aihwkit only) is
started with that interpreter on the same sample count, model, algorithm and thread count, and the ratio of the two
measured epoch times is reported. Without it, the ratio uses :data:`AIHWKIT_REF`, numbers typed in once (aihwkit
1.1.0 on this machine, one core, 60k samples: FCN analog SGD 13.5 s, Tiki-Taka 15.6 s; CNN from 4000-sample runs
analog SGD ~140 s, Tiki-Taka ~118 s), labelled as such in the output.

:func:`time_epoch` times ``samples`` training samples (after a short warm-up that compiles the kernels) and
extrapolates to 60k. :func:`profile_split` runs the same loop under cProfile and splits the time into forward
MVMs, backward MVMs, pulsed updates (of W or A), transfers (column reads + writes onto C, buffer arithmetic),
and the rest (activations, loss, layer bookkeeping: Python overhead of the network). cProfile itself adds
overhead to every Python call, so the split is a guide to proportions; the epoch time comes from
:func:`time_epoch`. :func:`call_overhead` measures the per-call cost of ``tile.update`` / ``tile.forward`` on a
one-device tile (pure overhead, no work).
"""
from __future__ import annotations

import cProfile
import pstats
import subprocess
import time
from pathlib import Path

import numpy as np

from .aihwkit_ref import check_aihwkit_python, parse_result, run_script
from ..errors import ConfigError

#: aihwkit 1.1.0 epoch times (s, 60k samples, one core) typed in from a one-off measurement: the fallback reference
AIHWKIT_REF = {("fcn", "analog_sgd"): 13.5, ("fcn", "tiki_taka"): 15.6, ("cnn", "analog_sgd"): 140.0,
               ("cnn", "tiki_taka"): 118.0}
TARGET = {("fcn", "tiki_taka"): 5.0, ("cnn", "tiki_taka"): 60.0}

#: the standalone aihwkit script and the algorithms it runs
AIHWKIT_SCRIPT = Path(__file__).with_name("aihwkit_epoch.py")
AIHWKIT_ALGORITHMS = ("analog_sgd", "tiki_taka", "digital_sgd")
_AIHWKIT_KEYS = ("tool", "model", "algorithm", "samples", "wall_s", "cpu_s", "epoch_60k_s")


def aihwkit_command(python, model, algorithm, samples, data_path, threads=1, seed=0, tau=0.78, warmup=200) -> list:
    """The command line of one aihwkit reference run (see ``crossbar_sim/bench/aihwkit_epoch.py``)."""
    if algorithm not in AIHWKIT_ALGORITHMS:
        raise ConfigError(f"the aihwkit reference runs {', '.join(AIHWKIT_ALGORITHMS)}, not {algorithm!r}.")
    return [str(python), str(AIHWKIT_SCRIPT), "--model", model, "--algorithm", algorithm, "--tau", repr(float(tau)),
            "--samples", str(int(samples)), "--data", str(data_path), "--seed", str(int(seed)),
            "--threads", str(int(threads)), "--warmup", str(int(warmup))]


def parse_aihwkit_output(stdout: str) -> dict:
    """The result of an aihwkit reference run: its last stdout line that is a JSON object of the script's keys."""
    return parse_result(stdout, _AIHWKIT_KEYS)


def run_aihwkit_epoch(python, model, algorithm, samples, data_path, threads=1, runner=subprocess.run,
                      timeout: float | None = None) -> dict:
    """Run the aihwkit script with interpreter ``python`` and return its parsed result (one-line errors)."""
    cmd = aihwkit_command(python, model, algorithm, samples, data_path, threads)
    return run_script(cmd, _AIHWKIT_KEYS, f"{model} {algorithm}", threads, runner, timeout)


def attach_aihwkit(row: dict, measured: dict | None) -> dict:
    """Set the aihwkit reference of a timing row: ``measured`` (a parsed aihwkit run) or the typed constant."""
    if measured is not None:
        ref, src = float(measured["epoch_60k_s"]), "measured"
        row["aihwkit_version"] = measured.get("aihwkit_version")
        row["aihwkit_samples"] = int(measured["samples"])
        row["aihwkit_wall_s"] = float(measured["wall_s"])
        row["aihwkit_cpu_s"] = float(measured["cpu_s"])
        row["aihwkit_60k_cpu_s"] = float(measured["epoch_60k_cpu_s"]) if "epoch_60k_cpu_s" in measured else None
    else:
        ref = AIHWKIT_REF.get((row["model"], row["algorithm"]))
        src = "typed" if ref is not None else None
    row["aihwkit_60k_s"] = ref
    row["aihwkit_source"] = src
    row["speedup_vs_aihwkit"] = (ref / row["epoch_60k_s"]) if ref else None
    return row


def _trainer(model, algorithm, samples, seed=0, data=None):
    from crossbar_sim.experiments.mnist_paper import paper_config
    from crossbar_sim.nn.training import NetTrainer

    cfg = paper_config(model, algorithm, 0.78, epochs=1, n_train=samples, n_test=100)
    return NetTrainer(cfg, seed, data=data)


def time_epoch(model, algorithm, samples, threads=1, data=None, warmup=200) -> dict:
    """Wall time of ``samples`` training samples (one pass), extrapolated to a 60k epoch."""
    from threadpoolctl import threadpool_limits

    from crossbar_sim.tiles.analog import set_num_threads

    set_num_threads(threads)
    with threadpool_limits(1):
        _trainer(model, algorithm, warmup, data=data).run_epoch()  # compile / warm caches
        tr = _trainer(model, algorithm, samples, data=data)
        t0 = time.perf_counter()
        c0 = time.process_time()
        m = tr.run_epoch()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
    per60k = wall * 60000.0 / samples
    row = {"kind": "mnist", "model": model, "algorithm": algorithm, "threads": threads, "samples": samples,
           "wall_s": wall, "cpu_s": cpu, "epoch_60k_s": per60k, "epoch_60k_cpu_s": cpu * 60000.0 / samples,
           "train_acc": m["train_acc"], "target_60k_s": TARGET.get((model, algorithm))}
    return attach_aihwkit(row, None)


_CATEGORIES = {
    "forward MVM": ("_forward",),
    "backward MVM": ("_backward",),
}


def profile_split(model, algorithm, samples, data=None) -> dict:
    """Seconds per category from cProfile (see module docstring)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        _trainer(model, algorithm, 100, data=data).run_epoch()
        tr = _trainer(model, algorithm, samples, data=data)
        pr = cProfile.Profile()
        pr.enable()
        tr.run_epoch()
        pr.disable()
    st = pstats.Stats(pr)
    cum = {}
    for (fname, _line, func), (_cc, _nc, _tt, ct, _callers) in st.stats.items():
        cum[(fname.rsplit("/", 1)[-1], func)] = cum.get((fname.rsplit("/", 1)[-1], func), 0.0) + ct
    total = cum.get(("training.py", "run_epoch"), 0.0)

    def c(file, func):
        return cum.get((file, func), 0.0)

    fwd = c("tile.py", "_forward") + c("compound.py", "_forward")
    bwd = c("tile.py", "_backward") + c("compound.py", "_backward")
    transfer = c("compound.py", "transfer") + c("buffered.py", "transfer")
    if algorithm == "analog_sgd":
        upd = c("tile.py", "_update")
    else:
        upd = c("compound.py", "_update") + c("buffered.py", "_update") - transfer
    kernel_upd = c("update.py", "pulsed_update") + c("update.py", "pulsed_update_serial")
    kernel_io = c("mvm.py", "mvm_prepare") + c("mvm.py", "mvm_finish")
    rest = total - fwd - bwd - upd - transfer
    return {"model": model, "algorithm": algorithm, "samples": samples, "total_s": total,
            "forward_mvm_s": fwd, "backward_mvm_s": bwd, "pulsed_update_s": upd, "transfer_s": transfer,
            "network_python_s": rest, "update_kernel_s": kernel_upd, "periphery_kernels_s": kernel_io}


def call_overhead(repeat=20000) -> dict:
    """Per-call time (us) of update / forward on a 1x1 tile and of the internal unchecked paths."""
    from crossbar_sim import AnalogTile, TileConfig
    from crossbar_sim.device_models import SoftBoundsReferenceDevice

    tile = AnalogTile(1, 1, TileConfig(device=SoftBoundsReferenceDevice()), seed=0)
    x = np.ones((1, 1), np.float32)
    d = np.full((1, 1), 1e-3, np.float32)
    out = {}
    for name, fn in (("update", lambda: tile.update(x, d, 0.01)), ("_update", lambda: tile._update(x, d, 0.01)),
                     ("forward", lambda: tile.forward(x)), ("_forward", lambda: tile._forward(x))):
        fn()
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(repeat // 5):
                fn()
            ts.append((time.perf_counter() - t0) / (repeat // 5) * 1e6)
        out[name + "_us"] = min(ts)
    return out


def run_mnist_bench(models=("fcn", "cnn"), algorithms=("analog_sgd", "tiki_taka"), threads=(1,), samples=None,
                    profile_samples=None, progress=print, aihwkit_python=None, aihwkit_runner=subprocess.run) -> list:
    """Timing rows (and profile rows) of every model x algorithm x thread count.

    With ``aihwkit_python`` every timing run is followed by the aihwkit reference run on the same samples (one
    process at a time), and the row's ``aihwkit_60k_s`` / ``speedup_vs_aihwkit`` come from it
    (``aihwkit_source`` "measured"); algorithms the aihwkit script does not run keep the typed fallback, if any.
    """
    from crossbar_sim.datasets import cache_file, load_dataset

    data = load_dataset("mnist")
    if aihwkit_python is not None:
        check_aihwkit_python(aihwkit_python, runner=aihwkit_runner)
    rows = []
    ov = call_overhead()
    ov["kind"] = "overhead"
    rows.append(ov)
    progress(format_row(ov))
    for th in threads:
        for model in models:
            n = (samples or {"fcn": 60000, "cnn": 4000}[model])
            for alg in algorithms:
                r = time_epoch(model, alg, n, th, data=data)
                if aihwkit_python is not None:
                    measured = None
                    if alg in AIHWKIT_ALGORITHMS:
                        measured = run_aihwkit_epoch(aihwkit_python, model, alg, n, cache_file("mnist"), th,
                                                     runner=aihwkit_runner)
                    attach_aihwkit(r, measured)  # an algorithm the script does not run keeps the typed fallback
                rows.append(r)
                progress(format_row(r))
    for model in models:
        n = profile_samples or {"fcn": 5000, "cnn": 500}[model]
        for alg in algorithms:
            r = profile_split(model, alg, n, data=data)
            r["kind"] = "profile"
            rows.append(r)
            progress(format_row(r))
    return rows


def format_row(r) -> str:
    if r["kind"] == "overhead":
        return ("call overhead (1x1 tile): " + "  ".join(f"{k[:-3]} {v:.1f} us" for k, v in r.items() if k.endswith("_us")))
    if r["kind"] == "profile":
        t = r["total_s"] or 1.0
        parts = [("forward MVM", r["forward_mvm_s"]), ("backward MVM", r["backward_mvm_s"]),
                 ("pulsed update", r["pulsed_update_s"]), ("transfer", r["transfer_s"]),
                 ("network python", r["network_python_s"])]
        return (f"profile {r['model']} {r['algorithm']:10s} ({r['samples']} samples, {t:.1f} s under cProfile): "
                + ", ".join(f"{n} {100 * v / t:.0f}%" for n, v in parts)
                + f"  [kernels: update {100 * r['update_kernel_s'] / t:.0f}%, periphery {100 * r['periphery_kernels_s'] / t:.0f}%]")
    ref = ""
    if r.get("aihwkit_60k_s"):
        label = (f"measured now, aihwkit {r.get('aihwkit_version')}, {r.get('aihwkit_samples')} samples"
                 if r.get("aihwkit_source") == "measured" else "typed constant from a one-off run, not measured now")
        ref = f"  aihwkit {r['aihwkit_60k_s']:.1f} s [{label}] speed-up x{r['speedup_vs_aihwkit']:.2f}"
    tgt = f"  target {r['target_60k_s']:.0f} s" if r["target_60k_s"] else ""
    return (f"mnist {r['model']} {r['algorithm']:10s} threads {r['threads']}: {r['samples']} samples in {r['wall_s']:.1f} s "
            f"(cpu {r['cpu_s']:.1f} s) -> 60k epoch {r['epoch_60k_s']:.1f} s{ref}{tgt}")
