"""`crossbar-sim sweep` driven as a user would: same results whatever the executor, and no finished run lost
or duplicated when a sweep is killed (SIGKILL) or interrupted (Ctrl-C) and then resumed."""
import json
import os
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest

from _sweeputil import SLOW_TOML, TINY_TOML, assert_same_runs, cli, digest, write_spec
from crossbar_sim.cli import main


@pytest.fixture(scope="module")
def tiny_clean(tmp_path_factory):
    d = tmp_path_factory.mktemp("clean_tiny")
    out = str(d / "clean.h5")
    assert main(["sweep", write_spec(d, TINY_TOML), "--workers", "1", "--out", out, "-q", "--no-plot"]) == 0
    return digest(out)


@pytest.fixture(scope="module")
def slow_clean(tmp_path_factory):
    d = tmp_path_factory.mktemp("clean_slow")
    out = str(d / "clean.h5")
    assert main(["sweep", write_spec(d, SLOW_TOML, "slow.toml"), "--workers", "1", "--out", out, "-q",
                 "--no-plot"]) == 0
    return digest(out)


def test_sweep_writes_results_and_figure(tmp_path, capsys, tiny_clean):
    out = tmp_path / "results.h5"
    assert main(["sweep", write_spec(tmp_path), "--workers", "1", "--out", str(out), "-q"]) == 0
    stdout = capsys.readouterr().out
    lines = [ln for ln in stdout.splitlines() if ln.startswith("[")]
    assert len(lines) == 12 and all(" floor " in ln and " final " in ln for ln in lines)  # one line per run
    # the summary: Theorem 2's quantities per tau (the tiny sweep is on the asymmetric linear device)
    assert "Theorem 2 of arXiv 2406.12774" in stdout and "Analog SGD G" in stdout
    assert "analog SGD runs lie below their own bound" in stdout or "was exceeded in" in stdout
    png = tmp_path / "results_convergence_vs_asymmetry.png"  # named after --out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not any(n.endswith(".tmp") or ".tmp-" in n for n in os.listdir(tmp_path))
    assert_same_runs(digest(str(out)), tiny_clean)


def test_figure_names_follow_out_and_figures_dir(tmp_path, capsys):
    spec = write_spec(tmp_path)
    assert main(["sweep", spec, "--workers", "1", "--out", str(tmp_path / "first.h5"), "-q"]) == 0
    assert main(["sweep", spec, "--workers", "1", "--out", str(tmp_path / "second.h5"), "-q",
                 "--figures-dir", str(tmp_path / "figs")]) == 0
    out = capsys.readouterr().out
    first = tmp_path / "first_convergence_vs_asymmetry.png"
    second = tmp_path / "figs" / "second_convergence_vs_asymmetry.png"  # the folder is created
    assert first.read_bytes()[:8] == second.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the first one kept
    assert f"figure: {first}" in out and f"figure: {second}" in out


def test_same_results_with_two_workers(tmp_path, tiny_clean):
    out = tmp_path / "w2.h5"
    r = cli("sweep", write_spec(tmp_path), "--workers", 2, "--out", out, "-q", "--no-plot")
    assert r.returncode == 0, r.stderr
    assert "on 2 worker processes" in r.stdout
    assert_same_runs(digest(str(out)), tiny_clean)


def test_same_results_on_a_dask_cluster(tmp_path, tiny_clean):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "dask.h5"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        rc = main(["sweep", write_spec(tmp_path), "--scheduler", cluster.scheduler_address, "--out", str(out),
                   "-q", "--no-plot"])
    assert rc == 0
    assert_same_runs(digest(str(out)), tiny_clean)


