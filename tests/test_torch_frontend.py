"""crossbar_sim.torch: the same path as crossbar_sim.nn, autograd, the update from captured x and d, state, errors.

Skipped when torch is missing, except where CROSSBAR_SIM_REQUIRE_TORCH is set (.ci/run sets it: CI runs these).
"""
import copy
import io
import os

import numpy as np
import pytest

if os.environ.get("CROSSBAR_SIM_REQUIRE_TORCH"):
    import torch
else:
    torch = pytest.importorskip("torch", reason="the [torch] extra is not installed (pip install -e '.[torch]')")

from crossbar_sim.device_models import ConstantStepDevice, get_preset

from crossbar_sim.errors import ConfigError, FormatError, ShapeError
from crossbar_sim.nn import functional as F
from crossbar_sim.nn import layers as NL
from crossbar_sim.nn.models import make_layer_tile
from crossbar_sim.tiles.params import IOParameters, UpdateParameters
from crossbar_sim.torch import (
    AnalogConfig,
    AnalogConv1d,
    AnalogConv2d,
    AnalogGRU,
    AnalogGRUCell,
    AnalogLinear,
    AnalogLSTM,
    AnalogLSTMCell,
    AnalogRNNCell,
    AnalogSGD,
    CharDataset,
    ImageDataset,
    convert_to_analog,
)

torch.set_num_threads(1)

#: every tile kind: analog SGD, Tiki-Taka v1, TTv2, chopped TTv2, AGAD, the one-sided PCM pair
KINDS = {
    "analog_sgd": AnalogConfig(algorithm="analog_sgd"),
    "tiki_taka": AnalogConfig(algorithm="tiki_taka"),
    "ttv2": AnalogConfig(algorithm="ttv2"),
    "chopped_ttv2": AnalogConfig(algorithm="chopped_ttv2", transfer_extra={"in_chop_prob": 0.5}),
    "agad": AnalogConfig(algorithm="agad", transfer_extra={"in_chop_prob": 0.5}),
    "pcm_pair": AnalogConfig(algorithm="analog_sgd", device=get_preset("PCM")),
    # issue 19: mixed precision, an aihwkit build_config preset and an aihwkit preset RPU config (own device)
    "mixed_precision": AnalogConfig(algorithm="mixed_precision"),
    "preset_c_ttv2": AnalogConfig(algorithm_preset="c-ttv2", transfer_extra={"in_chop_prob": 0.5}),
    "preset_agad_ecram": AnalogConfig(algorithm_preset="AGADEcRamPreset"),
}


def _perfect(**kw):
    """A perfect device with perfect periphery: exact MVMs, exact floating-point update, no output scale."""
    return AnalogConfig(algorithm="analog_sgd", device=ConstantStepDevice(w_min=-100.0, w_max=100.0),
                        update=UpdateParameters(pulse_type="none"), forward=IOParameters.perfect(),
                        backward=IOParameters.perfect(), learn_out_scaling=False, **kw)


def _states_equal(a, b, where=""):
    """Tile states (nested dicts of arrays) equal bit for bit. ``seed_entropy`` (the construction seed, a label that
    no computation reads; set_state keeps the receiving tile's own) is not compared."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            if k != "seed_entropy":
                _states_equal(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _states_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, where


def _tile_states(model):
    from crossbar_sim.torch.state import tile_state

    return [tile_state(m.tile) for m in model.modules() if hasattr(m, "tile")]


# ---------------------------------------------------------------------------------------------- same path
class _NpSigmoid(torch.autograd.Function):
    """crossbar_sim.nn's sigmoid and its backward (the same arithmetic as the NumPy network)."""

    @staticmethod
    def forward(ctx, x):
        ctx.y = F.sigmoid(x.numpy())
        return torch.from_numpy(ctx.y)

    @staticmethod
    def backward(ctx, g):
        return torch.from_numpy(g.numpy() * ctx.y * (1 - ctx.y))


class _NpNLL(torch.autograd.Function):
    """crossbar_sim.nn's softmax cross-entropy (float64 log-softmax) and its gradient."""

    @staticmethod
    def forward(ctx, z, y):
        loss, ctx.dz, _ = F.nll_loss(z.numpy(), y.numpy())
        return torch.tensor(loss)

    @staticmethod
    def backward(ctx, g):
        return torch.from_numpy(ctx.dz * np.float32(g)), None


