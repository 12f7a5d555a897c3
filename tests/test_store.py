"""The HDF5 store: layout, tile dumps that continue bit-identically, crash safety, and inspect's errors."""
import json
import os
import shutil

import h5py
import numpy as np
import pytest

from _sweeputil import TINY_TOML, digest, write_spec
from crossbar_sim.cli import main
from crossbar_sim.device_models import asymmetric_linear_device
from crossbar_sim.errors import FormatError
from crossbar_sim.least_squares.theory import error_floor
from crossbar_sim.engine.record import RunRecord
from crossbar_sim.engine.store import (FORMAT_VERSION, SweepStore, load_tile, open_results, read_tree, write_record,
                                       write_tree)
from crossbar_sim.engine.spec import expand, load_spec_file
from crossbar_sim.least_squares.task import LeastSquaresTask
from crossbar_sim.least_squares.training import METRIC_UNITS, TrainConfig, Trainer


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    out = d / "results.h5"
    assert main(["sweep", write_spec(d), "--workers", "1", "--out", str(out), "-q"]) == 0
    return str(out)


def test_tree_round_trip(tmp_path):
    tree = {"kind": "X", "shape": [2, 3], "big": str(2**63 + 5), "w": np.arange(6, dtype=np.float32).reshape(2, 3),
            "sub": {"a": np.array([1, 2], np.int64), "n": 3, "deeper": {"b": np.zeros((2, 2, 2), np.uint8)}},
            "plain": {"x": 1, "y": [1, "2"]}}
    with h5py.File(tmp_path / "t.h5", "w") as f:
        write_tree(f.create_group("t"), tree)
    with h5py.File(tmp_path / "t.h5", "r") as f:
        back = read_tree(f["t"])
    assert back["kind"] == "X" and back["shape"] == [2, 3] and back["big"] == tree["big"]
    assert back["w"].dtype == np.float32 and np.array_equal(back["w"], tree["w"])
    assert back["sub"]["n"] == 3 and back["sub"]["a"].dtype == np.int64
    assert back["sub"]["deeper"]["b"].shape == (2, 2, 2) and back["plain"] == {"x": 1, "y": [1, "2"]}


def test_layout_matches_design(tiny_file):
    with h5py.File(tiny_file, "r") as f:
        a = f.attrs
        assert a["format"] == "crossbar-sim" and a["format_version"] == FORMAT_VERSION == 2
        assert a["package_version"] and a["created"] and json.loads(a["argv"])[1] == "sweep"
        s = f["sweep"]
        spec = json.loads(s.attrs["spec"])
        assert spec["name"] == "tiny" and json.loads(s.attrs["axes"])["tau"] == [0.6, 2.0]
        pts = s["points"][()]
        assert len(pts) == 12 and set(pts.dtype.names) >= {"run_id", "index", "run_seed", "tau", "seed", "algorithm"}
        assert sorted(f["runs"]) == sorted(r.decode() for r in pts["run_id"])
        assert "_staging" not in f
        for rid, g in f["runs"].items():
            assert g.attrs["status"] == "complete" and json.loads(g.attrs["config"])["train"]["steps"] == 30
            assert int(g.attrs["seed"]) == int(pts["run_seed"][pts["run_id"] == rid.encode()][0])
            m = g["metrics"]
            assert list(m["steps"][()]) == list(range(0, 31, 5))
            for name, text in METRIC_UNITS.items():
                assert m[name].shape == m["steps"].shape and m[name].attrs["units"] == "1"
                assert m[name].attrs["description"] == text
                assert m[name].dims[0][0].name == m["steps"].name  # attached to the step axis (a dimension scale)
            assert g.attrs["error_floor"] == pytest.approx(np.mean(m["loss"][()][m["steps"][()] >= 24]))
            layer = g["tiles/linear"]
            algo = json.loads(g.attrs["point"])["algorithm"]
            arrays = {"tiki_taka": ["A", "C"], "analog_sgd": ["W"], "digital_sgd": ["W"]}[algo]
            for arr in arrays:
                ag = layer[arr]
                assert sorted(ag["snapshots"], key=int) == ["0", "10", "20", "30"]
                assert ag["snapshots/30/weights"].shape == (2, 8)
                if algo == "digital_sgd":
                    continue
                dev = ag["device"]
                for p in ("scale_up", "scale_down", "min_bound", "max_bound", "reference", "weight_min", "weight_max"):
                    assert dev[p].shape == (2, 8) and dev[p].attrs["units"]
                assert np.allclose(dev["weight_max"][()], json.loads(g.attrs["point"])["tau"])
                assert ag["pulse_counts"].shape == (2, 8, 2) and ag["pulse_counts"].attrs["units"]
                assert int(ag["counters/n_pulses"][()]) == int(ag["pulse_counts"][()].sum()) > 0
            if algo == "tiki_taka":
                assert int(layer["counters/n_transfers"][()]) > 0 and layer.attrs["kind"] == "TikiTakaTile"
            if algo == "digital_sgd":
                assert "state" not in layer and layer.attrs["kind"] == "DigitalWeights"
            else:
                assert "state" in layer
    assert not os.path.exists(tiny_file + ".journal")  # removed once the sweep is complete


