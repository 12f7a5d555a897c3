"""Benchmark (not a test): one training step of the NumPy LLaMA against the same model in eager PyTorch.

The workload is the language model of the low-rank experiments (``lowrank_shakespeare`` / ``lowrank_stats``:
2 layers, width 64, 4 heads, SwiGLU width 128, context 64, batch 16, character vocabulary of the corpus, or 80
when the corpus is not installed) trained with full-rank AdamW on float32 weights (``backend="digital"``,
``method="adamw"``): forward, backward, weight gradients ``G = dY^T X``, AdamW on every parameter. The PyTorch
twin has the same architecture and starts from the same weights (the first loss of both is printed and must
agree); it runs ``zero_grad -> forward -> loss.backward() -> torch.optim.AdamW.step()`` in eager mode on one
thread (``torch.set_num_threads(1)``), and ours on one BLAS thread.

Timings alternate between the two (``--repeat`` rounds of ``--steps`` steps each, NumPy first, then torch), so
both see the same machine state; the medians per step and their ratio are reported. torch is not a dependency of
crossbar-sim: run this from an environment that has it, e.g. ``/work/venvs/torchbench/bin/crossbar-sim bench
--kind lm`` (``pip install torch==2.13.0`` there, then ``pip install -e .``).
"""
from __future__ import annotations

import statistics
import time

import numpy as np


def _config(d_model=64, n_layers=2, n_heads=4, d_ff=128, seq_len=64, batch_size=16):
    from ..lowrank.lm import LMConfig
    from ..lowrank.train import LowRankRunConfig

    lm = LMConfig(d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_ff=d_ff, seq_len=seq_len)
    return LowRankRunConfig(method="adamw", backend="digital", lr=3e-3, steps=10**6, batch_size=batch_size, lm=lm)


def _corpus(cfg):
    """The Shakespeare corpus when installed, else a random character stream of 80 symbols (the timing does not
    depend on the text)."""
    from ..errors import SimulatorError
    from ..lowrank.text import CharCorpus, load_shakespeare

    try:
        return load_shakespeare(cfg.data)
    except (SimulatorError, ImportError):
        rng = np.random.default_rng(0)
        toks = rng.integers(0, 80, 200_000).astype(np.uint8)
        return CharCorpus(train=toks[:180_000], val=toks[180_000:], vocab="".join(chr(32 + i) for i in range(80)))


class TorchLlama:
    """The PyTorch twin of :class:`crossbar_sim.lowrank.lm.TinyLlama`, from a trained-or-initial NumPy model."""

    def __init__(self, model, lr=3e-3, lr_other=3e-3):
        import torch

        self.torch = torch
        self.cfg = model.cfg
        f = lambda a: torch.nn.Parameter(torch.tensor(np.asarray(a, np.float32)))
        self.p = {k: f(v) for k, v in model.params.items()}
        self.w = {k: f(h.read()) for k, h in model.mats.items()}
        hd = model.hd
        self.cos = torch.tensor(model.cos)
        self.sin = torch.tensor(model.sin)
        self.hd = hd
        self.opt = torch.optim.AdamW([{"params": list(self.w.values()), "lr": lr},
                                      {"params": list(self.p.values()), "lr": lr_other}],
                                     betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0)

    def _norm(self, x, g):
        return x * self.torch.rsqrt((x * x).mean(-1, keepdim=True) + self.cfg.norm_eps) * g

    def _rot(self, x):
        h = x.shape[-1] // 2
        return self.torch.cat([-x[..., h:], x[..., :h]], dim=-1)

    def loss(self, X, Y):
        torch = self.torch
        cfg = self.cfg
        B, T = X.shape
        H, hd = cfg.n_heads, self.hd
        p, w = self.p, self.w
        cos, sin = self.cos[:T], self.sin[:T]
        x = p["emb"][X]
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        for i in range(cfg.n_layers):
            L = f"layers.{i}."
            h = self._norm(x, p[L + "norm1"])
            q = (h @ w[L + "wq"].T).view(B, T, H, hd).transpose(1, 2)
            k = (h @ w[L + "wk"].T).view(B, T, H, hd).transpose(1, 2)
            v = (h @ w[L + "wv"].T).view(B, T, H, hd).transpose(1, 2)
            q = q * cos + self._rot(q) * sin
            k = k * cos + self._rot(k) * sin
            s = (q @ k.transpose(-1, -2)) / hd ** 0.5
            a = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1)
            o = (a @ v).transpose(1, 2).reshape(B, T, -1)
            x = x + o @ w[L + "wo"].T
            h2 = self._norm(x, p[L + "norm2"])
            g1 = h2 @ w[L + "w1"].T
            x = x + (torch.nn.functional.silu(g1) * (h2 @ w[L + "w3"].T)) @ w[L + "w2"].T
        logits = self._norm(x, p["norm_f"]) @ p["head"].T
        return torch.nn.functional.cross_entropy(logits.reshape(B * T, -1), Y.reshape(-1))

    def step(self, X, Y) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(self.torch.as_tensor(X, dtype=self.torch.long), self.torch.as_tensor(Y, dtype=self.torch.long))
        loss.backward()
        self.opt.step()
        return float(loss)


