"""Sweep specs: expansion, seeds, and rejection of bad specs before any run starts."""
import os

import numpy as np
import pytest

from _sweeputil import TINY_TOML, write_spec
from crossbar_sim.cli import main
from crossbar_sim.errors import ConfigError
from crossbar_sim.engine.spec import apply_cli_overrides, expand, list_experiments, load_spec_file, resolve_spec, run_seeds


def tiny_spec(tmp_path, text=TINY_TOML):
    return load_spec_file(write_spec(tmp_path, text))


def test_default_experiment_is_registered_and_expands():
    assert "convergence_vs_asymmetry" in list_experiments()
    spec, _ = resolve_spec(None)
    sw = expand(spec)
    # 3 seeds x [(a) 2 algorithms x 6 tau + (b) 2 x 3 lr + digital 4 lr + (c) 3 noise levels + Theorem 3: 6 tau]
    assert len(sw["points"]) == 3 * (12 + 6 + 4 + 3 + 6) == 93
    assert sw["figures"] == ["convergence-vs-asymmetry"] and sw["floor_fraction"] == 0.25
    cfgs = list(sw["configs"].values())
    assert {c.train.algorithm for c in cfgs} == {"analog_sgd", "tiki_taka", "digital_sgd"}
    p0 = sw["points"][0]
    c0 = sw["configs"][p0["run_id"]]
    assert c0.train.device.w_max == p0["values"]["tau"] == -c0.train.device.w_min
    assert c0.train.device.dw_min_std == 0.0 and c0.train.device.up_down_dtod == 0.0
    assert c0.train.steps == 10000 and c0.task.noise_std == 0.3 and c0.train.lr == 0.01
    assert c0.train.update.desired_bl == 100  # no pulse train is clipped at lr 0.04
    tt = next(c for c in cfgs if c.train.algorithm == "tiki_taka")
    assert tt.train.transfer.fast_lr == 0.02 and tt.train.transfer.transfer_forward.is_perfect
    assert tt.train.transfer.n_reads_per_transfer == 2
    lower = [c for c in cfgs if c.task.noise_dist == "two_point"]
    assert len(lower) == 18 and all(c.task.w_star_dist == "sign" and c.task.n_samples == 1000 for c in lower)
    assert sorted({c.train.lr for c in cfgs if c.train.algorithm == "digital_sgd"}) == [0.005, 0.01, 0.02, 0.04]


def test_run_seeds_are_spawned_from_the_sweep_seed(tmp_path):
    sw = expand(tiny_spec(tmp_path))
    seeds = [p["seed"] for p in sw["points"]]
    assert seeds == run_seeds(7, len(seeds))
    children = np.random.SeedSequence(7).spawn(len(seeds))
    assert seeds[3] == int(children[3].generate_state(1, np.uint64)[0])
    assert len(set(seeds)) == len(seeds)
    assert [p["seed"] for p in expand(tiny_spec(tmp_path))["points"]] == seeds  # deterministic


