"""Training tasks. :class:`LeastSquares` is the problem of Wu et al. (arXiv 2406.12774), section 5.

``f(W) = 1/2 ||A W^T - B||_F^2 = 1/2 sum_k ||W a_k - b_k||^2`` with ``b_k = W* a_k``: the weight matrix ``W``
(``out_size x in_size``; the paper's W is a vector, ``out_size = 1``) lives on a tile, rows ``a_k`` of the
design matrix (entries ``N(0, 1/n_samples)``, so ``A^T A ~ I``) are the tile inputs. Each step reads the
outputs ``y_k = W a_k`` through the tile and forms the error signals ``d_k = y_k - b_k``. Two ways to write
the step onto the devices (``gradient``):

* ``full`` (default, the setting of the paper's analysis): the gradient ``G = sum_k d_k a_k^T`` is formed
  digitally, Gaussian noise of standard deviation ``noise_std`` is added to every entry (``G + sigma Xi``),
  and ``G`` is written row by row as ``out_size`` pulsed rank-1 updates ``(x = G_i, d = e_i)``. The
  expected device change is then the paper's ``-lr (G F(W) + |G| G(W))`` elementwise.
* ``per_sample``: the ``n_samples`` rank-1 terms ``(x = a_k, d = d_k + noise_std xi_k)`` are pulsed one after
  the other, as backpropagation on hardware does. Each term's own ``|d_k a_k^T|`` drives the asymmetric
  drift, so analog SGD stalls even without injected noise (the samples' disagreement acts as noise).

The standard stochastic instance (``inputs = "gaussian"``): no design matrix; every step draws ``batch_size`` (at
least one) fresh inputs ``x ~ N(0, I)``, the targets are ``W* x`` and the error signals ``d = W x - W* x`` (plus
``noise_std`` noise, or none with ``noise_std = 0``). Its loss is the population loss
``f(W) = 1/2 E||W x - W* x||^2 = 1/2 ||W - W*||_F^2``, gradient ``W - W*``. The target ``W*`` is drawn once from
``w_star_dist`` (uniform in ``+-w_star_scale``, signs, or Gaussian) with the task's seed.

The lower-bound instance of the paper's analysis (its Theorem 3: a state-dependent two-point noise) is
``noise_dist = "two_point"``, best with ``w_star_dist = "sign"`` (every ``|W*_i|`` equal to ``|W*|_inf``): see
:mod:`crossbar_sim.least_squares.theory`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_choice, check_float, check_int
from ..config import Config
from ..errors import ConfigError
from ..rng import make_seedseq


#: gradient-noise distributions (``LeastSquaresTask.noise_dist``)
NOISE_DISTS = ("gaussian", "two_point")
#: distributions of the optimum's entries (``LeastSquaresTask.w_star_dist``)
W_STAR_DISTS = ("uniform", "sign", "gaussian")
#: where a step's inputs come from (``LeastSquaresTask.inputs``)
INPUTS = ("design", "gaussian")


@dataclass(frozen=True, repr=False)
class LeastSquaresTask(Config):
    """Least-squares problem drawn from ``seed``.

    Parameters
    ----------
    n_samples : int
        Rows of the design matrix A (the paper: 100); not used with ``inputs = "gaussian"``.
    in_size : int
        Columns of A = tile inputs (the paper: 40).
    out_size : int
        Rows of W = tile outputs (the paper's W is a vector: 1).
    w_star_scale : float
        Entries of the optimum ``W*`` are uniform in ``[-w_star_scale, w_star_scale]``; the error floor of
        analog SGD grows with ``|W*|_inf / tau``.
    noise_std : float
        Standard deviation of the gradient noise per entry (0: exact gradients).
    batch_size : int
        Rows used per step (0: all rows, the deterministic gradient plus injected noise); with
        ``inputs = "gaussian"``, fresh samples per step (0 or 1: one).
    gradient : str
        ``full`` (write the noisy gradient row by row) or ``per_sample`` (pulse each sample's rank-1 term).
    seed : int
        Seed of A and W* (the same problem for every algorithm and run seed).
    noise_dist : str
        Distribution of the gradient noise of ``gradient = "full"``, both with mean 0 and variance
        ``noise_std^2`` per entry: ``gaussian``, or ``two_point``, the state-dependent noise of the lower-bound
        construction (arXiv 2406.12774, Theorem 3): each noisy entry is ``+-c`` with ``c = sqrt(G_i^2 +
        noise_std^2)``, ``+c`` with probability ``(1 + G_i / c) / 2``, so that ``|G_i + noise|`` is always ``c``,
        the largest mean absolute value a noise of that variance can give. Analog SGD's asymmetric drift
        ``E|g_i| W_i / tau`` is then as large as it can be, and its floor meets ``sigma^2 S``.
    w_star_dist : str
        ``uniform`` (entries of ``W*`` uniform in ``+-w_star_scale``), ``sign`` (``+-w_star_scale`` with the
        signs of the same draws: every entry at ``|W*|_inf``, the instance where Theorem 2's ``|W|_inf`` is tight)
        or ``gaussian`` (normal with standard deviation ``w_star_scale``).
    inputs : str
        ``design`` (rows of the fixed design matrix A, the paper's problem) or ``gaussian`` (fresh ``x ~ N(0, I)``
        every step, population loss ``1/2 ||W - W*||_F^2``).
    """

    n_samples: int = 100
    in_size: int = 40
    out_size: int = 1
    w_star_scale: float = 0.5
    noise_std: float = 0.1
    batch_size: int = 0
    gradient: str = "full"
    seed: int = 0
    noise_dist: str = "gaussian"
    w_star_dist: str = "uniform"
    inputs: str = "design"

    def validate(self) -> None:
        owner = type(self).__name__
        check_int(self.n_samples, "n_samples", owner, 1, 10**7)
        check_int(self.in_size, "in_size", owner, 1, 10**6)
        check_int(self.out_size, "out_size", owner, 1, 10**6)
        check_float(self.w_star_scale, "w_star_scale", owner, 0.0)
        check_float(self.noise_std, "noise_std", owner, 0.0)
        check_choice(self.inputs, "inputs", owner, INPUTS)
        check_int(self.batch_size, "batch_size", owner, 0, self.n_samples if self.inputs == "design" else 10**6)
        check_choice(self.gradient, "gradient", owner, ("full", "per_sample"))
        check_int(self.seed, "seed", owner, 0, 2**63 - 1)
        check_choice(self.noise_dist, "noise_dist", owner, NOISE_DISTS)
        check_choice(self.w_star_dist, "w_star_dist", owner, W_STAR_DISTS)
        if self.noise_dist == "two_point" and self.gradient != "full":
            raise ConfigError(f"The 'noise_dist' parameter of {owner} can be 'two_point' only with gradient='full' "
                              f"(the noise is added to the gradient's entries). Got gradient={self.gradient!r}.")

    def build(self) -> "LeastSquares":
        return LeastSquares(self)


class LeastSquares:
    """A drawn least-squares problem: data, exact loss and gradient, noisy error signals."""

    def __init__(self, spec: LeastSquaresTask | None = None, **kwargs):
        self.spec = spec if spec is not None else LeastSquaresTask(**kwargs)
        rng = np.random.default_rng(make_seedseq(self.spec.seed))
        s = self.spec
        self.gaussian_inputs = s.inputs == "gaussian"
        A = rng.standard_normal((s.n_samples, s.in_size)) / np.sqrt(s.n_samples)  # drawn in both modes: same W*
        W_star = rng.uniform(-s.w_star_scale, s.w_star_scale, (s.out_size, s.in_size))
        if s.w_star_dist == "sign":  # the same draws' signs, so A and the signs match the uniform problem
            W_star = s.w_star_scale * np.where(W_star < 0, -1.0, 1.0)
        elif s.w_star_dist == "gaussian":
            W_star = s.w_star_scale * rng.standard_normal((s.out_size, s.in_size))
        self.W_star = W_star.astype(np.float32)
        if self.gaussian_inputs:
            self.A = np.zeros((0, s.in_size), np.float32)
            self.B = np.zeros((0, s.out_size), np.float32)
            self._AtA = np.eye(s.in_size)  # E[x x^T] = I: the population loss
        else:
            self.A = A.astype(np.float32)
            self.B = (self.A.astype(np.float64) @ self.W_star.T.astype(np.float64)).astype(np.float32)
            self._AtA = self.A.astype(np.float64).T @ self.A.astype(np.float64)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.spec.out_size, self.spec.in_size)

    def loss(self, W) -> float:
        """``f(W) = 1/2 ||A W^T - B||^2`` (exact, float64); the population loss ``1/2 ||W - W*||_F^2`` with
        Gaussian inputs."""
        E = np.asarray(W, np.float64) - self.W_star.astype(np.float64)
        return float(0.5 * np.sum((E @ self._AtA) * E))

    def grad(self, W) -> np.ndarray:
        """Exact gradient ``(W - W*) A^T A``."""
        E = np.asarray(W, np.float64) - self.W_star.astype(np.float64)
        return E @ self._AtA

    def grad_norm2(self, W) -> float:
        return float(np.sum(self.grad(W) ** 2))

    def batch(self, rng: np.random.Generator):
        """Inputs of one step: rows of A (all, or a random batch), or fresh Gaussian inputs and their targets."""
        if self.gaussian_inputs:
            X = rng.standard_normal((max(1, self.spec.batch_size), self.spec.in_size)).astype(np.float32)
            B = (X.astype(np.float64) @ self.W_star.T.astype(np.float64)).astype(np.float32)
            return X, B, 1.0
        if self.spec.batch_size and self.spec.batch_size < self.spec.n_samples:
            idx = rng.choice(self.spec.n_samples, self.spec.batch_size, replace=False)
            return self.A[idx], self.B[idx], self.spec.n_samples / self.spec.batch_size
        return self.A, self.B, 1.0

    def update_signals(self, X, Y, B, scale, rng: np.random.Generator):
        """The pulsed updates of one step: ``(x_rows, d_rows)`` with ``W <- W - lr sum_r d_r x_r^T``.

        ``X`` (batch, in) inputs, ``Y`` (batch, out) tile outputs, ``B`` targets; ``scale`` makes a random
        batch's gradient unbiased.
        """
        D = scale * (np.asarray(Y, np.float64) - B)
        if self.spec.gradient == "full":
            G = D.T @ np.asarray(X, np.float64)
            if self.spec.noise_std > 0 and self.spec.noise_dist == "two_point":
                G = two_point_noisy(G, self.spec.noise_std, rng)
            elif self.spec.noise_std > 0:
                G = G + self.spec.noise_std * rng.standard_normal(G.shape)
            return G.astype(np.float32), np.eye(self.spec.out_size, dtype=np.float32)
        if self.spec.noise_std > 0:
            D = D + self.spec.noise_std * rng.standard_normal(D.shape)
        return np.asarray(X, np.float32), D.astype(np.float32)


def two_point_noisy(G, noise_std: float, rng: np.random.Generator) -> np.ndarray:
    """``G`` plus the two-point noise of the lower-bound construction, entry by entry.

    Each entry becomes ``+-c`` with ``c = sqrt(G^2 + noise_std^2)``, ``+c`` with probability ``(1 + G/c)/2``:
    the mean is ``G`` and the variance ``noise_std^2``, as for Gaussian noise, but ``|noisy entry| = c`` always.

    Parameters
    ----------
    G : ndarray
        Exact (or mini-batch) gradient.
    noise_std : float
        Standard deviation of the noise per entry (> 0).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of float64, the shape of ``G``
    """
    G = np.asarray(G, np.float64)
    c = np.sqrt(G * G + noise_std * noise_std)
    up = rng.random(G.shape) < 0.5 * (1.0 + G / c)
    return np.where(up, c, -c)
