"""Network layers whose weights live on tiles, and the digital layers between them.

A weight layer (:class:`AnalogLinear`, :class:`AnalogConv2d`) holds its weight matrix on a *tile*: an
:class:`~crossbar_sim.AnalogTile` (analog SGD), a :class:`~crossbar_sim.tiles.tiki_taka.TikiTakaTile` (Tiki-Taka v1), a
:class:`~crossbar_sim.tiles.buffered.BufferedTransferTile` (TTv2, c-TTv2, AGAD) or a :class:`DigitalTile` (floating
point: digital layers and the digital SGD reference). The forward pass is ``tile.forward`` (through the
tile's periphery), the backward pass ``tile.backward`` and the update ``tile.update(x, d, lr)`` with the
layer's inputs ``x`` and the gradient ``d`` w.r.t. the tile's outputs, exactly as aihwkit's analog layers do.

Around the tile, in digital (aihwkit ``MappingParameter`` / ``digital_bias``):

* ``out_scaling``: a learnable scalar ``alpha`` (aihwkit ``learn_out_scaling`` with one scale per layer,
  initialised to 1): ``y = alpha * tile(x) + b``; it is trained by the same SGD, and the tile receives
  ``d = alpha * dy``;
* the bias: digital (default, ``digital_bias``) or an extra tile column driven by a constant input 1
  (``analog_bias=True``).

A layer larger than aihwkit's ``max_input_size`` / ``max_output_size`` (``MappingParameter``, 512 by default) lives on a
:class:`TileArray` (aihwkit ``TileModuleArray``): the inputs are cut into ``ceil(in / max_input_size)`` near-equal
parts and the outputs likewise, each block on its own tile with its own periphery (noise and bound management,
ADC, output noise) and pulse update, and its own learnable output scale; the blocks' scaled outputs are summed over
the input parts in digital, and the bias is digital. aihwkit 0.9.0 and 1.1.0 do this for every analog layer, so
the paper's FCN has its 784-input layer on two 256 x 392 tiles.

Convolutions use im2col: each patch is one input vector of the tile, so a mini-batch of ``B`` images gives
``B * Ho * Wo`` rank-1 pulsed updates, applied one after the other (as the hardware does).

Every layer keeps what its backward pass needs from the last training forward pass; the model's
``step(lr)`` then applies the updates (after the full backward pass, as an optimiser step does).
"""
from __future__ import annotations

import math

import numpy as np

from ..tiles.onesided import OneSidedTile
from . import functional as F


class Param:
    """A digital parameter and its gradient."""

    def __init__(self, value, dtype=np.float32):
        self.value = np.asarray(value, dtype)
        self.grad = np.zeros_like(self.value)


class DigitalTile:
    """Floating-point weights with the tile interface (digital layers, the digital SGD reference).

    ``update`` is the exact mini-batch SGD step ``W <- W - lr D^T X`` (one GEMM, as PyTorch).
    """

    kind = "DigitalTile"

    def __init__(self, out_size, in_size, dtype=np.float32):
        self.out_size, self.in_size = int(out_size), int(in_size)
        self.w = np.zeros((self.out_size, self.in_size), dtype)
        self.counters = {"n_forward": 0, "n_backward": 0, "n_updates": 0}

    #: weights forward and backward read instead of ``w`` while set (hardware-aware training, as TileBase's)
    _fb_weights = None

    def set_forward_weights(self, w=None):
        self._fb_weights = None if w is None else np.asarray(w, self.w.dtype).reshape(self.w.shape)

    def forward(self, X):
        self.counters["n_forward"] += X.shape[0]
        w = self.w if self._fb_weights is None else self._fb_weights
        return X.astype(self.w.dtype, copy=False) @ w.T

    def backward(self, D):
        self.counters["n_backward"] += D.shape[0]
        w = self.w if self._fb_weights is None else self._fb_weights
        return D.astype(self.w.dtype, copy=False) @ w

    def update(self, X, D, lr):
        self.counters["n_updates"] += X.shape[0]
        self.w -= self.w.dtype.type(lr) * (D.astype(self.w.dtype, copy=False).T @ X.astype(self.w.dtype, copy=False))

    def read_weights(self):
        return self.w.copy()

    def set_weights(self, w):
        self.w[...] = w

    def arrays(self):
        return {"W": self.w.copy()}

    def get_state(self):
        return {"kind": self.kind, "weights": self.w.copy()}

    def set_state(self, state):
        self.w[...] = state["weights"]


