"""Hostile use of the engine's writers and every reader: damaged and foreign files, bad output paths, a full disk,
a killed parent, a closed pipe, bad Dask addresses, bad train options and random spec values. Each case is one
line and exit code 2 (or a clean, complete result), never a traceback and never a lost finished run."""
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import pytest

from _sweeputil import SLOW_TOML, TINY_TOML, cli, write_spec
from crossbar_sim.cli import main

#: counts the hostile cases run (printed at the end of the module, for the closing note)
CASES = {"run": 0}


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("good")
    out = str(d / "good.h5")
    assert main(["sweep", write_spec(d), "--workers", "1", "--out", out, "-q", "--no-plot"]) == 0
    return out


def _one_line(capsys, rc, needle=None):
    CASES["run"] += 1
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1 and "Traceback" not in err[0], err
    if needle:
        assert needle in err[0], err[0]
    return err[0]


# ---------------------------------------------------------------------------------------------- damaged files
def _corpus(src: str, d) -> dict:
    """Damaged and foreign result files made from a good one."""
    files = {}

    def variant(name, edit):
        p = str(d / f"{name}.h5")
        shutil.copy(src, p)
        with h5py.File(p, "a") as f:
            edit(f)
        files[name] = p

    files["not_hdf5"] = str(d / "text.h5")
    open(files["not_hdf5"], "w").write("hello\n")
    files["empty"] = str(d / "empty.h5")
    open(files["empty"], "wb").close()
    with open(src, "rb") as fh:
        data = fh.read()
    files["truncated"] = str(d / "truncated.h5")
    open(files["truncated"], "wb").write(data[: len(data) // 3])
    files["foreign"] = str(d / "foreign.h5")
    with h5py.File(files["foreign"], "w") as f:
        f.create_dataset("x", data=[1, 2, 3])
    variant("future_version", lambda f: f.attrs.__setitem__("format_version", 99))
    variant("no_runs", lambda f: f.__delitem__("runs"))
    variant("no_sweep", lambda f: f.__delitem__("sweep"))
    variant("bad_json_config", lambda f: f["runs/0000"].attrs.__setitem__("config", "{not json"))
    variant("bad_json_point", lambda f: f["runs/0000"].attrs.__setitem__("point", "[[["))
    variant("empty_snapshots", lambda f: [f.__delitem__(f"runs/0000/tiles/linear/W/snapshots/{k}")
                                          for k in list(f["runs/0000/tiles/linear/W/snapshots"])])
    variant("no_metrics", lambda f: f.__delitem__("runs/0000/metrics"))
    variant("staging_left", lambda f: f.copy(f["runs/0000"], f.require_group("_staging"), "0000"))
    return files


READERS = [
    ("inspect", lambda p: ["inspect", p]),
    ("inspect_run", lambda p: ["inspect", p, "0000"]),
    ("inspect_full", lambda p: ["inspect", p, "--full"]),
    ("inspect_tile", lambda p: ["inspect", p, "/runs/0000/tiles/linear"]),
    ("plot_conv", lambda p: ["plot", p, "--kind", "convergence-vs-asymmetry", "-o", p + ".png"]),
    ("plot_loss", lambda p: ["plot", p, "--kind", "loss", "-o", p + ".loss.png"]),
    ("plot_weights", lambda p: ["plot", p, "--kind", "weights", "--run", "0000", "-o", p + ".w.png"]),
    ("plot_pulses", lambda p: ["plot", p, "--kind", "pulses", "--run", "0000", "-o", p + ".p.png"]),
    ("plot_net", lambda p: ["plot", p, "--kind", "accuracy-vs-tau", "-o", p + ".a.png"]),
    ("lowrank_report", lambda p: ["lowrank", "--report", p, "--no-plot"]),
]


def test_every_reader_over_damaged_and_foreign_files(tmp_path, good_file, capsys):
    """Each reader on each damaged file: it works (exit 0) or says in one line what is wrong (exit 2)."""
    corpus = _corpus(good_file, tmp_path)
    tried = 0
    for fname, path in corpus.items():
        for rname, args in READERS:
            rc = main(args(path))
            cap = capsys.readouterr()
            tried += 1
            assert "Traceback" not in cap.err, (fname, rname, cap.err)
            if rc != 0:
                lines = cap.err.strip().splitlines()
                assert rc == 2 and len(lines) == 1, (fname, rname, rc, cap.err)
    CASES["run"] += tried
    assert tried == len(corpus) * len(READERS)


def test_load_tile_names_what_exists(good_file):
    from crossbar_sim.engine.store import load_tile
    from crossbar_sim.errors import FormatError

    with pytest.raises(FormatError, match=r"no object '/runs/0000/tiles/nope'; /runs/0000/tiles holds: linear"):
        load_tile(good_file, "/runs/0000/tiles/nope")
    CASES["run"] += 1


def test_a_reader_of_a_file_being_written_says_so(tmp_path, good_file):
    from crossbar_sim.engine.store import OutputLock, open_results
    from crossbar_sim.errors import FormatError

    p = str(tmp_path / "half.h5")
    with open(good_file, "rb") as fh:
        open(p, "wb").write(fh.read()[:4096])
    with OutputLock(p):
        with pytest.raises(FormatError, match=r"is being written by a running crossbar-sim process \(PID"):
            open_results(p)
    CASES["run"] += 1


# ---------------------------------------------------------------------------------------------- bad outputs
@pytest.mark.parametrize("out, needle", [
    ("", "--out must name a file"),
    ("{d}/missing/x.h5", "does not exist"),
    ("{d}", "is a directory"),
    ("{ro}/x.h5", "is not writable"),
])
def test_bad_output_paths_are_one_line(tmp_path, capsys, out, needle):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        if os.geteuid() == 0 and "{ro}" in out:
            pytest.skip("root writes into read-only folders; the check is for ordinary users")
        path = out.format(d=tmp_path, ro=ro)
        rc = main(["sweep", write_spec(tmp_path), "--out", path, "-q", "--no-plot"])
        _one_line(capsys, rc, needle)
        rc = main(["sweep", write_spec(tmp_path), "--out", path, "-q", "--no-plot", "--overwrite"])
        _one_line(capsys, rc)
    finally:
        os.chmod(ro, 0o755)


@pytest.mark.parametrize("args, needle", [
    (["--kind", "loss", "-o", "{d}/missing/x.png"], "does not exist"),
    (["--kind", "loss", "-o", "{d}/x.bmpx"], "the extension must be one of"),
    (["--kind", "nonsense"], "invalid choice"),
])
def test_bad_plot_outputs_are_one_line(tmp_path, good_file, capsys, args, needle):
    try:
        rc = main(["plot", good_file] + [a.format(d=tmp_path) for a in args])
    except SystemExit as exc:  # argparse's own choice check
        rc = exc.code
    # argparse's own errors print its usage line first; ours are exactly one line
    err = capsys.readouterr().err.strip().splitlines()
    CASES["run"] += 1
    assert rc == 2 and needle in err[-1] and "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("mutate, needle", [
    (lambda t: t.replace('name = "tiny"', 'name = "a/b"'), "must not contain '/'"),
    (lambda t: t.replace("steps = 30", 'steps = "30"'), "expects an int, not the string '30'"),
    (lambda t: t.replace('model = "SoftBoundsReference"', "model = 3"), "device.model must be a device model name"),
    (lambda t: t.replace("seed = 7", "seed = 18446744073709551617"), "must be an int >= 0 and < 2**63"),
    (lambda t: t.replace("[axes]", '[axes]\n"device.w_max" = [1.0]'), "both set train.device.w_max"),
    (lambda t: t.replace("steps = 30", "steps = { a = 1 }"), "train.steps"),
])
def test_bad_spec_values_are_one_line(tmp_path, capsys, mutate, needle):
    out = tmp_path / "x.h5"
    rc = main(["sweep", write_spec(tmp_path, mutate(TINY_TOML)), "--out", str(out), "-q", "--dry-run"])
    _one_line(capsys, rc, needle)
    assert not out.exists()