@pytest.mark.parametrize("algorithm", ["analog_sgd", "tiki_taka"])
def test_loaded_tile_continues_bit_identically(tmp_path, algorithm):
    task = LeastSquaresTask(n_samples=10, in_size=6, out_size=3)
    dev = asymmetric_linear_device(0.8, variations=True)  # device-to-device variation and c2c noise on
    tr = Trainer(task, TrainConfig(algorithm=algorithm, device=dev, steps=7, lr=0.2), seed=11)
    tr.run()
    path = tmp_path / "t.h5"
    res = tr.result()
    rec = RunRecord(kind="least_squares", config=res.config, seed=11, steps=res.steps, metrics=res.metrics,
                    tiles={"linear": tr.model}, snapshots={"linear": res.snapshots})
    with h5py.File(path, "w") as f:
        f.attrs["format"], f.attrs["format_version"] = "crossbar-sim", FORMAT_VERSION
        write_record(f.create_group("runs"), "0000", rec, {"tau": 0.8}, 0)
    original = tr.model
    loaded = load_tile(str(path), "/runs/0000")
    assert type(loaded) is type(original)
    loaded2 = load_tile(str(path), "/runs/0000/tiles/linear")
    rng = np.random.default_rng(0)
    for _ in range(5):  # continue both with the same inputs
        X = rng.standard_normal((4, 6)).astype(np.float32)
        D = rng.standard_normal((4, 3)).astype(np.float32)
        for t in (original, loaded, loaded2):
            t.update(X, D, 0.2)
    w0 = original.read_weights()
    assert np.array_equal(w0, loaded.read_weights()) and np.array_equal(w0, loaded2.read_weights())
    s0, s1 = original.get_state(), loaded.get_state()
    arrays = ["A", "C"] if algorithm == "tiki_taka" else [None]
    for k in arrays:
        a, b = (s0[k], s1[k]) if k else (s0, s1)
        for key in ("weights", "device_params", "pulse_counts", "stats"):
            assert np.array_equal(a[key], b[key]), key
        assert a["counters"] == b["counters"] and a["rng"] == b["rng"]


def test_load_tile_errors(tiny_file):
    with h5py.File(tiny_file, "r") as f:
        digital = next(r for r, g in f["runs"].items() if "digital" in g.attrs["point"])
    with pytest.raises(FormatError, match="holds no tile state"):
        load_tile(tiny_file, f"/runs/{digital}")
    with pytest.raises(FormatError, match="no object '/runs/9999'"):
        load_tile(tiny_file, "/runs/9999")


