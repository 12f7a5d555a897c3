"""Plots (compute_* arrays, plot_* on a given Axes, the `plot` CLI) and the `devices` listing."""
import json

import h5py
import numpy as np
import pytest
from matplotlib.figure import Figure

from _sweeputil import write_spec
from crossbar_sim.cli import main
from crossbar_sim.errors import ConfigError, FormatError
from crossbar_sim.engine.plots import (compute_convergence_vs_asymmetry, compute_loss_curves, compute_pulses, compute_weights,
                                parse_where, plot_convergence_vs_asymmetry, plot_loss, plot_pulses, plot_weights,
                                predicted_floor_shape)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("plots")
    out = d / "results.h5"
    assert main(["sweep", write_spec(d), "--workers", "1", "--out", str(out), "-q", "--no-plot"]) == 0
    return str(out)


def test_predicted_floor_shape():
    r, sigma = 0.5, 0.1
    tau = np.array([0.4, 0.5, 1.0, 2.0])
    s = predicted_floor_shape(tau, r, sigma)
    assert np.isnan(s[0]) and np.isnan(s[1])  # tau <= |W*|_inf: W* is out of reach
    q = (r / tau[2:]) ** 2
    assert np.allclose(s[2:], 4 * sigma**2 * q / (1 - q))
    assert s[2] > s[3]  # the floor grows as tau shrinks


def test_compute_convergence_vs_asymmetry(tiny_file):
    with h5py.File(tiny_file, "r") as f:
        data = compute_convergence_vs_asymmetry(f)
        floors = {json.dumps(json.loads(g.attrs["point"]), sort_keys=True): g.attrs["error_floor"]
                  for g in f["runs"].values()}
    labels = [s["label"] for s in data["series"]]
    assert labels == ["Analog SGD (lr 0.1)", "Tiki-Taka", "Digital SGD"]
    s = data["series"][0]
    assert list(s["tau"]) == [0.6, 2.0] and list(s["n"]) == [2, 2]
    mine = [floors[json.dumps({"algorithm": "analog_sgd", "seed": k, "tau": 0.6}, sort_keys=True)] for k in (0, 1)]
    assert s["mean"][0] == pytest.approx(np.mean(mine)) and s["std"][0] == pytest.approx(np.std(mine, ddof=1))
    th = data["theory"]
    assert th["sigma"] == 0.1 and 0 < th["w_star_inf"] <= 0.5 and np.isfinite(th["scale"]) and th["scale"] > 0
    # the fitted constant is the geometric-mean ratio of the measured analog SGD floors to the shape
    shape = predicted_floor_shape(s["tau"], th["w_star_inf"], th["sigma"])
    assert th["scale"] == pytest.approx(np.exp(np.mean(np.log(s["mean"] / shape))))
    with pytest.raises(ConfigError, match="metric must be"):
        compute_convergence_vs_asymmetry(f, metric="accuracy")


def test_plot_functions_draw_on_the_given_axes(tiny_file):
    with h5py.File(tiny_file, "r") as f:
        conv = compute_convergence_vs_asymmetry(f)
        loss = compute_loss_curves(f, where={"tau": 0.6})
        wts = compute_weights(f, where={"algorithm": "tiki_taka", "tau": 2.0, "seed": 1})
        pul = compute_pulses(f, where={"algorithm": "analog_sgd"})
        with pytest.raises(FormatError, match="no snapshot at step 7"):
            compute_weights(f, where={"algorithm": "tiki_taka"}, step=7)
        with pytest.raises(FormatError, match="No finished analog run"):
            compute_pulses(f, where={"algorithm": "digital_sgd"})
    assert len(loss["curves"]) == 3 and all(c["n"] == 2 for c in loss["curves"])
    assert [a["name"] for a in wts["arrays"]] == ["A", "C"] and wts["arrays"][0]["weights"].shape == (2, 8)
    assert wts["arrays"][0]["step"] == 30 and np.allclose(wts["arrays"][1]["w_hi"], 2.0)
    assert pul["arrays"][0]["total"].shape == (2, 8) and pul["arrays"][0]["total"].sum() > 0
    fig = Figure()
    ax = fig.add_subplot()
    plot_convergence_vs_asymmetry(ax, conv)
    assert len(ax.get_legend().get_texts()) == 4  # 3 algorithms + the predicted shape
    ax2 = fig.add_subplot(2, 2, 2)
    plot_loss(ax2, loss)
    assert ax2.get_yscale() == "log" and len(ax2.lines) == 3
    ax3 = fig.add_subplot(2, 2, 3)
    plot_weights(ax3, wts["arrays"][0])
    assert sum(p.get_height() for p in ax3.patches if hasattr(p, "get_height")) >= 16
    ax4 = fig.add_subplot(2, 2, 4)
    plot_pulses(ax4, pul["arrays"][0], fig=fig)
    assert ax4.images[0].get_array().shape == (2, 8)


@pytest.mark.parametrize("kind", ["convergence-vs-asymmetry", "loss", "weights", "pulses"])
def test_plot_cli_writes_each_kind(tmp_path, tiny_file, capsys, kind):
    out = tmp_path / f"{kind}.png"
    assert main(["plot", tiny_file, "--kind", kind, "-o", str(out), "--where", "seed=0"]) == 0
    assert out.read_bytes()[:8] == PNG
    assert capsys.readouterr().out.strip() == f"figure: {out}"


def test_plot_cli_errors(tmp_path, tiny_file, capsys):
    assert main(["plot", tiny_file, "--kind", "weights", "--run", "9999", "-o", str(tmp_path / "x.png")]) == 2
    assert "No finished analog run" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "none.h5"), "--kind", "loss"]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--where expects KEY=VALUE"):
        parse_where(["tau"])
    with pytest.raises(SystemExit):
        main(["plot", tiny_file, "--kind", "pie"])


def test_devices_lists_models(capsys):
    from crossbar_sim.device_models import DEVICE_MODELS

    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    for name in DEVICE_MODELS:
        assert f"\n  {name}  (" in out
    assert "dw_min=0.001" in out
    assert main(["devices", "soft-bounds-reference", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in data["models"]] == ["SoftBoundsReference"]
    assert data["models"][0]["parameters"]["w_max"] == 0.6
    assert main(["devices", "flux-capacitor"]) == 2
    assert "No device model or preset named 'flux-capacitor'" in capsys.readouterr().err


def test_devices_lists_presets_when_the_package_has_them(monkeypatch, capsys):
    import crossbar_sim.device_models as dm
    from crossbar_sim.device_models import SoftBoundsDevice

    class Preset:
        """ReRAM soft bounds (made up for this test)."""

        name = "test-reram"
        source = "Somebody et al. 2099"
        device = SoftBoundsDevice(dw_min=0.002, w_max=0.9)

    monkeypatch.setattr(dm, "list_presets", lambda: {"test-reram": Preset()}, raising=False)
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "presets (1):" in out and "test-reram  SoftBoundsDevice  Somebody et al. 2099" in out
    assert "dw_min=0.002" in out and "w_max=0.9" in out


def test_devices_lists_the_installed_presets_with_sources(capsys):
    from crossbar_sim.device_models import list_presets

    assert main(["devices", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in data["presets"]] == list(list_presets())
    for p, (dev, source) in zip(data["presets"], list_presets().values()):
        assert p["source"] == source and p["model"] == type(dev).__name__
