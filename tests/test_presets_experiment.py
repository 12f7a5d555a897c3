"""The preset x {analog SGD, Tiki-Taka} least-squares experiment runs and is registered."""
from importlib.metadata import entry_points

from crossbar_sim.experiments import presets_least_squares as E
from crossbar_sim.least_squares.task import LeastSquaresTask


def test_registered_entry_point():
    names = {ep.name: ep.value for ep in entry_points(group="crossbar_sim.experiments")}
    assert names.get("presets_least_squares", "").startswith("crossbar_sim.experiments.presets_least_squares")


def test_run_presets_table_small():
    task = LeastSquaresTask(n_samples=20, in_size=8, noise_std=0.0)
    res = E.run_presets_table(["Idealized", "EcRam"], steps=30, lr=0.1, task=task)
    assert set(res) == {"Idealized", "EcRam", "digital"}
    for name in ("Idealized", "EcRam"):
        assert set(res[name]) == {"analog_sgd", "tiki_taka"}
    # every run learns something: below the loss of W = 0
    from crossbar_sim.least_squares.task import LeastSquares

    l0 = LeastSquares(task).loss(0 * LeastSquares(task).W_star)
    assert res["Idealized"]["analog_sgd"] < l0 and res["digital"]["digital_sgd"] < l0
    assert "Idealized" in E.format_table(res)


def test_device_file_round_trip(tmp_path):
    import pytest

    from crossbar_sim import ConfigError, FormatError
    from crossbar_sim.device_models import get_preset, load_device_file, save_device_file

    p = tmp_path / "d.json"
    save_device_file(str(p), get_preset("EcRam"), source="test")
    assert load_device_file(str(p)) == get_preset("EcRam")
    assert load_device_file("ReRamES") == get_preset("ReRamES")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(FormatError, match="holds no device config"):
        load_device_file(str(bad))
    with pytest.raises(ConfigError, match="not found"):
        load_device_file(str(tmp_path / "missing.json"))
