"""The aihwkit reference of the MNIST bench, without aihwkit: the standalone script's arguments and imports, the
parsing of its result line, the one-line errors for an interpreter without aihwkit, and the bench rows built from a
(fake) measured run. The real comparison needs a python with aihwkit: ``crossbar-sim bench --kind mnist
--aihwkit-python PATH``."""
import ast
import importlib.util
import json
import stat
import subprocess
import sys

import numpy as np
import pytest

from crossbar_sim.bench import aihwkit_epoch as AE
from crossbar_sim.bench import mnist as B
from crossbar_sim.cli import main as cli_main
from crossbar_sim.errors import ConfigError

RESULT = {"tool": "aihwkit", "aihwkit_version": "1.1.0", "model": "fcn", "algorithm": "analog_sgd", "samples": 6000,
          "wall_s": 1.5, "cpu_s": 1.4, "epoch_60k_s": 15.0, "epoch_60k_cpu_s": 14.0}


def test_script_arguments_and_paper_defaults():
    a = AE.parse_args(["--data", "m.npz"])
    assert (a.model, a.algorithm, a.tau, a.lr, a.learn_out_scaling, a.threads) == ("fcn", "analog_sgd", 0.78, 0.05,
                                                                                     True, 1)
    a = AE.parse_args(["--data", "m.npz", "--model", "cnn", "--algorithm", "digital_sgd", "--samples", "800",
                       "--no-learn-out-scaling", "--epochs", "3", "--seed", "4"])
    assert (a.model, a.lr, a.samples, a.learn_out_scaling, a.epochs, a.seed) == ("cnn", 0.1, 800, False, 3, 4)
    assert AE.BATCH == {"fcn": 10, "cnn": 8}
    for bad in (["--tau", "0"], ["--samples", "0"], ["--model", "lenet"], ["--algorithm", "ttv2"], ["--epochs", "-1"]):
        with pytest.raises(SystemExit):
            AE.parse_args(["--data", "m.npz"] + bad)
    with pytest.raises(SystemExit):
        AE.parse_args([])  # --data is required


