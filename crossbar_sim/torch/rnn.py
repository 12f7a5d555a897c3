"""Analog recurrent layers: RNN, LSTM and GRU cells whose two weight matrices are :class:`AnalogLinear` layers.

A cell has ``weight_ih`` (input -> gates) and ``weight_hh`` (hidden -> gates), each on its own tiles; the gate
arithmetic is torch's (``torch.nn.RNNCell`` / ``LSTMCell`` / ``GRUCell`` formulas, gates in torch's order: LSTM
``i, f, g, o``, GRU ``r, z, n``). A cell used at every time step captures one ``(x, d)`` block per step in the
backward pass, and the optimiser's step writes all of them as one pulsed update per array (aihwkit's analog RNNs
do the same). The sequence layers :class:`AnalogRNN`, :class:`AnalogLSTM` and :class:`AnalogGRU` run a stack of
cells over a sequence (``(T, B, features)``, or ``(B, T, features)`` with ``batch_first``); they compute the
input projection of a layer for all time steps in one tile call (one MVM batch of ``T * B`` rows) and step
``weight_hh`` through time.

Initialisation as torch's recurrent layers: every weight and bias uniform in ``+-1 / sqrt(hidden_size)`` from
torch's default generator, programmed onto the tiles.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..errors import ShapeError
from ..validation import check_choice, check_int
from .config import AnalogConfig
from .layers import AnalogLinear

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _seeds(seed, n):
    if seed is None:
        return [None] * n
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return ss.spawn(n)


class _AnalogCell(nn.Module):
    mode = "rnn"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, config: AnalogConfig | None = None,
                 seed=None):
        super().__init__()
        owner = type(self).__name__
        self.input_size = check_int(input_size, "input_size", owner, 1)
        self.hidden_size = check_int(hidden_size, "hidden_size", owner, 1)
        g = GATES[self.mode] * self.hidden_size
        s_ih, s_hh = _seeds(seed, 2)
        self.weight_ih = AnalogLinear(self.input_size, g, bias, config, s_ih)
        self.weight_hh = AnalogLinear(self.hidden_size, g, bias, config, s_hh)
        k = 1.0 / math.sqrt(self.hidden_size)  # torch's recurrent init
        for lin in (self.weight_ih, self.weight_hh):
            w = torch.empty(g, lin.in_features).uniform_(-k, k)
            b = torch.empty(g).uniform_(-k, k) if bias else None
            lin.set_weights(w, b)

    def _zeros(self, x):
        return torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype)

    def forward(self, x: torch.Tensor, state=None):
        """One time step: ``x`` of shape (batch, input_size) (or (input_size,))."""
        if x.dim() == 1:
            out = self.forward(x.unsqueeze(0), _unsqueeze(state))
            return _squeeze(out)
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ShapeError(f"{type(self).__name__}: the input must have shape (batch, {self.input_size}). Got "
                             f"{tuple(x.shape)}.")
        return self.step(self.weight_ih(x), state if state is not None else self.initial_state(x))

    def initial_state(self, x):
        return self._zeros(x)


def _unsqueeze(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.unsqueeze(0) for s in state)
    return state.unsqueeze(0)


def _squeeze(out):
    if isinstance(out, tuple):
        return tuple(s.squeeze(0) for s in out)
    return out.squeeze(0)


class AnalogRNNCell(_AnalogCell):
    """``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or ReLU) on tiles (a drop-in for :class:`torch.nn.RNNCell`).

    Parameters
    ----------
    input_size, hidden_size : int
    bias : bool
    nonlinearity : str
        ``tanh`` or ``relu``.
    config : AnalogConfig, optional
        The tiles of both weight matrices.
    seed : int, SeedSequence or None
        Seeds of the two layers' tiles (spawned); None: from torch's generator.
    """

    mode = "rnn"

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity: str = "tanh", config=None, seed=None):
        self.nonlinearity = check_choice(nonlinearity, "nonlinearity", type(self).__name__, ("tanh", "relu"))
        super().__init__(input_size, hidden_size, bias, config, seed)

    def step(self, gi, h):
        pre = gi + self.weight_hh(h)
        return torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)


class AnalogLSTMCell(_AnalogCell):
    """An LSTM cell on tiles (a drop-in for :class:`torch.nn.LSTMCell`): state ``(h, c)``; gates ``i, f, g, o``.
    Parameters as :class:`AnalogRNNCell` (no ``nonlinearity``)."""

    mode = "lstm"

    def initial_state(self, x):
        return self._zeros(x), self._zeros(x)

    def step(self, gi, state):
        h, c = state
        i, f, g, o = (gi + self.weight_hh(h)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class AnalogGRUCell(_AnalogCell):
    """A GRU cell on tiles (a drop-in for :class:`torch.nn.GRUCell`): gates ``r, z, n``, ``n = tanh(W_in x + b_in +
    r (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``. Parameters as :class:`AnalogRNNCell` (no ``nonlinearity``)."""

    mode = "gru"

    def step(self, gi, h):
        gh = self.weight_hh(h)
        i_r, i_z, i_n = gi.chunk(3, dim=1)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h


class _AnalogSequence(nn.Module):
    cell_class = AnalogRNNCell

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, config: AnalogConfig | None = None, seed=None, **cell_kw):
        super().__init__()
        owner = type(self).__name__
        self.input_size = check_int(input_size, "input_size", owner, 1)
        self.hidden_size = check_int(hidden_size, "hidden_size", owner, 1)
        self.num_layers = check_int(num_layers, "num_layers", owner, 1, 1024)
        self.batch_first = bool(batch_first)
        seeds = _seeds(seed, self.num_layers)
        self.cells = nn.ModuleList(
            self.cell_class(self.input_size if k == 0 else self.hidden_size, self.hidden_size, bias, config=config,
                            seed=seeds[k], **cell_kw)
            for k in range(self.num_layers))

    def forward(self, x: torch.Tensor, hx=None):
        """``x``: (T, B, input_size) ((B, T, input_size) with ``batch_first``; (T, input_size) unbatched).
        Returns ``(output, h_n)`` (``(output, (h_n, c_n))`` for the LSTM), shaped as torch's layers."""
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(1)
            hx = None if hx is None else _unsqueeze_layers(hx)
        elif self.batch_first:
            x = x.transpose(0, 1)
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ShapeError(f"{type(self).__name__}: the input must have {self.input_size} features in its last "
                             f"dimension. Got shape {tuple(x.shape)}.")
        T, B = x.shape[0], x.shape[1]
        finals = []
        for k, cell in enumerate(self.cells):
            state = None if hx is None else _layer_state(hx, k)
            gi = cell.weight_ih(x.reshape(T * B, -1)).reshape(T, B, -1)  # the input projection of every step at once
            if state is None:
                state = cell.initial_state(x[0])
            outs = []
            for t in range(T):
                state = cell.step(gi[t], state)
                outs.append(state[0] if isinstance(state, tuple) else state)
            x = torch.stack(outs)
            finals.append(state)
        out = x
        if isinstance(finals[0], tuple):
            h_n = (torch.stack([s[0] for s in finals]), torch.stack([s[1] for s in finals]))
        else:
            h_n = torch.stack(finals)
        if unbatched:
            return out.squeeze(1), (tuple(s.squeeze(1) for s in h_n) if isinstance(h_n, tuple) else h_n.squeeze(1))
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, h_n


def _layer_state(hx, k):
    if isinstance(hx, tuple):
        return hx[0][k], hx[1][k]
    return hx[k]


def _unsqueeze_layers(hx):
    if isinstance(hx, tuple):
        return tuple(s.unsqueeze(1) for s in hx)
    return hx.unsqueeze(1)


class AnalogRNN(_AnalogSequence):
    """A stack of :class:`AnalogRNNCell` over a sequence (a drop-in for :class:`torch.nn.RNN`, unidirectional, no
    dropout). Parameters: ``input_size, hidden_size, num_layers=1, bias=True, batch_first=False, config=None,
    seed=None, nonlinearity='tanh'``."""

    cell_class = AnalogRNNCell

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, config=None, seed=None,
                 nonlinearity: str = "tanh"):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, config, seed,
                         nonlinearity=nonlinearity)


class AnalogLSTM(_AnalogSequence):
    """A stack of :class:`AnalogLSTMCell` over a sequence (a drop-in for :class:`torch.nn.LSTM`, unidirectional, no
    dropout, no projections); ``hx`` and the final state are ``(h_n, c_n)``, each (num_layers, B, hidden_size)."""

    cell_class = AnalogLSTMCell


class AnalogGRU(_AnalogSequence):
    """A stack of :class:`AnalogGRUCell` over a sequence (a drop-in for :class:`torch.nn.GRU`, unidirectional, no
    dropout)."""

    cell_class = AnalogGRUCell

