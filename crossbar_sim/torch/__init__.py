"""PyTorch front end: our tiles under any torch model (the optional extra ``pip install "crossbar-sim[torch]"``).

>>> import torch
>>> from crossbar_sim.torch import AnalogConfig, AnalogSGD, convert_to_analog
>>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Sigmoid(), torch.nn.Linear(8, 2))
>>> analog = convert_to_analog(net, AnalogConfig(algorithm="tiki_taka"), seed=0)
>>> opt = AnalogSGD(analog.parameters(), lr=0.05)
>>> loss = torch.nn.functional.cross_entropy(analog(torch.rand(3, 4)), torch.tensor([0, 1, 1]))
>>> loss.backward()
>>> opt.step()   # the pulsed updates from the captured x and d, then SGD on the digital parameters

* Layers (:mod:`.layers`, :mod:`.rnn`): ``AnalogLinear``, ``AnalogConv1d``, ``AnalogConv2d``; ``AnalogRNNCell``,
  ``AnalogLSTMCell``, ``AnalogGRUCell`` and the sequence layers ``AnalogRNN``, ``AnalogLSTM``, ``AnalogGRU``.
  Forward and backward MVMs through the tiles' periphery; every tile kind (analog SGD, Tiki-Taka v1, TTv2,
  chopped TTv2, AGAD, the one-sided PCM pair); learnable output scales; large layers on several tiles.
* ``AnalogConfig`` (:mod:`.config`): the tiles of a layer, ``crossbar_sim.nn.NetConfig``'s names and defaults;
  ``docs/torch_frontend.md`` maps aihwkit's ``rpu_config`` onto it.
* ``AnalogSGD`` (:mod:`.optim`): the pulsed updates plus SGD; learning-rate schedulers work as usual.
* ``convert_to_analog`` (:mod:`.convert`); ``ImageDataset`` / ``CharDataset`` (:mod:`.data`).
* ``state_dict()`` holds every tile's full state; ``torch.save`` / ``torch.load`` continue bit-identically.
"""
from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('crossbar_sim.torch needs PyTorch, which is not installed: pip install "crossbar-sim[torch]" '
                      '(a CPU build is enough; the tiles run on the CPU).') from exc

from .config import AnalogConfig
from .convert import convert_to_analog
from .data import CharDataset, ImageDataset
from .layers import (
    AnalogContext,
    AnalogConv1d,
    AnalogConv2d,
    AnalogLayerBase,
    AnalogLinear,
    analog_layer_of,
)
from .optim import AnalogSGD
from .rnn import (
    AnalogGRU,
    AnalogGRUCell,
    AnalogLSTM,
    AnalogLSTMCell,
    AnalogRNN,
    AnalogRNNCell,
)

__all__ = ["AnalogConfig", "AnalogContext", "AnalogConv1d", "AnalogConv2d", "AnalogGRU", "AnalogGRUCell",
           "AnalogLSTM", "AnalogLSTMCell", "AnalogLayerBase", "AnalogLinear", "AnalogRNN", "AnalogRNNCell",
           "AnalogSGD", "CharDataset", "ImageDataset", "analog_layer_of", "convert_to_analog"]