def tile_arrays(tile) -> dict:
    """Every array of a tile by name: ``W`` (one array), ``A``/``C`` (Tiki-Taka), plus digital buffers."""
    if hasattr(tile, "arrays"):
        return tile.arrays()
    if hasattr(tile, "a") and hasattr(tile, "c"):
        return {"A": tile.a.read_weights(), "C": tile.c.read_weights()}
    return {"W": tile.read_weights()}


def analog_arrays(tile) -> dict:
    """The device arrays (AnalogTiles) of a tile by name, for device parameters and counters: ``W``, ``A``/``C``;
    a one-sided pair contributes its two arrays as ``W/g_plus``, ``W/g_minus`` (``A/g_plus``, ...)."""
    if isinstance(tile, DigitalTile):
        return {}
    if isinstance(tile, TileArray):
        return {f"{tile.part_name(k)}/{name}": sub for k, (_, _, t) in enumerate(tile.parts)
                for name, sub in analog_arrays(t).items()}
    top = {"A": tile.a, "C": tile.c} if hasattr(tile, "a") and hasattr(tile, "c") else {"W": tile}
    out = {}
    for name, t in top.items():
        out.update(_device_arrays(name, t))
    return out


def _device_arrays(name, t) -> dict:
    """``{name: t}`` for an array of devices; a cell of several arrays (one-sided pair, vector cell, the analog array
    of mixed precision) contributes each of its arrays as ``name/sub``."""
    if isinstance(t, OneSidedTile) or (not hasattr(t, "devices") and isinstance(getattr(t, "tiles", None), dict)):
        out = {}
        for k, sub in t.tiles.items():
            out.update(_device_arrays(f"{name}/{k}", sub))
        return out
    return {name: t}


def split_sizes(size: int, max_size: int) -> list:
    """aihwkit's ``TileModuleArray.get_split_sizes``: ``ceil(size / max_size)`` parts, sizes differing by at most 1,
    the larger first (``max_size <= 0``: one part)."""
    if max_size <= 0:
        return [int(size)]
    n = (int(size) + int(max_size) - 1) // int(max_size)
    base, extra = divmod(int(size), n)
    return [base + (i < extra) for i in range(n)]