@pytest.mark.parametrize("script", ["aihwkit_epoch", "aihwkit_tile", "aihwkit_presets"])
def test_script_imports_nothing_but_numpy_torch_aihwkit_and_the_stdlib(script):
    from crossbar_sim.bench import aihwkit_presets as AP
    from crossbar_sim.bench import tiles as TB

    path = {"aihwkit_epoch": AE.__file__, "aihwkit_tile": TB.AIHWKIT_TILE_SCRIPT, "aihwkit_presets": AP.__file__}
    tree = ast.parse(open(path[script]).read())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {n.name.split(".")[0] for n in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in the standalone script"
            roots.add(node.module.split(".")[0])
    assert "crossbar_sim" not in roots
    assert roots - set(sys.stdlib_module_names) <= {"numpy", "torch", "aihwkit"}, roots


def test_presets_script_draws_the_target_of_the_presets_aihwkit_task():
    # the aihwkit reference runs of issue 19 must learn the same W* as the sweep, without importing crossbar_sim
    from crossbar_sim.experiments.presets_aihwkit import SPEC

    from crossbar_sim.bench import aihwkit_presets as AP
    from crossbar_sim.least_squares.task import LeastSquares, LeastSquaresTask

    task = LeastSquares(LeastSquaresTask(**SPEC["task"]))
    np.testing.assert_array_equal(AP.target(), task.W_star)


def test_script_runs_as_a_file_without_torch_until_it_trains():
    # --help needs neither torch nor aihwkit; a bad argument is an argparse error (exit 2), not a traceback
    cp = subprocess.run([sys.executable, str(B.AIHWKIT_SCRIPT), "--help"], capture_output=True, text=True)
    assert cp.returncode == 0 and "--no-learn-out-scaling" in cp.stdout
    cp = subprocess.run([sys.executable, str(B.AIHWKIT_SCRIPT), "--data", "x", "--model", "lenet"],
                        capture_output=True, text=True)
    assert cp.returncode == 2 and "invalid choice" in cp.stderr and "Traceback" not in cp.stderr


def test_command_line_carries_the_same_samples_and_setting():
    cmd = B.aihwkit_command("/py", "cnn", "tiki_taka", 800, "/d/mnist.npz", threads=1)
    assert cmd[:2] == ["/py", str(B.AIHWKIT_SCRIPT)]
    args = AE.parse_args(cmd[2:])  # the script accepts exactly what the bench passes
    assert (args.model, args.algorithm, args.samples, args.data, args.tau, args.threads) == (
        "cnn", "tiki_taka", 800, "/d/mnist.npz", 0.78, 1)
    with pytest.raises(ConfigError, match="ttv2"):
        B.aihwkit_command("/py", "fcn", "ttv2", 10, "d")


def test_result_line_is_found_among_other_output():
    noise = "\n".join(["/x/aihwkit/...: UserWarning: something", "{not json", json.dumps({"tool": "other"}),
                       json.dumps(RESULT), ""])
    assert B.parse_aihwkit_output(noise) == RESULT
    # the last valid line wins
    later = dict(RESULT, wall_s=2.0)
    assert B.parse_aihwkit_output(json.dumps(RESULT) + "\n" + json.dumps(later))["wall_s"] == 2.0


@pytest.mark.parametrize("out", ["", "Traceback (most recent call last):\nKeyError: 'x_train'",
                                 json.dumps({k: v for k, v in RESULT.items() if k != "epoch_60k_s"}),
                                 json.dumps([RESULT])])
def test_missing_or_incomplete_result_is_a_one_line_error(out):
    with pytest.raises(ConfigError) as ei:
        B.parse_aihwkit_output(out)
    assert "\n" not in str(ei.value) and "no result line" in str(ei.value)


def _fake_python(tmp_path, body):
    p = tmp_path / "fakepython"
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p)


def test_interpreter_without_aihwkit_is_a_one_line_error(tmp_path):
    missing = str(tmp_path / "no" / "python")
    with pytest.raises(ConfigError) as ei:
        B.check_aihwkit_python(missing)
    assert missing in str(ei.value) and "\n" not in str(ei.value)

    noaihw = _fake_python(tmp_path, "echo 'Traceback (most recent call last):' >&2\n"
                                    "echo \"ModuleNotFoundError: No module named 'aihwkit'\" >&2\nexit 1")
    with pytest.raises(ConfigError) as ei:
        B.check_aihwkit_python(noaihw)
    msg = str(ei.value)
    assert "\n" not in msg and "not a python that imports aihwkit" in msg and "No module named 'aihwkit'" in msg

    with pytest.raises(ConfigError, match="not a python"):  # runs, but is no python: prints something else
        B.check_aihwkit_python(_fake_python(tmp_path, "echo hello"))
    assert B.check_aihwkit_python(_fake_python(tmp_path, "echo aihwkit 1.1.0")) == "1.1.0"


@pytest.mark.skipif(importlib.util.find_spec("aihwkit") is not None, reason="this python has aihwkit")
def test_our_own_python_is_rejected():
    with pytest.raises(ConfigError, match="No module named 'aihwkit'"):
        B.check_aihwkit_python(sys.executable)


def test_failed_run_reports_exit_code_and_last_stderr_line():
    def runner(cmd, **kw):
        assert kw["env"]["OMP_NUM_THREADS"] == "1"
        return subprocess.CompletedProcess(cmd, 1, "", "Traceback ...\nFileNotFoundError: [Errno 2] mnist.npz\n")

    with pytest.raises(ConfigError) as ei:
        B.run_aihwkit_epoch("/py", "fcn", "analog_sgd", 100, "mnist.npz", runner=runner)
    assert "exit code 1" in str(ei.value) and "FileNotFoundError" in str(ei.value) and "\n" not in str(ei.value)

    ok = lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0, "warning\n" + json.dumps(RESULT) + "\n", "")  # noqa
    assert B.run_aihwkit_epoch("/py", "fcn", "analog_sgd", 6000, "mnist.npz", runner=ok) == RESULT


