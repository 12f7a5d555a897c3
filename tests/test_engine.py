"""The one engine for every kind: a network run and a language-model run killed mid-way resume to exactly the
uninterrupted file; a network sweep gives the same file with 1 worker, 2 workers and a Dask cluster of separate
processes; bad input is one line and writes nothing."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import h5py
import pytest

from _sweeputil import TINY_TOML, assert_same_runs, cli, digest, write_spec
from crossbar_sim.cli import main
from crossbar_sim.datasets import DATASETS, cache_file

needs_mnist = pytest.mark.skipif(
    not ("mnist" in os.environ.get("CROSSBAR_SIM_REQUIRE_DATA", "").split(",") or DATASETS["mnist"].locate()
         is not None or cache_file("mnist").is_file()),
    reason="MNIST is not installed: run 'crossbar-sim data install mnist'; CI installs it")

# a small Tiki-Taka FCN run: 2000 training images, 3 epochs (the resume test)
TRAIN_ARGS = ["train", "--algorithm", "tiki_taka", "--n-train", "2000", "--n-test", "500", "--epochs", "3",
              "--snapshot-every", "1", "-q"]

TINY_NET = """\
kind = "network"
name = "tinynet"
seed = 5

[net]
model = "fcn"
n_train = 200
n_test = 100
epochs = 1
batch_size = 10
snapshot_every = 1

[axes]
seed = [0]

[[cases]]
algorithm = ["analog_sgd", "tiki_taka"]
tau = [0.78]

[[cases]]
algorithm = "digital_sgd"
lr = 0.1
"""


def _kill_run(args, fault, cwd, timeout=300):
    """Run ``crossbar-sim ARGS`` until the fault point SIGKILLs it; return the return code."""
    env = dict(os.environ, CROSSBAR_SIM_FAULT=fault, PYTHONUNBUFFERED="1")
    r = subprocess.run([sys.executable, "-m", "crossbar_sim", *args], capture_output=True, text=True, timeout=timeout,
                       env=env, cwd=cwd)
    return r


def _datasets(path):
    """Every dataset of every run except the wall-clock ones (for exact comparisons)."""
    return digest(path)


@needs_mnist
@pytest.mark.parametrize("minutes", [10.0, 0.001])
def test_killed_network_run_resumes_to_the_uninterrupted_file(tmp_path, minutes):
    """SIGKILL in the middle of epoch 2; --resume continues from the last checkpoint (the end of epoch 1, or a
    mid-epoch one with its position in the data order when checkpoint.minutes is tiny) and every dataset of
    the file equals the uninterrupted run's."""
    sets = ["--set", f"checkpoint.minutes={minutes}"]
    clean = str(tmp_path / "clean.h5")
    assert main(TRAIN_ARGS + sets + ["--out", clean]) == 0
    out = str(tmp_path / "killed.h5")
    r = _kill_run(TRAIN_ARGS + sets + ["--out", out], "kill:epoch=2,batch=120", tmp_path)
    assert r.returncode == -signal.SIGKILL, r.stderr
    ckpt = out + ".journal/checkpoints/0000.h5"
    assert os.path.exists(ckpt)
    with h5py.File(ckpt, "r") as f:
        pos = json.loads(f.attrs["position"])
    assert pos["epoch"] == (1 if minutes > 1 else 2)  # epoch end / mid-epoch 2 (batches are 0.1-1 ms apart)
    assert main(TRAIN_ARGS + sets + ["--out", out, "--resume"]) == 0
    assert_same_runs(_datasets(out), _datasets(clean))
    assert not os.path.exists(out + ".journal")


def _lm_args(plays, out, *extra):
    return ["lowrank", "--methods", "osd", "--ranks", "2", "--backends", "analog", "--steps", "8", "-q",
            "--set", "lm.d_model=8", "--set", "lm.d_ff=12", "--set", "lm.n_layers=1", "--set", "lm.n_heads=2",
            "--set", "lm.seq_len=8", "--set", "batch_size=2", "--set", "eval_every=2", "--set", "eval_tokens=32",
            "--set", f"data.root={plays}", "--set", 'data.val_plays=["play-1"]', "--set", "checkpoint.every=2",
            "--workers", "1", "--no-plot", "--out", str(out), *extra]