class _Act(torch.nn.Module):
    def __init__(self, exact):
        super().__init__()
        self.exact = exact

    def forward(self, x):
        return _NpSigmoid.apply(x) if self.exact else torch.sigmoid(x)


def _fcn_both_ways(exact, algorithm="tiki_taka", n_train=1000, n_test=500, epochs=2):
    """The paper's FCN trained by crossbar_sim.nn and by crossbar_sim.torch from the same seed, initial weights and
    batches; per-epoch test accuracies of both, and both models."""
    from crossbar_sim.experiments.mnist_paper import paper_config

    from crossbar_sim.datasets import load_dataset
    from crossbar_sim.nn.models import build_model
    from crossbar_sim.nn.training import NetTrainer

    cfg = paper_config("fcn", algorithm, 0.78, epochs=epochs, n_train=n_train, n_test=n_test)
    tr = NetTrainer(cfg, 0, data=load_dataset("mnist"))
    acc_np = [tr.evaluate()["test_acc"]]
    for _ in range(epochs):
        tr.run_epoch()
        acc_np.append(tr.evaluate()["test_acc"])

    # the torch model: NetTrainer's seed streams, its model's freshly built tiles (same seeds, same initial weights)
    s_model, s_order = np.random.SeedSequence(0).spawn(2)
    ref = build_model(cfg, s_model)
    acfg = AnalogConfig.from_net_config(cfg)
    layers = []
    for lay in ref.weight_layers().values():
        t = AnalogLinear(lay.in_features, lay.out_features, True, acfg, tile=lay.tile)
        with torch.no_grad():
            t.bias.copy_(torch.from_numpy(lay.bias.value))
        layers += [t, _Act(exact)]
    model = torch.nn.Sequential(*layers[:-1])
    opt = AnalogSGD(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, cfg.lr_step, cfg.lr_gamma)
    order = np.random.default_rng(s_order)
    x, y = torch.from_numpy(tr.data["x_train"]), torch.from_numpy(tr.data["y_train"])
    xt, yt = torch.from_numpy(tr.data["x_test"]), tr.data["y_test"]

    def evaluate():
        model.eval()
        with torch.no_grad():
            c = sum(int(np.sum(np.argmax(model(xt[s:s + cfg.eval_batch]).numpy(), 1) == yt[s:s + cfg.eval_batch]))
                    for s in range(0, xt.shape[0], cfg.eval_batch))
        model.train()
        return c / xt.shape[0]

    acc_t = [evaluate()]
    for _ in range(epochs):
        perm = torch.from_numpy(order.permutation(x.shape[0]))
        for b in range(0, x.shape[0], cfg.batch_size):
            idx = perm[b:b + cfg.batch_size]
            opt.zero_grad()
            z = model(x[idx])
            loss = _NpNLL.apply(z, y[idx]) if exact else torch.nn.functional.cross_entropy(z, y[idx])
            loss.backward()
            opt.step()
        sched.step()
        acc_t.append(evaluate())
    return acc_np, acc_t, tr.model, model


def test_fcn_same_path_bit_for_bit():
    """With crossbar_sim.nn's own sigmoid and loss (the same arithmetic), the torch front end gives the same per-epoch
    test accuracy and the same tiles (every array, counters, random streams) and digital parameters, bit for bit:
    the front end adds no arithmetic of its own (784-input layer on two tiles, Tiki-Taka, StepLR)."""
    acc_np, acc_t, np_model, t_model = _fcn_both_ways(exact=True)
    assert acc_np == acc_t
    assert acc_np[-1] != acc_np[0]  # the run moves: the accuracies compared are not the initial ones throughout
    t_layers = [m for m in t_model if isinstance(m, AnalogLinear)]
    from crossbar_sim.torch.state import tile_state

    for lay, t in zip(np_model.weight_layers().values(), t_layers):
        _states_equal(tile_state(lay.tile), tile_state(t.tile))
        np.testing.assert_array_equal(lay.alpha.value, t.out_scale.detach().numpy())
        np.testing.assert_array_equal(lay.bias.value, t.bias.detach().numpy())
        assert lay.tile.counters["n_transfers"] > 0 and t.tile.counters["n_transfers"] > 0


