"""``AnalogSGD``: a torch optimiser whose step writes the analog layers' pulsed updates and steps the rest by SGD.

``AnalogSGD(model.parameters(), lr=0.05)`` works on any model: each analog layer contributes an
:class:`~crossbar_sim.torch.layers.AnalogContext` parameter, for which the step calls ``layer.apply_update(lr)``
with the learning rate of its parameter group (so ``torch.optim.lr_scheduler`` schedules, parameter groups and
``optimizer.param_groups[k]["lr"] = ...`` act on the tiles too). Every other parameter (biases, output scales,
digital layers) takes an SGD step.

The digital step is ``p -= lr * g`` rounded twice (multiply, then subtract), as ``crossbar_sim.nn`` does, so a
model trained here matches the NumPy networks bit for bit; ``torch.optim.SGD`` fuses the multiply-add (one
rounding), a difference in the last bit. Momentum, dampening, Nesterov momentum, weight decay and ``maximize``
follow ``torch.optim.SGD``'s formulas and apply to the digital parameters only: a pulsed update has no momentum
(aihwkit's ``AnalogSGD`` likewise).
"""
from __future__ import annotations

import torch

from ..errors import ConfigError
from ..validation import check_bool, check_float
from .layers import analog_layer_of


class AnalogSGD(torch.optim.Optimizer):
    """SGD for models with analog layers (aihwkit ``AnalogSGD``).

    Parameters
    ----------
    params : iterable of parameters or parameter groups
        ``model.parameters()``: the analog layers' contexts among them.
    lr : float
        Learning rate (>= 0): of the pulsed updates and of the digital SGD steps.
    momentum, dampening, weight_decay : float
        As ``torch.optim.SGD`` (digital parameters only).
    nesterov, maximize : bool
        As ``torch.optim.SGD`` (digital parameters only; ``maximize`` is refused with analog layers, whose pulsed
        update always descends).
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, maximize: bool = False):
        owner = "AnalogSGD"
        check_float(lr, "lr", owner, 0.0, None)
        check_float(momentum, "momentum", owner, 0.0, None)
        check_float(dampening, "dampening", owner, 0.0, None)
        check_float(weight_decay, "weight_decay", owner, 0.0, None)
        check_bool(nesterov, "nesterov", owner)
        check_bool(maximize, "maximize", owner)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ConfigError("The 'nesterov' parameter of AnalogSGD needs momentum > 0 and dampening 0.")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov, "maximize": maximize}
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["maximize"] and any(analog_layer_of(p) is not None for p in group["params"]):
                raise ConfigError("The 'maximize' parameter of AnalogSGD cannot be used with analog layers (their "
                                  "pulsed update descends the loss).")

    def analog_layers(self) -> list:
        """The analog layers this optimiser updates."""
        return [analog_layer_of(p) for g in self.param_groups for p in g["params"] if analog_layer_of(p) is not None]

    def _digital_step(self, group, params, grads, lr: float) -> None:
        mom, damp, wd = group["momentum"], group["dampening"], group["weight_decay"]
        if not (mom or wd or group["maximize"]):  # p -= lr * g, all in two calls (multiply, then subtract)
            torch._foreach_sub_(params, torch._foreach_mul(grads, lr))
            return
        for p, g in zip(params, grads):
            if group["maximize"]:
                g = -g
            if wd:
                g = g + p * wd
            if mom:
                st = self.state[p]
                buf = st.get("momentum_buffer")
                if buf is None:
                    buf = st["momentum_buffer"] = torch.clone(g).detach()
                else:
                    buf.mul_(mom).add_(g * (1.0 - damp))
                g = g + buf * mom if group["nesterov"] else buf
            p.sub_(g * lr)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients (to None, or to zeros with ``set_to_none=False``), as ``torch.optim.Optimizer`` does,
        without its profiler range (a torch call that costs tens of microseconds per mini-batch once the tiles'
        kernels have evicted the caches)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.detach_()
                        p.grad.zero_()

    @torch.no_grad()
    def step(self, closure=None):
        """SGD on the digital parameters, then the pulsed updates of the analog layers (with their groups' ``lr``)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        analog = []
        for group in self.param_groups:
            lr = float(group["lr"])
            params, grads = [], []
            for p in group["params"]:
                layer = analog_layer_of(p)
                if layer is not None:
                    analog.append((layer, lr))
                elif p.grad is not None:
                    params.append(p)
                    grads.append(p.grad)
            if params:
                self._digital_step(group, params, grads, lr)
        # the pulsed updates after the digital steps: torch's calls run back to back while its code is still in the
        # caches, which the tiles' kernels then evict (the order does not change any result)
        for layer, lr in analog:
            layer.apply_update(lr)
        return loss