class TileArray:
    """A logical weight matrix on a grid of tiles (aihwkit ``TileModuleArray``), block ``(i, j)`` holding inputs
    ``in_slices[i]`` and outputs ``out_slices[j]``.

    ``parts`` lists ``(in_slice, out_slice, tile)`` in aihwkit's order (input part major); the layer applies one
    output scale per part and sums the parts' outputs over the input parts. The tile interface used by the training
    loop and the store (``read_weights``, ``set_weights``, ``arrays``, ``counters``) is provided for the whole array.

    Parameters
    ----------
    out_size, in_size : int
    make_tile : callable (out_size, in_size, index) -> tile
        Builds the tile of block ``index`` (0-based, input part major).
    max_input_size, max_output_size : int
        Largest block (aihwkit ``MappingParameter`` defaults: 512); <= 0: no split in that direction.
    """

    kind = "TileArray"

    def __init__(self, out_size, in_size, make_tile, max_input_size=512, max_output_size=512):
        self.out_size, self.in_size = int(out_size), int(in_size)
        self.in_sizes = split_sizes(self.in_size, max_input_size)
        self.out_sizes = split_sizes(self.out_size, max_output_size)
        ins = np.cumsum([0] + self.in_sizes)
        outs = np.cumsum([0] + self.out_sizes)
        self.parts = []
        for i in range(len(self.in_sizes)):
            for j in range(len(self.out_sizes)):
                t = make_tile(self.out_sizes[j], self.in_sizes[i], len(self.parts))
                self.parts.append((slice(int(ins[i]), int(ins[i + 1])), slice(int(outs[j]), int(outs[j + 1])), t))

    @property
    def n_tiles(self) -> int:
        return len(self.parts)

    def part_name(self, k: int) -> str:
        return f"tile{k // len(self.out_sizes)}_{k % len(self.out_sizes)}"

    @property
    def counters(self) -> dict:
        tot = {}
        for _, _, t in self.parts:
            for key, v in t.counters.items():
                if np.isscalar(v):
                    tot[key] = tot.get(key, 0) + v
        return tot

    def read_weights(self) -> np.ndarray:
        w = None
        for si, so, t in self.parts:
            wt = t.read_weights()
            if w is None:
                w = np.zeros((self.out_size, self.in_size), wt.dtype)
            w[so, si] = wt
        return w

    def set_weights(self, w) -> None:
        w = np.asarray(w)
        for si, so, t in self.parts:
            t.set_weights(np.ascontiguousarray(w[so, si]))

    def arrays(self) -> dict:
        return {f"{self.part_name(k)}/{name}": a for k, (_, _, t) in enumerate(self.parts)
                for name, a in tile_arrays(t).items()}


class Module:
    """Base class: ``forward(x)``, ``backward(dy, need_dx)``, ``step(lr)``, parameters and tiles."""

    def __init__(self):
        self.training = True

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy, need_dx=True):
        raise NotImplementedError

    def params(self) -> dict:
        return {}

    def tiles(self) -> dict:
        return {}

    def step(self, lr: float) -> None:
        for p in self.params().values():
            p.value -= p.value.dtype.type(lr) * p.grad

    def train(self, mode: bool = True):
        self.training = mode
        return self