def test_fcn_same_result_with_torch_ops():
    """With torch's sigmoid and cross-entropy the arithmetic differs in the last bits (torch's own exp, a float32
    log-softmax instead of our float64 one, fused multiply-adds), about 1e-7 relative per operation; a pulse
    probability that moves by that much changes a pulse train only where a random number falls within 1e-7 of it,
    so the runs stay together: per-epoch test accuracy equal within 1 percentage point (5 of 500 images), output
    scales within 1e-3 relative."""
    acc_np, acc_t, np_model, t_model = _fcn_both_ways(exact=False)
    np.testing.assert_allclose(acc_t, acc_np, atol=0.01)
    for lay, t in zip(np_model.weight_layers().values(), [m for m in t_model if isinstance(m, AnalogLinear)]):
        np.testing.assert_allclose(t.out_scale.detach().numpy(), lay.alpha.value, rtol=1e-3)


# ---------------------------------------------------------------------------------------------- layer vs nn layer
def _twin(cfg, n_in, n_out, seed=3):
    """A crossbar_sim.nn AnalogLinear and a torch AnalogLinear on twin tiles (same seed, same weights)."""
    analog_bias = not cfg.digital_bias
    t_np = make_layer_tile(cfg, n_out, n_in + analog_bias, seed)
    t_pt = make_layer_tile(cfg, n_out, n_in + analog_bias, seed)
    np_layer = NL.AnalogLinear(n_in, n_out, t_np, bias=True, analog_bias=analog_bias,
                               out_scaling=cfg.learn_out_scaling, rng=np.random.default_rng(seed))
    t_pt.set_weights(t_np.read_weights())
    layer = AnalogLinear(n_in, n_out, True, cfg, tile=t_pt)
    if layer.bias is not None:
        with torch.no_grad():
            layer.bias.copy_(torch.from_numpy(np_layer.bias.value))
    return np_layer, layer


CASES = {**KINDS,
         "split_in": AnalogConfig(algorithm="tiki_taka", max_input_size=7),
         "split_out": AnalogConfig(algorithm="analog_sgd", max_output_size=3),
         "analog_bias": AnalogConfig(algorithm="analog_sgd", digital_bias=False),
         "no_out_scale": AnalogConfig(algorithm="ttv2", learn_out_scaling=False)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_equals_nn_layer(name):
    """Every tile kind and mapping option: forward, input gradient, digital gradients and the pulsed update from the
    captured x and d equal crossbar_sim.nn's layer bit for bit, over several steps (the pulsed path ran)."""
    cfg = CASES[name]
    np_layer, layer = _twin(cfg, 16, 6)
    opt = AnalogSGD(layer.parameters(), lr=0.1)
    rng = np.random.default_rng(7)
    for _ in range(4):
        x = rng.random((5, 16)).astype(np.float32)
        g = rng.normal(0, 0.5, (5, 6)).astype(np.float32)
        y_np = np_layer.forward(x)
        dx_np = np_layer.backward(g, need_dx=True)
        np_layer.step(0.1)
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        opt.zero_grad()
        y = layer(xt)
        y.backward(torch.from_numpy(g))
        assert layer.has_update
        opt.step()
        assert not layer.has_update
        np.testing.assert_array_equal(y.detach().numpy(), y_np)
        np.testing.assert_array_equal(xt.grad.numpy(), dx_np)
    from crossbar_sim.torch.state import tile_state

    _states_equal(tile_state(np_layer.tile), tile_state(layer.tile))
    for pname, p in np_layer.params().items():
        mine = {"bias": layer.bias, "out_scale": layer.out_scale}[pname]
        np.testing.assert_array_equal(mine.detach().numpy(), p.value)
    arrays = NL.analog_arrays(layer.tile)
    assert sum(t.counters["n_pulses"] for t in arrays.values()) > 0


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1)])
def test_conv2d_equals_nn_layer(stride, padding):
    """AnalogConv2d runs crossbar_sim.nn's im2col path: outputs, input gradients and tiles equal bit for bit."""
    cfg = AnalogConfig(algorithm="tiki_taka")
    t_np = make_layer_tile(cfg, 4, 2 * 9, 5)
    t_pt = make_layer_tile(cfg, 4, 2 * 9, 5)
    np_layer = NL.AnalogConv2d(2, 4, 3, t_np, stride=stride, padding=padding, rng=np.random.default_rng(0))
    t_pt.set_weights(t_np.read_weights())
    layer = AnalogConv2d(2, 4, 3, stride=stride, padding=padding, config=cfg, tile=t_pt)
    with torch.no_grad():
        layer.bias.copy_(torch.from_numpy(np_layer.bias.value))
    opt = AnalogSGD(layer.parameters(), lr=0.05)
    rng = np.random.default_rng(1)
    for _ in range(2):
        x = rng.random((3, 2, 7, 7)).astype(np.float32)
        y_np = np_layer.forward(x)
        g = rng.normal(size=y_np.shape).astype(np.float32)
        dx_np = np_layer.backward(g)
        np_layer.step(0.05)
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        opt.zero_grad()
        y = layer(xt)
        y.backward(torch.from_numpy(g))
        opt.step()
        np.testing.assert_array_equal(y.detach().numpy(), y_np)
        np.testing.assert_array_equal(xt.grad.numpy(), dx_np)
    from crossbar_sim.torch.state import tile_state

    _states_equal(tile_state(np_layer.tile), tile_state(layer.tile))


