"""Driver of the issue-21 sweep: the lowrank_stats spec through runner.expand/run_sweep (records.py HDF5),
points ordered seed-major so that complete seeds finish first."""
import sys
from crossbar_sim.experiments.lowrank_stats import SPEC
from crossbar_sim.lowrank.runner import expand, run_sweep

out = sys.argv[1]
workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
sw = expand(SPEC)
sw["points"] = sorted(sw["points"], key=lambda p: (p["seed"], p["index"]))
print(len(sw["points"]), "runs ->", out, flush=True)
res = run_sweep(sw, out, argv=sys.argv, resume=True, workers=workers, progress=False,
                on_result=lambda p, r: print(p["method"], p["rank"], p["backend"], p["seed"], r.status,
                                             f"{r.final_val_ppl:.4f}", f"{r.wall_time_s:.0f}s", flush=True))