def test_killed_lm_run_resumes_to_the_uninterrupted_file(tmp_path):
    from test_lowrank_lm import write_plays

    plays = write_plays(tmp_path / "plays")
    clean = tmp_path / "clean.h5"
    assert main(_lm_args(plays, clean)) == 0
    out = tmp_path / "killed.h5"
    r = _kill_run(_lm_args(plays, out), "kill:step=5", tmp_path)
    assert r.returncode == -signal.SIGKILL, r.stderr
    with h5py.File(str(out) + ".journal/checkpoints/0000.h5", "r") as f:
        assert json.loads(f.attrs["position"]) == {"step": 4}
    assert main(_lm_args(plays, out, "--resume")) == 0
    assert_same_runs(_datasets(str(out)), _datasets(str(clean)))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes, separate OS processes on loopback."""
    pytest.importorskip("distributed")
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    logdir = tmp_path_factory.mktemp("dask")
    bindir = os.path.dirname(sys.executable)
    dask = os.path.join(bindir, "dask")
    base = [dask] if os.path.exists(dask) else [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen(base + ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=open(logdir / "scheduler.log", "w"), stderr=subprocess.STDOUT)]
    for k in range(2):
        procs.append(subprocess.Popen(base + ["worker", addr, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                                              "--name", f"w{k}"],
                                      stdout=open(logdir / f"worker{k}.log", "w"), stderr=subprocess.STDOUT))
    from distributed import Client

    deadline = time.time() + 90
    try:
        while True:
            try:
                with Client(addr, timeout="5s") as c:
                    if len(c.scheduler_info()["workers"]) == 2:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("the Dask cluster did not start: " + (logdir / "scheduler.log").read_text()[-500:])
            time.sleep(0.5)
        yield addr
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@needs_mnist
def test_network_sweep_same_file_with_1_2_workers_and_a_dask_cluster(tmp_path, dask_cluster):
    spec = write_spec(tmp_path, TINY_NET, "tinynet.toml")
    files = {}
    for label, extra in (("w1", ["--workers", "1"]), ("w2", ["--workers", "2"]),
                         ("dask", ["--scheduler", dask_cluster])):
        out = str(tmp_path / f"{label}.h5")
        r = cli("sweep", spec, "--out", out, "-q", "--no-plot", *extra)
        assert r.returncode == 0, r.stderr
        files[label] = digest(out)
    assert len(files["w1"]) == 3
    assert_same_runs(files["w2"], files["w1"])
    assert_same_runs(files["dask"], files["w1"])
    with h5py.File(str(tmp_path / "w1.h5"), "r") as f:
        g = f["runs/0001"]  # Tiki-Taka: every array of every tile, per-epoch metrics on the epoch axis
        assert g.attrs["kind"] == "network" and g["metrics/steps"].attrs["axis"] == "epoch"
        assert "A" in g["tiles/layer2"] and "state" in g["tiles/layer2"]


def test_least_squares_sweep_on_the_dask_cluster(tmp_path, dask_cluster):
    spec = write_spec(tmp_path, TINY_TOML)
    a, b = str(tmp_path / "local.h5"), str(tmp_path / "dask.h5")
    assert main(["sweep", spec, "--workers", "1", "--out", a, "-q", "--no-plot"]) == 0
    assert main(["sweep", spec, "--scheduler", dask_cluster, "--out", b, "-q", "--no-plot"]) == 0
    assert_same_runs(digest(b), digest(a))


# ---------------------------------------------------------------------------------------------- bad input
def _one_line_error(capsys, rc, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


def test_an_axis_the_kind_does_not_have_is_one_line(tmp_path, capsys):
    spec = write_spec(tmp_path, TINY_NET.replace("seed = [0]", "seed = [0]\nnoise_std = [0.1]"), "n.toml")
    out = tmp_path / "x.h5"
    rc = main(["sweep", spec, "--out", str(out), "-q"])
    _one_line_error(capsys, rc, "Unknown axis key 'noise_std'", "network")
    assert not out.exists() and not os.path.exists(str(out) + ".journal")


def test_conflicting_axes_are_one_line(tmp_path, capsys):
    spec = write_spec(tmp_path, TINY_TOML.replace("seed = [0, 1]", "seed = [0, 1]\n\"device.w_max\" = [1.0]"))
    rc = main(["sweep", spec, "--out", str(tmp_path / "x.h5"), "-q"])
    _one_line_error(capsys, rc, "axes 'tau' and 'device.w_max' both set train.device.w_max")


def test_resume_with_another_configuration_names_the_keys(tmp_path, capsys):
    spec = write_spec(tmp_path)
    out = str(tmp_path / "r.h5")
    assert main(["sweep", spec, "--workers", "1", "--out", out, "-q", "--no-plot"]) == 0
    before = digest(out)
    capsys.readouterr()
    rc = main(["sweep", spec, "--out", out, "--resume", "-q", "--set", "device.dw_min=2e-3", "--set",
               "train.lr=0.05"])
    line = _one_line_error(capsys, rc, "holds a different sweep", "train.device.dw_min", "train.lr")
    assert "stored 0.001, now 0.002" in line
    assert_same_runs(digest(out), before)  # nothing written


def test_resume_compares_the_device_file_contents(tmp_path, capsys):
    """Editing a device file a spec names is a different sweep (the resolved device is compared)."""
    from crossbar_sim.device_models import ExpStepDevice, save_device_file

    dev = str(tmp_path / "dev.json")
    save_device_file(dev, ExpStepDevice(A_up=0.3), source="test")
    spec = write_spec(tmp_path, TINY_TOML.replace('model = "SoftBoundsReference"\n', f'preset = "{dev}"\n'))
    out = str(tmp_path / "d.h5")
    assert main(["sweep", spec, "--workers", "1", "--out", out, "-q", "--no-plot", "--set", "train.steps=5"]) == 0
    save_device_file(dev, ExpStepDevice(A_up=0.5), source="test")
    capsys.readouterr()
    rc = main(["sweep", spec, "--out", out, "--resume", "-q", "--set", "train.steps=5"])
    _one_line_error(capsys, rc, "holds a different sweep", "train.device.A_up", "stored 0.3, now 0.5")


@needs_mnist
def test_a_checkpoint_of_another_version_is_one_line(tmp_path, capsys):
    out = str(tmp_path / "v.h5")
    args = TRAIN_ARGS[:-2] + ["1", "-q", "--n-train", "200", "--out", out]
    r = _kill_run(args, "kill:epoch=1,batch=5", tmp_path)
    assert r.returncode == -signal.SIGKILL
    ckpt = out + ".journal/checkpoints/0000.h5"
    os.makedirs(os.path.dirname(ckpt), exist_ok=True)
    with h5py.File(ckpt, "w") as f:  # what a future crossbar-sim might leave
        f.attrs["format"] = "crossbar-sim-checkpoint"
        f.attrs["format_version"] = 99
        f.attrs["package_version"] = "9.9.9"
    stat = os.stat(out)
    rc = main(args + ["--resume"])
    _one_line_error(capsys, rc, "checkpoint of format 99", "crossbar-sim 9.9.9", "delete the checkpoint")
    assert os.stat(out).st_mtime == stat.st_mtime  # nothing written


def test_a_file_of_the_previous_format_opens_and_refuses_resume(tmp_path, capsys):
    """Format 1 files (crossbar-sim 0.1) still open in the readers; --resume says which version to use."""
    spec = write_spec(tmp_path)
    out = str(tmp_path / "old.h5")
    assert main(["sweep", spec, "--workers", "1", "--out", out, "-q", "--no-plot"]) == 0
    with h5py.File(out, "a") as f:
        f.attrs["format_version"] = 1
        f.attrs["package_version"] = "0.1.0"
        del f["sweep"].attrs["kind"], f["sweep"].attrs["resolved"]
    assert main(["inspect", out]) == 0
    assert main(["plot", out, "--kind", "convergence-vs-asymmetry", "-o", str(tmp_path / "f.png")]) == 0
    capsys.readouterr()
    rc = main(["sweep", spec, "--out", out, "--resume", "-q"])
    _one_line_error(capsys, rc, "format_version 1", "Resume or extend it with crossbar-sim 0.1.0")


def test_second_writer_is_refused_naming_the_owner(tmp_path, capsys):
    from crossbar_sim.engine.store import OutputLock

    out = str(tmp_path / "busy.h5")
    with OutputLock(out):
        rc = main(["sweep", write_spec(tmp_path), "--out", out, "-q", "--no-plot"])
        _one_line_error(capsys, rc, "is being written by another crossbar-sim process", f"PID {os.getpid()}")
        rc = main(["sweep", write_spec(tmp_path), "--out", out, "-q", "--no-plot", "--overwrite"])
        _one_line_error(capsys, rc, "is being written by another crossbar-sim process")
    assert not os.path.exists(out)


def test_a_reader_holding_the_file_open_never_breaks_the_writer(tmp_path):
    """A notebook keeps the result file open while the sweep writes it (HDF5 file locking would fail the
    writer with BlockingIOError)."""
    out = str(tmp_path / "watched.h5")
    spec = write_spec(tmp_path)
    p = subprocess.Popen([sys.executable, "-m", "crossbar_sim", "sweep", spec, "--out", out, "-q", "--no-plot",
                          "--workers", "1", "--set", "train.steps=400"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not os.path.exists(out) and time.time() < deadline:
        time.sleep(0.02)
    reads = 0
    while p.poll() is None and time.time() < deadline:
        try:
            with h5py.File(out, "r", locking=True) as f:  # a reader that does lock, as h5py does by default
                reads += len(f["runs"]) >= 0
                time.sleep(0.2)
        except OSError:
            time.sleep(0.01)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert reads > 0
    with h5py.File(out, "r") as f:
        assert len(f["runs"]) == 12


def test_engine_overhead_per_run_is_small(tmp_path):
    """The engine's own cost per least-squares run (spec, payload, record, journal, merge) stays small next to a
    run; the number is printed for the closing note, the bound is loose (a shared 2-core machine)."""
    from crossbar_sim.engine.runner import run_sweep
    from crossbar_sim.engine.spec import expand, load_spec_file

    spec = load_spec_file(write_spec(tmp_path))
    spec["train"]["steps"] = 1
    spec["train"]["snapshot_every"] = 0
    sw = expand(spec)
    t0 = time.perf_counter()
    assert run_sweep(sw, str(tmp_path / "o.h5"), workers=1, quiet=True, figures=False) == 0
    per_run = (time.perf_counter() - t0) / len(sw["points"])
    print(f"engine overhead per least-squares run (1 step each): {1e3 * per_run:.1f} ms")
    assert per_run < 1.0
