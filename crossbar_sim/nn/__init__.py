"""Neural networks on analog tiles: layers, the paper's models, training on real data.

>>> from crossbar_sim.nn import NetConfig, train_network
>>> tr = train_network(NetConfig(model="fcn", algorithm="tiki_taka", tau=0.78, epochs=1, n_train=200, n_test=100))
>>> 0.0 <= tr.history["test_acc"][-1] <= 1.0
True
"""
from .layers import (AnalogConv2d, AnalogLinear, DigitalTile, Flatten, MaxPool2d, Module, Param, ReLU,  # noqa: F401
                     Sequential, Sigmoid, Tanh)
from .models import ALGORITHMS, MODELS, build_model, make_tile  # noqa: F401
from .schedules import lr_at, step_lr  # noqa: F401
from .training import METRIC_UNITS, NetConfig, NetTrainer, train_network  # noqa: F401
