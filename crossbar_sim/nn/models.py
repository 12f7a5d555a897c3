"""The paper's networks (arXiv 2406.12774, section 5) and the tiles their weight layers live on.

* ``fcn``: 784-256-128-10, sigmoid activations (batch 10 in the paper);
* ``cnn``: conv 1->16 5x5, tanh, maxpool 2, conv 16->32 5x5, tanh, maxpool 2, flatten (512),
  FC 512->128, tanh, FC 128->10 (batch 8 in the paper).

The output layer feeds the softmax cross-entropy (NLL of log-softmax). Any weight layer can be digital or
analog (``analog_layers``); analog layers use the algorithm's tile (analog SGD, Tiki-Taka v1, TTv2, c-TTv2,
AGAD, mixed precision, or an ``algorithm_preset``), digital ones a floating-point :class:`~crossbar_sim.nn.layers.DigitalTile`.
"""
from __future__ import annotations

import numpy as np

from .layers import (ACTIVATIONS, AnalogConv2d, AnalogLinear, DigitalTile, Flatten, MaxPool2d, Sequential, TileArray,
                     split_sizes)

MODELS = ("fcn", "cnn")
ALGORITHMS = ("digital_sgd", "analog_sgd", "tiki_taka", "ttv2", "chopped_ttv2", "agad", "mixed_precision")

#: (kind, arguments) of the weight layers of each model, in order
LAYER_SPECS = {
    "fcn": [("linear", 784, 256), ("linear", 256, 128), ("linear", 128, 10)],
    "cnn": [("conv", 1, 16, 5), ("conv", 16, 32, 5), ("linear", 512, 128), ("linear", 128, 10)],
}


def n_weight_layers(model: str) -> int:
    return len(LAYER_SPECS[model])


def make_tile(cfg, out_size: int, in_size: int, seed, analog: bool = True):
    """The tile of one weight layer for run config ``cfg`` (a :class:`~crossbar_sim.nn.training.NetConfig`): the
    tile of its algorithm or ``algorithm_preset`` (:func:`crossbar_sim.least_squares.training.algorithm_tile_config`),
    or a digital tile."""
    from ..least_squares.training import algorithm_tile_config
    from ..tiles.factory import build_tile

    if not analog or is_digital(cfg):
        return DigitalTile(out_size, in_size)
    return build_tile(out_size, in_size, algorithm_tile_config(cfg, cfg.resolved_device()), seed=seed)


def is_digital(cfg) -> bool:
    """True for the digital SGD reference run (no analog tiles)."""
    return cfg.algorithm == "digital_sgd" and not getattr(cfg, "algorithm_preset", "")


def make_layer_tile(cfg, out_size: int, in_size: int, seed, analog: bool = True):
    """:func:`make_tile`, or a :class:`~crossbar_sim.nn.layers.TileArray` of such tiles when the analog layer is
    larger than ``cfg.max_input_size`` / ``cfg.max_output_size`` (aihwkit's mapping; the blocks' seeds are spawned
    from ``seed``)."""
    digital = not analog or is_digital(cfg)
    if digital or (len(split_sizes(in_size, cfg.max_input_size)) == 1
                   and len(split_sizes(out_size, cfg.max_output_size)) == 1):
        return make_tile(cfg, out_size, in_size, seed, analog)
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    n = len(split_sizes(in_size, cfg.max_input_size)) * len(split_sizes(out_size, cfg.max_output_size))
    seeds = ss.spawn(n)
    return TileArray(out_size, in_size, lambda o, i, k: make_tile(cfg, o, i, seeds[k], True),
                     cfg.max_input_size, cfg.max_output_size)


def build_model(cfg, seed) -> Sequential:
    """The network of ``cfg.model`` with its weight layers on tiles; initialisation and tile seeds from ``seed``."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    s_init, s_tiles = ss.spawn(2)
    rng = np.random.default_rng(s_init)
    specs = LAYER_SPECS[cfg.model]
    tile_seeds = s_tiles.spawn(len(specs))
    analog = cfg.analog_mask()
    digital_run = is_digital(cfg)
    layers = []
    act = ACTIVATIONS["sigmoid" if cfg.model == "fcn" else "tanh"]
    for k, spec in enumerate(specs):
        is_analog = analog[k] and not digital_run
        # the output scale and the bias follow aihwkit's mapping on analog layers; digital layers are plain
        scaling = cfg.learn_out_scaling and is_analog
        n_out, n_in = (spec[2], spec[1]) if spec[0] == "linear" else (spec[2], spec[1] * spec[3] * spec[3])
        split = is_analog and (len(split_sizes(n_in, cfg.max_input_size)) > 1
                               or len(split_sizes(n_out, cfg.max_output_size)) > 1)
        analog_bias = (not cfg.digital_bias) and is_analog and not split  # a tile array's bias is digital (aihwkit)
        if spec[0] == "linear":
            _, n_in, n_out = spec
            tile = make_layer_tile(cfg, n_out, n_in + (1 if analog_bias else 0), tile_seeds[k], is_analog)
            layers.append(AnalogLinear(n_in, n_out, tile, bias=True, analog_bias=analog_bias, out_scaling=scaling,
                                       rng=rng))
        else:
            _, c_in, c_out, ks = spec
            tile = make_layer_tile(cfg, c_out, c_in * ks * ks + (1 if analog_bias else 0), tile_seeds[k], is_analog)
            layers.append(AnalogConv2d(c_in, c_out, ks, tile, bias=True, analog_bias=analog_bias,
                                       out_scaling=scaling, rng=rng))
        last = k == len(specs) - 1
        if not last:
            layers.append(act())
            if spec[0] == "conv":
                layers.append(MaxPool2d(2))
                if specs[k + 1][0] == "linear":
                    layers.append(Flatten())
    return Sequential(layers)
