"""Training runs of every method on a tiny model and a synthetic corpus: pulse-cycle accounting, memory equal to
the closed forms, budgets consistent; the CLI end to end (HDF5 record, resume, errors)."""
import json

import h5py
import numpy as np
import pytest

from crossbar_sim.cli import main
from crossbar_sim.energy import CATEGORIES
from crossbar_sim.errors import ConfigError
from crossbar_sim.lowrank.lm import LMConfig
from crossbar_sim.lowrank.memory import matrix_state_floats
from crossbar_sim.lowrank.optim import GaLoreConfig, OSDConfig
from crossbar_sim.lowrank.train import LowRankRunConfig, LowRankTrainer, lr_ratio, train_lm
from crossbar_sim.lowrank.text import ShakespeareText, load_shakespeare

from test_lowrank_lm import write_plays

LM = LMConfig(d_model=8, n_layers=1, n_heads=2, d_ff=12, seq_len=8)


@pytest.fixture(scope="module")
def plays(tmp_path_factory):
    return write_plays(tmp_path_factory.mktemp("plays"))


@pytest.fixture(scope="module")
def corpus(plays):
    return load_shakespeare(ShakespeareText(val_plays=("play-1",), root=str(plays)))


def _cfg(plays, method, backend="analog", rank=3, **kw):
    optim = {"galore": GaLoreConfig(rank=rank), "osd": OSDConfig(rank=rank)}.get(method)
    base = dict(method=method, backend=backend, optim=optim, lr=0.01, steps=3, batch_size=2, eval_every=2,
                eval_tokens=64, lm=LM, data=ShakespeareText(val_plays=("play-1",), root=str(plays)))
    base.update(kw)
    return LowRankRunConfig(**base)


@pytest.mark.parametrize("method", ["adamw", "galore", "osd", "tiki_taka"])
def test_pulse_cycles_memory_and_budget_per_method(plays, corpus, method):
    cfg = _cfg(plays, method)
    tr = LowRankTrainer(cfg, seed=0, corpus=corpus)
    tr.run()
    shapes = {n: h.shape for n, h in tr.model.mats.items()}
    tokens = cfg.batch_size * LM.seq_len
    for name, h in tr.model.mats.items():
        m, n = shapes[name]
        if method == "tiki_taka":
            assert h.tile.a.counters["n_updates"] == cfg.steps * tokens  # one cycle per token onto A
            assert h.tile.c.counters["n_updates"] == cfg.steps  # one column transferred per step
        else:
            per_step = min(m, n) if method == "adamw" else min(3, m, n)
            assert h.tile.counters["n_updates"] == cfg.steps * per_step
    mem = tr.memory()
    closed = sum(sum(matrix_state_floats(method, m, n, 3).values()) for m, n in shapes.values())
    assert mem["optimizer_state_matrices"] == 4 * closed
    assert mem["analog_state_devices"] == (sum(m * n for m, n in shapes.values()) if method == "tiki_taka" else 0)
    b = tr.budget()
    assert b.total_J == pytest.approx(sum(b.energy_J[c] for c in CATEGORIES))
    assert b.counts["n_pulses"] > 0 and b.energy_J["device_pulses"] > 0
    assert (b.energy_J["gradient_compute"] == 0) == (method == "tiki_taka")  # Tiki-Taka forms no digital G
    res = tr.result(1.0)
    assert res.status == "complete" and list(res.steps) == [0, 2, 3]
    assert np.all(np.isfinite(res.metrics["val_ppl"])) and res.metrics["pulses"][-1] == b.counts["n_pulses"]


def test_digital_backend_has_no_pulses_and_same_start(plays, corpus):
    d = train_lm(_cfg(plays, "osd", backend="digital"), seed=5, corpus=corpus)
    a = train_lm(_cfg(plays, "osd"), seed=5, corpus=corpus)
    assert d.budget.counts["n_pulses"] == 0 and d.budget.energy_J["model_compute"] > 0
    # same seed: same initial weights and data (the step-0 perplexities differ only by the analog periphery)
    assert abs(d.metrics["val_ppl"][0] - a.metrics["val_ppl"][0]) < 0.05 * d.metrics["val_ppl"][0]
    again = train_lm(_cfg(plays, "osd", backend="digital"), seed=5, corpus=corpus)
    np.testing.assert_array_equal(again.metrics["val_loss"], d.metrics["val_loss"])


