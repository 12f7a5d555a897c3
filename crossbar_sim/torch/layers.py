"""Analog torch layers: ``AnalogLinear``, ``AnalogConv1d``, ``AnalogConv2d``, with their weights on our tiles.

A layer's weight matrix lives on the tile that :func:`crossbar_sim.nn.models.make_layer_tile` builds from an
:class:`~crossbar_sim.torch.config.AnalogConfig` (the function the NumPy networks use): an analog SGD array (or a
one-sided PCM pair), a Tiki-Taka v1 tile, a TTv2 / c-TTv2 / AGAD tile, or a
:class:`~crossbar_sim.nn.layers.TileArray` of them for a layer larger than ``max_input_size`` /
``max_output_size``. Around the tile, in digital: one learnable output scale per tile and the bias (aihwkit's
``learn_out_scaling`` and ``digital_bias``).

One autograd function per call (:class:`TileFunction`):

* forward: the layer's input rows (a linear layer's inputs, a convolution's patches) go to ``tile.forward``
  (the forward periphery), the blocks' outputs are scaled and summed, the bias added;
* backward: the gradients of the output scales and the bias, ``d = alpha * dy`` for each tile, and the input
  gradient through ``tile.backward`` (the backward periphery);
* the rows ``x`` and the tile gradients ``d`` are kept (in training mode) and written by the optimiser's step
  (:class:`~crossbar_sim.torch.optim.AnalogSGD`) as the tile's pulsed update ``tile.update(x, d, lr)``: the
  update is made from ``x`` and ``d``, never from a dense ``dW``, as on hardware. Several backward passes before a
  step (a recurrent cell used at every time step, gradient accumulation) give one update of all their rows,
  in the order of the backward passes (aihwkit concatenates them the same way).

The arithmetic around the tile is written in NumPy, operation for operation that of
:class:`crossbar_sim.nn.layers.AnalogLinear` / ``AnalogConv2d`` (``tests/test_torch_frontend.py`` checks a whole
FCN run against ``crossbar_sim.nn`` bit for bit), on NumPy views of the CPU tensors: a C-contiguous float32
input is not copied. Everything else in a model (activations, pooling, normalisation, the loss) is ordinary
torch autograd.

The tiles run on the CPU, in float32: a CUDA (or meta) tensor, a float64 input or ``module.cuda()`` /
``.double()`` raise :class:`~crossbar_sim.errors.ConfigError` saying what to do. ``state_dict()`` holds the whole
tile state (:mod:`crossbar_sim.torch.state`) under ``<layer>._extra_state``.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, ShapeError
from ..nn import functional as NF
from ..nn.layers import DigitalTile, TileArray, split_sizes
from ..nn.models import make_layer_tile
from ..validation import check_finite_array
from . import state as S
from .config import AnalogConfig


# ---------------------------------------------------------------------------------------------- the context
class AnalogContext(nn.Parameter):
    """The parameter through which an optimiser finds an analog layer (aihwkit ``AnalogContext``).

    A 0-d tensor that needs no gradient: :class:`~crossbar_sim.torch.optim.AnalogSGD` calls
    ``context.layer.apply_update(lr)`` with the learning rate of the context's parameter group. It follows its
    layer through ``copy.deepcopy`` and pickling (``torch.save(model)``).
    """

    def __new__(cls, data=None, requires_grad=False):
        return super().__new__(cls, torch.zeros(()) if data is None else data, False)

    def __init__(self, data=None, requires_grad=False):
        self.layer = None

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        new = AnalogContext()
        memo[id(self)] = new
        new.layer = copy.deepcopy(self.layer, memo)
        return new

    def __reduce_ex__(self, proto):
        return (_rebuild_context, (self.layer,))

    def __repr__(self) -> str:
        return f"AnalogContext({type(self.layer).__name__})"


def _rebuild_context(layer):
    ctx = AnalogContext()
    ctx.layer = layer
    return ctx


def analog_layer_of(param):
    """The analog layer an optimiser parameter stands for, or None for an ordinary parameter."""
    return param.layer if isinstance(param, AnalogContext) else None


def _seed_from_torch() -> int:
    """A tile seed drawn from torch's default generator, so ``torch.manual_seed`` fixes every tile too."""
    return int(torch.randint(0, 2**62, (1,)).item())