# ---------------------------------------------------------------------------------------------- autograd
def _digital(layer_cls, *args, **kw):
    """A layer on a float64 floating-point tile (the digital arithmetic alone), with bias and output scale."""
    tile = NL.DigitalTile(kw.pop("n_out"), kw.pop("n_in"), dtype=np.float64)
    layer = layer_cls(*args, config=AnalogConfig(algorithm="analog_sgd"), tile=tile, **kw)
    tile.set_weights(np.random.default_rng(0).normal(size=(tile.out_size, tile.in_size)))
    with torch.no_grad():
        layer.bias.copy_(torch.linspace(-0.3, 0.4, layer.out_features, dtype=torch.float64))
        layer.out_scale.fill_(0.7)
    return layer


@pytest.mark.parametrize("kind", ["linear", "linear_split", "conv1d", "conv2d"])
def test_gradcheck(kind):
    """The digital gradients (input, bias, output scales; several output scales for a layer on a tile grid) pass
    torch.autograd.gradcheck (float64, central differences)."""
    if kind == "linear":
        layer, x = _digital(AnalogLinear, 5, 3, n_out=3, n_in=5), torch.rand(4, 5, dtype=torch.float64)
    elif kind == "linear_split":
        grid = NL.TileArray(3, 5, lambda o, i, k: NL.DigitalTile(o, i, dtype=np.float64), max_input_size=3,
                            max_output_size=2)
        grid.set_weights(np.random.default_rng(0).normal(size=(3, 5)))
        layer = AnalogLinear(5, 3, config=AnalogConfig(algorithm="analog_sgd"), tile=grid)
        with torch.no_grad():
            layer.out_scale.copy_(torch.tensor([0.5, 1.5, -0.7, 1.1], dtype=torch.float64))
        x = torch.rand(4, 5, dtype=torch.float64)
    elif kind == "conv1d":
        layer = _digital(AnalogConv1d, 2, 3, 3, stride=2, padding=1, n_out=3, n_in=6)
        x = torch.rand(2, 2, 7, dtype=torch.float64)
    else:
        layer = _digital(AnalogConv2d, 2, 3, 3, padding=1, n_out=3, n_in=18)
        x = torch.rand(2, 2, 4, 4, dtype=torch.float64)
    x.requires_grad_(True)
    from crossbar_sim.torch.layers import TileFunction

    def f(x, b, s):
        return TileFunction.apply(x, b, s, layer)

    assert torch.autograd.gradcheck(f, (x, layer.bias, layer.out_scale), eps=1e-6, atol=1e-7)
    layer.discard_update()