def test_eval_does_not_charge_the_budget(plays, corpus):
    tr = LowRankTrainer(_cfg(plays, "galore"), seed=0, corpus=corpus)
    tr.run()
    before = tr.event_counts().as_dict()
    tr.evaluate()
    assert tr.event_counts().as_dict() == before


def test_schedule():
    r = [lr_ratio(s, 100, 0.1, 0.1) for s in range(100)]
    assert r[0] == pytest.approx(0.1) and r[9] == pytest.approx(1.0) and r[10] == pytest.approx(1.0)
    assert r[-1] == pytest.approx(0.1, abs=1e-3) and all(a >= b for a, b in zip(r[10:], r[11:]))


def test_run_config_errors(plays):
    with pytest.raises(ConfigError, match="'tiki_taka' method needs backend='analog'"):
        LowRankRunConfig(method="tiki_taka", backend="digital")
    with pytest.raises(ConfigError, match="must be a GaLoreConfig for method 'galore'"):
        LowRankRunConfig(method="galore", optim=OSDConfig())
    with pytest.raises(ConfigError, match="Analog weights cannot take weight decay"):
        LowRankRunConfig(method="osd", optim=OSDConfig(weight_decay=0.1))
    LowRankRunConfig(method="osd", backend="digital", optim=OSDConfig(weight_decay=0.1))
    with pytest.raises(ConfigError, match="The 'tile_weight_scale' parameter of LowRankRunConfig"):
        LowRankRunConfig(tile_weight_scale=0.0)


# ---------------------------------------------------------------------------------------------- CLI
def _args(plays, out, *extra):
    return ["lowrank", "--steps", "2", "--ranks", "2", "--backends", "analog", "--set", "lm.d_model=8", "--set", "lm.d_ff=12",
            "--set", "lm.n_layers=1", "--set", "lm.n_heads=2", "--set", "lm.seq_len=8", "--set", "batch_size=2",
            "--set", "eval_every=1", "--set", "eval_tokens=32", "--set", f"data.root={plays}",
            "--set", "data.val_plays=[\"play-1\"]", "--out", str(out), "--no-progress", *extra]


def test_cli_end_to_end(plays, tmp_path, capsys):
    out = tmp_path / "lr.h5"
    assert main(_args(plays, out, "--methods", "adamw", "osd", "tiki_taka", "--energy", "e_pulse_fJ=80",
                      "--table", str(tmp_path / "t.json"))) == 0
    text = capsys.readouterr().out
    assert "e_pulse_fJ           = 80.0" in text and "val ppl" in text and "7B" in text
    with h5py.File(out) as f:
        assert f.attrs["format"] == "crossbar-sim" and int(f.attrs["format_version"]) == 2
        runs = f["runs"]
        assert sorted(runs) == ["0000", "0001", "0002"]
        for rid in runs:
            g = runs[rid]
            assert g.attrs["status"] == "complete"
            b = g["budget"].attrs
            assert b["energy_total_J"] == pytest.approx(sum(b[f"energy_{c}_J"] for c in CATEGORIES))
            assert b["const_e_pulse_fJ"] == 80.0
            assert list(g["metrics/steps"][()]) == [0, 1, 2]
            assert "units" in g["metrics/val_ppl"].attrs
        assert runs["0002"].attrs["method"] == "tiki_taka" and "A" in runs["0002/tiles/layers.0.wq"]
        assert runs["0002"]["budget"].attrs["memory_optimizer_state_matrices_bytes"] == 0
        assert runs["0000/tiles/layers.0.w1/W/pulse_counts"].shape == (12, 8, 2)
    rows = json.load(open(tmp_path / "t.json"))
    assert [r["method"] for r in rows] == ["adamw", "osd", "tiki_taka"]
    for suffix in ("lm_perplexity", "lm_memory", "lm_energy"):
        assert (tmp_path / f"lr_{suffix}.png").stat().st_size > 1000
    assert not (tmp_path / "lr.h5.journal").exists()
    # resume: nothing left to run, same file
    assert main(_args(plays, out, "--methods", "adamw", "osd", "tiki_taka", "--energy", "e_pulse_fJ=80",
                      "--resume", "--no-plots")) == 0
    assert "0 runs" not in capsys.readouterr().err
    # report only
    assert main(["lowrank", "--report", str(out), "--no-plots"]) == 0
    assert "tiki_taka" in capsys.readouterr().out


