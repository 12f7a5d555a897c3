"""Optimisers for weight matrices over one interface: full-rank AdamW, GaLore, Online Subspace Descent (OSD).

Every optimiser here updates one weight matrix ``W`` (``m x n``, stored as ``out x in`` like a tile) from its
gradient ``G`` and returns the weight change as a :class:`WeightUpdate` (``W <- W - delta``), either dense
(full-rank AdamW) or as factors ``delta = A @ B`` of rank ``r`` (GaLore, OSD). Whoever holds the weight applies
it: a float array adds it, an analog tile writes it as pulses (``r`` rank-1 pulse cycles for a factored update;
see :mod:`crossbar_sim.lowrank.backends`).

Inner optimiser (``inner``): ``adamw`` or ``lion``.

* AdamW as the GaLore / OSD reference code runs it (its ``AdamW`` class from ``transformers``, bias corrected;
  also the full-rank baseline here, D12 below):
  ``m <- b1 m + (1-b1) g``, ``v <- b2 v + (1-b2) g^2``, ``N = m / (sqrt(v) + eps)``,
  ``step = lr sqrt(1 - b2^t) / (1 - b1^t)``, ``W <- W - step N`` then ``W <- W - lr wd W`` (decoupled decay).
* Lion (Chen et al. 2023, arXiv 2302.06675; OSD's paper Example 3.1): ``c = b1 m + (1-b1) g``,
  ``W <- W - lr sign(c)`` (then decay), ``m <- b2 m + (1-b2) g``; in GaLore / OSD the sign is taken in the
  projected space, before projecting back (D3 below: the reference code takes it after).

Projected methods, for ``W`` of shape ``m x n``: the *smaller side* ``s = min(m, n)`` is projected, with
``r_eff = min(rank, s)`` (a rank at or above the smaller dimension keeps the full space; ms-swift PR#10146
projected square gradients on the wrong side because it re-derived the side from the projected matrix: here
the side is fixed once from ``W``'s shape, left when ``m < n``, right when ``m >= n`` -- square matrices from
the right, as both reference codes do, ``shape[0] >= shape[1]``):

* left (``m < n``): ``P`` is ``m x r``, ``R = P^T G`` (``r x n``), update ``scale * P N``;
* right (``m >= n``): ``P`` is ``n x r``, ``R = G P`` (``m x r``), update ``scale * N P^T``.

**GaLore** (Zhao et al., arXiv 2403.03507, Algorithm 2): every ``update_proj_gap`` steps (from step 0), ``P`` is
the top-``r`` singular vectors of the current gradient on the projected side; in between it is fixed; the inner
optimiser's states stay as they are when ``P`` changes (as GaLore's code keeps them).

**OSD** (Liang, Liu, Chen, Liu, arXiv 2408.12857), exactly as its public reference code
(``galore_projector.py``, ``proj_type="continuous"``) runs it: ``P`` starts as GaLore's (SVD of the first
gradient) and is never re-orthonormalised. From the second step on, before the weight update, the online-PCA
loss ``L(P) = ||P P^T g_n - g_n||_F^2`` (``g_n = G / ||G||_F``; right side: ``||g_n P P^T - g_n||``) is
differentiated at the current ``P``; the weight update uses the current ``P``; then one step of ``Opt_P`` is
taken on ``P``: AdamW (``torch.optim.AdamW`` semantics: decay ``P <- P (1 - lr_P wd_P)``, bias-corrected
moments, ``eps`` added to ``sqrt(v / (1 - b2^t))``) with ``lr_P = proj_lr * lr_t / lr_0`` (``proj_lr`` defaults
to ``1 / update_proj_gap``; the reference code scales it by the schedule's ratio), betas (0.9, 0.999), eps 1e-8,
weight decay 0.01 (PyTorch's defaults); or plain SGD, or Lion (betas (0.9, 0.99), no decay: its defaults). ``ortho_penalty`` adds the paper's
``lam ||P^T P - I||_F^2`` (default 0, not in the reference code).

Differences from the authors' reference code (kyleliang919/Online-Subspace-Descent ``e694775``, a fork of
jiaweizzhao/GaLore ``2cc66f8``), each with its reason; ``docs/lowrank_vs_reference.md`` has the evidence
(file:line, and a numerical check: with both SVDs in float64 and fixed signs ours agrees to 1e-16):

* D1, fixed: square matrices are projected from the right, as the reference (``shape[0] >= shape[1]``); ours
  used the left until issue 21.
* D2, fixed: P's optimiser takes its own defaults unless ``proj_betas`` / ``proj_weight_decay`` are given
  (:data:`PROJ_DEFAULTS`: AdamW (0.9, 0.999) / 0.01, Lion (0.9, 0.99) / 0, as the reference builds them with
  only a learning rate); ours reused AdamW's for Lion until issue 21.
* D3, deliberate: the inner Lion is ``scale P sign(c)`` (rank r, the paper's Algorithm 1; r pulse cycles on a
  tile); the reference code's GaLore-Lion takes ``sign(scale P c)``, dense and full rank, on which ``scale`` has
  no effect. Lion learning rates of the reference do not carry over.
* D4/D5: lr_P = ``proj_lr * lr_t / lr_0`` with ``proj_lr = 1 / update_proj_gap``, as the code (not SPEC's
  "1/gap"); the paper's own recommendation (lr_P = 5 lr_W, lambda_P = lambda_W) is ``proj_lr=5*lr,
  proj_weight_decay=weight_decay``.
* D6, inherent: the reference's SVD is float32 with arbitrary singular-vector signs; GaLore's moments carried
  across a refresh depend on them, so GaLore trajectories match the reference only up to the first refresh.
* D7/D8, robustness: a zero gradient skips the P step (the reference gets NaN); a non-finite one raises or is
  skipped (the reference has no check).
* D9, harmless: warm-up factor ``(t + 1) / warm`` (reference ``t / warm``, lr 0 at the first update).
* D10, deliberate: embedding, head and norms use full-rank AdamW at ``lr_other`` (reference: the same lr).
* D11, harmless: float32 / float64 instead of bf16 everywhere.
* D12, choice: the full-rank baseline is this ``transformers``-style AdamW (eps 1e-6 on the uncorrected sqrt(v)),
  the reference's ``--optimizer adam`` is ``torch.optim.Adam`` (eps 1e-8) and the paper's plots use 8-bit Adam.
* D13: the reference's other projection modes and P by Adafactor / 8-bit Adam are not implemented.
* D14, deliberate: weight decay on analog tiles is rejected (it would need every device rewritten each step).

Non-finite gradients (GaLore issues #26, #58: the SVD fails on NaN/inf) raise :class:`NonFiniteError` naming the
matrix and step, or with ``nonfinite="skip"`` skip that matrix's update for the step (counted in
``skipped_steps``).

Work and memory are counted per optimiser: :attr:`flops` (by category) and :attr:`bytes_moved` (optimiser-state
and gradient traffic), :meth:`state_floats` (persistent state, by name) and :meth:`transient_floats` (peak
temporaries: SVD outputs, PCA intermediates); :mod:`crossbar_sim.lowrank.memory` gives the closed forms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import validation as V
from ..config import Config
from ..errors import ConfigError, NonFiniteError, ShapeError, SimulatorError

INNER = ("adamw", "lion")
PROJ_OPTIMIZERS = ("adamw", "sgd", "lion")
INITIAL_PROJECTIONS = ("svd", "identity")
NONFINITE = ("raise", "skip")
#: (betas, weight decay) of P's optimiser when OSDConfig leaves them None: the defaults of the classes the
#: reference code builds with only a learning rate (``torch.optim.AdamW``; its own ``galore_torch/lion.py``)
PROJ_DEFAULTS = {"adamw": ((0.9, 0.999), 0.01), "lion": ((0.9, 0.99), 0.0), "sgd": ((0.0, 0.0), 0.0)}

#: arithmetic per element of one optimiser update, counted from the formulas above (multiplies, adds, sqrt,
#: divide, sign each 1): AdamW m (3) + v (4) + sqrt (1) + eps (1) + divide (1) + step scale (1) = 11;
#: Lion c (3) + sign (1) + m (3) + scale (1) = 8. Decoupled weight decay adds 2 when on.
FLOPS_PER_ELEMENT = {"adamw": 11, "lion": 8, "sgd": 1}
BYTES_PER_FLOAT = 4  # float32 optimiser state


def _check_pair(value, name, owner):
    if not (isinstance(value, tuple) and len(value) == 2):
        raise ConfigError(f"The '{name}' parameter of {owner} must be a pair (b1, b2) of floats in [0, 1). "
                          f"Got {value!r} instead.")
    for v in value:
        V.check_float(v, name, owner, 0.0, 1.0, closed_hi=False)


@dataclass(frozen=True, repr=False)
class OptimizerConfig(Config):
    """The inner optimiser of every method (full-rank AdamW has only this).

    Parameters
    ----------
    inner : str
        ``adamw`` (default) or ``lion``.
    betas : tuple of float
        AdamW's (b1, b2); the GaLore/OSD runs use PyTorch's (0.9, 0.999).
    eps : float
        AdamW's epsilon (1e-6: the ``transformers`` AdamW the GaLore/OSD code wraps).
    weight_decay : float
        Decoupled weight decay of the weights (the reference runs use 0). On analog tiles it must be 0 (a decay
        would need every weight read and rewritten each step).
    lion_betas : tuple of float
        Lion's (b1, b2) (0.9, 0.99: Chen et al.'s defaults).
    correct_bias : bool
        AdamW bias correction (True in the reference runs).
    nonfinite : str
        ``raise`` (default): a NaN/inf gradient raises NonFiniteError; ``skip``: that matrix skips the step.
    """

    method: ClassVar[str] = "adamw"

    inner: str = "adamw"
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-6
    weight_decay: float = 0.0
    lion_betas: tuple = (0.9, 0.99)
    correct_bias: bool = True
    nonfinite: str = "raise"

    def validate(self) -> None:
        owner = type(self).__name__
        V.check_choice(self.inner, "inner", owner, INNER)
        _check_pair(self.betas, "betas", owner)
        V.check_float(self.eps, "eps", owner, 0.0)
        V.check_float(self.weight_decay, "weight_decay", owner, 0.0)
        _check_pair(self.lion_betas, "lion_betas", owner)
        V.check_bool(self.correct_bias, "correct_bias", owner)
        V.check_choice(self.nonfinite, "nonfinite", owner, NONFINITE)

    def build(self, shape, name: str = "W") -> "MatrixOptimizer":
        return FullRankOptimizer(shape, self, name)


@dataclass(frozen=True, repr=False)
class AdamWConfig(OptimizerConfig):
    """Full-rank AdamW (or Lion with ``inner="lion"``): states ``m, v`` of size ``m n`` each."""

    method: ClassVar[str] = "adamw"


@dataclass(frozen=True, repr=False)
class GaLoreConfig(OptimizerConfig):
    """GaLore (arXiv 2403.03507).

    Parameters
    ----------
    rank : int
        Projection rank r (clipped to the smaller dimension of each matrix).
    update_proj_gap : int
        Steps between SVD refreshes (paper: 200).
    scale : float
        alpha, the scale of the projected-back update (paper: 0.25).
    initial_projection : str
        ``svd`` (the method) or ``identity`` (P = I, never refreshed; only with rank >= the smaller
        dimension; for checks).
    """

    method: ClassVar[str] = "galore"

    rank: int = 128
    update_proj_gap: int = 200
    scale: float = 0.25
    initial_projection: str = "svd"

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        V.check_int(self.rank, "rank", owner, 1, 2**31 - 1)
        V.check_int(self.update_proj_gap, "update_proj_gap", owner, 1, 2**31 - 1)
        V.check_float(self.scale, "scale", owner, 0.0, closed_lo=False)
        V.check_choice(self.initial_projection, "initial_projection", owner, INITIAL_PROJECTIONS)

    def build(self, shape, name: str = "W") -> "MatrixOptimizer":
        return GaLoreOptimizer(shape, self, name)


@dataclass(frozen=True, repr=False)
class OSDConfig(GaLoreConfig):
    """Online Subspace Descent (arXiv 2408.12857) as its reference code runs it.

    Parameters (besides :class:`GaLoreConfig`; ``update_proj_gap`` only sets the default P learning rate)
    ----------
    proj_lr : float
        Learning rate of P's optimiser; 0 means ``1 / update_proj_gap`` (the reference code).
    proj_optimizer : str
        ``adamw`` (reference default), ``sgd`` or ``lion``.
    proj_betas : tuple of float or None
        Betas of P's AdamW or Lion; None (default) takes the optimiser's own defaults, as the reference code
        builds P's optimiser with only a learning rate: (0.9, 0.999) for ``torch.optim.AdamW``, (0.9, 0.99)
        for its ``Lion``. SGD has none.
    proj_eps : float
        Epsilon of P's AdamW (1e-8).
    proj_weight_decay : float or None
        Decoupled weight decay of P; None (default) takes the optimiser's default: 0.01 for
        ``torch.optim.AdamW``, 0 for the reference's ``Lion``. SGD ignores it.
    ortho_penalty : float
        lam of the paper's ``lam ||P^T P - I||^2`` term (0: not in the reference code).
    """

    method: ClassVar[str] = "osd"

    proj_lr: float = 0.0
    proj_optimizer: str = "adamw"
    proj_betas: tuple | None = None
    proj_eps: float = 1e-8
    proj_weight_decay: float | None = None
    ortho_penalty: float = 0.0

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        V.check_float(self.proj_lr, "proj_lr", owner, 0.0)
        V.check_choice(self.proj_optimizer, "proj_optimizer", owner, PROJ_OPTIMIZERS)
        if self.proj_betas is not None:
            if isinstance(self.proj_betas, list):  # from a JSON override
                object.__setattr__(self, "proj_betas", tuple(self.proj_betas))
            _check_pair(self.proj_betas, "proj_betas", owner)
        V.check_float(self.proj_eps, "proj_eps", owner, 0.0)
        if self.proj_weight_decay is not None:
            V.check_float(self.proj_weight_decay, "proj_weight_decay", owner, 0.0)
        V.check_float(self.ortho_penalty, "ortho_penalty", owner, 0.0)

    @property
    def effective_proj_lr(self) -> float:
        return self.proj_lr if self.proj_lr > 0 else 1.0 / self.update_proj_gap

    @property
    def effective_proj_betas(self) -> tuple:
        """``proj_betas``, or the default of ``proj_optimizer`` (:data:`PROJ_DEFAULTS`)."""
        return self.proj_betas if self.proj_betas is not None else PROJ_DEFAULTS[self.proj_optimizer][0]

    @property
    def effective_proj_weight_decay(self) -> float:
        """``proj_weight_decay``, or the default of ``proj_optimizer`` (:data:`PROJ_DEFAULTS`)."""
        if self.proj_weight_decay is not None:
            return float(self.proj_weight_decay)
        return PROJ_DEFAULTS[self.proj_optimizer][1]

    def build(self, shape, name: str = "W") -> "MatrixOptimizer":
        return OSDOptimizer(shape, self, name)


# ---------------------------------------------------------------------------------------------- updates
@dataclass
class WeightUpdate:
    """A weight change ``W <- W - delta``: dense (``dense``) or factored ``delta = left @ right``.

    ``left`` is ``m x k``, ``right`` is ``k x n``; ``decay`` (a float or None) asks for ``W <- W (1 - decay)``
    as well (decoupled weight decay, digital weights only).
    """

    dense: np.ndarray | None = None
    left: np.ndarray | None = None
    right: np.ndarray | None = None
    decay: float = 0.0

    @property
    def rank(self) -> int:
        return min(self.dense.shape) if self.dense is not None else self.left.shape[1]

    def delta(self) -> np.ndarray:
        """The dense ``delta`` (for digital weights and checks)."""
        return self.dense if self.dense is not None else self.left @ self.right

    def apply_to(self, w: np.ndarray) -> None:
        """``w <- w (1 - decay) - delta`` in place (decay applied after the step, as the reference code)."""
        w -= self.delta().astype(w.dtype, copy=False)
        if self.decay:
            w -= self.decay * w


class _Inner:
    """Elementwise AdamW / Lion state on an array of a fixed shape."""

    def __init__(self, shape, cfg: OptimizerConfig):
        self.cfg = cfg
        self.kind = cfg.inner
        self.t = 0
        self.m = np.zeros(shape)
        self.v = np.zeros(shape) if self.kind == "adamw" else None

    def n_states(self) -> int:
        return self.m.size * (2 if self.kind == "adamw" else 1)

    def step(self, g: np.ndarray, lr: float) -> np.ndarray:
        """The step ``s`` (to subtract) for gradient ``g``: AdamW ``lr_hat m/(sqrt v + eps)``, Lion ``lr sign(c)``."""
        self.t += 1
        if self.m.dtype != g.dtype:
            self.m = self.m.astype(g.dtype)
            if self.v is not None:
                self.v = self.v.astype(g.dtype)
        if self.kind == "adamw":
            b1, b2 = self.cfg.betas
            self.m *= b1
            self.m += (1.0 - b1) * g
            self.v *= b2
            self.v += (1.0 - b2) * (g * g)
            step = lr
            if self.cfg.correct_bias:
                step = lr * math.sqrt(1.0 - b2 ** self.t) / (1.0 - b1 ** self.t)
            return (step * self.m) / (np.sqrt(self.v) + self.cfg.eps)
        b1, b2 = self.cfg.lion_betas
        c = b1 * self.m + (1.0 - b1) * g
        self.m *= b2
        self.m += (1.0 - b2) * g
        return lr * np.sign(c)

    def state(self) -> dict:
        out = {"t": self.t, "m": self.m.copy()}
        if self.v is not None:
            out["v"] = self.v.copy()
        return out

    def load(self, st: dict) -> None:
        self.t = int(st["t"])
        self.m = np.array(st["m"])
        if self.v is not None:
            self.v = np.array(st["v"])


class MatrixOptimizer:
    """Common interface: ``step(grad, lr, lr_ratio) -> WeightUpdate``, counters, memory accounting.

    Attributes
    ----------
    flops : dict of str -> int
        Digital arithmetic by category (``optimizer``, ``projection``, ``svd``, ``online_pca``).
    bytes_moved : int
        Bytes of optimiser-state traffic (every state read and written once per step, the gradient read once).
    skipped_steps : int
        Steps skipped because of a non-finite gradient (``nonfinite="skip"``).
    """

    method: ClassVar[str] = ""

    def __init__(self, shape, cfg: OptimizerConfig, name: str = "W"):
        if len(shape) != 2 or min(shape) < 1:
            raise ShapeError(f"An optimiser needs a 2-D weight shape. Got {shape!r} for {name!r}.")
        self.shape = (int(shape[0]), int(shape[1]))
        self.cfg = cfg
        self.name = name
        self.t = 0
        self.flops = {"optimizer": 0, "projection": 0, "svd": 0, "online_pca": 0}
        self.bytes_moved = 0
        self.skipped_steps = 0

    # -------------------------------------------------------------------- helpers
    def _check_grad(self, grad) -> np.ndarray | None:
        g = np.asarray(grad)
        if g.shape != self.shape:
            raise ShapeError(f"The gradient of {self.name!r} must have shape {self.shape}. Got {g.shape}.")
        if not np.all(np.isfinite(g)):
            if self.cfg.nonfinite == "skip":
                self.skipped_steps += 1
                return None
            bad = int(g.size - np.count_nonzero(np.isfinite(g)))
            raise NonFiniteError(
                f"The gradient of {self.name!r} holds {bad} non-finite value(s) at step {self.t}: "
                f"{type(self).__name__} cannot use it (an SVD or online PCA of NaN/inf fails or poisons the "
                f"projection; GaLore issues #26, #58). Lower the learning rate, or set nonfinite='skip' to skip "
                f"such steps.")
        return g

    def _decay(self, lr: float) -> float:
        return lr * self.cfg.weight_decay

    def state_floats(self) -> dict:
        """Persistent optimiser state, in numbers of floats, by name."""
        raise NotImplementedError

    def transient_floats(self) -> dict:
        """Peak temporaries of one step (floats), by name (not counting the gradient itself)."""
        return {}

    def state_bytes(self, bytes_per_float: int = BYTES_PER_FLOAT) -> int:
        return bytes_per_float * sum(self.state_floats().values())

    def get_state(self) -> dict:
        raise NotImplementedError

    def set_state(self, st: dict) -> None:
        raise NotImplementedError


class FullRankOptimizer(MatrixOptimizer):
    """Full-rank AdamW (or Lion): states of the size of ``W``; returns a dense update."""

    method = "adamw"

    def __init__(self, shape, cfg: OptimizerConfig, name: str = "W"):
        super().__init__(shape, cfg, name)
        self.inner = _Inner(self.shape, cfg)

    def step(self, grad, lr: float, lr_ratio: float = 1.0) -> WeightUpdate | None:
        g = self._check_grad(grad)
        self.t += 1
        if g is None:
            return None
        d = self.inner.step(g, lr)
        m, n = self.shape
        self.flops["optimizer"] += FLOPS_PER_ELEMENT[self.cfg.inner] * m * n
        self.bytes_moved += BYTES_PER_FLOAT * (2 * self.inner.n_states() + m * n)
        return WeightUpdate(dense=d, decay=self._decay(lr))

    def state_floats(self) -> dict:
        m, n = self.shape
        return {"m": m * n, "v": m * n} if self.cfg.inner == "adamw" else {"m": m * n}

    def get_state(self) -> dict:
        return {"t": self.t, "inner": self.inner.state(), "skipped": self.skipped_steps}

    def set_state(self, st: dict) -> None:
        self.t = int(st["t"])
        self.inner.load(st["inner"])
        self.skipped_steps = int(st.get("skipped", 0))


def svd_flops(s: int, l: int) -> int:
    """Floating-point operations of a thin SVD of an ``s x l`` matrix (``s <= l``) computing U, S and V^T.

    Golub & Van Loan, *Matrix Computations* (4th ed., section 8.6.3, Figure 8.6.1; 3rd ed. section 5.4.5):
    R-SVD of a tall ``l x s`` matrix computing ``U_1``, ``Sigma`` and ``V``: ``6 l s^2 + 20 s^3`` flops
    (``torch.linalg.svd(full_matrices=False)``, which GaLore calls, returns all three).
    """
    return 6 * l * s * s + 20 * s ** 3


def top_singular_vectors(a: np.ndarray, r: int) -> np.ndarray:
    """The top-``r`` left singular vectors of ``a`` (``s x l``), as an ``s x r`` array.

    Uses LAPACK gesdd and falls back to the slower but more robust gesvd when it does not converge (the
    ill-conditioned case of GaLore issue #58).
    """
    import scipy.linalg

    try:
        u, _, _ = scipy.linalg.svd(a, full_matrices=False, lapack_driver="gesdd", check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        try:
            u, _, _ = scipy.linalg.svd(a, full_matrices=False, lapack_driver="gesvd", check_finite=False)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise SimulatorError(f"The SVD of a {a.shape} gradient did not converge ({exc}); the gradient is "
                                 f"too ill-conditioned for GaLore's projection.") from None
    return np.ascontiguousarray(u[:, :r])


class GaLoreOptimizer(MatrixOptimizer):
    """GaLore: top-r SVD projection refreshed every ``update_proj_gap`` steps; factored updates."""

    method = "galore"

    def __init__(self, shape, cfg: GaLoreConfig, name: str = "W"):
        super().__init__(shape, cfg, name)
        m, n = self.shape
        # tall or square -> right, as the reference code (``shape[0] >= shape[1]``: right; difference D1 fixed)
        self.side = "left" if m < n else "right"
        self.s, self.l = (m, n) if self.side == "left" else (n, m)
        self.r = min(cfg.rank, self.s)
        if cfg.initial_projection == "identity" and self.r < self.s:
            raise ConfigError(
                f"initial_projection='identity' needs rank >= the smaller dimension of {name!r} ({self.s}); "
                f"got rank {cfg.rank}.")
        self.P: np.ndarray | None = None  # s x r
        # inner states live in the projected space: r x n (left) or m x r (right)
        self.inner = _Inner((self.r, n) if self.side == "left" else (m, self.r), cfg)
        self.n_svd = 0

    # -------------------------------------------------------------------- projection
    def _side_view(self, g: np.ndarray) -> np.ndarray:
        """The gradient with the projected side first: ``s x l``."""
        return g if self.side == "left" else g.T

    def project(self, g: np.ndarray) -> np.ndarray:
        """``R = P^T G`` (left) or ``G P`` (right)."""
        self.flops["projection"] += 2 * self.s * self.l * self.r
        return self.P.T @ g if self.side == "left" else g @ self.P

    def factors(self, n_dir: np.ndarray, coef: float) -> WeightUpdate:
        """``delta = coef * P N`` (left) or ``coef * N P^T`` (right), as factors; the product is counted as the
        projection back (``2 s l r`` flops) although on a tile it is never formed."""
        self.flops["projection"] += 2 * self.s * self.l * self.r
        if self.side == "left":
            return WeightUpdate(left=self.P.copy(), right=coef * n_dir)
        return WeightUpdate(left=coef * n_dir, right=self.P.T.copy())

    def _init_projection(self, g: np.ndarray) -> None:
        if self.cfg.initial_projection == "identity":
            self.P = np.eye(self.s, self.r, dtype=g.dtype)
        else:
            self._svd(g)

    def _svd(self, g: np.ndarray) -> None:
        self.P = top_singular_vectors(self._side_view(g), self.r).astype(g.dtype, copy=False)
        self.flops["svd"] += svd_flops(self.s, self.l)
        self.n_svd += 1

    def set_projection(self, P: np.ndarray) -> None:
        """Set ``P`` (``s x r``) explicitly (tests, warm starts)."""
        P = np.asarray(P)
        if P.shape != (self.s, self.r):
            raise ShapeError(f"P of {self.name!r} must have shape {(self.s, self.r)}. Got {P.shape}.")
        self.P = P.copy()

    def _update_projection(self, g: np.ndarray, lr_ratio: float) -> None:
        if self.P is None:
            self._init_projection(g)
        elif self.t % self.cfg.update_proj_gap == 0 and self.cfg.initial_projection == "svd":
            self._svd(g)

    def step(self, grad, lr: float, lr_ratio: float = 1.0) -> WeightUpdate | None:
        g = self._check_grad(grad)
        if g is None:
            self.t += 1
            return None
        self._update_projection(g, lr_ratio)
        R = self.project(g)
        N = self.inner.step(R, 1.0)  # the step direction at unit learning rate
        self.flops["optimizer"] += FLOPS_PER_ELEMENT[self.cfg.inner] * R.size
        self.bytes_moved += BYTES_PER_FLOAT * (2 * self.inner.n_states() + g.size + self.P.size)
        upd = self.factors(N, lr * self.cfg.scale)
        upd.decay = self._decay(lr)
        self._after_update(g, lr_ratio)
        self.t += 1
        return upd

    def _after_update(self, g: np.ndarray, lr_ratio: float) -> None:
        pass

    # -------------------------------------------------------------------- accounting
    def state_floats(self) -> dict:
        out = {"m": self.inner.m.size}
        if self.cfg.inner == "adamw":
            out["v"] = self.inner.m.size
        out["P"] = self.s * self.r
        return out

    def transient_floats(self) -> dict:
        # thin SVD of the s x l gradient: U (s x s), S (s), V^T (s x l); LAPACK workspace not counted
        return {"svd_U": self.s * self.s, "svd_S": self.s, "svd_Vt": self.s * self.l}

    def get_state(self) -> dict:
        return {"t": self.t, "inner": self.inner.state(), "P": None if self.P is None else self.P.copy(),
                "n_svd": self.n_svd, "skipped": self.skipped_steps}

    def set_state(self, st: dict) -> None:
        self.t = int(st["t"])
        self.inner.load(st["inner"])
        self.P = None if st["P"] is None else np.array(st["P"])
        self.n_svd = int(st["n_svd"])
        self.skipped_steps = int(st.get("skipped", 0))


def pca_loss(P: np.ndarray, G: np.ndarray, ortho_penalty: float = 0.0) -> float:
    """``||P P^T G - G||_F^2 + lam ||P^T P - I||_F^2`` (``G`` is ``s x l`` with the projected side first)."""
    E = P @ (P.T @ G) - G
    out = float(np.sum(E * E))
    if ortho_penalty:
        D = P.T @ P - np.eye(P.shape[1])
        out += ortho_penalty * float(np.sum(D * D))
    return out


def pca_grad(P: np.ndarray, G: np.ndarray, ortho_penalty: float = 0.0) -> np.ndarray:
    """Gradient of :func:`pca_loss` in ``P``: ``2 (E G^T P + G E^T P)`` with the residual ``E = P P^T G - G``.

    The residual form (what autograd differentiates in the reference code) keeps the gradient exact near a
    minimum: at ``P = I`` it is exactly 0, whereas the expanded form ``2 [P A^T A - 2 G A + G A P^T P]``
    (``A = G^T P``) cancels large terms and leaves rounding noise that P's AdamW would amplify to steps of
    order ``lr_P``. The penalty adds ``4 lam P (P^T P - I)``.
    """
    A = G.T @ P
    E = P @ A.T - G
    out = 2.0 * (E @ A + G @ (E.T @ P))
    if ortho_penalty:
        out += 4.0 * ortho_penalty * (P @ (P.T @ P - np.eye(P.shape[1], dtype=P.dtype)))
    return out


def pca_flops(s: int, l: int, r: int) -> int:
    """Flops of one online-PCA gradient: ``||G||`` and ``G/||G||`` (3 s l); ``A = G^T P``, ``E = P A^T - G``,
    ``E A``, ``E^T P``, ``G (E^T P)`` (5 x 2 s l r, plus s l for the subtraction); combine (3 s r)."""
    return 4 * s * l + 10 * s * l * r + 3 * s * r


class OSDOptimizer(GaLoreOptimizer):
    """Online Subspace Descent: GaLore's start, then one optimiser step on the online-PCA loss per step."""

    method = "osd"

    def __init__(self, shape, cfg: OSDConfig, name: str = "W"):
        super().__init__(shape, cfg, name)
        self.pm = None  # P's optimiser moments
        self.pv = None
        self.pt = 0
        self._pgrad = None

    def _update_projection(self, g: np.ndarray, lr_ratio: float) -> None:
        if self.P is None:  # step 0: P from the SVD of the first gradient; no PCA step (reference code)
            self._init_projection(g)
            self._pgrad = None
            return
        # the PCA gradient at the current P, taken before the weight update (applied after it)
        G = self._side_view(g)
        norm = float(np.sqrt(np.sum(G.astype(np.float64) ** 2)))
        self.flops["online_pca"] += pca_flops(self.s, self.l, self.r)
        if norm == 0.0:
            self._pgrad = None  # a zero gradient carries no subspace information
            return
        self._pgrad = pca_grad(self.P, G / norm, self.cfg.ortho_penalty)

    def _after_update(self, g: np.ndarray, lr_ratio: float) -> None:
        gp = self._pgrad
        self._pgrad = None
        if gp is None:
            return
        cfg = self.cfg
        lr = cfg.effective_proj_lr * lr_ratio
        self.pt += 1
        if cfg.proj_optimizer == "sgd":
            self.P -= lr * gp
            self.flops["online_pca"] += 2 * self.P.size
            return
        b1, b2 = cfg.effective_proj_betas
        wd = cfg.effective_proj_weight_decay
        if self.pm is None:
            self.pm = np.zeros_like(self.P)
            self.pv = np.zeros_like(self.P) if cfg.proj_optimizer == "adamw" else None
        if cfg.proj_optimizer == "lion":
            c = b1 * self.pm + (1.0 - b1) * gp
            self.P *= 1.0 - lr * wd
            self.P -= lr * np.sign(c)
            self.pm *= b2
            self.pm += (1.0 - b2) * gp
            self.flops["online_pca"] += (FLOPS_PER_ELEMENT["lion"] + 2) * self.P.size
            return
        # torch.optim.AdamW
        self.P *= 1.0 - lr * wd
        self.pm *= b1
        self.pm += (1.0 - b1) * gp
        self.pv *= b2
        self.pv += (1.0 - b2) * (gp * gp)
        bc1 = 1.0 - b1 ** self.pt
        bc2 = 1.0 - b2 ** self.pt
        self.P -= (lr / bc1) * self.pm / (np.sqrt(self.pv) / math.sqrt(bc2) + cfg.proj_eps)
        self.flops["online_pca"] += (FLOPS_PER_ELEMENT["adamw"] + 3) * self.P.size
        self.bytes_moved += BYTES_PER_FLOAT * 2 * (2 * self.P.size)

    def state_floats(self) -> dict:
        out = super().state_floats()
        if self.cfg.proj_optimizer == "adamw":
            out["P_m"] = self.s * self.r
            out["P_v"] = self.s * self.r
        elif self.cfg.proj_optimizer == "lion":
            out["P_m"] = self.s * self.r
        return out

    def transient_floats(self) -> dict:
        # no SVD after step 0 (its buffers are needed once, at the first step)
        s, l, r = self.s, self.l, self.r
        return {"svd_at_step0": s * s + s + s * l, "g_normalised": s * l, "A": l * r, "E": s * l,
                "EtP": l * r, "grad_P": s * r}

    def get_state(self) -> dict:
        st = super().get_state()
        st.update({"pm": None if self.pm is None else self.pm.copy(),
                   "pv": None if self.pv is None else self.pv.copy(), "pt": self.pt})
        return st

    def set_state(self, st: dict) -> None:
        super().set_state(st)
        self.pm = None if st["pm"] is None else np.array(st["pm"])
        self.pv = None if st["pv"] is None else np.array(st["pv"])
        self.pt = int(st["pt"])


def principal_angles(P: np.ndarray, U: np.ndarray) -> np.ndarray:
    """Principal angles (radians, ascending) between the column spaces of ``P`` and ``U`` (any column norms)."""
    import scipy.linalg

    return scipy.linalg.subspace_angles(P, U)[::-1]