def test_axes_and_cases_expand_to_the_product(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["cases"] = [{"algorithm": "analog_sgd", "lr": [0.1, 0.05]}, {"algorithm": "tiki_taka"}]
    sw = expand(spec)
    assert len(sw["points"]) == 2 * 2 * (2 + 1)
    lrs = sorted({(c.train.algorithm, c.train.lr) for c in sw["configs"].values()})
    assert lrs == [("analog_sgd", 0.05), ("analog_sgd", 0.1), ("tiki_taka", 0.1)]
    assert sw["axes"]["lr"] == [0.1, 0.05]


def test_device_parameter_axes_and_dotted_paths(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["axes"] = {"dw_min": [1e-3, 2e-3], "device.up_down": [0.0, 0.1], "transfer.fast_lr": [0.02]}
    sw = expand(spec)
    cfgs = list(sw["configs"].values())
    assert {c.train.device.dw_min for c in cfgs} == {1e-3, 2e-3}
    assert {c.train.device.up_down for c in cfgs} == {0.0, 0.1}
    assert {c.train.transfer.fast_lr for c in cfgs} == {0.02}


def test_cli_overrides(tmp_path):
    spec = apply_cli_overrides(tiny_spec(tmp_path), ["device.dw_min=2e-3", "steps=12", "axes.seed=[0]", "seed=3",
                                                     "task.noise_std=0.0", "train.transfer.fast_lr=0.05"])
    sw = expand(spec)
    c = next(iter(sw["configs"].values()))
    assert (c.train.device.dw_min, c.train.steps, c.task.noise_std, c.train.transfer.fast_lr) == (2e-3, 12, 0.0, 0.05)
    assert sw["seed"] == 3 and sw["axes"]["seed"] == [0]


@pytest.mark.parametrize("mutate, match", [
    (lambda s: s["axes"].update(foo=[1, 2]), r"Unknown axis key 'foo'"),
    (lambda s: s["axes"].update(tau=[]), r"axis 'tau' is empty"),
    (lambda s: s["axes"].update(tau=[0.6, 0.0]), r"axis 'tau' must hold floats in \(0, inf\).*Got 0.0"),
    (lambda s: s["axes"].update(tau=[-1.0]), r"axis 'tau' must hold floats in \(0, inf\)"),
    (lambda s: s["axes"].update(tau=["big"]), r"axis 'tau' must hold floats"),
    (lambda s: s["axes"].update(lr=["fast"]), r"axis 'lr'.*expects a float"),
    (lambda s: s["axes"].update(steps=[2.5]), r"axis 'steps'.*expects an int"),
    (lambda s: s["axes"].update(dw_min=[-1e-3]), r"axis 'dw_min'.*'dw_min' parameter"),
    (lambda s: s["axes"].update(tau=[1, "a"]), r"axis 'tau' mixes value types"),
    (lambda s: s["axes"].update(seed=[0, 0]), r"axis 'seed' repeats a value"),
    (lambda s: s["axes"].update(seed=[-1]), r"axis 'seed' must hold ints >= 0"),
    (lambda s: s["axes"].update(model=["ConstantStep"]), r"axis 'model'"),
    (lambda s: s.update(cases=[{"algorithm": ["adam"]}]), r"axis 'algorithm'.*'algorithm' parameter"),
    (lambda s: s["train"].update(steps=2.5), r"train\.steps.*expects an int"),
    (lambda s: s["train"].update(bogus=1), r"train\.bogus.*no parameter 'bogus'"),
    (lambda s: s["device"].update(dw_min="small"), r"device\.dw_min.*expects a float"),
    (lambda s: s["device"].update(colour=1), r"device\.colour"),
    (lambda s: s["device"].update(model="Memristor9000"), r"device\.model.*Unknown device 'Memristor9000'"),
    (lambda s: s["task"].update(n_samples=0), r"task\.n_samples"),
    (lambda s: s.update(extra=1), r"Unknown spec key\(s\) 'extra'"),
    (lambda s: s.update(seed=-3), r"sweep 'seed' must be an int >= 0"),
    (lambda s: s.update(figures=["pie-chart"]), r"Unknown figure 'pie-chart'"),
    (lambda s: s.update(floor_fraction=0.0), r"'floor_fraction' must be a float in \(0, 1\]"),
    (lambda s: s.update(cases=[{"tau": [1.0]}]), r"cases\[0\]: 'tau' is already a global axis"),
    (lambda s: s.update(cases="analog"), r"'cases' must be a list of tables"),
    (lambda s: s.update(axes=[1]), r"'axes' must be a table"),
    (lambda s: s["train"].update(device={"dw_min": 1}), r"set the device in the \[device\] table"),
])
def test_bad_specs_are_rejected_naming_the_key(tmp_path, mutate, match):
    spec = tiny_spec(tmp_path)
    mutate(spec)
    with pytest.raises(ConfigError, match=match):
        expand(spec)


def test_duplicate_points_are_rejected(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["cases"] = [{"algorithm": "analog_sgd"}, {"algorithm": "analog_sgd", "lr": 0.1}]
    with pytest.raises(ConfigError, match="same configuration"):
        expand(spec)


@pytest.mark.parametrize("sets, match", [
    (["colour=red"], r"Unknown --set key 'colour'"),
    (["device.dw_min"], r"--set expects KEY=VALUE"),
    (["device.dw_min=abc"], r"device\.dw_min.*expects a float"),
    (["axes.tau=[]"], r"axis 'tau' is empty"),
])
def test_bad_overrides_are_rejected(tmp_path, sets, match):
    with pytest.raises(ConfigError, match=match):
        expand(apply_cli_overrides(tiny_spec(tmp_path), sets))


def test_unknown_experiment_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown experiment 'nope'.*convergence_vs_asymmetry"):
        resolve_spec("nope")
    with pytest.raises(ConfigError, match=r"Cannot read the spec file"):
        resolve_spec(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("axes = [")
    with pytest.raises(ConfigError, match=r"is not valid TOML"):
        resolve_spec(str(bad))


@pytest.mark.parametrize("args, match", [
    (["--set", "axes.tau=[0.5, -1]"], "axis 'tau' must hold floats in (0, inf)"),
    (["--set", "axes.foo=[1]"], "Unknown axis key 'foo'"),
    (["--set", "axes.lr=[]"], "axis 'lr' is empty"),
    (["--set", "device.dw_min=abc"], "device.dw_min"),
    (["--workers", "0"], "--workers must be >= 1"),
])
def test_cli_rejects_a_bad_spec_before_any_run(tmp_path, capsys, args, match):
    spec = write_spec(tmp_path)
    out = tmp_path / "r.h5"
    rc = main(["sweep", spec, "--out", str(out), "-q", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and match in err[0] and err[0].startswith("crossbar-sim sweep: error:")
    assert not os.path.exists(out) and not os.path.exists(str(out) + ".journal")  # nothing ran, nothing written


def test_dry_run_lists_the_runs(tmp_path, capsys):
    assert main(["sweep", write_spec(tmp_path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tiny: 12 runs")
    assert len(lines) == 13 and "tau=0.6 seed=0 algorithm=analog_sgd" in lines[1]


def test_the_documented_spec_example_expands():
    """The TOML example in crossbar_sim.engine.spec's docstring is a valid spec."""
    import textwrap
    import tomllib

    import crossbar_sim.engine.spec as sweep_mod

    doc = sweep_mod.__doc__
    block = doc[doc.index("    name = "):doc.index("A ``[device]`` table")]
    spec = tomllib.loads(textwrap.dedent(block))
    sw = expand(spec)
    assert len(sw["points"]) == 3 * 3 * (2 + 2)


def test_presets_in_the_device_table_and_as_an_axis(tmp_path):
    from crossbar_sim.device_models import get_preset, list_presets

    spec = tiny_spec(tmp_path)
    spec["device"] = {"preset": "EcRam", "dw_min_std": 0.0}
    sw = expand(spec)
    dev = next(iter(sw["configs"].values())).train.device
    assert dev == get_preset("EcRam").replace(dw_min_std=0.0, w_max=dev.w_max, w_min=dev.w_min)
    spec = tiny_spec(tmp_path)
    spec["device"] = {"dw_min_std": 0.0}
    spec["axes"] = {"preset": "all"}
    sw = expand(spec)
    assert sw["axes"]["preset"] == list(list_presets())
    for p in sw["points"]:
        d = sw["configs"][p["run_id"]].train.device
        assert d == get_preset(p["values"]["preset"]).replace(dw_min_std=0.0)  # table values on top of the preset
    assert expand(load_spec_file(write_spec(tmp_path)) | {"axes": {"preset": ["Idealized"], "tau": [0.6]},
                                                        "device": {}})["configs"]["0000"].train.device.w_max == 0.6


@pytest.mark.parametrize("device, axes, match", [
    ({"preset": "Unobtainium"}, {}, r"device\.preset: Unknown preset 'Unobtainium'"),
    ({"preset": ["EcRam"]}, {}, r"device\.preset: a preset name \(string\) is expected"),
    ({"preset": "EcRam", "model": "ConstantStep"}, {}, r"either 'model' or 'preset'"),
    ({}, {"preset": ["EcRam", "Nope"]}, r"axis 'preset': Unknown preset 'Nope'"),
    ({"model": "SoftBounds"}, {"preset": ["EcRam"]}, r"remove 'model' from the \[device\] table"),
    ({"colour": 1}, {"preset": ["EcRam"]}, r"device\.colour"),
])
def test_bad_presets_are_rejected(tmp_path, device, axes, match):
    spec = tiny_spec(tmp_path)
    spec["device"] = device
    spec["axes"] = axes or spec["axes"]
    with pytest.raises(ConfigError, match=match):
        expand(spec)


def test_presets_experiment_is_a_valid_sweep():
    spec, _ = resolve_spec("presets_least_squares")
    sw = expand(spec)
    # per preset: analog SGD at 2 learning rates, Tiki-Taka at 2 learning rates x 2 fast_lr
    assert len(sw["points"]) == (2 + 4) * len(sw["axes"]["preset"])
    assert sw["axes"]["algorithm"] == ["analog_sgd", "tiki_taka"]


def test_a_fitted_device_file_is_a_sweep_device(tmp_path):
    """fit-device writes a device file; a spec names it as its [device] preset (or in the preset axis)."""
    from crossbar_sim.device_models import ExpStepDevice, save_device_file

    dev = ExpStepDevice(dw_min=0.02, A_up=0.3, gamma_up=-0.7, A_down=0.003, gamma_down=4.4)
    path = str(tmp_path / "fitted.json")
    save_device_file(path, dev, source="test")
    spec = tiny_spec(tmp_path)
    spec["device"] = {"preset": path, "w_max_dtod": 0.0}
    sw = expand(spec)
    taus = {p["run_id"]: p["values"]["tau"] for p in sw["points"]}
    for run_id, cfg in sw["configs"].items():
        if cfg.train.algorithm != "digital_sgd":
            got = cfg.train.device  # the spec's tau axis sets the bounds; everything else is the file's
            assert got.w_max == -got.w_min == taus[run_id]
            assert got.replace(w_max=dev.w_max, w_min=dev.w_min) == dev.replace(w_max_dtod=0.0)
    spec["device"] = {"preset": str(tmp_path / "missing.json")}
    with pytest.raises(ConfigError, match=r"device\.preset: .*missing\.json"):
        expand(spec)