class _TileLayer(Module):
    """Common part of the linear and convolutional tile layers."""

    def __init__(self, tile, in_features, out_features, bias, analog_bias, out_scaling, rng):
        super().__init__()
        self.tile = tile
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        is_array = isinstance(tile, TileArray)
        if is_array and analog_bias and bias:
            raise ValueError("a TileArray layer has a digital bias (aihwkit TileModuleArray); analog_bias=True "
                             "needs a single tile")
        self.analog_bias = bool(bias and analog_bias)
        self.digital_bias = bool(bias and not analog_bias)
        expected_in = self.in_features + (1 if self.analog_bias else 0)
        if (tile.out_size, tile.in_size) != (self.out_features, expected_in):
            raise ValueError(f"tile shape {(tile.out_size, tile.in_size)} != {(self.out_features, expected_in)}")
        # PyTorch's default init (kaiming_uniform with a = sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), written as is
        bound = 1.0 / math.sqrt(self.in_features)
        w = rng.uniform(-bound, bound, (self.out_features, self.in_features))
        b = rng.uniform(-bound, bound, self.out_features) if bias else None
        if self.analog_bias:
            tile.set_weights(np.concatenate([w, b[:, None]], axis=1))
        else:
            tile.set_weights(w)
        # (in_slice, out_slice, tile) of every tile; a single tile is the whole matrix
        parts = tile.parts if is_array else [(slice(None), slice(None), tile)]
        dt = getattr(parts[0][2], "w", np.zeros(0, np.float32)).dtype  # float64 only for DigitalTile(float64) checks
        self.bias = Param(b, dt) if self.digital_bias else None
        self.alpha = Param(np.ones(len(parts)), dt) if out_scaling else None  # one output scale per tile
        self._cache = None
        self._pending = None
        # analog tiles: the unchecked internal path (inputs are produced here: float32, C-contiguous; a NaN
        # reaches the loss before any update and stops the run there)
        self._parts = []
        for si, so, t in parts:
            fast = hasattr(t, "_forward")
            self._parts.append((si, so, t._forward if fast else t.forward, t._backward if fast else t.backward,
                                t._update if fast else t.update))
        self._whole = not is_array

    def params(self) -> dict:
        out = {}
        if self.bias is not None:
            out["bias"] = self.bias
        if self.alpha is not None:
            out["out_scale"] = self.alpha
        return out

    def tiles(self) -> dict:
        return {"tile": self.tile}

    def weight(self) -> np.ndarray:
        """The effective weight matrix (without the bias column), times the output scale."""
        w = self.tile.read_weights()[:, : self.in_features]
        if self.alpha is None:
            return w
        if self._whole:
            return w * self.alpha.value[0]
        w = w.copy()
        for k, (si, so, *_rest) in enumerate(self._parts):
            w[so, si] *= self.alpha.value[k]
        return w

    def _tile_forward(self, X):
        if self.analog_bias:
            X = np.concatenate([X, np.ones((X.shape[0], 1), X.dtype)], axis=1)
        if self._whole:
            Y = self._parts[0][2](np.ascontiguousarray(X))
            out = Y * self.alpha.value[0] if self.alpha is not None else Y
            Ys = [Y]
        else:  # every tile on its input part; scaled outputs summed over the input parts (aihwkit TileModuleArray)
            Ys, out = [], None
            for k, (si, so, fwd, _b, _u) in enumerate(self._parts):
                Y = fwd(np.ascontiguousarray(X[:, si]))
                Ys.append(Y)
                if out is None:
                    out = np.zeros((X.shape[0], self.out_features), Y.dtype)
                out[:, so] += Y * self.alpha.value[k] if self.alpha is not None else Y
        if self.bias is not None:
            out = out + self.bias.value
        if self.training:
            self._cache = (X, Ys)
        return out

    def _tile_backward(self, dY, need_dx):
        X, Ys = self._cache
        if self.bias is not None:
            self.bias.grad = dY.sum(axis=0).astype(self.bias.value.dtype)
        dtype = np.float64 if dY.dtype == np.float64 else np.float32
        Ds = []
        grads = []
        for k, (_si, so, *_rest) in enumerate(self._parts):
            dYk = dY if self._whole else dY[:, so]
            if self.alpha is not None:
                grads.append(np.sum(dYk * Ys[k]))
                Ds.append(np.ascontiguousarray(dYk * self.alpha.value[k], dtype))
            else:
                Ds.append(np.ascontiguousarray(dYk, dtype))
        if self.alpha is not None:
            self.alpha.grad = np.array(grads, self.alpha.value.dtype)
        self._pending = (X, Ds[0]) if self._whole else (X, Ds)  # (X, D) of a single tile, (X, [D_k]) of an array
        self._cache = None
        if not need_dx:
            return None
        if self._whole:
            dX = self._parts[0][3](Ds[0])
            return dX[:, : self.in_features] if self.analog_bias else dX
        dX = np.zeros((dY.shape[0], self.in_features), dtype)
        for k, (si, _so, _f, bwd, _u) in enumerate(self._parts):
            dX[:, si] += bwd(Ds[k])
        return dX

    def step(self, lr: float) -> None:
        if self._pending is not None:
            X, D = self._pending
            if self._whole:
                self._parts[0][4](X, D, lr)
            else:
                for k, (si, _so, _f, _b, upd) in enumerate(self._parts):
                    upd(np.ascontiguousarray(X[:, si]), D[k], lr)
            self._pending = None
        super().step(lr)