def test_row_uses_the_measured_ratio_and_labels_the_typed_fallback():
    row = {"kind": "mnist", "model": "fcn", "algorithm": "analog_sgd", "threads": 1, "samples": 6000, "wall_s": 0.5,
           "cpu_s": 0.5, "epoch_60k_s": 5.0, "target_60k_s": None}
    typed = B.attach_aihwkit(dict(row), None)
    assert typed["aihwkit_source"] == "typed" and typed["aihwkit_60k_s"] == B.AIHWKIT_REF[("fcn", "analog_sgd")]
    assert "typed constant" in B.format_row(typed)
    meas = B.attach_aihwkit(dict(row), RESULT)
    assert meas["aihwkit_source"] == "measured" and meas["aihwkit_60k_s"] == 15.0
    assert meas["speedup_vs_aihwkit"] == pytest.approx(3.0)
    line = B.format_row(meas)
    assert "measured now" in line and "1.1.0" in line and "x3.00" in line and "typed" not in line
    none = B.attach_aihwkit(dict(row, algorithm="digital_sgd"), None)
    assert none["aihwkit_60k_s"] is None and "aihwkit" not in B.format_row(none)


def test_cli_rejects_a_bad_interpreter_before_any_timing(tmp_path, capsys, monkeypatch):
    from crossbar_sim.bench import tiles as TB

    timed = []
    monkeypatch.setattr(TB, "bench_update", lambda *a, **k: timed.append(a))  # must not be reached
    bad = str(tmp_path / "nopython")
    assert cli_main(["bench", "--kind", "update", "--sizes", "8", "--aihwkit-python", bad]) == 2
    err = capsys.readouterr().err
    assert bad in err and len(err.strip().splitlines()) == 1 and not timed

    calls = []
    monkeypatch.setattr(B, "time_epoch", lambda *a, **k: calls.append(a))  # would train: must not be reached
    monkeypatch.setattr(B, "call_overhead", lambda *a, **k: {"update_us": 1.0})
    monkeypatch.setattr("crossbar_sim.datasets.load_dataset", lambda name: {})
    bad = str(tmp_path / "nopython")
    assert cli_main(["bench", "--kind", "mnist", "--models", "fcn", "--aihwkit-python", bad]) == 2
    err = capsys.readouterr().err
    assert bad in err and len(err.strip().splitlines()) == 1 and not calls


