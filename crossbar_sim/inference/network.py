"""A trained network with its weight layers programmed onto inference tiles.

:class:`InferenceNet` runs the eval-mode forward pass of a network whose weight layers' tiles were replaced by
:class:`~crossbar_sim.inference.tile.InferenceTile` s: per tile ``y = out_scale_k * alpha_comp * read(x)`` summed
over the tiles of the layer's input parts, plus the digital bias; an analog bias column is programmed with the
weights (constant input 1), as aihwkit's ``InferenceTile`` does. The activations, pooling and flatten layers are
those of the trained network (eval mode). This repeats the combination rule of the training layers
(``nn.layers._TileLayer._tile_forward``) on purpose: the training layers keep caches for the backward pass and
their tiles are bound at construction, an inference network swaps every tile.

Which layers are programmed (``layers``): ``all`` (every weight layer; a layer trained digitally is cut into tiles
of at most ``max_input_size`` x ``max_output_size`` as aihwkit maps an analog layer) or ``analog`` (only the layers
trained on analog tiles; the others stay exact floating point).
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..rng import make_seedseq
from ..validation import check_choice
from .tile import InferenceTile

LAYER_CHOICES = ("all", "analog")


class _ExactWeights:
    """A digital layer that is not programmed: exact float32 ``X @ W^T``; drift and compensation do nothing."""

    def __init__(self, w):
        self.w = np.ascontiguousarray(w, np.float32)
        self.compensation = None

    def _forward(self, X):
        return X @ self.w.T

    def drift_to(self, t):
        pass


def _split(lw, max_in, max_out):
    """The parts of a digitally trained layer, cut as aihwkit would map it onto tiles."""
    from ..nn.layers import split_sizes

    (_si, _so, w, _pair), = lw.parts
    ins = np.cumsum([0] + split_sizes(w.shape[1], max_in))
    outs = np.cumsum([0] + split_sizes(w.shape[0], max_out))
    return [(slice(int(ins[i]), int(ins[i + 1])), slice(int(outs[j]), int(outs[j + 1])),
             np.ascontiguousarray(w[outs[j]:outs[j + 1], ins[i]:ins[i + 1]]), None)
            for i in range(len(ins) - 1) for j in range(len(outs) - 1)]


class InferenceNet:
    """The network of ``structure`` with the weights of ``trained`` on inference tiles.

    Parameters
    ----------
    structure : crossbar_sim.nn.Sequential
        A network of the run's architecture (its activations, pooling, flatten and weight-layer geometry are used;
        its weights are not).
    trained : TrainedWeights
    noise_model : InferenceNoiseModel
    seed : int or SeedSequence
        One draw: every tile's programming, drift and periphery streams are spawned from it (layer by layer, tile
        by tile).
    forward : IOParameters
        Periphery of the inference reads.
    layers : str
        ``all`` or ``analog`` (see the module docstring).
    max_input_size, max_output_size : int
        Tile sizes for the digitally trained layers that are programmed.
    compensation : DriftCompensation, str or None
    """

    def __init__(self, structure, trained, noise_model, seed, forward, layers="all", max_input_size=512,
                 max_output_size=512, compensation=None):
        check_choice(layers, "layers", "InferenceNet", LAYER_CHOICES)
        self.structure = structure
        wl = structure.weight_layers()
        if set(wl) != set(trained.layers):
            raise ConfigError(f"The trained weights have layers {sorted(trained.layers)}, the network "
                              f"{sorted(wl)}.")
        names = sorted(wl, key=lambda s: int(s[5:]))
        seeds = make_seedseq(seed).spawn(len(names))
        self._spec = {}
        self.tiles = {}
        for name, s in zip(names, seeds):
            layer, lw = wl[name], trained.layers[name]
            program = layers == "all" or lw.analog
            parts = lw.parts if (lw.analog or not program) else _split(lw, max_input_size, max_output_size)
            tseeds = s.spawn(len(parts))
            blocks = []
            for k, ((si, so, w, pair), ts) in enumerate(zip(parts, tseeds)):
                t = (InferenceTile(w, noise_model, ts, forward, pair=pair, compensation=compensation)
                     if program else _ExactWeights(w))
                a = 1.0 if (lw.out_scale is None or not lw.analog) else float(lw.out_scale[k])
                blocks.append((si, so, t, a))
                self.tiles[f"{name}/{k}"] = t
            n_in = sum(w.shape[1] for si, so, w, _ in parts if so == parts[0][1])
            analog_bias = n_in == layer.in_features + 1
            self._spec[int(name[5:])] = (layer, blocks, lw.bias, analog_bias)

    def drift_to(self, t: float) -> None:
        """Every tile to time ``t`` (s) after programming (one new read-noise sample each)."""
        for tile in self.tiles.values():
            tile.drift_to(t)

    def set_compensation(self, comp) -> None:
        """Drift compensation of every programmed tile (``none``, ``global``, ``per_column`` or a config)."""
        for tile in self.tiles.values():
            if isinstance(tile, InferenceTile):
                tile.compensation = comp

    def _matmul(self, layer, blocks, bias, analog_bias, X):
        X = np.ascontiguousarray(X, np.float32)
        if analog_bias:
            X = np.concatenate([X, np.ones((X.shape[0], 1), np.float32)], axis=1)
        out = np.zeros((X.shape[0], layer.out_features), np.float32)
        for si, so, tile, a in blocks:
            y = tile._forward(np.ascontiguousarray(X[:, si]))
            out[:, so] += y if a == 1.0 else y * np.float32(a)
        if bias is not None:
            out += bias
        return out

    def forward(self, x) -> np.ndarray:
        """Eval-mode forward pass of a batch (the network's input layout)."""
        from ..nn import functional as F

        was = self.structure.training
        self.structure.train(False)
        try:
            return self._forward(x, F)
        finally:
            self.structure.train(was)

    def _forward(self, x, F):
        for k, layer in enumerate(self.structure.layers):
            if k not in self._spec:
                x = layer.forward(x)
                continue
            _, blocks, bias, analog_bias = self._spec[k]
            if hasattr(layer, "k"):  # a convolution: im2col rows through the tiles
                B, _, H, W = x.shape
                Ho = (H + 2 * layer.padding - layer.k) // layer.stride + 1
                Wo = (W + 2 * layer.padding - layer.k) // layer.stride + 1
                cols = F.im2col(np.ascontiguousarray(x, np.float32), layer.k, layer.stride, layer.padding)
                x = F.rows_to_images(self._matmul(layer, blocks, bias, analog_bias, cols), B, Ho, Wo)
            else:
                x = self._matmul(layer, blocks, bias, analog_bias, x)
        return x

    def evaluate(self, x, y, batch: int = 1000) -> dict:
        """``{"test_loss", "test_acc"}`` on ``(x, y)``."""
        from ..nn import functional as F

        tot, correct = 0.0, 0
        for s in range(0, x.shape[0], batch):
            z = self.forward(x[s:s + batch])
            loss, _, c = F.nll_loss(z, y[s:s + batch])
            tot += loss * z.shape[0]
            correct += c
        return {"test_loss": tot / x.shape[0], "test_acc": correct / x.shape[0]}
