"""Does training longer change the picture? Seed label 0, digital, 1000 vs 2000 steps (same schedule shape)."""
from crossbar_sim.experiments.lowrank_stats import SPEC
from crossbar_sim.lowrank.runner import point_config, run_seed
from crossbar_sim.lowrank.train import train_lm
from crossbar_sim.lowrank.text import load_shakespeare
seed = run_seed(SPEC["seed"], 0)
corpus = None
for method, rank in (("adamw", None), ("galore", 8), ("osd", 8)):
    cfg = point_config(SPEC, method, rank, "digital").replace(steps=2000, eval_every=250)
    corpus = corpus or load_shakespeare(cfg.data)
    r = train_lm(cfg, seed, corpus)
    print(method, rank, "2000 steps:", " ".join(f"{s}:{v:.3f}" for s, v in zip(r.steps, r.metrics["val_ppl"])), flush=True)
