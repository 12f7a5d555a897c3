"""Plots (compute_* arrays, plot_* on a given Axes, the `plot` CLI) and the `devices` listing."""
import json
import os
import shutil

import h5py
import numpy as np
import pytest
from _sweeputil import write_spec
from matplotlib.figure import Figure

from crossbar_sim.cli import main
from crossbar_sim.engine.plots import (
    compute_convergence_vs_asymmetry,
    compute_loss_curves,
    compute_pulses,
    compute_weights,
    figure_path,
    parse_where,
    plot_convergence_vs_asymmetry,
    plot_loss,
    plot_pulses,
    plot_weights,
    selection_note,
    theory_summary,
)
from crossbar_sim.least_squares.theory import error_floor
from crossbar_sim.errors import ConfigError, FormatError
from crossbar_sim.least_squares.theory import s_terms

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("plots")
    out = d / "results.h5"
    assert main(["sweep", write_spec(d), "--workers", "1", "--out", str(out), "-q", "--no-plot"]) == 0
    return str(out)


def test_figure_path_follows_the_result_file(tmp_path):
    here = os.path.abspath(".")
    assert figure_path("my.h5", "convergence-vs-asymmetry") == os.path.join(here, "my_convergence_vs_asymmetry.png")
    assert figure_path(str(tmp_path / "a" / "run.h5"), "loss") == str(tmp_path / "a" / "run_loss.png")
    assert figure_path("x/run.h5", "pulses", figures_dir="figs") == os.path.join("figs", "run_pulses.png")


def test_compute_convergence_vs_asymmetry(tiny_file):
    with h5py.File(tiny_file, "r") as f:
        data = compute_convergence_vs_asymmetry(f)
        runs = {rid: (json.loads(g.attrs["point"]), {k: v[()] for k, v in g["metrics"].items()})
                for rid, g in f["runs"].items()}
    pa = data["panels"]["tau"]
    assert data["panels"]["lr"] is None and data["panels"]["noise_std"] is None  # one lr, one noise level
    assert [s["label"] for s in pa["series"]] == ["Analog SGD", "Tiki-Taka"]
    assert [r["label"] for r in pa["refs"]] == ["Digital SGD, no device"]  # digital SGD has no tau: a reference
    s = pa["series"][0]
    assert list(s["x"]) == [0.6, 2.0] and list(s["n"]) == [2, 2]
    # G and the bound of each analog run, recomputed here from its stored record (tiny: 30 steps, the tail is
    # the last 20%; sigma^2 = 0.1^2 x 2 x 8 entries)
    gs, bounds = [], []
    for point, m in runs.values():
        if point["algorithm"] == "analog_sgd" and point["tau"] == 0.6:
            gs.append(error_floor(m["steps"], m["grad_norm2"], 30, 0.2))
            bounds.append(4 * 0.1**2 * 16 * error_floor(m["steps"], s_terms(m["w_inf"], 0.6), 30, 0.2))
    assert s["mean"][0] == pytest.approx(np.mean(gs)) and s["std"][0] == pytest.approx(np.std(gs, ddof=1))
    assert s["bound"][0] == pytest.approx(np.mean(bounds))
    assert pa["series"][1]["bound"] is None  # Theorem 2 is about analog SGD
    assert data["check"]["n_runs"] == 4 and data["sigma2"] == [pytest.approx(0.16)]
    assert data["curves"]["tau"] == 0.6 and len(data["curves"]["curves"]) == 3
    with pytest.raises(ConfigError, match="metric must be one of"):
        compute_convergence_vs_asymmetry(f, metric="accuracy")


def test_theory_summary_prints_g_against_each_bound(tiny_file):
    text = theory_summary(tiny_file)
    assert "Theorem 2 of arXiv 2406.12774" in text and "bound 4 sigma^2 S_K" in text
    assert "Tiki-Taka G" in text and "digital SGD G (no device)" in text
    rows = [ln.split() for ln in text.splitlines() if ln.strip().startswith(("0.6 ", "2 "))]
    assert [r[0] for r in rows] == ["0.6", "2"]
    # 30 steps: some runs are still in the transient the asymptotic term leaves out, and the line says so
    assert text.splitlines()[-1].startswith("Theorem 2")