def test_unreachable_scheduler_is_one_clear_error(tmp_path, capsys):
    pytest.importorskip("distributed")
    rc = main(["sweep", write_spec(tmp_path), "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "2", "--out",
               str(tmp_path / "x.h5"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "Cannot connect to the Dask scheduler" in err[0]


def _start(spec, out, *extra):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "crossbar_sim", "sweep", spec, "--out", out, "-q", "--no-plot",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_runs(proc, n):
    """Read the per-run summary lines until ``n`` runs are reported finished."""
    seen = 0
    for line in proc.stdout:
        if line.startswith("["):
            seen += 1
            if seen >= n:
                return
    raise AssertionError(f"the sweep ended before {n} runs: {proc.stderr.read()}")


def _finished(out):
    with h5py.File(out, "r") as f:
        return sorted(f["runs"])


def test_sigkill_then_resume_gives_exactly_the_clean_runs(tmp_path, slow_clean):
    spec = write_spec(tmp_path, SLOW_TOML, "slow.toml")
    out = str(tmp_path / "killed.h5")
    proc = _start(spec, out, "--workers", "1")
    _wait_for_runs(proc, 2)
    proc.kill()  # SIGKILL: no handler, no cleanup
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done = _finished(out)
    assert 2 <= len(done) < len(slow_clean), "the sweep was not killed half-way"
    partial = digest(out)
    assert_same_runs(partial, {r: slow_clean[r] for r in partial})  # finished runs are whole and right
    r = cli("sweep", spec, "--out", out, "--resume", "--workers", 1, "-q", "--no-plot")
    assert r.returncode == 0, r.stderr
    assert f"({len(done)} already done), running {len(slow_clean) - len(done)}" in r.stdout
    assert sum(ln.startswith("[") for ln in r.stdout.splitlines()) == len(slow_clean) - len(done)  # none re-run
    assert_same_runs(digest(out), slow_clean)  # none lost, none duplicated, same numbers
    assert not os.path.exists(out + ".journal")


def test_ctrl_c_keeps_finished_runs_and_resume_completes(tmp_path, slow_clean):
    spec = write_spec(tmp_path, SLOW_TOML, "slow.toml")
    out = str(tmp_path / "interrupted.h5")
    proc = _start(spec, out, "--workers", "2")
    _wait_for_runs(proc, 2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted;" in stderr and "--resume" in stderr and "Traceback" not in stderr
    done = _finished(out)
    assert 2 <= len(done) < len(slow_clean)
    partial = digest(out)
    assert_same_runs(partial, {r: slow_clean[r] for r in partial})
    assert main(["sweep", spec, "--out", out, "--resume", "--workers", "1", "-q", "--no-plot"]) == 0
    assert_same_runs(digest(out), slow_clean)


def test_resume_of_a_finished_sweep_runs_nothing(tmp_path, capsys):
    spec = write_spec(tmp_path)
    out = str(tmp_path / "r.h5")
    assert main(["sweep", spec, "--workers", "1", "--out", out, "-q", "--no-plot"]) == 0
    before = digest(out)
    capsys.readouterr()
    assert main(["sweep", spec, "--workers", "1", "--out", out, "-q", "--no-plot", "--resume"]) == 0
    assert "(12 already done), running 0" in capsys.readouterr().out
    assert_same_runs(digest(out), before)
    # without --resume an existing file is refused (one line, exit 2); a different spec cannot be resumed
    assert main(["sweep", spec, "--workers", "1", "--out", out, "-q"]) == 2
    assert "already exists; pass --resume" in capsys.readouterr().err
    assert main(["sweep", spec, "--out", out, "-q", "--resume", "--set", "train.steps=31"]) == 2
    assert "holds a different sweep" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow on the way to the divergence
def test_single_diverging_run_is_kept_with_its_record(tmp_path, capsys):
    text = TINY_TOML.replace('algorithm = ["analog_sgd", "tiki_taka", "digital_sgd"]', 'algorithm = "digital_sgd"')
    spec = write_spec(tmp_path, text)
    out = str(tmp_path / "one.h5")
    # one run (executed in this process, with a progress bar over steps); digital SGD at lr 1e6 blows up
    rc = main(["sweep", spec, "--out", out, "-q", "--no-plot", "--set", "axes.tau=[2.0]", "--set", "axes.seed=[0]",
               "--set", "lr=1e6"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "1 runs in" in text and "(diverged: loss became" in text
    with h5py.File(out, "r") as f:
        (g,) = f["runs"].values()
        assert g.attrs["status"] == "diverged" and "loss became" in g.attrs["error"]
        assert g["metrics/loss"].shape[0] >= 2  # the record up to the divergence is kept
    assert not os.path.exists(out + ".journal")  # a diverged run counts as finished


def _children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(d))
    return kids


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the worker processes through /proc")
def test_a_dead_worker_is_one_clear_error_and_finished_runs_stay(tmp_path, slow_clean):
    spec = write_spec(tmp_path, SLOW_TOML, "slow.toml")
    out = str(tmp_path / "w.h5")
    proc = _start(spec, out, "--workers", "2")
    _wait_for_runs(proc, 1)
    kids = [k for k in _children(proc.pid) if "spawn_main" in open(f"/proc/{k}/cmdline").read()]
    assert kids, "no worker processes found"
    os.kill(kids[0], signal.SIGKILL)  # a worker dies (e.g. the OOM killer)
    _, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:  # the sweep finished before the kill landed: nothing to check
        pytest.skip("the sweep ended before the worker was killed")
    lines = stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "a worker process died" in lines[0]
    partial = digest(out)
    assert len(partial) >= 1
    assert_same_runs(partial, {r: slow_clean[r] for r in partial})


def test_buffered_tiki_taka_variants_sweep_store_and_reload(tmp_path, capsys):
    """TTv2, chopped TTv2 and AGAD run in least-squares sweeps; their tiles (buffers included) reload."""
    from crossbar_sim.tiles.buffered import BufferedTransferTile
    from crossbar_sim.engine.store import load_tile

    text = TINY_TOML.replace('algorithm = ["analog_sgd", "tiki_taka", "digital_sgd"]',
                             'algorithm = ["ttv2", "chopped_ttv2", "agad"]')
    out = str(tmp_path / "buffered.h5")
    assert main(["sweep", write_spec(tmp_path, text), "--workers", "1", "--out", out, "-q", "--no-plot",
                 "--set", "axes.seed=[0]", "--set", "axes.tau=[0.6]"]) == 0
    with h5py.File(out, "r") as f:
        runs = sorted(f["runs"])
        assert len(runs) == 3
        for r in runs:
            layer = f["runs"][r]["tiles"]
            (name,) = list(layer)
            assert layer[name].attrs["kind"] == "BufferedTransferTile"
            assert set(layer[name]) >= {"A", "C", "counters", "state"}
    for r in runs:
        tile = load_tile(out, f"/runs/{r}")
        assert isinstance(tile, BufferedTransferTile) and np.all(np.isfinite(tile.read_weights()))
    assert main(["inspect", out, runs[-1]]) == 0
    assert "BufferedTransferTile" in capsys.readouterr().out


PCM_TOML = """\
name = "pcm"
seed = 5

[task]
n_samples = 20
in_size = 8
out_size = 2

[device]
preset = "PCM"

[train]
steps = 30
record_every = 5
snapshot_every = 10

[axes]
seed = [0]

[[cases]]
algorithm = ["analog_sgd", "tiki_taka"]
"""


def test_pcm_pair_preset_sweep_stores_and_reloads(tmp_path, capsys):
    """[device] preset = "PCM" is the plus-minus pair: analog SGD on a pair and Tiki-Taka with pair arrays run
    from the CLI (device parameters set on the command line reach the unit device); the file holds each pair's
    weight and its g_plus/g_minus arrays, load_tile rebuilds the pairs, inspect reads them."""
    from crossbar_sim.tiles.onesided import OneSidedTile
    from crossbar_sim.engine.store import load_tile

    out = str(tmp_path / "pcm.h5")
    assert main(["sweep", write_spec(tmp_path, PCM_TOML), "--workers", "1", "--out", out, "-q", "--no-plot",
                 "--set", "device.refresh_every=2", "--set", "dw_min_std=0.3"]) == 0
    with h5py.File(out, "r") as f:
        runs = sorted(f["runs"])
        assert len(runs) == 2
        kinds = [f["runs"][r]["tiles"]["linear"].attrs["kind"] for r in runs]
        assert kinds == ["OneSidedTile", "TikiTakaTile"]
        for r, arrays in zip(runs, (["W"], ["A", "C"])):
            layer = f["runs"][r]["tiles"]["linear"]
            for a in arrays:
                assert layer[f"{a}/device"].attrs["model"] == "OneSidedUnitCell"
                assert "30" in layer[f"{a}/snapshots"]
                for side in ("g_plus", "g_minus"):
                    pc = layer[f"{a}/{side}/pulse_counts"][()]
                    assert pc[..., 1].sum() == 0  # one-sided: only potentiation
                    assert layer[f"{a}/{side}/device/max_bound"].shape == (2, 8)
            train_cfg = json.loads(f["runs"][r].attrs["config"])["train"]
            assert train_cfg["device"]["refresh_every"] == 2 and train_cfg["device"]["unit_device"]["dw_min_std"] == 0.3
    pair, tt = (load_tile(out, f"/runs/{r}") for r in runs)
    assert isinstance(pair, OneSidedTile) and pair.config.device.refresh_every == 2
    assert isinstance(tt.a, OneSidedTile) and isinstance(tt.c, OneSidedTile)
    assert pair.counters["n_refresh_checks"] == 15 and np.all(np.isfinite(pair.read_weights()))
    assert main(["inspect", out, runs[0]]) == 0
    assert "OneSidedUnitCell" in capsys.readouterr().out