def test_invalid_utf8_spec_is_one_line(tmp_path, capsys):
    p = tmp_path / "bad.toml"
    p.write_bytes(TINY_TOML.encode() + b'\nname2 = "\xff\xfe"\n')
    rc = main(["sweep", str(p), "--dry-run"])
    _one_line(capsys, rc, "is not UTF-8 text")


@pytest.mark.parametrize("args, needle", [
    (["--scheduler", "not an address"], "--scheduler expects a Dask scheduler address"),
    (["--scheduler", "tcp://127.0.0.1:99999"], "out of range"),
    (["--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "-1"], "--connect-timeout must be > 0"),
    (["--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1"], "Cannot connect to the Dask scheduler"),
    (["--workers", "0"], "--workers must be >= 1"),
    (["--resume", "--overwrite"], "exclude each other"),
])
def test_bad_executor_options_are_one_line_and_write_nothing(tmp_path, capsys, args, needle):
    pytest.importorskip("distributed")
    out = tmp_path / "x.h5"
    rc = main(["sweep", write_spec(tmp_path), "--out", str(out), "-q", "--no-plot", *args])
    _one_line(capsys, rc, needle)
    assert not out.exists() and not os.path.exists(str(out) + ".journal")


@pytest.mark.parametrize("args, needle", [
    (["--dataset", "shakespeare"], "--dataset must be an image dataset"),
    (["--experiment", "convergence_vs_asymmetry"], "is not a network experiment"),
    (["--seed", "-1"], "--seed must be an int in [0, 2**63)"),
    (["--run-id", "a/b"], "--run-id must be a plain name"),
    (["--epochs", "-2"], "--epochs must be >= 0"),
    (["--preset", "Unobtainium"], "--preset: "),
    (["--set", "update.desired_bl=abc"], "desired_bl"),
])
def test_bad_train_options_are_one_line(tmp_path, capsys, args, needle):
    out = tmp_path / "t.h5"
    rc = main(["train", "--out", str(out), "-q", *args])
    _one_line(capsys, rc, needle)
    assert not out.exists()


def test_lowrank_report_of_another_kind_says_which_command_reads_it(good_file, capsys):
    rc = main(["lowrank", "--report", good_file, "--no-plot"])
    _one_line(capsys, rc, "holds least-squares runs")


# ---------------------------------------------------------------------------------------------- processes
def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP])
def test_workers_exit_when_the_parent_dies(tmp_path, sig):
    spec = write_spec(tmp_path, SLOW_TOML, "slow.toml")
    p = subprocess.Popen([sys.executable, "-m", "crossbar_sim", "sweep", spec, "--out", str(tmp_path / "o.h5"),
                          "-q", "--no-plot", "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.time() + 60
    workers = []
    while time.time() < deadline and len(workers) < 2:
        workers = [c for c in _children(p.pid) if "spawn_main" in open(f"/proc/{c}/cmdline").read()]
        time.sleep(0.05)
    assert len(workers) == 2
    p.send_signal(sig)
    p.wait(timeout=30)
    t0 = time.time()
    while time.time() - t0 < 10 and any(_alive(w) for w in workers):
        time.sleep(0.1)
    CASES["run"] += 1
    assert not any(_alive(w) for w in workers), "workers outlived their parent"


def test_a_closed_pipe_does_not_stop_the_sweep(tmp_path):
    """`crossbar-sim sweep | head -1`: the sweep finishes and saves every run."""
    out = str(tmp_path / "piped.h5")
    cmd = f"{sys.executable} -m crossbar_sim sweep {write_spec(tmp_path)} --out {out} -q --no-plot --workers 1 | head -1"
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300)
    CASES["run"] += 1
    assert "BrokenPipeError" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stdout.strip().splitlines()) == 1
    with h5py.File(out, "r") as f:
        assert len(f["runs"]) == 12


