"""Training presets (crossbar_sim.presets): names, errors, runs that use them, the CLI listing.

Their parameters are compared with aihwkit 1.1.0's own objects in ``test_golden_issue19.py``."""
import json

import numpy as np
import pytest

from crossbar_sim.errors import ConfigError
from crossbar_sim.least_squares.task import LeastSquaresTask
from crossbar_sim.least_squares.training import TrainConfig, Trainer
from crossbar_sim.presets import (ALGORITHM_ALIASES, OUR_PRESETS, RPU_PRESETS, build_config, get_rpu_preset,
                                  known_presets, tile_config_for)
from crossbar_sim.tiles.factory import build_tile, tile_from_state

SMALL = LeastSquaresTask(inputs="gaussian", out_size=3, in_size=4, w_star_scale=0.3, noise_std=0.0,
                         gradient="per_sample")


def test_bad_names_and_combinations_are_one_line():
    with pytest.raises(ConfigError, match="Algorithm 'foo' is not known .aihwkit: 'Algorithm foo is not known'"):
        build_config("foo", "ConstantStep")
    with pytest.raises(ConfigError, match="'n_devices' argument of build_config applies to 'sgd' only"):
        build_config("ttv2", "ConstantStep", n_devices=2)
    with pytest.raises(ConfigError, match="Unknown aihwkit preset 'NopePreset'"):
        get_rpu_preset("NopePreset")
    with pytest.raises(ConfigError, match="'algorithm_preset' parameter names no preset: 'c-ttv5'"):
        TrainConfig(algorithm_preset="c-ttv5")
    with pytest.raises(ConfigError, match="give either 'algorithm' .'tiki_taka'. or 'algorithm_preset'"):
        TrainConfig(algorithm="tiki_taka", algorithm_preset="c-ttv2")
    with pytest.raises(ConfigError, match="'device_c' is not used with 'algorithm_preset'"):
        TrainConfig(algorithm_preset="ttv1", device_c=TrainConfig().device)
    with pytest.raises(ConfigError, match=r"transfer_extra of preset 'sgd': ConstantStepDevice has no compound options"):
        tile_config_for("sgd", "ConstantStep", extra={"fast_lr": 0.1})
    with pytest.raises(ConfigError, match="Unknown key 'no_such'"):
        tile_config_for("c-ttv2", "ConstantStep", extra={"no_such": 1})
    # combinations aihwkit rejects (its messages quoted)
    from crossbar_sim.tiles.buffered import ChoppedTransfer

    with pytest.raises(ConfigError, match="Only 1 read per transfer supported"):
        ChoppedTransfer(n_reads_per_transfer=2)


def test_aliases_and_names():
    assert build_config("TT", "ConstantStep") == build_config("tiki-taka", "ConstantStep") == \
        build_config("ttv1", "ConstantStep")
    assert build_config("ttv3", "ConstantStep") == build_config("c-ttv2", "ConstantStep")
    assert build_config("mixed-precision", "ConstantStep") == build_config("mp", "ConstantStep")
    assert get_rpu_preset("agadecram") == get_rpu_preset("AGADEcRamPreset")
    names = known_presets()
    assert set(ALGORITHM_ALIASES) | set(OUR_PRESETS) | set(RPU_PRESETS) == set(names) and len(RPU_PRESETS) == 52


@pytest.mark.parametrize("name", ["sgd", "ttv1", "ttv2", "c-ttv2", "agad", "mp", "ours-c-ttv2", "ours-agad",
                                  "ReRamSB4Preset", "PCMPreset", "MixedPrecisionPCMPreset", "AGADCapacitorPreset"])
def test_every_kind_of_preset_trains_and_round_trips(name):
    cfg = TrainConfig(algorithm_preset=name, lr=0.05, steps=30, record_every=10)
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    tr = Trainer(SMALL, cfg, seed=3)
    tr.run()
    assert np.isfinite(tr.rec["loss"][-1]) and tr.rec["pulses"][-1] > 0
    # the tile's whole state rebuilds a tile that continues bit for bit
    twin = tile_from_state(tr.model.get_state())
    x = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    d = np.random.default_rng(1).normal(size=(2, 3)).astype(np.float32)
    tr.model.update(x, d, 0.05)
    twin.update(x, d, 0.05)
    np.testing.assert_array_equal(tr.model.read_weights(), twin.read_weights())