class AnalogLinear(_TileLayer):
    """A fully connected layer on a tile: ``y = alpha * W x + b``.

    Parameters
    ----------
    in_features, out_features : int
    tile : tile object of shape (out_features, in_features [+ 1 with analog_bias])
    bias : bool
    analog_bias : bool
        The bias is an extra tile column with constant input 1 (False: digital bias, the paper's setting).
    out_scaling : bool
        Learnable scalar output scale (aihwkit ``learn_out_scaling``).
    rng : numpy.random.Generator
        Initialisation (PyTorch's default, uniform in +-1/sqrt(in_features)).
    """

    def __init__(self, in_features, out_features, tile, bias=True, analog_bias=False, out_scaling=True, rng=None):
        rng = np.random.default_rng() if rng is None else rng
        super().__init__(tile, in_features, out_features, bias, analog_bias, out_scaling, rng)

    def forward(self, x):
        return self._tile_forward(np.ascontiguousarray(x))

    def backward(self, dy, need_dx=True):
        return self._tile_backward(dy, need_dx)


class AnalogConv2d(_TileLayer):
    """A 2-D convolution on a tile via im2col (each patch one tile input and one pulsed-update sample).

    The tile has shape (out_channels, in_channels * k * k [+ 1]); columns in PyTorch's weight order.
    """

    def __init__(self, in_channels, out_channels, kernel_size, tile, stride=1, padding=0, bias=True,
                 analog_bias=False, out_scaling=True, rng=None):
        rng = np.random.default_rng() if rng is None else rng
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.k, self.stride, self.padding = int(kernel_size), int(stride), int(padding)
        super().__init__(tile, in_channels * kernel_size * kernel_size, out_channels, bias, analog_bias,
                         out_scaling, rng)
        self._x_shape = None

    def forward(self, x):
        B, C, H, W = x.shape
        Ho = (H + 2 * self.padding - self.k) // self.stride + 1
        Wo = (W + 2 * self.padding - self.k) // self.stride + 1
        cols = F.im2col(x, self.k, self.stride, self.padding)
        if self.training:
            self._x_shape = x.shape
        y = self._tile_forward(cols)  # (B * Ho * Wo, out)
        return F.rows_to_images(y, B, Ho, Wo)

    def backward(self, dy, need_dx=True):
        dcols = self._tile_backward(F.images_to_rows(dy), need_dx)
        if dcols is None:
            return None
        return F.col2im(dcols, self._x_shape, self.k, self.stride, self.padding)


class Sigmoid(Module):
    def forward(self, x):
        y = F.sigmoid(x)
        if self.training:
            self._y = y
        return y

    def backward(self, dy, need_dx=True):
        y = self._y
        return dy * y * (1 - y)


class Tanh(Module):
    def forward(self, x):
        y = np.tanh(x)
        if self.training:
            self._y = y
        return y

    def backward(self, dy, need_dx=True):
        return dy * (1 - self._y * self._y)


class ReLU(Module):
    def forward(self, x):
        if self.training:
            self._mask = x > 0
        return np.maximum(x, 0)

    def backward(self, dy, need_dx=True):
        return dy * self._mask


class MaxPool2d(Module):
    def __init__(self, k=2):
        super().__init__()
        self.k = int(k)

    def forward(self, x):
        y, idx = F.maxpool2d(x, self.k)
        if self.training:
            self._idx, self._shape = idx, x.shape
        return y

    def backward(self, dy, need_dx=True):
        return F.maxpool2d_backward(dy, self._idx, self._shape, self.k)


class Flatten(Module):
    def forward(self, x):
        if self.training:
            self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._shape)


ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}


class Sequential(Module):
    """Layers applied in order; ``backward`` skips the input gradient of the first layer (not needed)."""

    def __init__(self, layers):
        super().__init__()
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy, need_dx=False):
        for k in range(len(self.layers) - 1, -1, -1):
            dy = self.layers[k].backward(dy, need_dx=(k > 0) or need_dx)
        return dy

    def step(self, lr):
        for layer in self.layers:
            layer.step(lr)

    def train(self, mode=True):
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def weight_layers(self) -> dict:
        """The tile layers by name (``layer<k>``, k = position in the model)."""
        return {f"layer{k}": l for k, l in enumerate(self.layers) if isinstance(l, _TileLayer)}

    def params(self) -> dict:
        out = {}
        for name, l in self.weight_layers().items():
            for pn, p in l.params().items():
                out[f"{name}.{pn}"] = p
        return out