def check_tensor(x: torch.Tensor, name: str, owner: str, dtype=torch.float32) -> None:
    """Raise :class:`ConfigError` unless ``x`` is a CPU tensor of ``dtype`` (the tiles are NumPy arrays)."""
    if not isinstance(x, torch.Tensor):
        raise ConfigError(f"{owner}: '{name}' must be a torch.Tensor. Got {type(x).__name__}.")
    if x.device.type != "cpu":
        raise ConfigError(f"{owner}: '{name}' is on device '{x.device}', but the tiles run on the CPU: move the "
                          f"inputs with x.cpu() and keep the model on the CPU (model.cpu()).")
    if x.dtype != dtype:
        hint = "x.float() and model.float()" if dtype == torch.float32 else f"x.to({dtype})"
        raise ConfigError(f"{owner}: '{name}' has dtype {x.dtype}, but the tiles compute in "
                          f"{str(dtype).replace('torch.', '')}: use {hint}.")


# ---------------------------------------------------------------------------------------------- autograd
class TileFunction(torch.autograd.Function):
    """``layer``'s analog product of ``x`` with the output scales and the bias (see the module docstring).

    ``forward(x, bias, out_scale, layer)``; ``bias`` and ``out_scale`` (or None) are passed so that autograd
    delivers their gradients.
    """

    @staticmethod
    def forward(ctx, x, bias, out_scale, layer):
        X = x.numpy(force=True)  # views: the layer checked that x is a CPU tensor, and its parameters are
        b = None if bias is None else bias.numpy(force=True)
        alpha = None if out_scale is None else out_scale.numpy(force=True)
        rows, meta = layer._to_rows(X)
        out, saved = layer._rows_forward(rows, b, alpha)
        ctx.layer, ctx.saved, ctx.meta = layer, saved, meta
        ctx.save_for_backward(x, bias, out_scale)  # the NumPy views above alias these: torch's in-place checks
        ctx.capture = layer.training
        return torch.from_numpy(layer._from_rows(out, meta))

    @staticmethod
    def backward(ctx, grad):
        layer = ctx.layer
        _ = ctx.saved_tensors  # raises if x, the bias or the scales were modified in place since the forward pass
        need_dx = ctx.needs_input_grad[0]
        dY = layer._grad_to_rows(grad.numpy(force=True), ctx.meta)
        d_rows, g_bias, g_scale = layer._rows_backward(ctx.saved, dY, need_dx, ctx.capture)
        dx = torch.from_numpy(layer._grad_from_rows(d_rows, ctx.meta)) if need_dx else None
        return (dx, None if g_bias is None else torch.from_numpy(g_bias),
                None if g_scale is None else torch.from_numpy(g_scale), None)


