"""torch ``Dataset``s over our offline data: MNIST / Fashion-MNIST images and character sequences of a text.

:class:`ImageDataset` reads :func:`crossbar_sim.datasets.load_dataset` (verified, cached, installed by
``crossbar-sim data install``) and prepares it as the NumPy networks do (:func:`crossbar_sim.nn.training.prepare_data`:
pixels / 255 in float32, no normalisation), so a torch model sees the very arrays ``crossbar_sim.nn`` trains on.
:class:`CharDataset` cuts a token-id array (e.g. ``load_shakespeare().train`` from :mod:`crossbar_sim.lowrank.text`)
into (input, next-character target) windows for a language model.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..validation import check_choice, check_int


class ImageDataset(Dataset):
    """MNIST or Fashion-MNIST as ``(image, label)`` pairs: float32 tensors in [0, 1] and int64 labels.

    Parameters
    ----------
    name : str
        ``mnist`` or ``fashion-mnist``.
    split : str
        ``train`` (60k) or ``test`` (10k).
    flatten : bool
        Images as 784-vectors (for a fully connected network) instead of (1, 28, 28).
    n : int
        Keep the first ``n`` images (0: all).
    data : dict, optional
        Raw arrays as ``load_dataset`` returns them (default: loaded).
    """

    def __init__(self, name: str = "mnist", split: str = "train", flatten: bool = False, n: int = 0, data=None):
        from crossbar_sim.datasets import DATASETS
        from crossbar_sim.nn.training import NetConfig, prepare_data

        owner = type(self).__name__
        check_choice(name, "name", owner, tuple(sorted(DATASETS)))
        check_choice(split, "split", owner, ("train", "test"))
        n = check_int(n, "n", owner, 0, 60000 if split == "train" else 10000)
        cfg = NetConfig(dataset=name, model="fcn" if flatten else "cnn", **{f"n_{split}": n})
        if data is None:
            from crossbar_sim.datasets import load_dataset

            data = load_dataset(name)
        # prepare_data prepares both splits: the other one is cut to one image
        raw = {f"{k}_{s}": data[f"{k}_{s}"] if s == split else data[f"{k}_{s}"][:1]
               for k in ("x", "y") for s in ("train", "test")}
        arrays = prepare_data(cfg, raw)
        self.x = torch.from_numpy(arrays[f"x_{split}"])
        self.y = torch.from_numpy(arrays[f"y_{split}"])

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class CharDataset(Dataset):
    """Windows of a token sequence: item ``i`` is ``(ids[i*stride : i*stride + seq_len], the same shifted by one)``.

    Parameters
    ----------
    ids : array of int
        Token ids (e.g. ``crossbar_sim.lowrank.text.load_shakespeare().train``).
    seq_len : int
        Characters per window.
    stride : int, optional
        Offset between windows (default ``seq_len``: disjoint windows).
    """

    def __init__(self, ids, seq_len: int, stride: int | None = None):
        owner = type(self).__name__
        self.ids = torch.from_numpy(np.asarray(ids, np.int64).copy())
        self.seq_len = check_int(seq_len, "seq_len", owner, 1)
        self.stride = self.seq_len if stride is None else check_int(stride, "stride", owner, 1)
        n = (self.ids.numel() - 1 - self.seq_len) // self.stride + 1
        if n < 1:
            from ..errors import ConfigError

            raise ConfigError(f"{owner}: {self.ids.numel()} tokens are too few for one window of seq_len "
                              f"{self.seq_len} plus its target.")
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        s = i * self.stride
        return self.ids[s: s + self.seq_len], self.ids[s + 1: s + self.seq_len + 1]
