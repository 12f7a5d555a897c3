"""Closed-form optimiser-state counts, and what they give for the published LLaMA shapes.

For one weight matrix ``m x n``, ``s = min(m, n)``, ``l = max(m, n)``, ``r' = min(r, s)`` (states in floats;
``k = 2`` for an AdamW inner optimiser, ``1`` for Lion)::

    full-rank AdamW   k m n
    GaLore            k r' l  +  s r'                     (inner states on the projected side, plus P)
    OSD               k r' l  +  s r'  +  k_P s r'        (plus P's optimiser: k_P = 2 AdamW, 1 Lion, 0 SGD)
    Tiki-Taka         0 digital (its state is the analog array A: m n devices)

Transient buffers (peak, per matrix, at the step they occur; LAPACK workspace not counted): GaLore's thin SVD
every ``update_proj_gap`` steps, ``U`` (s x s) + ``S`` (s) + ``V^T`` (s x l); OSD's online PCA every step,
``g_n`` (s x l) + ``A = g_n^T P`` (l x r') + the residual ``E = P A^T - g_n`` (s x l) + ``E^T P``
(l x r') + ``grad P`` (s x r') (and the same SVD once, at step 0). All methods need the gradient itself (``m n``) unless updates are fused
layer by layer into the backward pass (GaLore's "per-layer weight updates").

Published model shapes (GaLore's ``configs/llama_*.json``, the same the OSD code uses): vocabulary 32000,
untied embedding and LM head, per layer 4 attention matrices ``d x d`` and 3 MLP matrices ``d x f`` / ``f x d``,
two RMSNorm vectors per layer and a final one. GaLore and OSD project only the attention and MLP matrices;
the embedding, head and norms keep full-rank AdamW states (GaLore's ``torchrun_main.py``: "attn"/"mlp" modules).
"""
from __future__ import annotations

from dataclasses import dataclass

METHODS = ("adamw", "galore", "osd", "tiki_taka")


def inner_states(inner: str) -> int:
    return 2 if inner == "adamw" else 1


def proj_states(proj_optimizer: str) -> int:
    return {"adamw": 2, "lion": 1, "sgd": 0}[proj_optimizer]


def matrix_state_floats(method: str, m: int, n: int, rank: int | None = None, inner: str = "adamw",
                        proj_optimizer: str = "adamw") -> dict:
    """Persistent optimiser state of one ``m x n`` matrix, in floats, by name (the closed forms above)."""
    k = inner_states(inner)
    if method == "adamw":
        return {"m": m * n, "v": m * n} if k == 2 else {"m": m * n}
    if method == "tiki_taka":
        return {}
    s, l = min(m, n), max(m, n)
    r = min(int(rank), s)
    out = {"m": r * l}
    if k == 2:
        out["v"] = r * l
    out["P"] = s * r
    if method == "osd":
        kp = proj_states(proj_optimizer)
        if kp >= 1:
            out["P_m"] = s * r
        if kp == 2:
            out["P_v"] = s * r
    elif method != "galore":
        raise ValueError(f"unknown method {method!r}")
    return out


def matrix_transient_floats(method: str, m: int, n: int, rank: int | None = None) -> dict:
    """Peak temporaries of one step of one matrix (floats), by name."""
    s, l = min(m, n), max(m, n)
    if method in ("adamw", "tiki_taka"):
        return {}
    r = min(int(rank), s)
    svd = {"svd_U": s * s, "svd_S": s, "svd_Vt": s * l}
    if method == "galore":
        return svd
    return {"svd_at_step0": s * s + s + s * l, "g_normalised": s * l, "A": l * r, "E": s * l, "EtP": l * r,
            "grad_P": s * r}


@dataclass(frozen=True)
class LlamaShape:
    """A LLaMA model's shapes (GaLore's configs) and the rank its paper used."""

    name: str
    d_model: int
    d_ff: int
    n_layers: int
    n_heads: int
    vocab: int = 32000
    galore_rank: int = 128

    def matrices(self) -> list[tuple[int, int]]:
        """The projected matrices (out x in, as stored): per layer q, k, v, o (d x d), gate, up (f x d), down
        (d x f)."""
        d, f = self.d_model, self.d_ff
        return [(d, d)] * 4 * self.n_layers + [(f, d), (f, d), (d, f)] * self.n_layers

    def other_params(self) -> int:
        """Parameters that keep full-rank AdamW: embedding, LM head, RMSNorm weights."""
        return 2 * self.vocab * self.d_model + (2 * self.n_layers + 1) * self.d_model

    def n_params(self) -> int:
        return self.other_params() + sum(m * n for m, n in self.matrices())


#: GaLore Table 5 / configs; ranks as in GaLore Table 2 (60M-1B) and GaLore's 7B run (r = 1024)
LLAMA_SHAPES = {
    "60M": LlamaShape("60M", 512, 1376, 8, 8, galore_rank=128),
    "130M": LlamaShape("130M", 768, 2048, 12, 12, galore_rank=256),
    "350M": LlamaShape("350M", 1024, 2736, 24, 16, galore_rank=256),
    "1B": LlamaShape("1B", 2048, 5461, 24, 32, galore_rank=512),
    "7B": LlamaShape("7B", 4096, 11008, 32, 32, galore_rank=1024),
}