def run_lm_bench(steps: int = 20, repeat: int = 7, progress=print, **shape) -> dict:
    """Interleaved timing of ``steps`` training steps, ``repeat`` rounds; returns the medians and the ratio."""
    import torch

    from ..lowrank.train import LowRankTrainer, blas_threads

    torch.set_num_threads(1)
    cfg = _config(**shape)
    corpus = _corpus(cfg)
    out = {"config": cfg.lm.to_dict(), "batch_size": cfg.batch_size, "steps": steps, "repeat": repeat,
           "torch": torch.__version__, "numpy": np.__version__}
    with blas_threads(1):
        tr = LowRankTrainer(cfg, seed=0, corpus=corpus)
        tw = TorchLlama(tr.model, cfg.lr, cfg.lr_other)
        X, Y = tr._batch()
        _, loss_np = tr.model.forward(X, Y)
        with torch.no_grad():
            loss_t = float(tw.loss(torch.as_tensor(X, dtype=torch.long), torch.as_tensor(Y, dtype=torch.long)))
        out["first_loss"] = {"numpy": loss_np, "torch": loss_t}
        progress(f"same model: first loss numpy {loss_np:.6f}, torch {loss_t:.6f}")
        rng = np.random.default_rng(1)
        T = cfg.lm.seq_len

        def torch_batch():
            st = rng.integers(0, len(corpus.train) - T - 1, cfg.batch_size)
            wnd = np.stack([corpus.train[s:s + T + 1] for s in st])
            return wnd[:, :-1], wnd[:, 1:]

        for _ in range(3):  # warm-up (allocator, first-call paths)
            tr.train_step()
            tw.step(*torch_batch())
        t_np, t_t = [], []
        for i in range(repeat):
            t0 = time.perf_counter()
            for _ in range(steps):
                tr.train_step()
            t_np.append((time.perf_counter() - t0) / steps)
            batches = [torch_batch() for _ in range(steps)]
            t0 = time.perf_counter()
            for b in batches:
                tw.step(*b)
            t_t.append((time.perf_counter() - t0) / steps)
            progress(f"round {i + 1}/{repeat}: numpy {1e3 * t_np[-1]:.2f} ms/step, torch {1e3 * t_t[-1]:.2f} ms/step")
    out["numpy_ms"] = 1e3 * statistics.median(t_np)
    out["torch_ms"] = 1e3 * statistics.median(t_t)
    out["numpy_min_ms"] = 1e3 * min(t_np)
    out["torch_min_ms"] = 1e3 * min(t_t)
    out["ratio_per_round"] = [b / a for a, b in zip(t_np, t_t)]
    out["speedup_vs_torch"] = statistics.median(out["ratio_per_round"])
    progress(f"median: numpy {out['numpy_ms']:.2f} ms/step, torch eager {out['torch_ms']:.2f} ms/step "
             f"(min {out['numpy_min_ms']:.2f} / {out['torch_min_ms']:.2f}); torch/numpy per round: median "
             f"{out['speedup_vs_torch']:.2f}x (>1: ours faster)")
    return out


if __name__ == "__main__":  # pragma: no cover
    run_lm_bench()
