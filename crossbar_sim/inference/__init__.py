"""Inference after training: programming noise, conductance drift, 1/f read noise and drift compensation.

Trained weights are programmed onto conductance pairs of inference tiles, drifted to times after programming and
read through the periphery; :func:`program` and :meth:`InferenceTile.drift_to` are the Python API, ``crossbar-sim
evaluate`` the command line. Semantics and every place where we differ from aihwkit 1.1.0: ``docs/inference.md``.

>>> import numpy as np
>>> from crossbar_sim.inference import program
>>> tile = program(np.full((4, 8), 0.5), "pcm", seed=0, compensation="global")
>>> tile.drift_to(86400.0)                      # one day after programming
>>> y = tile.forward(np.ones(8))                 # through the default periphery, compensated
>>> y.shape
(4,)
"""
from .compensation import (COMPENSATIONS, DriftCompensation, GlobalDriftCompensation,  # noqa: F401
                           PerColumnDriftCompensation, get_compensation)
from .evaluate import (DEFAULT_TIMES, InferenceEvalConfig, evaluate_after_training, evaluate_trained,  # noqa: F401
                       program)
from .hwa import WeightClip, WeightModifier, clip_weights, modify_weights  # noqa: F401
from .network import InferenceNet  # noqa: F401
from .noise import (NOISE_MODELS, DriftOnlyNoiseModel, GenericNoiseModel, InferenceNoiseModel,  # noqa: F401
                    PCMLikeNoiseModel, get_noise_model)
from .results import plot_inference, read_inference, write_inference  # noqa: F401
from .tile import InferenceTile  # noqa: F401
from .weights import TrainedWeights, final_weights, trained_weights  # noqa: F401