def test_plot_functions_draw_on_the_given_axes(tiny_file):
    with h5py.File(tiny_file, "r") as f:
        conv = compute_convergence_vs_asymmetry(f)
        loss = compute_loss_curves(f, where={"tau": 0.6})
        facets = compute_loss_curves(f)
        pooled = compute_loss_curves(f, max_curves=2)
        wts = compute_weights(f, where={"algorithm": "tiki_taka", "tau": 2.0, "seed": 1})
        pul = compute_pulses(f, where={"algorithm": "analog_sgd"})
        with pytest.raises(FormatError, match="no snapshot at step 7"):
            compute_weights(f, where={"algorithm": "tiki_taka"}, step=7)
        with pytest.raises(FormatError, match="No finished analog run"):
            compute_pulses(f, where={"algorithm": "digital_sgd"})
        with pytest.raises(FormatError, match="has no metric 'accuracy'.*grad_norm2"):
            compute_loss_curves(f, metric="accuracy")
    # one tau selected: one panel; all of them: one panel per tau, digital SGD (no device) in each
    assert len(loss["facets"]) == 1 and len(loss["facets"][0]["curves"]) == 3
    assert all(c["n"] == 2 for c in loss["facets"][0]["curves"])
    assert [fc["tau"] for fc in facets["facets"]] == [0.6, 2.0]
    assert all([c["algorithm"] for c in fc["curves"]] == ["analog_sgd", "tiki_taka", "digital_sgd"]
               for fc in facets["facets"])
    assert facets["facets"][1]["curves"][2]["label"] == "Digital SGD, no device"
    # more configurations than a panel may show: one mean per algorithm, saying how many it pools
    assert pooled["aggregated"] and pooled["facets"][0]["curves"][0]["label"] == \
        "Analog SGD: mean of 1 configurations (2 runs), tau 0.6 panel"
    assert [a["name"] for a in wts["arrays"]] == ["A", "C"] and wts["arrays"][0]["weights"].shape == (2, 8)
    assert wts["arrays"][0]["step"] == 30 and np.allclose(wts["arrays"][1]["w_hi"], 2.0)
    assert wts["n_matching"] == 1 and selection_note(wts) is None
    assert pul["arrays"][0]["total"].shape == (2, 8) and pul["arrays"][0]["total"].sum() > 0
    assert pul["n_matching"] == 4
    assert selection_note(pul).startswith(f"4 runs match; drawing run {pul['run_id']} (") and "--run ID" in selection_note(pul)
    fig = Figure()
    ax = fig.add_subplot(2, 2, 1)
    plot_convergence_vs_asymmetry(ax, conv)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0] == "Analog SGD" and "its bound" in texts[1] and texts[2:] == ["Tiki-Taka", "Digital SGD, no device"]
    ax2 = fig.add_subplot(2, 2, 2)
    plot_loss(ax2, loss["facets"][0])
    assert ax2.get_yscale() == "log" and len(ax2.lines) == 3
    ax3 = fig.add_subplot(2, 2, 3)
    plot_weights(ax3, wts["arrays"][0])
    assert sum(p.get_height() for p in ax3.patches if hasattr(p, "get_height")) >= 16
    ax4 = fig.add_subplot(2, 2, 4)
    plot_pulses(ax4, pul["arrays"][0], fig=fig)
    assert ax4.images[0].get_array().shape == (2, 8)


def test_a_file_without_what_a_plot_needs_gives_one_line(tmp_path, tiny_file, capsys):
    """A network run keeps its layers under tiles/<layer> and has no least-squares metrics: one line each."""
    bad = tmp_path / "net.h5"
    shutil.copy(tiny_file, bad)
    with h5py.File(bad, "a") as f:
        f.move("runs/0000/tiles/linear", "runs/0000/tiles/fc1")
        for g in f["runs"].values():
            del g["metrics"]["grad_norm2"]
    no_tile = "Run 0000 has no analog layer 'linear'; its analog layers: fc1"
    for kind, extra, msg in [("weights", ["--run", "0000", "--layer", "linear"], no_tile),
                             ("convergence-vs-asymmetry", [], "no least-squares record to plot"),
                             ("loss", ["--metric", "grad_norm2"], "has no metric 'grad_norm2'")]:
        assert main(["plot", str(bad), "--kind", kind, "-o", str(tmp_path / "x.png"), *extra]) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("kind", ["convergence-vs-asymmetry", "loss", "weights", "pulses"])
def test_plot_cli_writes_each_kind(tmp_path, tiny_file, capsys, kind):
    out = tmp_path / f"{kind}.png"
    assert main(["plot", tiny_file, "--kind", kind, "-o", str(out), "--where", "seed=0"]) == 0
    assert out.read_bytes()[:8] == PNG
    assert capsys.readouterr().out.strip() == f"figure: {out}"


def test_plot_cli_says_which_run_it_drew(tmp_path, tiny_file, capsys):
    src = tmp_path / "mine.h5"
    shutil.copy(tiny_file, src)
    assert main(["plot", str(src), "--kind", "weights", "--where", "algorithm=analog_sgd"]) == 0
    cap = capsys.readouterr()
    assert cap.out.strip() == f"figure: {tmp_path / 'mine_weights.png'}"  # named after the file, next to it
    assert "4 runs match; drawing run" in cap.err and "--run ID" in cap.err
    assert main(["plot", str(src), "--kind", "pulses", "--run", "0000", "-o", str(tmp_path / "p.png")]) == 0
    assert capsys.readouterr().err == ""  # a unique choice needs no note


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
    assert "No device model, device preset or training preset named 'flux-capacitor'" in capsys.readouterr().err


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