#: what the papers report (GB; GaLore's are "memory estimates" from parameter counts, BF16).
#: GaLore arXiv 2403.03507 Table 6(b) "Memory estimate of optimizer states" (60M-1B, full-rank and GaLore);
#: Table 2 totals (weights + optimiser states); Table 3 (7B, 8-bit optimisers, total estimate).
#: OSD arXiv 2408.12857 reports measured GPU memory only for 1B (Section 5.1: 8.64 GB OSD vs 9.01 GB GaLore).
PUBLISHED = {
    "galore_table6b_optimizer_states_GB": {
        "adamw": {"60M": 0.23, "130M": 0.51, "350M": 1.37, "1B": 5.20},
        "galore": {"60M": 0.13, "130M": 0.28, "350M": 0.54, "1B": 1.78},
    },
    "galore_table2_weights_plus_states_GB": {
        "adamw": {"60M": 0.36, "130M": 0.76, "350M": 2.06, "1B": 7.80},
        "galore": {"60M": 0.24, "130M": 0.52, "350M": 1.22, "1B": 4.38},
    },
    "galore_table3_7B_8bit_total_GB": {"adamw": 26.0, "galore": 18.0},
    "osd_sec5.1_1B_measured_gpu_GB": {"galore": 9.01, "osd": 8.64},
}


def model_state_floats(shape: LlamaShape, method: str, rank: int | None = None, inner: str = "adamw",
                       proj_optimizer: str = "adamw") -> dict:
    """Optimiser state of a whole model (floats): ``projected`` (the attention/MLP matrices under ``method``),
    ``other`` (embedding, head, norms with full-rank AdamW; 0 for Tiki-Taka's matrices but the digital
    parameters still need theirs), ``transient_peak`` (largest per-matrix temporary)."""
    rank = shape.galore_rank if rank is None else rank
    proj = 0
    peak = 0
    for m, n in shape.matrices():
        proj += sum(matrix_state_floats(method, m, n, rank, inner, proj_optimizer).values())
        peak = max(peak, sum(matrix_transient_floats(method, m, n, rank).values()))
    other = inner_states(inner) * shape.other_params()
    return {"projected": proj, "other": other, "total": proj + other, "transient_peak": peak}


FORMULA = ("per matrix m x n (s = min, l = max, r' = min(r, s), k = 2 AdamW / 1 Lion): full AdamW k m n; "
           "GaLore k r' l + s r' (P); OSD k r' l + s r' (P) + 2 s r' (P's AdamW); Tiki-Taka 0 digital. "
           "Embedding, LM head and norms: full AdamW (k x params) for every method. Transient (not in the "
           "totals): GaLore's thin SVD U+S+V^T = s^2 + s + s l; OSD's PCA temporaries 2 s l + 2 l r' + s r'.")


def published_table(bytes_per_float: float = 2.0, methods=("adamw", "galore", "osd")) -> list[dict]:
    """Rows ``{model, method, rank, params, projected_GB, other_GB, total_GB, transient_GB, published...}``.

    ``bytes_per_float`` 2 = BF16, the basis of GaLore's estimates.
    """
    rows = []
    for name, shp in LLAMA_SHAPES.items():
        for method in methods:
            c = model_state_floats(shp, method)
            t6 = PUBLISHED["galore_table6b_optimizer_states_GB"].get(method, {}).get(name)
            rows.append({
                "model": name, "method": method, "rank": None if method == "adamw" else shp.galore_rank,
                "params_M": shp.n_params() / 1e6,
                "projected_GB": c["projected"] * bytes_per_float / 1e9,
                "other_GB": c["other"] * bytes_per_float / 1e9,
                "total_GB": c["total"] * bytes_per_float / 1e9,
                "transient_GB": c["transient_peak"] * bytes_per_float / 1e9,
                "published_GB": t6,
            })
    return rows


def format_published_table(bytes_per_float: float = 2.0) -> str:
    """The table printed by ``crossbar-sim lowrank --memory-table``."""
    rows = published_table(bytes_per_float)
    head = (f"Optimiser-state memory of the published LLaMA shapes ({bytes_per_float:g} bytes per state; "
            f"GB = 1e9 bytes)\nformula: {FORMULA}\n")
    lines = [f"{'model':>5} {'params':>8} {'method':>7} {'rank':>5} {'matrices':>9} {'emb/head/norm':>13} "
             f"{'total':>8} {'peak tmp':>8} {'GaLore T6b':>10}"]
    for r in rows:
        pub = "-" if r["published_GB"] is None else f"{r['published_GB']:.2f}"
        lines.append(f"{r['model']:>5} {r['params_M']:7.0f}M {r['method']:>7} {str(r['rank'] or '-'):>5} "
                     f"{r['projected_GB']:9.3f} {r['other_GB']:13.3f} {r['total_GB']:8.3f} "
                     f"{r['transient_GB']:8.3f} {pub:>10}")
    p = PUBLISHED
    lines.append("")
    lines.append("published, GaLore Table 2 (weights + optimiser states, BF16 estimate, GB): "
                 + ", ".join(f"{m} {v}" for m, v in p["galore_table2_weights_plus_states_GB"]["galore"].items())
                 + " (GaLore); "
                 + ", ".join(f"{m} {v}" for m, v in p["galore_table2_weights_plus_states_GB"]["adamw"].items())
                 + " (full rank)")
    lines.append("published, GaLore Table 3 (7B, 8-bit optimisers, total estimate): 8-bit GaLore 18 GB, "
                 "8-bit Adam 26 GB")
    lines.append("published, OSD Sec. 5.1 (1B, rank 512, measured GPU memory): OSD 8.64 GB, GaLore 9.01 GB "
                 "(OSD publishes no per-state estimate)")
    return head + "\n".join(lines)