# ---------------------------------------------------------------------------------------------- base layer
class AnalogLayerBase(nn.Module):
    """The tile of a layer, its digital output scales and bias, the captured update rows; the tile arithmetic.

    Subclasses say how inputs become rows of the tile (``_to_rows`` / ``_from_rows`` and their adjoints).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool, config: AnalogConfig | None, seed, tile):
        super().__init__()
        config = AnalogConfig() if config is None else config
        owner = type(self).__name__
        if not isinstance(config, AnalogConfig):
            raise ConfigError(f"The 'config' parameter of {owner} must be an AnalogConfig. Got {config!r} instead.")
        self.config = config
        self.in_features, self.out_features = int(in_features), int(out_features)
        has_bias = bool(bias)
        analog = not config.is_digital
        b = None
        if tile is None:
            # nn.Linear's / nn.Conv*'s initialisation from torch's generator (same draws, same order), then the seed
            w = torch.empty(self.out_features, self.in_features)
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
            if has_bias:
                bound = 1.0 / math.sqrt(self.in_features)
                b = torch.empty(self.out_features).uniform_(-bound, bound)
            seed = _seed_from_torch() if seed is None else seed
            split = analog and (len(split_sizes(self.in_features, config.max_input_size)) > 1
                                or len(split_sizes(self.out_features, config.max_output_size)) > 1)
            self.analog_bias = has_bias and analog and not config.digital_bias and not split
            tile = make_layer_tile(config, self.out_features, self.in_features + self.analog_bias, seed, analog)
            W = w.numpy()
            tile.set_weights(np.concatenate([W, b.numpy()[:, None]], axis=1) if self.analog_bias else W)
        else:  # a tile built by the caller keeps its weights; a digital bias starts at 0
            self.analog_bias = has_bias and analog and not config.digital_bias and not isinstance(tile, TileArray)
            want = (self.out_features, self.in_features + self.analog_bias)
            if (tile.out_size, tile.in_size) != want:
                raise ShapeError(f"{owner}: the tile has shape {(tile.out_size, tile.in_size)}, the layer needs {want}.")
        self.tile = tile
        parts = tile.parts if isinstance(tile, TileArray) else [(slice(None), slice(None), tile)]
        self._whole = not isinstance(tile, TileArray)
        # (in_slice, out_slice, forward, backward, update) of every tile: an analog tile's internal path (the one
        # crossbar_sim.nn's layers use: C-contiguous float32 inputs made here; inputs and gradients reach the update
        # only after a periphery pass that rejects NaN/inf, or the explicit check of the first layer's gradient)
        self._parts = []
        for si, so, t in parts:
            fast = hasattr(t, "_update")
            self._parts.append((si, so, t._forward if fast else t.forward, t._backward if fast else t.backward,
                                t._update if fast else t.update))
        first = parts[0][2]
        self._np_dtype = first.w.dtype if isinstance(first, DigitalTile) else np.dtype(np.float32)
        self._dtype = torch.float64 if self._np_dtype == np.float64 else torch.float32
        if has_bias and not self.analog_bias:
            self.bias = nn.Parameter(b.to(self._dtype) if b is not None else torch.zeros(self.out_features,
                                                                                         dtype=self._dtype))
        else:
            self.register_parameter("bias", None)
        if config.learn_out_scaling and analog:
            self.out_scale = nn.Parameter(torch.ones(len(parts), dtype=self._dtype))
        else:
            self.register_parameter("out_scale", None)
        self.analog_ctx = AnalogContext()
        self.analog_ctx.layer = self
        self._pending = []  # (X, [D per tile]) of every backward pass since the last update

    # ------------------------------------------------------------------ torch plumbing
    def _apply(self, fn, *args, **kwargs):
        try:  # what the conversion does to a tensor like the parameters (device and dtype moves are refused)
            probe = fn(torch.zeros(1, dtype=self._dtype))
        except (RuntimeError, TypeError, ValueError, AssertionError):  # one that needs a real parameter (e.g. a
            # memory format), or a device torch lacks: torch itself handles it and says what is wrong
            return super()._apply(fn, *args, **kwargs)
        if probe.device.type != "cpu":
            raise ConfigError(f"{type(self).__name__}: its tiles run on the CPU and cannot move to '{probe.device}'; "
                              f"keep the model on the CPU and move the inputs with x.cpu().")
        if probe.dtype != self._dtype:
            raise ConfigError(f"{type(self).__name__}: its tiles compute in {str(self._dtype)[6:]}; it cannot be "
                              f"converted to {str(probe.dtype)[6:]}.")
        return super()._apply(fn, *args, **kwargs)

    def get_extra_state(self) -> dict:
        """The whole tile state: every array, the device parameters, counters and random streams. Rows captured for
        an update not yet applied belong to the current step, as ``.grad`` does, and are not saved: save after
        ``optimizer.step()``."""
        return {"format": S.FORMAT, "version": S.VERSION, "tile": S.to_torch(S.tile_state(self.tile))}

    def set_extra_state(self, state) -> None:
        where = type(self).__name__
        if not isinstance(state, dict) or state.get("format") != S.FORMAT:
            from ..errors import FormatError

            raise FormatError(f"{where}: the stored extra state is not a crossbar_sim.torch tile state.")
        S.set_tile_state(self.tile, S.from_torch(state["tile"]), where)
        self._pending = []

    def extra_repr(self) -> str:
        tiles = f"{self.tile.n_tiles} tiles" if isinstance(self.tile, TileArray) else type(self.tile).__name__
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None or self.analog_bias}, algorithm={self.config.algorithm_preset or self.config.algorithm}, {tiles}")

    # ------------------------------------------------------------------ weights
    def get_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(W, b)``: the effective weights (the tiles' weights times their output scales) and the bias."""
        w = self.tile.read_weights()
        b = None
        if self.analog_bias:
            w, b = w[:, :-1], w[:, -1].copy()
        w = np.ascontiguousarray(w)
        if self.out_scale is not None:
            a = self.out_scale.detach().numpy()
            for k, (si, so, *_f) in enumerate(self._parts):
                w[so, si] *= a[k]
        if self.bias is not None:
            b = self.bias.detach().numpy().copy()
        return torch.from_numpy(w), None if b is None else torch.from_numpy(b)

    def set_weights(self, weight, bias=None) -> None:
        """Program the tiles with ``weight`` ((out_features, in_features), or the layer's torch weight shape) and set
        the bias; output scales are reset to 1. The tiles clip to their devices' bounds."""
        W = torch.as_tensor(weight).detach().cpu().reshape(self.out_features, -1).to(torch.float64).numpy()
        if W.shape[1] != self.in_features:
            raise ShapeError(f"{type(self).__name__}: 'weight' must have {self.in_features} inputs per output. "
                             f"Got shape {tuple(torch.as_tensor(weight).shape)}.")
        b = None if bias is None else torch.as_tensor(bias).detach().cpu().to(torch.float64).numpy()
        if self.analog_bias:
            W = np.concatenate([W, (np.zeros(self.out_features) if b is None else b)[:, None]], axis=1)
        self.tile.set_weights(W.astype(self._np_dtype))
        with torch.no_grad():
            if self.bias is not None:
                self.bias.copy_(torch.zeros(self.out_features) if b is None else torch.from_numpy(b))
            if self.out_scale is not None:
                self.out_scale.fill_(1.0)

    # ------------------------------------------------------------------ the update
    @property
    def has_update(self) -> bool:
        """True when backward passes captured rows that the next optimiser step will write onto the tiles."""
        return bool(self._pending)

    def apply_update(self, lr: float) -> None:
        """Write the captured rows onto the tiles: ``tile.update(x, d, lr)`` (every block on its input part)."""
        if not self._pending:
            return
        if len(self._pending) == 1:
            X, Ds = self._pending[0]
        else:  # several backward passes: one update of all their rows, in backward order (as aihwkit)
            X = np.concatenate([p[0] for p in self._pending])
            Ds = [np.concatenate([p[1][k] for p in self._pending]) for k in range(len(self._parts))]
        self._pending = []
        lr = float(lr)
        if self._whole:
            self._parts[0][4](X, Ds[0], lr)
        else:
            for k, (si, _so, _f, _b, upd) in enumerate(self._parts):
                upd(np.ascontiguousarray(X[:, si]), Ds[k], lr)

    def discard_update(self) -> None:
        """Forget the captured rows (nothing is written)."""
        self._pending = []

    # ------------------------------------------------------------------ tile arithmetic (NumPy, as crossbar_sim.nn)
    def _rows_forward(self, X, bias, alpha):
        """``(out, saved)``: the layer's outputs for input rows ``X`` (bias and output scales as NumPy arrays or
        None) and what the backward pass needs."""
        if self.analog_bias:
            X = np.concatenate([X, np.ones((X.shape[0], 1), X.dtype)], axis=1)
        X = np.ascontiguousarray(X)
        if self._whole:
            Y = self._parts[0][2](X)
            out = Y * alpha[0] if alpha is not None else Y
            Ys = [Y]
        else:  # each block on its input part; scaled outputs summed over the input parts (aihwkit TileModuleArray)
            Ys, out = [], None
            for k, (si, so, fwd, _b, _u) in enumerate(self._parts):
                Y = fwd(np.ascontiguousarray(X[:, si]))
                Ys.append(Y)
                if out is None:
                    out = np.zeros((X.shape[0], self.out_features), Y.dtype)
                out[:, so] += Y * alpha[k] if alpha is not None else Y
        if bias is not None:
            out = out + bias
        return out, (X, Ys, bias is not None, alpha)

    def _rows_backward(self, saved, dY, need_dx, capture):
        """``(dX, bias gradient, output-scale gradients)`` of the output gradient rows ``dY``; with ``capture``, the
        rows and tile gradients are kept for the update."""
        X, Ys, has_bias, alpha = saved
        g_bias = dY.sum(axis=0).astype(self._np_dtype) if has_bias else None
        dtype = np.float64 if dY.dtype == np.float64 else np.float32
        Ds, grads = [], []
        for k, (_si, so, *_f) in enumerate(self._parts):
            dYk = dY if self._whole else dY[:, so]
            if alpha is not None:
                grads.append(np.sum(dYk * Ys[k]))
                Ds.append(np.ascontiguousarray(dYk * alpha[k], dtype))
            else:
                Ds.append(np.ascontiguousarray(dYk, dtype))
        g_scale = np.array(grads, self._np_dtype) if alpha is not None else None
        if capture:
            if not need_dx:  # no backward MVM checks these gradients before the update
                for D in Ds:
                    check_finite_array(D, f"the output gradient of {type(self).__name__}")
            self._pending.append((X, Ds))
        if not need_dx:
            return None, g_bias, g_scale
        if self._whole:
            dX = self._parts[0][3](Ds[0])
            return (dX[:, : self.in_features] if self.analog_bias else dX), g_bias, g_scale
        dX = np.zeros((dY.shape[0], self.in_features), dtype)
        for k, (si, _so, _f, bwd, _u) in enumerate(self._parts):
            dX[:, si] += bwd(Ds[k])
        return dX, g_bias, g_scale

    # ------------------------------------------------------------------ calling
    def _check(self, x):
        if not (type(x) is torch.Tensor and x.is_cpu and x.dtype is self._dtype):
            check_tensor(x, "input", type(self).__name__, self._dtype)

    def _run(self, x):
        return TileFunction.apply(x, self.bias, self.out_scale, self)

    # identity row mapping (the linear layer); convolutions override these four
    def _to_rows(self, X):
        return np.ascontiguousarray(X), None

    def _from_rows(self, Y, meta):
        return Y

    def _grad_to_rows(self, G, meta):
        return np.ascontiguousarray(G)

    def _grad_from_rows(self, dR, meta):
        return dR