def test_run_preset_uses_the_run_periphery_and_update_and_transfer_extra():
    from crossbar_sim.tiles.params import IOParameters, UpdateParameters

    io = IOParameters(out_noise=0.0)
    cfg = tile_config_for("c-ttv2", "SoftBoundsReference", forward=io, backward=IOParameters.perfect(),
                          update=UpdateParameters(pulse_type="mean_count"), extra={"auto_scale": False})
    assert cfg.forward == io and cfg.backward.is_perfect and cfg.device.transfer_forward.out_noise == 0.0
    assert cfg.device.transfer_forward.noise_management == "none"
    assert cfg.update.pulse_type == "mean_count" and cfg.update.desired_bl == 5  # the preset's BL on the run's type
    assert cfg.device.auto_scale is False and cfg.device.fast_lr == 0.1
    # an aihwkit RPU preset brings its own device and periphery
    rpu = tile_config_for("TTv2EcRamPreset", "SoftBoundsReference", forward=io)
    assert type(rpu.device.device_a).__name__ == "LinearStepDevice" and rpu.forward.out_bound == 20.0


def test_dotted_keys_reach_transfer_extra():
    from crossbar_sim.config import apply_overrides, parse_assignments

    cfg = apply_overrides(TrainConfig(algorithm_preset="c-ttv2"),
                          parse_assignments(["transfer_extra.auto_scale=false", "transfer_extra.fast_lr=0.2"]))
    assert cfg.transfer_extra == {"auto_scale": False, "fast_lr": 0.2}
    cfg = apply_overrides(cfg, {"transfer_extra": '{"in_chop_prob": 0.3}'})
    assert cfg.transfer_extra == {"in_chop_prob": 0.3}
    with pytest.raises(ConfigError, match="expects a table"):
        apply_overrides(cfg, {"transfer_extra": "[1, 2]"})


def test_sweep_axis_and_train_cli_reach_algorithm_preset(tmp_path, capsys):
    from crossbar_sim.cli import main
    from crossbar_sim.engine.spec import expand

    spec = {"task": {"inputs": "gaussian", "out_size": 2, "in_size": 3, "noise_std": 0.0, "gradient": "per_sample"},
            "train": {"steps": 5, "transfer_extra": {"auto_scale": False}},
            "axes": {"algorithm_preset": ["ttv2", "ours-agad"], "tau": [1.0]}}
    sw = expand(spec)
    configs = [sw["configs"][p["run_id"]] for p in sw["points"]]
    assert [c.train.algorithm_preset for c in configs] == ["ttv2", "ours-agad"]
    assert all(c.train.transfer_extra == {"auto_scale": False} for c in configs)
    rc = main(["devices", "--presets", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and {t["name"] for t in out["training_presets"]} >= {"c-ttv2", "ours-agad", "AGADEcRamPreset"}
    assert all("aihwkit" in t["source"] or t["kind"] == "ours" for t in out["training_presets"])
    rc = main(["train", "--set", "algorithm_preset=nope", "-o", str(tmp_path / "x.h5"), "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 2 and "names no preset: 'nope'" in err and len(err.strip().splitlines()) == 1
    rc = main(["train", "--set", "algorithm_preset=mp", "--dry-run"])  # the default run name says the preset
    assert rc == 0 and "fcn_mp_tau0.78_seed0" in capsys.readouterr().out


def test_build_tile_dispatch():
    for name in ("sgd", "ttv1", "ttv2", "agad", "mp"):
        t = build_tile(2, 3, build_config(name, "ConstantStep"), seed=0)
        assert t.shape == (2, 3)
    assert type(build_tile(2, 3, build_config("sgd", "ConstantStep", n_devices=3))).__name__ == "VectorTile"


def test_result_file_keeps_vector_and_mixed_precision_tiles(tmp_path):
    # a run's file stores the full state of every tile kind, so load_tile rebuilds a vector cell or a mixed-precision
    # tile (before: written as digital weights without a state); its weights are the run's final weights
    from crossbar_sim.cli import main
    from crossbar_sim.engine.store import h5file, load_tile, run_metrics

    spec = tmp_path / "st.toml"
    spec.write_text('name = "st"\n[task]\ninputs = "gaussian"\nout_size = 3\nin_size = 4\nnoise_std = 0.0\n'
                    'gradient = "per_sample"\n[train]\nsteps = 12\nrecord_every = 4\n'
                    '[axes]\nalgorithm_preset = ["mp", "ReRamES2Preset"]\n')
    out = tmp_path / "st.h5"
    assert main(["sweep", str(spec), "-o", str(out), "--workers", "1", "-q", "--no-plot"]) == 0
    task = LeastSquaresTask(inputs="gaussian", out_size=3, in_size=4, noise_std=0.0, gradient="per_sample").build()
    with h5file(str(out), "r") as f:
        for run_id, kind in (("0000", "MixedPrecisionTile"), ("0001", "VectorTile")):
            tile = load_tile(f, run_id)
            assert type(tile).__name__ == kind
            assert f[f"/runs/{run_id}/tiles/linear"].attrs["kind"] == kind
            final_loss = run_metrics(f, run_id)["loss"][-1]
            assert task.loss(tile.read_weights()) == pytest.approx(final_loss, rel=1e-6)
