"""A small LLaMA-style decoder language model in NumPy with a hand-written backward pass.

Architecture (LLaMA as in GaLore's and OSD's configs, scaled down): token embedding -> ``n_layers`` blocks of
``x + Attn(RMSNorm(x))`` and ``x + SwiGLU(RMSNorm(x))`` -> RMSNorm -> LM head (untied). Attention is causal
multi-head self-attention with rotary position embeddings (RoPE, the "rotate half" convention of HF LLaMA,
base ``rope_theta``); the MLP is ``W2 (silu(W1 h) * W3 h)``. No biases.

The seven weight matrices of every block (``wq, wk, wv, wo``: ``d x d``; ``w1, w3``: ``f x d``; ``w2``:
``d x f``) live in *holders* (:mod:`crossbar_sim.lowrank.backends`): float arrays or analog tiles, whose
forward and backward MVMs run ``Y = X W^T`` and ``dX = dY W`` through the periphery. These are the matrices
GaLore and OSD project. The embedding, the LM head and the RMSNorm gains are digital parameters (GaLore and
OSD keep full-rank AdamW for them too).

``forward(tokens, targets)`` caches what ``backward()`` needs; ``backward()`` returns the gradients of the
digital parameters and leaves, for every weight matrix, the layer input ``X`` and output gradient ``dY``
(``n_tokens`` rows each): the weight gradient is ``G = dY^T X`` (:meth:`TinyLlama.weight_grad`), or the
``n_tokens`` rank-1 terms a Tiki-Taka tile takes directly. The loss is the mean cross-entropy per token
(nats); perplexity is ``exp`` of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import validation as V
from ..config import Config
from ..errors import ConfigError, ShapeError

MATRIX_NAMES = ("wq", "wk", "wv", "wo", "w1", "w3", "w2")


@dataclass(frozen=True, repr=False)
class LMConfig(Config):
    """Shapes of the model.

    Parameters
    ----------
    vocab_size : int
        Number of tokens (characters); 0 = take it from the corpus.
    d_model, n_layers, n_heads, d_ff : int
        Width, depth, attention heads (``d_model`` divisible by ``n_heads``, even head size for RoPE), MLP
        width.
    seq_len : int
        Context length (tokens per training window).
    init_std : float
        Standard deviation of the normal initialisation of every matrix and the embedding/head (LLaMA's
        ``initializer_range``).
    norm_eps : float
        RMSNorm epsilon (LLaMA configs: 1e-6).
    rope_theta : float
        RoPE base.
    """

    vocab_size: int = 0
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 128
    seq_len: int = 64
    init_std: float = 0.02
    norm_eps: float = 1e-6
    rope_theta: float = 10000.0

    def validate(self) -> None:
        o = type(self).__name__
        V.check_int(self.vocab_size, "vocab_size", o, 0, 1 << 20)
        V.check_int(self.d_model, "d_model", o, 2, 1 << 16)
        V.check_int(self.n_layers, "n_layers", o, 1, 1024)
        V.check_int(self.n_heads, "n_heads", o, 1, 1024)
        V.check_int(self.d_ff, "d_ff", o, 1, 1 << 18)
        V.check_int(self.seq_len, "seq_len", o, 1, 1 << 16)
        V.check_float(self.init_std, "init_std", o, 0.0, closed_lo=False)
        V.check_float(self.norm_eps, "norm_eps", o, 0.0, closed_lo=False)
        V.check_float(self.rope_theta, "rope_theta", o, 1.0)
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ConfigError(f"The 'd_model' parameter of {o} ({self.d_model}) must be a multiple of n_heads "
                              f"({self.n_heads}) with an even head size (RoPE rotates pairs).")

    def matrix_shapes(self) -> dict:
        """``{name: (out, in)}`` of the weight matrices (``layers.<i>.<w>``)."""
        d, f = self.d_model, self.d_ff
        per = {"wq": (d, d), "wk": (d, d), "wv": (d, d), "wo": (d, d), "w1": (f, d), "w3": (f, d), "w2": (d, f)}
        return {f"layers.{i}.{k}": per[k] for i in range(self.n_layers) for k in MATRIX_NAMES}


def init_weights(cfg: LMConfig, vocab_size: int, rng: np.random.Generator) -> tuple[dict, dict]:
    """``(digital params, matrices)`` drawn from ``N(0, init_std^2)`` (norm gains 1), float64."""
    d = cfg.d_model
    params = {"emb": rng.normal(0.0, cfg.init_std, (vocab_size, d)),
              "head": rng.normal(0.0, cfg.init_std, (vocab_size, d)),
              "norm_f": np.ones(d)}
    mats = {}
    for i in range(cfg.n_layers):
        params[f"layers.{i}.norm1"] = np.ones(d)
        params[f"layers.{i}.norm2"] = np.ones(d)
    for name, shape in cfg.matrix_shapes().items():
        mats[name] = rng.normal(0.0, cfg.init_std, shape)
    return params, mats


# ---------------------------------------------------------------------------------------------- pieces
def rmsnorm(x, g, eps):
    r = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    xh = x * r
    return xh * g, (xh, r)


def rmsnorm_back(dy, g, cache):
    xh, r = cache
    dg = np.sum(dy * xh, axis=tuple(range(dy.ndim - 1)))
    dxh = dy * g
    dx = r * (dxh - xh * np.mean(dxh * xh, axis=-1, keepdims=True))
    return dx, dg


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def rope_tables(T, hd, theta, dtype):
    inv = theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = np.outer(np.arange(T, dtype=np.float64), inv)
    ang = np.concatenate([ang, ang], axis=-1)
    return np.cos(ang).astype(dtype), np.sin(ang).astype(dtype)


def rope(x, cos, sin):
    return x * cos + rotate_half(x) * sin


def rope_back(dy, cos, sin):
    # rope is x -> x cos + R x sin with R = rotate_half (R^T = -R): dx = dy cos - R(dy sin)
    return dy * cos - rotate_half(dy * sin)


def rope_bthd(x, cos, sin):
    """:func:`rope` of ``x`` of shape ``(B, T, H, hd)`` with tables ``(T, hd)``, without the rotate-half
    temporary: ``y1 = x1 cos - x2 sin``, ``y2 = x2 cos + x1 sin`` (the two halves of the tables are equal)."""
    h = x.shape[-1] // 2
    c, sh = cos[:, None, :], sin[:, None, :h]
    y = x * c
    y[..., :h] -= x[..., h:] * sh
    y[..., h:] += x[..., :h] * sh
    return y


def rope_back_bthd(dy, cos, sin, scale=None):
    """:func:`rope_back` for ``(B, T, H, hd)`` (any strides; the result is contiguous), times ``scale``:
    ``dx1 = dy1 cos + dy2 sin``, ``dx2 = dy2 cos - dy1 sin``."""
    h = dy.shape[-1] // 2
    c, sh = cos[:, None, :], sin[:, None, :h]
    if scale is not None:
        c, sh = c * scale, sh * scale
    dx = np.empty(dy.shape, np.result_type(dy, cos))
    np.multiply(dy, c, out=dx)
    dx[..., :h] += dy[..., h:] * sh
    dx[..., h:] -= dy[..., :h] * sh
    return dx


def silu(a):
    return a / (1.0 + np.exp(-a))


# ---------------------------------------------------------------------------------------------- model
class TinyLlama:
    """The model. ``holder_factory(name, w0)`` returns the holder of matrix ``name`` initialised to ``w0``."""

    def __init__(self, cfg: LMConfig, vocab_size: int, rng: np.random.Generator,
                 holder_factory: Callable | None = None, dtype=np.float32):
        from .backends import DigitalMatrix

        self.cfg = cfg
        self.vocab_size = int(vocab_size)
        self.dtype = dtype
        params, mats = init_weights(cfg, self.vocab_size, rng)
        self.params = {k: v.astype(dtype) for k, v in params.items()}
        factory = holder_factory or (lambda name, w: DigitalMatrix(w, dtype))
        self.mats = {name: factory(name, w) for name, w in mats.items()}
        self.hd = cfg.d_model // cfg.n_heads
        self.cos, self.sin = rope_tables(cfg.seq_len, self.hd, cfg.rope_theta, dtype)
        # additive causal mask (0 / -inf) and the score scale, in the model's dtype (a float64 numpy scalar
        # would promote float32 scores to float64 under NumPy 2's promotion rules)
        self._mask = np.triu(np.full((cfg.seq_len, cfg.seq_len), -np.inf, dtype), 1)
        self._scale = np.asarray(1.0 / np.sqrt(self.hd), dtype)[()]
        self.io: dict[str, tuple] = {}  # name -> (X, dY) of the last backward
        self.flops = 0  # digital flops of the model's own products (attention scores, head)
        self._cache = None

    # -------------------------------------------------------------------- forward
    def _mm(self, name, X):
        return np.asarray(self.mats[name].forward(X), self.dtype)

    def forward(self, tokens, targets=None):
        """Logits ``(B, T, V)`` and, with ``targets``, the mean cross-entropy (nats per token)."""
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[1] > self.cfg.seq_len:
            raise ShapeError(f"'tokens' must have shape (batch, <= {self.cfg.seq_len}). Got {tokens.shape}.")
        B, T = tokens.shape
        cfg = self.cfg
        d, H, hd = cfg.d_model, cfg.n_heads, self.hd
        N = B * T
        p = self.params
        cos, sin = self.cos[:T], self.sin[:T]
        x = p["emb"][tokens].reshape(N, d)
        caches = []
        mask = self._mask[:T, :T]
        scale = self._scale
        for i in range(cfg.n_layers):
            L = f"layers.{i}."
            c = {}
            h, c["n1"] = rmsnorm(x, p[L + "norm1"], cfg.norm_eps)
            c["h1"] = h
            # q, k, v in (B, T, H, hd) layout (contiguous, as the MVMs return them); RoPE there, then the
            # per-head products on transposed views (BLAS takes them without copies)
            qr = rope_bthd(self._mm(L + "wq", h).reshape(B, T, H, hd), cos, sin)
            kr = rope_bthd(self._mm(L + "wk", h).reshape(B, T, H, hd), cos, sin)
            v = self._mm(L + "wv", h).reshape(B, T, H, hd)
            qh, kh, vh = qr.transpose(0, 2, 1, 3), kr.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)
            a = qh @ kh.transpose(0, 1, 3, 2)                  # (B, H, T, T) scores, then softmax in place
            a *= scale
            a += mask                                          # 0 on and below the diagonal, -inf above
            a -= a.max(axis=-1, keepdims=True)
            np.exp(a, out=a)
            a /= a.sum(axis=-1, keepdims=True)
            o = (a @ vh).transpose(0, 2, 1, 3).reshape(N, d)
            self.flops += 4 * B * H * T * T * hd
            c.update(qr=qr, kr=kr, v=v, a=a, o=o)
            x = x + self._mm(L + "wo", o)
            h2, c["n2"] = rmsnorm(x, p[L + "norm2"], cfg.norm_eps)
            c["h2"] = h2
            g1 = self._mm(L + "w1", h2)
            g3 = self._mm(L + "w3", h2)
            sg = 1.0 / (1.0 + np.exp(-g1))
            u = g1 * sg * g3
            c.update(g1=g1, g3=g3, sg=sg, u=u)
            x = x + self._mm(L + "w2", u)
            caches.append(c)
        xf, nf = rmsnorm(x, p["norm_f"], cfg.norm_eps)
        logits = xf @ p["head"].T
        self.flops += 2 * N * d * self.vocab_size
        self._cache = dict(tokens=tokens, B=B, T=T, caches=caches, xf=xf, nf=nf, logits=logits, targets=None)
        if targets is None:
            return logits.reshape(B, T, -1)
        targets = np.asarray(targets).reshape(N)
        z = logits - logits.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        loss = float(np.mean(lse - z[np.arange(N), targets]))
        self._cache.update(targets=targets, z=z, lse=lse)
        return logits.reshape(B, T, -1), loss

    # -------------------------------------------------------------------- backward
    def _bmm(self, name, X, dY):
        self.io[name] = (X, dY)
        return np.asarray(self.mats[name].backward(dY), self.dtype)

    def backward(self) -> dict:
        """Gradients of the digital parameters (the matrices' ``(X, dY)`` go to :attr:`io`)."""
        c0 = self._cache
        if c0 is None or c0["targets"] is None:
            raise ShapeError("backward() needs a forward(tokens, targets) first.")
        cfg = self.cfg
        B, T = c0["B"], c0["T"]
        N = B * T
        d, H, hd = cfg.d_model, cfg.n_heads, self.hd
        p = self.params
        cos, sin = self.cos[:T], self.sin[:T]
        grads = {}
        dlog = np.exp(c0["z"] - c0["lse"][:, None])
        dlog[np.arange(N), c0["targets"]] -= 1.0
        dlog /= N
        grads["head"] = dlog.T @ c0["xf"]
        dxf = dlog @ p["head"]
        self.flops += 4 * N * d * self.vocab_size
        dx, grads["norm_f"] = rmsnorm_back(dxf, p["norm_f"], c0["nf"])
        scale = self._scale
        for i in reversed(range(cfg.n_layers)):
            L = f"layers.{i}."
            c = c0["caches"][i]
            # MLP
            du = self._bmm(L + "w2", c["u"], dx)
            sg, g1, g3 = c["sg"], c["g1"], c["g3"]
            dg3 = du * g1
            dg3 *= sg                                          # du * silu(g1)
            dg1 = 1.0 - sg                                     # silu'(g1) = sg (1 + g1 (1 - sg)), times du g3
            dg1 *= g1
            dg1 += 1.0
            dg1 *= sg
            dg1 *= g3
            dg1 *= du
            dh2 = self._bmm(L + "w1", c["h2"], dg1) + self._bmm(L + "w3", c["h2"], dg3)
            dxn, grads[L + "norm2"] = rmsnorm_back(dh2, p[L + "norm2"], c["n2"])
            dx = dx + dxn
            # attention
            do = self._bmm(L + "wo", c["o"], dx)               # (N, d) = (B, T, H, hd) layout, like o
            a, v, qr, kr = c["a"], c["v"], c["qr"], c["kr"]
            doh = do.reshape(B, T, H, hd).transpose(0, 2, 1, 3)
            ds = doh @ v.transpose(0, 2, 3, 1)                 # dA = dO V^T, (B, H, T, T)
            dv = (a.transpose(0, 1, 3, 2) @ doh).transpose(0, 2, 1, 3).reshape(N, d)
            # softmax backward dS = A (dA - rowsum(dA A)); rowsum(dA A) = rowsum(dO O) per head (O = A V), an
            # (N, d)-sized product instead of a (T, T) one. Masked entries of A are exactly 0, so they stay 0.
            rs = np.sum((do * c["o"]).reshape(B, T, H, hd), axis=-1).transpose(0, 2, 1)[..., None]
            ds -= rs
            ds *= a
            # the products written straight into (B, T, H, hd) buffers (a strided out for BLAS), so that RoPE's
            # backward runs on contiguous memory
            dqr = np.empty((B, T, H, hd), ds.dtype)
            dkr = np.empty((B, T, H, hd), ds.dtype)
            np.matmul(ds, kr.transpose(0, 2, 1, 3), out=dqr.transpose(0, 2, 1, 3))
            np.matmul(ds.transpose(0, 1, 3, 2), qr.transpose(0, 2, 1, 3), out=dkr.transpose(0, 2, 1, 3))
            self.flops += 8 * B * H * T * T * hd
            dq = rope_back_bthd(dqr, cos, sin, scale).reshape(N, d)
            dk = rope_back_bthd(dkr, cos, sin, scale).reshape(N, d)
            h1 = c["h1"]
            dh = self._bmm(L + "wq", h1, dq) + self._bmm(L + "wk", h1, dk) + self._bmm(L + "wv", h1, dv)
            dxn, grads[L + "norm1"] = rmsnorm_back(dh, p[L + "norm1"], c["n1"])
            dx = dx + dxn
        # embedding gradient: one-hot^T dx (a product; np.add.at is ~10x slower)
        onehot = (c0["tokens"].reshape(N)[:, None] == np.arange(self.vocab_size)).astype(self.dtype)
        grads["emb"] = onehot.T @ dx
        return grads

    def weight_grad(self, name: str) -> np.ndarray:
        """``G = dY^T X`` of matrix ``name`` from the last backward (``out x in``)."""
        X, dY = self.io[name]
        return dY.T @ X

    def weight_grad_flops(self, name: str) -> int:
        X, dY = self.io[name]
        return 2 * X.shape[0] * X.shape[1] * dY.shape[1]

    def read_matrices(self) -> dict:
        return {k: h.read() for k, h in self.mats.items()}

    def n_params(self) -> dict:
        return {"matrices": int(sum(np.prod(h.shape) for h in self.mats.values())),
                "digital": int(sum(v.size for v in self.params.values()))}