def test_conv_layers_match_torch_on_a_perfect_tile():
    """On a perfect tile the analog convolutions compute torch's convolutions (float32 sums in another order)."""
    torch.manual_seed(0)
    for digital, analog_cls, x in ((torch.nn.Conv1d(3, 4, 3, stride=2, padding=1), AnalogConv1d, torch.rand(2, 3, 9)),
                                   (torch.nn.Conv2d(3, 4, 3, stride=2, padding=1), AnalogConv2d,
                                    torch.rand(2, 3, 6, 6))):
        analog = analog_cls.from_digital(digital, _perfect(), seed=0)
        xa, xd = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ya, yd = analog(xa), digital(xd)
        torch.testing.assert_close(ya, yd, rtol=1e-5, atol=1e-6)
        g = torch.rand_like(yd)
        ya.backward(g)
        yd.backward(g)
        torch.testing.assert_close(xa.grad, xd.grad, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(analog.bias.grad, digital.bias.grad, rtol=1e-5, atol=1e-6)
        analog.discard_update()


def test_perfect_device_trains_like_digital_sgd():
    """A perfect device (exact update, no bounds) with perfect periphery trains like torch.nn.Linear with
    torch.optim.SGD, step for step: every weight within 1e-5 relative after 20 steps (float32: torch's GEMM and its
    fused multiply-add in SGD round differently from the tile's row-by-row update)."""
    torch.manual_seed(1)
    digital = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    analog = convert_to_analog(digital, _perfect(), seed=0)
    opt_d = torch.optim.SGD(digital.parameters(), lr=0.1)
    opt_a = AnalogSGD(analog.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(2)
    for _ in range(20):
        x, y = torch.rand(4, 6, generator=gen), torch.randint(0, 3, (4,), generator=gen)
        for net, opt in ((digital, opt_d), (analog, opt_a)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    for k in (0, 2):
        w, b = analog[k].get_weights()
        torch.testing.assert_close(w, digital[k].weight.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(b, digital[k].bias.detach(), rtol=1e-5, atol=1e-6)


def test_lr_scheduler_sets_the_pulsed_update_lr():
    """The pulsed update uses its parameter group's current lr: StepLR and per-group lrs reach the tiles."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(AnalogLinear(3, 4, config=KINDS["analog_sgd"]), AnalogLinear(4, 2, config=_perfect()))
    seen = []
    for m in net:
        orig = m.apply_update
        m.apply_update = lambda lr, orig=orig, m=m: (seen.append((m, lr)), orig(lr))
    opt = AnalogSGD([{"params": net[0].parameters(), "lr": 0.2}, {"params": net[1].parameters()}], lr=0.05)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(2):
        opt.zero_grad()
        net(torch.rand(2, 3)).sum().backward()
        opt.step()
        sched.step()
    assert [(m is net[0], lr) for m, lr in seen] == [(True, 0.2), (False, 0.05), (True, 0.1), (False, 0.025)]


def test_digital_step_options_follow_torch_sgd():
    """Momentum, Nesterov and weight decay on digital parameters follow torch.optim.SGD's formulas."""
    torch.manual_seed(0)
    p1 = torch.nn.Parameter(torch.rand(5))
    p2 = torch.nn.Parameter(p1.detach().clone())
    a = AnalogSGD([p1], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    b = torch.optim.SGD([p2], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    for _ in range(5):
        g = torch.rand(5)
        p1.grad, p2.grad = g.clone(), g.clone()
        a.step()
        b.step()
    torch.testing.assert_close(p1, p2, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------- recurrent cells
@pytest.mark.parametrize("analog_cls,digital_cls", [(AnalogRNNCell, torch.nn.RNNCell), (AnalogLSTMCell, torch.nn.LSTMCell),
                                                    (AnalogGRUCell, torch.nn.GRUCell)])
def test_cells_match_torch_on_a_perfect_tile(analog_cls, digital_cls):
    """On perfect tiles the analog cells compute torch's cells (forward and gradients, float32 tolerance)."""
    torch.manual_seed(0)
    cell = analog_cls(4, 5, config=_perfect(), seed=0)
    ref = digital_cls(4, 5)
    with torch.no_grad():
        ref.weight_ih.copy_(cell.weight_ih.get_weights()[0])
        ref.bias_ih.copy_(cell.weight_ih.get_weights()[1])
        ref.weight_hh.copy_(cell.weight_hh.get_weights()[0])
        ref.bias_hh.copy_(cell.weight_hh.get_weights()[1])
    x = torch.rand(3, 4)
    xa, xr = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    state = None
    ref_state = None
    outs, ref_outs = [], []
    for _ in range(3):  # the same cell at three time steps: three captured blocks, one update
        state = cell(xa, state)
        ref_state = ref(xr, ref_state)
        outs.append(state[0] if isinstance(state, tuple) else state)
        ref_outs.append(ref_state[0] if isinstance(ref_state, tuple) else ref_state)
    torch.testing.assert_close(torch.stack(outs), torch.stack(ref_outs), rtol=1e-5, atol=1e-6)
    torch.stack(outs).sum().backward()
    torch.stack(ref_outs).sum().backward()
    torch.testing.assert_close(xa.grad, xr.grad, rtol=1e-5, atol=1e-6)
    assert len(cell.weight_hh._pending) == 3
    cell.weight_hh.apply_update(0.1)
    assert not cell.weight_hh.has_update and cell.weight_hh.tile.counters["n_updates"] == 9


def test_sequence_layers_match_torch():
    """AnalogLSTM / AnalogGRU (2 layers, batch_first) on perfect tiles compute torch's LSTM / GRU."""
    torch.manual_seed(0)
    for analog_cls, digital_cls in ((AnalogLSTM, torch.nn.LSTM), (AnalogGRU, torch.nn.GRU)):
        seq = analog_cls(3, 4, num_layers=2, batch_first=True, config=_perfect(), seed=1)
        ref = digital_cls(3, 4, num_layers=2, batch_first=True)
        with torch.no_grad():
            for k, cell in enumerate(seq.cells):
                for part in ("ih", "hh"):
                    w, b = getattr(cell, f"weight_{part}").get_weights()
                    getattr(ref, f"weight_{part}_l{k}").copy_(w)
                    getattr(ref, f"bias_{part}_l{k}").copy_(b)
        x = torch.rand(2, 5, 3)
        out, h = seq(x)
        ref_out, ref_h = ref(x)
        torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
        for a, b in zip(h if isinstance(h, tuple) else (h,), ref_h if isinstance(ref_h, tuple) else (ref_h,)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------- state
def _small_net(cfg, seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(AnalogConv2d(1, 3, 3, config=cfg), torch.nn.Tanh(), torch.nn.Flatten(),
                               AnalogLinear(3 * 4 * 4, 8, config=cfg), torch.nn.Sigmoid(),
                               AnalogLinear(8, 3, config=cfg))


def _train(net, opt, steps, gen, stop_before_step=False):
    for k in range(steps):
        x, y = torch.rand(4, 1, 6, 6, generator=gen), torch.randint(0, 3, (4,), generator=gen)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        if stop_before_step and k == steps - 1:
            return
        opt.step()


@pytest.mark.parametrize("name", ["tiki_taka", "agad", "pcm_pair", "mixed_precision", "preset_c_ttv2"])
def test_save_load_continues_bit_identically(name):
    """torch.save(state_dict) mid-training, torch.load (weights_only) into a model built from another seed, then
    training on: every tile state (arrays, device parameters, counters, random streams, buffers, choppers) and every
    parameter equals the uninterrupted run's, bit for bit (optimiser momentum restored too)."""
    cfg = KINDS[name]
    gen = torch.Generator().manual_seed(5)
    ref = _small_net(cfg, 0)
    ref_opt = AnalogSGD(ref.parameters(), lr=0.05, momentum=0.5)
    _train(ref, ref_opt, 3, gen)
    buf = io.BytesIO()
    torch.save({"model": ref.state_dict(), "opt": ref_opt.state_dict(), "gen": gen.get_state()}, buf)
    _train(ref, ref_opt, 3, gen)

    buf.seek(0)
    ck = torch.load(buf)  # weights_only=True: tensors, dicts, lists, strings and numbers only
    net = _small_net(cfg, 99)
    opt = AnalogSGD(net.parameters(), lr=0.05, momentum=0.5)
    net.load_state_dict(ck["model"])
    opt.load_state_dict(ck["opt"])
    gen2 = torch.Generator()
    gen2.set_state(ck["gen"])
    _train(net, opt, 3, gen2)
    for a, b in zip(_tile_states(ref), _tile_states(net)):
        _states_equal(a, b)
    for (na, pa), (nb, pb) in zip(ref.named_parameters(), net.named_parameters()):
        assert na == nb
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    assert sum(m.tile.counters.get("n_transfers", 0) for m in net.modules() if hasattr(m, "tile")) > 0 or \
        name == "pcm_pair"


def test_whole_model_pickle_and_deepcopy_continue():
    """torch.save(model) / torch.load(weights_only=False) and copy.deepcopy give models whose optimisers still find
    their analog layers and that continue like the original."""
    cfg = KINDS["ttv2"]
    net = _small_net(cfg, 0)
    opt = AnalogSGD(net.parameters(), lr=0.05)
    _train(net, opt, 2, torch.Generator().manual_seed(1))
    buf = io.BytesIO()
    torch.save(net, buf)
    buf.seek(0)
    copies = [torch.load(buf, weights_only=False), copy.deepcopy(net)]
    for c in [net] + copies:
        o = AnalogSGD(c.parameters(), lr=0.05)
        assert len(o.analog_layers()) == 3 and all(lay in list(c.modules()) for lay in o.analog_layers())
        _train(c, o, 2, torch.Generator().manual_seed(2))
    for c in copies:
        for a, b in zip(_tile_states(net), _tile_states(c)):
            _states_equal(a, b)


def test_state_of_another_tile_kind_is_refused():
    sd = AnalogLinear(3, 2, config=KINDS["tiki_taka"], seed=0).state_dict()
    with pytest.raises(FormatError, match="TikiTakaTile, this layer's tile is a AnalogTile"):
        AnalogLinear(3, 2, config=KINDS["analog_sgd"], seed=0).load_state_dict(sd)


# ---------------------------------------------------------------------------------------------- errors
def test_clear_errors():
    lin = AnalogLinear(3, 2, config=KINDS["analog_sgd"], seed=0)
    with pytest.raises(ConfigError, match="tiles run on the CPU: move the inputs with x.cpu()"):
        lin(torch.empty(2, 3, device="meta"))
    with pytest.raises(ConfigError, match="dtype torch.float64.*use x.float\\(\\) and model.float\\(\\)"):
        lin(torch.rand(2, 3, dtype=torch.float64))
    with pytest.raises(ShapeError, match="3 features"):
        lin(torch.rand(2, 4))
    with pytest.raises(ConfigError, match="cannot be converted to float64"):
        lin.double()
    with pytest.raises(ConfigError, match="tiles run on the CPU and cannot move to 'meta'"):
        torch.nn.Sequential(lin).to("meta")
    for kw, msg in (({"groups": 2}, "groups=2 is not supported"), ({"dilation": 2}, "dilation=2 is not supported"),
                    ({"padding_mode": "reflect"}, "padding_mode='reflect'"),
                    ({"padding": "same"}, "padding'='same' is not supported")):
        with pytest.raises(ConfigError, match=msg):
            AnalogConv2d(2, 2, 3, config=KINDS["analog_sgd"], **kw)
    with pytest.raises(ConfigError, match="the same in every direction"):
        AnalogConv2d(2, 2, (3, 5), config=KINDS["analog_sgd"])
    with pytest.raises(ConfigError, match="layer '1': AnalogConv2d: groups=2.*skip=\\['1'\\]"):
        convert_to_analog(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Conv2d(2, 2, 3, groups=2)))
    with pytest.raises(ConfigError, match="'skip' entry 'fc9' matches no submodule"):
        convert_to_analog(torch.nn.Sequential(torch.nn.Linear(2, 2)), skip=["fc9"])
    with pytest.raises(ConfigError, match="'lr' parameter of AnalogSGD"):
        AnalogSGD(lin.parameters(), lr=-1.0)
    with pytest.raises(ConfigError, match="'maximize' parameter of AnalogSGD"):
        AnalogSGD(lin.parameters(), lr=0.1, maximize=True)
    with pytest.raises(ConfigError, match="'algorithm' parameter of AnalogConfig"):
        AnalogConfig(algorithm="sgd")
    with pytest.raises(ConfigError, match="must be an AnalogConfig"):
        AnalogLinear(3, 2, config="tiki_taka")


# ---------------------------------------------------------------------------------------------- convert, data
def test_convert_to_analog_replaces_and_skips():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Sequential(torch.nn.Linear(12, 5), torch.nn.Linear(5, 2)))
    net.add_module("attn", torch.nn.MultiheadAttention(4, 1))
    out = convert_to_analog(net, KINDS["analog_sgd"], skip=["3.1"], seed=0)
    assert isinstance(out[0], AnalogConv1d) and isinstance(out[3][0], AnalogLinear)
    assert type(out[3][1]) is torch.nn.Linear and type(out.attn.out_proj) is not AnalogLinear
    assert type(net[0]) is torch.nn.Conv1d  # a copy by default
    w, b = out[3][0].get_weights()
    torch.testing.assert_close(w, net[3][0].weight.detach())  # |w| <= 1/sqrt(12) < tau: nothing clipped
    torch.testing.assert_close(b, net[3][0].bias.detach())
    assert out[3][1:](out[3][0](out[2](out[1](out[0](torch.rand(2, 2, 6)))))).shape == (2, 2)
    a = convert_to_analog(net, KINDS["analog_sgd"], seed=0)
    b2 = convert_to_analog(net, KINDS["analog_sgd"], seed=0)
    _states_equal(_tile_states(a), _tile_states(b2))  # the same seed gives the same tiles


def test_init_follows_torch_manual_seed():
    """Without seeds, torch.manual_seed fixes the layer: nn.Linear's initial weights, and the tiles."""
    torch.manual_seed(3)
    ref = torch.nn.Linear(6, 4)
    torch.manual_seed(3)
    a = AnalogLinear(6, 4, config=_perfect())
    torch.manual_seed(3)
    b = AnalogLinear(6, 4, config=KINDS["tiki_taka"])
    torch.manual_seed(3)
    c = AnalogLinear(6, 4, config=KINDS["tiki_taka"])
    torch.testing.assert_close(a.get_weights()[0], ref.weight.detach())
    torch.testing.assert_close(a.bias.detach(), ref.bias.detach())
    _states_equal(_tile_states(b), _tile_states(c))


def test_datasets():
    from crossbar_sim.datasets import load_dataset
    from crossbar_sim.nn.training import NetConfig, prepare_data

    raw = load_dataset("mnist")
    ds = ImageDataset("mnist", "test", flatten=False, n=50, data=raw)
    ref = prepare_data(NetConfig(model="cnn", n_test=50), raw)
    assert len(ds) == 50 and ds[3][0].shape == (1, 28, 28) and ds.x.dtype == torch.float32
    np.testing.assert_array_equal(ds.x.numpy(), ref["x_test"])
    np.testing.assert_array_equal(ds.y.numpy(), ref["y_test"])
    assert ImageDataset("mnist", "train", flatten=True, n=20, data=raw)[0][0].shape == (784,)
    cd = CharDataset(np.arange(20), seq_len=5, stride=3)
    assert len(cd) == 5
    x, y = cd[4]
    assert x.tolist() == [12, 13, 14, 15, 16] and y.tolist() == [13, 14, 15, 16, 17]
    with pytest.raises(ConfigError, match="too few"):
        CharDataset(np.arange(4), seq_len=5)
    with pytest.raises(ConfigError, match="'split' parameter of ImageDataset"):
        ImageDataset("mnist", "val", data=raw)


# ---------------------------------------------------------------------------------------------- benchmark plumbing
def test_frontend_bench_row_and_cli_errors(capsys):
    """The interleaved front-end timing runs and reports the ratios of its medians (aihwkit answered by a stand-in
    runner here; the real one is crossbar_sim/bench/aihwkit_epoch.py); the CLI refuses a comparison without torch."""
    import json
    import subprocess

    from crossbar_sim.bench.torch_epoch import compare_frontends, format_frontends
    from crossbar_sim.cli import main

    def runner(cmd, **kw):
        out = {"tool": "aihwkit", "aihwkit_version": "stand-in", "model": "fcn", "algorithm": "tiki_taka",
               "samples": 20, "wall_s": 3.0, "cpu_s": 2.5, "epoch_60k_s": 9000.0}
        return subprocess.CompletedProcess(cmd, 0, json.dumps(out), "")

    r = compare_frontends("fcn", "tiki_taka", samples=20, rounds=1, warmup=10, aihwkit_python="/py",
                          aihwkit_runner=runner, progress=lambda *a: None)
    assert len(r["numpy_s"]) == len(r["torch_s"]) == len(r["aihwkit_s"]) == 1
    assert r["torch_over_numpy"] == pytest.approx(np.median(r["torch_s"]) / np.median(r["numpy_s"]))
    assert r["aihwkit_over_torch"] == pytest.approx(3.0 / np.median(r["torch_s"]))
    assert "aihwkit stand-in" in format_frontends(r)
    assert main(["bench", "--kind", "mnist", "--frontends", "numpy"]) == 2
    assert "include 'torch'" in capsys.readouterr().err
