"""Networks and least squares on inference tiles (issue 18): an ideal programming reproduces the trained network, a
result file gives the same draws as the live trainer, evaluate_after_training, and ``crossbar-sim evaluate``
(results in the run group with units, the figure, one line and exit 2 for bad input, the file untouched then).

The networks train on a few synthetic 28 x 28 images (no dataset needed): only the weights matter here.
"""
import hashlib

import h5py
import numpy as np
import pytest

from crossbar_sim import IOParameters
from crossbar_sim.cli import main as cli_main
from crossbar_sim.errors import FormatError
from crossbar_sim.inference import (
    DriftOnlyNoiseModel,
    InferenceEvalConfig,
    evaluate_trained,
    final_weights,
    program,
    trained_weights,
)
from crossbar_sim.nn import NetConfig, NetTrainer, train_network

PERFECT = IOParameters.perfect()


def _data(n_train=40, n_test=30, seed=0):
    rng = np.random.default_rng(seed)
    return {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "y_train": rng.integers(0, 10, n_train), "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "y_test": rng.integers(0, 10, n_test)}


def write_network_run(out, run_id, cfg, seed, data, failed=False):
    """A network run written as the engine writes it (the network kind, then the store), into ``out``."""
    from crossbar_sim.engine import kinds as K
    from crossbar_sim.engine.record import failed_record
    from crossbar_sim.engine.store import FORMAT_VERSION, h5file, write_record

    if failed:
        rec = failed_record("network", {"net": cfg.to_dict()}, seed, "killed")
    else:
        K._DATA_CACHE[cfg.dataset] = data
        try:
            rec = K.KINDS["network"].run(cfg, seed, K.RunContext(run_id, "network", cfg.to_json(), seed))
        finally:
            K._DATA_CACHE.pop(cfg.dataset, None)
    with h5file(str(out), "a") as f:
        f.attrs["format"], f.attrs["format_version"] = "crossbar-sim", FORMAT_VERSION
        write_record(f.require_group("runs"), run_id, rec, {"seed": seed}, 0)
    return rec


@pytest.mark.parametrize("model,algorithm", [("fcn", "tiki_taka"), ("fcn", "analog_sgd"), ("cnn", "analog_sgd"),
                                             ("fcn", "digital_sgd")])
def test_ideal_programming_reproduces_the_trained_network(model, algorithm):
    """No noise, no drift (nu = 0), perfect reads: the inference network's logits are the trained network's."""
    cfg = NetConfig(model=model, algorithm=algorithm, forward=PERFECT, backward=PERFECT, epochs=1, batch_size=8,
                    n_train=16, n_test=8, lr=0.2)
    tr = NetTrainer(cfg, seed=1, data=_data(16, 8))
    tr.run_epoch()
    net = program(tr, DriftOnlyNoiseModel(nu=0.0), seed=0, forward=PERFECT)
    net.drift_to(3.15e7)
    x = tr.data["x_test"]
    tr.model.train(False)
    want = tr.model.forward(x)
    np.testing.assert_allclose(net.forward(x), want, rtol=1e-4, atol=1e-5)
    if model == "fcn" and algorithm != "digital_sgd":
        assert len([k for k in net.tiles if k.startswith("layer0/")]) == 2  # aihwkit's 2 x 392-input mapping kept


def test_file_weights_give_the_same_draws_as_the_live_trainer(tmp_path):
    cfg = NetConfig(algorithm="tiki_taka", epochs=1, batch_size=8, n_train=24, n_test=16, snapshot_every=1)
    out = tmp_path / "r.h5"
    tr = train_network(cfg, 2, data=_data(24, 16))
    write_network_run(out, "tt", cfg, 2, _data(24, 16))
    live, stored = trained_weights(tr), final_weights(out, "tt")
    assert stored.step == live.step == 1 and stored.reference == pytest.approx(live.reference)
    for name in live.layers:
        np.testing.assert_array_equal(stored.layers[name].weights(), live.layers[name].weights())
        np.testing.assert_array_equal(stored.layers[name].bias, live.layers[name].bias)
        np.testing.assert_array_equal(stored.layers[name].out_scale, live.layers[name].out_scale)
    ecfg = InferenceEvalConfig(draws=2, times=(0.0, 86400.0), compensation=("none", "per_column"))
    a = evaluate_trained(live, ecfg, 5, structure=tr.model, data=tr.data)
    b = evaluate_trained(stored, ecfg, 5, data=tr.data)
    for k in ("none/values", "per_column/values"):
        np.testing.assert_array_equal(a[k], b[k])
        assert a[k].shape == (2, 2)


def test_evaluate_after_training_hook_of_networks_and_least_squares():
    from crossbar_sim import LeastSquaresTask, TrainConfig, train

    ecfg = InferenceEvalConfig(draws=3, times=(1.0, 3.15e7), compensation=("none", "global"))
    tr = train_network(NetConfig(epochs=1, batch_size=8, n_train=16, n_test=16, inference=ecfg), 0,
                       data=_data(16, 16))
    r = tr.inference
    assert r["metric"] == "test_acc" and r["global/values"].shape == (3, 2)
    assert np.all((r["none/values"] >= 0) & (r["none/values"] <= 1))
    res = train(LeastSquaresTask(noise_std=0.0), TrainConfig(steps=200, inference=ecfg), seed=0)
    r = res.inference
    # a year of PCM drift shrinks the weights (loss up); the global compensation undoes most of it
    assert r["none/mean"][1] > 2 * r["none/mean"][0]
    assert r["global/mean"][1] < 0.5 * r["none/mean"][1]
    np.testing.assert_allclose(r["none/mean"], r["none/values"].mean(axis=0))


# ------------------------------------------------------------------------------------------ the CLI
@pytest.fixture(scope="module")
def net_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("ev") / "net.h5"
    cfg = NetConfig(algorithm="analog_sgd", epochs=1, batch_size=8, n_train=16, n_test=20, snapshot_every=1)
    write_network_run(out, "a", cfg, 0, _data(16, 20))
    write_network_run(out, "unfinished", cfg, 0, None, failed=True)  # a failed run: no final weights
    return out


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_cli_evaluate_writes_results_and_figure(net_file, tmp_path, monkeypatch):
    png = tmp_path / "fig.png"
    data = _data(16, 20)
    monkeypatch.setattr("crossbar_sim.datasets.load_dataset", lambda name: data)
    rc = cli_main(["evaluate", str(net_file), "a", "--times", "0", "3600", "3.15e7", "--draws", "2",
                   "--compensation", "none", "global", "per_column", "--plot", str(png)])
    assert rc == 0 and png.stat().st_size > 10000
    with h5py.File(net_file) as f:
        g = f["runs/a/inference"]
        assert sorted(g) == ["pcm_global", "pcm_none", "pcm_per_column"]
        grp = g["pcm_global"]
        assert grp["times"].attrs["units"] == "s" and grp["values"].shape == (2, 3)
        assert grp.attrs["metric"] == "test_acc" and grp.attrs["compensation"] == "global"
        np.testing.assert_allclose(grp["mean"][()], grp["values"][()].mean(axis=0))
    before = _sha(net_file)
    rc = cli_main(["evaluate", str(net_file), "a", "--draws", "1", "--plot", "none"])  # exists, no --replace
    assert rc == 2 and _sha(net_file) == before
    rc = cli_main(["evaluate", str(net_file), "a", "--draws", "1", "--plot", "none", "--label", "pcm2",
                   "--set", "noise_model.drift_scale=2", "--compensation", "none"])
    assert rc == 0
    with h5py.File(net_file) as f:
        assert '"drift_scale": 2.0' in f["runs/a/inference/pcm2_none"].attrs["noise_model"]
    # --show: the stored results printed and plotted again, nothing evaluated or written
    before = _sha(net_file)
    assert cli_main(["evaluate", str(net_file), "a", "--show", "--plot", str(tmp_path / "again.png")]) == 0
    assert (tmp_path / "again.png").stat().st_size > 10000 and _sha(net_file) == before
    assert cli_main(["evaluate", str(net_file), "a", "--show", "--label", "other", "--plot", "none"]) == 2


@pytest.mark.parametrize("run,opts,msg", [
    ("a", ["--times", "1", "-5"], "'times' parameter"),
    ("a", ["--noise-model", "rram"], "Unknown noise model 'rram'"),
    ("a", ["--compensation", "local"], "'compensation' parameter"),
    ("a", ["--draws", "0"], "'draws' parameter"),
    ("unfinished", [], "status 'failed'"),
    ("nope", [], "no run 'nope'"),
])
def test_cli_evaluate_bad_input_is_one_line_exit_2(net_file, capsys, run, opts, msg):
    before = _sha(net_file)
    rc = cli_main(["evaluate", str(net_file), run, "--plot", "none"] + opts)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and msg in err[0] and "Traceback" not in err[0]
    assert _sha(net_file) == before


def test_old_file_without_digital_parameters_is_refused(net_file, tmp_path):
    import shutil

    old = tmp_path / "old.h5"
    shutil.copy(net_file, old)
    with h5py.File(old, "a") as f:
        del f["runs/a/tiles/layer0/digital"]
    with pytest.raises(FormatError, match="no stored layer0/digital/bias"):
        final_weights(old, "a")


def test_cli_evaluate_least_squares_sweep(tmp_path, capsys):
    """Every run of a sweep file: analog runs from their stored final tile, digital SGD from its last snapshot."""
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from _sweeputil import TINY_TOML, write_spec

    out = str(tmp_path / "ls.h5")
    assert cli_main(["sweep", write_spec(tmp_path, TINY_TOML), "--workers", "1", "--out", out, "-q",
                     "--no-plot"]) == 0
    capsys.readouterr()
    assert cli_main(["evaluate", out, "--draws", "2", "--times", "1", "86400", "--plot",
                     str(tmp_path / "ls.png")]) == 0
    text = capsys.readouterr().out
    assert "loss, mean +- std over 2 draws" in text
    with h5py.File(out) as f:
        for g in f["runs"].values():
            grp = g["inference/pcm_global"]
            assert grp.attrs["metric"] == "loss" and grp["values"].shape == (2, 2)
            assert np.isclose(grp.attrs["reference"], g.attrs["final_loss"])
    assert (tmp_path / "ls.png").stat().st_size > 10000
