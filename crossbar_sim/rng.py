"""Seed handling: every public function takes ``seed``/``rng`` as int, SeedSequence, Generator or None.

Independent streams come from :meth:`numpy.random.SeedSequence.spawn`; kernels get 64-bit stream keys
derived from a SeedSequence (:func:`key_from_seedseq`). Nothing here touches global random state.
"""
from __future__ import annotations

import numbers

import numpy as np

from .errors import ConfigError


def make_seedseq(seed) -> np.random.SeedSequence:
    """Normalise ``seed`` (None, int >= 0, SeedSequence or Generator) to a SeedSequence."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(0, 2**63)))
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and int(seed) >= 0:
        return np.random.SeedSequence(int(seed))
    if isinstance(seed, (list, tuple)) and all(isinstance(s, numbers.Integral) and s >= 0 for s in seed):
        return np.random.SeedSequence([int(s) for s in seed])
    raise ConfigError(f"The 'seed' parameter must be None, an int >= 0 or a SeedSequence. Got {seed!r} instead.")


def as_generator(rng) -> np.random.Generator:
    """Normalise ``rng`` to a Generator (an existing Generator is used as is)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(make_seedseq(rng))


def key_from_seedseq(ss: np.random.SeedSequence) -> np.uint64:
    """A 64-bit stream key for the counter-based kernel RNG."""
    return np.uint64(ss.generate_state(1, np.uint64)[0])