# ---------------------------------------------------------------------------------------------- layers
class AnalogLinear(AnalogLayerBase):
    """``y = alpha W x + b`` with ``W`` on tiles (a drop-in for :class:`torch.nn.Linear`).

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    config : AnalogConfig, optional
        The tiles and mapping options (default: ``AnalogConfig()``, the paper's Tiki-Taka setting).
    seed : int, numpy.random.SeedSequence or None
        Tile seed (device-to-device variation, pulse and periphery noise streams); None draws it from torch's
        default generator after the weights, so ``torch.manual_seed`` fixes the whole layer.
    tile : tile, optional
        A tile built by the caller (shape ``(out_features, in_features [+ 1 for an analog bias])``, or a
        :class:`~crossbar_sim.nn.layers.TileArray`); its weights are kept and the digital bias starts at 0.

    Inputs of shape ``(..., in_features)``, float32 on the CPU. The weights start as ``torch.nn.Linear``'s (the same
    draws from torch's generator), programmed onto the tiles (clipped to the devices' bounds).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, config: AnalogConfig | None = None,
                 seed=None, tile=None):
        super().__init__(in_features, out_features, bias, config, seed, tile)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if x.shape[-1] != self.in_features:
            raise ShapeError(f"AnalogLinear: the input must have {self.in_features} features in its last dimension. "
                             f"Got shape {tuple(x.shape)}.")
        if x.dim() == 2:
            return self._run(x)
        lead = x.shape[:-1]
        return self._run(x.reshape(-1, self.in_features)).reshape(*lead, self.out_features)

    @classmethod
    def from_digital(cls, module: nn.Linear, config: AnalogConfig | None = None, seed=None) -> AnalogLinear:
        """An analog copy of ``module`` (its weight and bias programmed onto the tiles)."""
        layer = cls(module.in_features, module.out_features, module.bias is not None, config,
                    _seed_from_torch() if seed is None else seed)
        layer.set_weights(module.weight, module.bias)
        return layer


def _pair(v, name: str, owner: str) -> int:
    """An int, or a pair of equal ints (square kernels, equal strides and padding in both directions)."""
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise ConfigError(f"{owner}: '{name}' must be the same in every direction (got {tuple(v)}); only square "
                              f"kernels, equal strides and equal padding are supported.")
        v = v[0]
    if isinstance(v, str):
        raise ConfigError(f"{owner}: '{name}'={v!r} is not supported; give the padding as an int.")
    return int(v)


def _check_conv_options(owner, dilation, groups, padding_mode):
    if _pair(dilation, "dilation", owner) != 1:
        raise ConfigError(f"{owner}: dilation={dilation} is not supported (only dilation 1).")
    if int(groups) != 1:
        raise ConfigError(f"{owner}: groups={groups} is not supported (only groups 1).")
    if padding_mode != "zeros":
        raise ConfigError(f"{owner}: padding_mode={padding_mode!r} is not supported (only 'zeros').")


class _AnalogConv(AnalogLayerBase):
    """What the convolutions share: options, the tile of ``(out_channels, in_channels * window)``, conversion."""

    #: spatial dimensions (1 or 2); the tile has in_channels * kernel_size ** ndim inputs
    ndim = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", config: AnalogConfig | None = None,
                 seed=None, tile=None):
        owner = type(self).__name__
        _check_conv_options(owner, dilation, groups, padding_mode)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size", owner)
        self.stride = _pair(stride, "stride", owner)
        self.padding = _pair(padding, "padding", owner)
        super().__init__(self.in_channels * self.kernel_size ** self.ndim, self.out_channels, bias, config, seed, tile)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if x.dim() == self.ndim + 1:  # unbatched
            return self.forward(x.unsqueeze(0)).squeeze(0)
        if x.dim() != self.ndim + 2 or x.shape[1] != self.in_channels:
            dims = "height, width" if self.ndim == 2 else "length"
            raise ShapeError(f"{type(self).__name__}: the input must have shape (batch, {self.in_channels}, {dims}). "
                             f"Got shape {tuple(x.shape)}.")
        return self._run(x)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, " + super().extra_repr())

    @classmethod
    def from_digital(cls, module, config: AnalogConfig | None = None, seed=None):
        """An analog copy of ``module`` (an ``nn.Conv1d`` / ``nn.Conv2d``; weight and bias programmed onto the tiles)."""
        layer = cls(module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                    module.dilation, module.groups, module.bias is not None, module.padding_mode, config,
                    _seed_from_torch() if seed is None else seed)
        layer.set_weights(module.weight, module.bias)
        return layer


class AnalogConv2d(_AnalogConv):
    """A 2-D convolution on tiles through im2col: each patch is one tile input and one sample of the pulsed update.

    The tile has shape ``(out_channels, in_channels * k * k [+ 1])``, columns in PyTorch's weight order
    (``weight.reshape(out, -1)``); im2col, col2im and the patch-row layout changes are the Numba kernels of
    :mod:`crossbar_sim.nn.functional` (those of ``crossbar_sim.nn.AnalogConv2d``). Square kernels, equal strides and
    padding, zero padding; dilation and groups other than 1 raise :class:`ConfigError`. Inputs ``(B, C, H, W)``
    (or ``(C, H, W)``), float32 on the CPU. Other parameters as :class:`AnalogLinear`.
    """

    ndim = 2

    def _to_rows(self, X):
        X = np.ascontiguousarray(X)
        B, _C, H, W = X.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
        if Ho < 1 or Wo < 1:
            raise ShapeError(f"AnalogConv2d: a {H} x {W} input is smaller than the {k} x {k} kernel (padding {p}).")
        return NF.im2col(X, k, s, p), (X.shape, B, Ho, Wo)

    def _from_rows(self, Y, meta):
        _shape, B, Ho, Wo = meta
        return NF.rows_to_images(Y, B, Ho, Wo)

    def _grad_to_rows(self, G, meta):
        return NF.images_to_rows(np.ascontiguousarray(G))

    def _grad_from_rows(self, dR, meta):
        return NF.col2im(np.ascontiguousarray(dR), meta[0], self.kernel_size, self.stride, self.padding)


class AnalogConv1d(_AnalogConv):
    """A 1-D convolution on tiles: each window of ``kernel_size`` samples of every channel is one tile input (and one
    sample of the pulsed update). The tile has shape ``(out_channels, in_channels * kernel_size [+ 1])``, columns in
    PyTorch's weight order. Zero padding; dilation and groups other than 1 raise :class:`ConfigError`. Inputs
    ``(B, C, L)`` (or ``(C, L)``), float32 on the CPU. Other parameters as :class:`AnalogLinear`.
    """

    ndim = 1

    def _to_rows(self, X):
        B, C, L = X.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        Lo = (L + 2 * p - k) // s + 1
        if Lo < 1:
            raise ShapeError(f"AnalogConv1d: a length-{L} input is shorter than the kernel ({k}, padding {p}).")
        Xp = np.pad(X, ((0, 0), (0, 0), (p, p))) if p else X
        win = np.lib.stride_tricks.sliding_window_view(Xp, k, axis=2)[:, :, : s * (Lo - 1) + 1 : s]  # (B, C, Lo, k)
        rows = np.ascontiguousarray(win.transpose(0, 2, 1, 3)).reshape(B * Lo, C * k)
        return rows, (X.shape, Lo)

    def _from_rows(self, Y, meta):
        (B, _C, _L), Lo = meta
        return np.ascontiguousarray(Y.reshape(B, Lo, -1).transpose(0, 2, 1))

    def _grad_to_rows(self, G, meta):
        B, O, Lo = G.shape
        return np.ascontiguousarray(G.transpose(0, 2, 1)).reshape(B * Lo, O)

    def _grad_from_rows(self, dR, meta):
        (B, C, L), Lo = meta
        k, s, p = self.kernel_size, self.stride, self.padding
        dc = dR.reshape(B, Lo, C, k)
        dXp = np.zeros((B, C, L + 2 * p), dR.dtype)
        for j in range(k):  # window offset j touches samples j, j + s, ..., j + s (Lo - 1)
            dXp[:, :, j: j + s * (Lo - 1) + 1: s] += dc[:, :, :, j].transpose(0, 2, 1)
        return dXp[:, :, p: p + L] if p else dXp


#: digital torch layer -> its analog counterpart (convert_to_analog)
ANALOG_LAYERS = {nn.Linear: AnalogLinear, nn.Conv1d: AnalogConv1d, nn.Conv2d: AnalogConv2d}