def test_bench_runs_the_reference_after_each_of_our_runs(monkeypatch):
    order = []

    def fake_time_epoch(model, alg, n, th, data=None):
        order.append(("ours", model, alg, n))
        return B.attach_aihwkit({"kind": "mnist", "model": model, "algorithm": alg, "threads": th, "samples": n,
                                 "wall_s": 1.0, "cpu_s": 1.0, "epoch_60k_s": 60000.0 / n, "target_60k_s": None},
                                None)

    def runner(cmd, **kw):
        if cmd[1] == "-c":
            return subprocess.CompletedProcess(cmd, 0, "aihwkit 1.1.0\n", "")
        a = AE.parse_args(cmd[2:])
        order.append(("aihwkit", a.model, a.algorithm, a.samples))
        res = dict(RESULT, model=a.model, algorithm=a.algorithm, samples=a.samples, epoch_60k_s=2 * 60000.0 / a.samples)
        return subprocess.CompletedProcess(cmd, 0, json.dumps(res) + "\n", "")

    monkeypatch.setattr(B, "time_epoch", fake_time_epoch)
    monkeypatch.setattr(B, "call_overhead", lambda *a, **k: {"update_us": 1.0})
    monkeypatch.setattr(B, "profile_split", lambda *a, **k: dict(
        {k: 0.0 for k in ("total_s", "forward_mvm_s", "backward_mvm_s", "pulsed_update_s", "transfer_s",
                          "network_python_s", "update_kernel_s", "periphery_kernels_s")},
        model=a[0], algorithm=a[1], samples=1))
    monkeypatch.setattr("crossbar_sim.datasets.load_dataset", lambda name: {})
    rows = B.run_mnist_bench(("fcn",), ("analog_sgd", "ttv2"), (1,), 600, progress=lambda s: None,
                             aihwkit_python="/py", aihwkit_runner=runner)
    assert order == [("ours", "fcn", "analog_sgd", 600), ("aihwkit", "fcn", "analog_sgd", 600),
                     ("ours", "fcn", "ttv2", 600)]
    timed = [r for r in rows if r.get("kind") == "mnist"]
    assert timed[0]["aihwkit_source"] == "measured" and timed[0]["speedup_vs_aihwkit"] == pytest.approx(2.0)
    assert timed[1]["aihwkit_60k_s"] is None  # ttv2: no aihwkit script run, no typed constant


def test_tile_bench_times_aihwkit_after_each_shape_and_reports_the_ratio(monkeypatch):
    """bench --kind update/forward with --aihwkit-python: ours, then crossbar_sim/bench/aihwkit_tile.py on the same shape
    (threads passed on), the measured ratios in the rows and lines; the script's command line is well formed."""
    from crossbar_sim.bench import tiles as TB

    order = []
    monkeypatch.setattr(TB, "bench_update", lambda size, batch, th, repeat=7: order.append(("ours", size, batch)) or {
        "kind": "update", "size": size, "batch": batch, "threads": th, "ms_per_sample": 1.0, "ms_per_sample_min": 1.0,
        "ns_per_device_sample": 5.0, "ns_per_device_sample_min": 4.0, "pulses_per_device_sample": 5.0,
        "pulse_by_pulse_ns_per_device_sample": 50.0, "closed_form_speedup": 10.0, "numpy_twin_ms_per_sample": 9.0,
        "speedup_vs_numpy_twin": 60.0})

    def runner(cmd, **kw):
        if cmd[1] == "-c":
            return subprocess.CompletedProcess(cmd, 0, "aihwkit 1.1.0\n", "")
        assert cmd[1] == str(TB.AIHWKIT_TILE_SCRIPT) and kw["env"]["OMP_NUM_THREADS"] == "2"
        args = dict(zip(cmd[2::2], cmd[3::2]))
        order.append(("aihwkit", int(args["--size"]), int(args["--batch"])))
        res = {"tool": "aihwkit", "aihwkit_version": "1.1.0", "size": int(args["--size"]),
               "batch": int(args["--batch"]), "ns_per_device_sample": 80.0, "forward_ms": 1.0, "matmul_ms": 0.2}
        return subprocess.CompletedProcess(cmd, 0, "warning\n" + json.dumps(res) + "\n", "")

    rows = TB.run_benchmarks((16,), (1, 4), (2,), ("update",), 3, progress=lambda s: None,
                             aihwkit_python="/py", aihwkit_runner=runner)
    assert order == [("ours", 16, 1), ("aihwkit", 16, 1), ("ours", 16, 4), ("aihwkit", 16, 4)]
    assert [r["speedup_vs_aihwkit"] for r in rows] == [pytest.approx(16.0)] * 2
    assert "aihwkit 1.1.0 80.0 ns (x16.0, measured now)" in TB.format_row(rows[0])
    cp = subprocess.run([sys.executable, str(TB.AIHWKIT_TILE_SCRIPT), "--help"], capture_output=True, text=True)
    assert cp.returncode == 0 and "--batch" in cp.stdout  # argparse runs before any aihwkit import