def test_cli_errors(plays, tmp_path, capsys):
    out = tmp_path / "e.h5"
    assert main(_args(plays, out, "--methods", "adamw", "--lr", "adamw")) == 2
    assert "--lr expects KEY=VALUE" in capsys.readouterr().err
    assert main(_args(plays, out, "--methods", "adamw", "--lr", "sgd=0.1")) == 2
    assert "unknown method 'sgd'" in capsys.readouterr().err
    assert main(_args(plays, out, "--set", "optim.lion.rank=3")) == 2
    assert "optimiser tables are optim.adamw, optim.galore and optim.osd" in capsys.readouterr().err
    assert main(_args(plays, out, "--set", "lm.foo=3")) == 2
    assert "Unknown key 'lm.foo'" in capsys.readouterr().err
    assert main(_args(plays, out, "--workers", "0")) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
    assert main(["lowrank", "--experiment", "nope"]) == 2
    assert "Unknown experiment 'nope'" in capsys.readouterr().err
    assert main(["lowrank", "--report", str(tmp_path / "missing.h5")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["lowrank", "--memory-table", "--bytes-per-state", "0"]) == 2
    assert "--bytes-per-state must be > 0" in capsys.readouterr().err
    assert main(_args(plays, out, "--methods", "adamw", "--no-plots")) == 0
    capsys.readouterr()
    assert main(_args(plays, out, "--methods", "adamw")) == 2
    assert "already exists; pass --resume" in capsys.readouterr().err
    assert main(_args(plays, out, "--methods", "adamw", "--resume", "--overwrite")) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_memory_table_cli(capsys):
    assert main(["lowrank", "--memory-table"]) == 0
    out = capsys.readouterr().out
    for name in ("60M", "130M", "350M", "1B", "7B"):
        assert f" {name} " in out
    assert "GaLore k r' l + s r' (P)" in out and "OSD 8.64 GB" in out


def test_store_rebuilt_from_journal(plays, tmp_path):
    """A main file damaged after a run was journaled is rebuilt on --resume; no finished run is lost."""
    from crossbar_sim.engine.executor import payloads, run_point
    from crossbar_sim.engine.results import lm_records
    from crossbar_sim.engine.spec import expand
    from crossbar_sim.engine.store import SweepStore, open_results

    spec = {"kind": "lm", "name": "t", "seed": 1, "axes": {"seed": [0]},
            "cases": [{"method": "galore", "rank": 2, "backend": "digital"}],
            "run": {"steps": 1, "batch_size": 2, "eval_every": 1, "eval_tokens": 16,
                    "lm": {"d_model": 8, "n_layers": 1, "n_heads": 2, "d_ff": 12, "seq_len": 8},
                    "data": {"root": str(plays), "val_plays": ["play-1"]}}}
    sweep = expand(spec)
    out = str(tmp_path / "j.h5")
    store = SweepStore(out, sweep)
    (job,) = payloads(sweep, ["0000"], 1, out)
    rec = run_point(job)
    assert rec.status == "complete", rec.error
    store.write("0000", rec, sweep["points"][0]["values"], 0)
    with open(out, "r+b") as fh:  # damage the main file
        fh.seek(0)
        fh.write(b"\0" * 64)
    store2 = SweepStore(out, sweep, resume=True)
    assert store2.done_ids() == ["0000"] and "rebuilding it from the journal" in store2.messages[0]
    with open_results(out) as f:
        assert lm_records(f)[0]["point"]["method"] == "galore"


def test_lowrank_experiment_is_an_engine_sweep(capsys):
    assert main(["sweep", "lowrank_shakespeare", "--dry-run"]) == 0
    assert "lowrank_shakespeare: 11 runs (lm)" in capsys.readouterr().out