def test_error_floor_definition():
    steps = np.arange(0, 101, 10)
    loss = np.arange(11, dtype=float)
    assert error_floor(steps, loss, 100) == pytest.approx(np.mean([8, 9, 10]))  # steps 80, 90, 100
    assert error_floor(steps, loss, 100, fraction=0.5) == pytest.approx(np.mean([5, 6, 7, 8, 9, 10]))


# ------------------------------------------------------------------------------------------ bad files
def _inspect(capsys, *args):
    rc = main(["inspect", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.err.strip().splitlines()


def test_inspect_rejects_a_file_that_is_not_hdf5(tmp_path, capsys):
    p = tmp_path / "notes.h5"
    p.write_text("just some text\n")
    rc, err = _inspect(capsys, p)
    assert rc == 2 and len(err) == 1 and "is not an HDF5 file" in err[0] and err[0].startswith("crossbar-sim inspect")


def test_inspect_rejects_a_truncated_file(tmp_path, capsys, tiny_file):
    p = tmp_path / "cut.h5"
    with open(tiny_file, "rb") as src:
        data = src.read()
    p.write_bytes(data[: len(data) // 2])
    rc, err = _inspect(capsys, p)
    assert rc == 2 and len(err) == 1 and "truncated" in err[0]


def test_inspect_rejects_an_unknown_format_version(tmp_path, capsys, tiny_file):
    p = tmp_path / "v2.h5"
    shutil.copy(tiny_file, p)
    with h5py.File(p, "a") as f:
        f.attrs["format_version"] = 99
    rc, err = _inspect(capsys, p)
    assert rc == 2 and len(err) == 1 and "format_version 99" in err[0] and "reads format_version 1, 2" in err[0]
    with pytest.raises(FormatError, match=r"format_version 99 \(written by crossbar-sim .*\); this crossbar-sim"):
        open_results(str(p))


def test_inspect_rejects_foreign_hdf5_and_missing_files(tmp_path, capsys):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.arange(3)
    rc, err = _inspect(capsys, p)
    assert rc == 2 and len(err) == 1 and "not a crossbar-sim result file" in err[0]
    rc, err = _inspect(capsys, tmp_path / "absent.h5")
    assert rc == 2 and len(err) == 1 and "no such file" in err[0]
    rc, err = _inspect(capsys, tmp_path)
    assert rc == 2 and "is a directory" in err[0]


def test_inspect_as_a_subprocess_prints_one_line(tmp_path):
    from _sweeputil import cli

    p = tmp_path / "junk.h5"
    p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)  # an HDF5 signature and nothing else
    r = cli("inspect", p)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


# ------------------------------------------------------------------------------------------ inspect output
def test_inspect_shows_tree_runs_and_tile_statistics(tiny_file, capsys):
    assert main(["inspect", tiny_file]) == 0
    out = capsys.readouterr().out
    assert "crossbar-sim format_version 2" in out and "12 of 12 runs finished" in out
    assert "points  dataset (12,)" in out and "0000/  complete" in out
    with h5py.File(tiny_file, "r") as f:
        tt = next(r for r, g in f["runs"].items() if "tiki_taka" in g.attrs["point"])
    assert main(["inspect", tiny_file, tt]) == 0
    out = capsys.readouterr().out
    assert "config (fields that differ" in out and "TrainConfig(algorithm='tiki_taka'" in out
    assert "final metrics (step 30" in out and "error_floor" in out
    assert "array A  2 x 8" in out and "array C  2 x 8" in out
    assert "near a bound" in out and "symmetric point (mean " in out and "pulses (final) total" in out
    assert main(["inspect", tiny_file, f"/runs/{tt}/tiles/linear/C/snapshots/10"]) == 0
    out = capsys.readouterr().out
    assert "snapshot at step 10" in out and "weights  min" in out
    assert main(["inspect", tiny_file, f"/runs/{tt}/metrics/loss"]) == 0
    assert "loss  dataset (7,) float64" in capsys.readouterr().out
    assert main(["inspect", tiny_file, "/nope"]) == 2
    assert "no object '/nope'" in capsys.readouterr().err


def test_symmetric_point_and_near_bound_statistics():
    from crossbar_sim.cli.inspect import weight_statistics

    w = np.array([[-0.59, 0.0, 0.3, 0.6]])
    s = weight_statistics(w, np.full_like(w, -0.6), np.full_like(w, 0.6), np.zeros_like(w), near=0.05)
    assert s["frac_near_lower"] == 0.25 and s["frac_near_upper"] == 0.25  # within 0.06 of a bound
    assert s["sym_dist_mean"] == pytest.approx(np.mean(np.abs(w))) and s["sym_dist_max"] == pytest.approx(0.6)


# ------------------------------------------------------------------------------------------ crash safety
def _tiny_sweep(tmp_path, **over):
    spec = load_spec_file(write_spec(tmp_path, TINY_TOML))
    spec.update(over)
    return expand(spec)


def _results(sw, ids):
    from crossbar_sim.engine.executor import payloads, run_point

    return {j["run_id"]: run_point(j) for j in payloads(sw, ids, None)}


def test_main_file_is_rebuilt_from_the_journal(tmp_path):
    """A kill in the middle of an HDF5 write can leave the main file unreadable: the journal restores it."""
    sw = _tiny_sweep(tmp_path)
    out = str(tmp_path / "r.h5")
    store = SweepStore(out, sw, argv=["x"])
    res = _results(sw, ["0000", "0001", "0002"])
    for i, (rid, r) in enumerate(res.items()):
        store.write(rid, r, sw["points"][i]["values"], i)
    good = digest(out)
    with open(out, "r+b") as fh:  # damage the main file
        fh.seek(0)
        fh.write(b"\0" * 4096)
    store2 = SweepStore(out, sw, argv=["y"], resume=True)
    assert "rebuilding it from the journal" in store2.messages[0]
    assert sorted(store2.done_ids()) == ["0000", "0001", "0002"]
    from _sweeputil import assert_same_runs

    assert_same_runs(digest(out), good)
    assert not store2.finish()  # 9 runs still missing: the journal stays
    assert os.path.isdir(out + ".journal")


def test_interrupted_write_leaves_no_half_run(tmp_path):
    """A run staged but not moved into /runs (a write cut short) is invisible and dropped on resume."""
    sw = _tiny_sweep(tmp_path)
    out = str(tmp_path / "r.h5")
    store = SweepStore(out, sw, argv=["x"])
    res = _results(sw, ["0000", "0001"])
    store.write("0000", res["0000"], sw["points"][0]["values"], 0)
    with h5py.File(out, "a") as f:  # what a kill between staging and the move leaves behind
        write_record(f.require_group("_staging"), "0001", res["0001"], sw["points"][1]["values"], 1)
        del f["_staging/0001/metrics"]
    assert SweepStore(out, sw, resume=True).done_ids() == ["0000"]
    with h5py.File(out, "r") as f:
        assert "_staging" not in f and list(f["runs"]) == ["0000"]


def test_existing_file_needs_resume_or_overwrite_and_the_same_spec(tmp_path):
    sw = _tiny_sweep(tmp_path)
    out = str(tmp_path / "r.h5")
    SweepStore(out, sw)
    with pytest.raises(FormatError, match="already exists; pass --resume"):
        SweepStore(out, sw)
    other = _tiny_sweep(tmp_path, seed=8)
    with pytest.raises(FormatError, match=r"holds a different sweep: the sweep seed differs \(stored 7, now 8\)"):
        SweepStore(out, other, resume=True)
    SweepStore(out, other, overwrite=True)
    with h5py.File(out, "r") as f:
        assert json.loads(f["sweep"].attrs["spec"])["seed"] == 8