def _tmpfs(path, size):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    os.makedirs(path, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_full_disk_is_one_line_and_keeps_the_finished_runs(tmp_path, capsys, workers):
    """A sweep on a small tmpfs: one line naming the folder; after space is freed, --resume completes it."""
    disk = tmp_path / "disk"
    if not _tmpfs(disk, "6m"):
        pytest.skip("needs root and mount to make a size-limited tmpfs (the check runs in CI as root)")
    try:
        filler = disk / "filler"
        spec = write_spec(tmp_path)
        out = str(disk / "full.h5")
        with open(filler, "wb") as fh:  # leave a little room: the header and a few runs fit, then the disk fills
            fh.write(b"\0" * (4 * 2**20))
        r = cli("sweep", spec, "--out", out, "-q", "--no-plot", "--workers", workers)
        CASES["run"] += 1
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and r.returncode != -11, r.stderr
        assert len(lines) == 1 and "the disk is full" in lines[0] and str(disk) in lines[0], r.stderr
        os.remove(filler)
        assert main(["inspect", out]) == 0
        capsys.readouterr()
        assert main(["sweep", spec, "--out", out, "--resume", "-q", "--no-plot", "--workers", "1"]) == 0
        with h5py.File(out, "r") as f:
            assert len(f["runs"]) == 12
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


# ---------------------------------------------------------------------------------------------- property tests
hyp = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_values = st.one_of(st.integers(-5, 10**20), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                    st.text(max_size=8), st.lists(st.integers(-3, 3), max_size=3),
                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_keys = st.sampled_from(["steps", "lr", "dw_min", "noise_std", "tau", "seed", "algorithm", "axes.tau", "axes.lr",
                         "device.w_max", "task.n_samples", "train.record_every", "transfer.fast_lr", "colour",
                         "update.desired_bl", "axes.seed", "name", "checkpoint.every"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_keys, _values), min_size=1, max_size=3))
def test_the_spec_parser_never_raises_anything_but_config_errors(items):
    """Random --set values on the tiny spec: expanded, or one ConfigError; never another exception type."""
    import json

    from crossbar_sim.engine.spec import apply_cli_overrides, expand
    from crossbar_sim.errors import ConfigError

    import tomllib

    spec = tomllib.loads(TINY_TOML)
    sets = [f"{k}={json.dumps(v)}" for k, v in items]
    CASES["run"] += 1
    try:
        sw = expand(apply_cli_overrides(spec, sets))
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert sw["points"] and all(p["run_id"] in sw["configs"] for p in sw["points"])


def test_zz_report_the_count(capsys):
    with capsys.disabled():
        print(f"\nrobustness: {CASES['run']} hostile cases tried in this module")
