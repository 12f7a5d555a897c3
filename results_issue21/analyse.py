"""Tables and figure of the issue-21 sweep from its HDF5 record (reads a copy: the sweep may still write)."""
import os
import shutil
import sys

import numpy as np

from crossbar_sim.energy import CATEGORIES, SCENARIOS, reprice
from crossbar_sim.lowrank import stats as S
from crossbar_sim.lowrank.plots import write_tradeoff_figure
from crossbar_sim.lowrank.records import read_runs

src = sys.argv[1]
outdir = os.path.dirname(os.path.abspath(src))
tmp = src + ".read.h5"
shutil.copy(src, tmp)
recs = read_runs(tmp)
os.remove(tmp)
print(f"{len(recs)} runs")
rows = S.cell_table(recs)
print("\n## Perplexity, memory, energy (mean [95% t-interval] over seeds)\n")
print(S.format_cell_table(rows))
paired = S.paired_table(recs)
print("\n## OSD - GaLore, paired by seed (final validation perplexity)\n")
print(S.format_paired_table(paired))
pe = S.paired_table(recs, metric="energy_total_J")
print("\n## OSD - GaLore energy (J), paired\n")
print(S.format_paired_table(pe))
for a in ("galore", "osd"):
    print(f"\n## {a} - full-rank AdamW (ppl), paired (rank vs the single AdamW run per seed)\n")
    # AdamW has rank None: pair by hand
    g = S.group_records(recs)
    for bk in ("digital", "analog"):
        ad = {r["point"]["seed"]: r["final_val_ppl"] for r in g.get((bk, "adamw", None), [])}
        for (b2, m, rk), rs in g.items():
            if b2 != bk or m != a:
                continue
            v = {r["point"]["seed"]: r["final_val_ppl"] for r in rs if r["status"] == "complete"}
            seeds = sorted(set(v) & set(ad))
            if len(seeds) >= 2:
                d = S.paired_difference([v[s] for s in seeds], [ad[s] for s in seeds])
                print(f"{bk} r{rk}: {d.mean:+.3f} [{d.interval.lo:+.3f}, {d.interval.hi:+.3f}] p={d.p:.3g}")
if True:
    g = S.group_records(recs)
    ad = {r["point"]["seed"]: r["final_val_ppl"] for r in g.get(("analog", "adamw", None), [])}
    tt = {r["point"]["seed"]: r["final_val_ppl"] for r in g.get(("analog", "tiki_taka", None), [])}
    seeds = sorted(set(ad) & set(tt))
    if len(seeds) >= 2:
        d = S.paired_difference([tt[s] for s in seeds], [ad[s] for s in seeds])
        print(f"\nTiki-Taka - AdamW (analog): {d.mean:+.3f} [{d.interval.lo:+.3f}, {d.interval.hi:+.3f}] p={d.p:.3g}")

print("\n## Steps to flatten (val ppl within 1% / 2% of its final value; median, max over seeds)\n")
f1, f2 = S.flatten_summary(recs, 0.01), S.flatten_summary(recs, 0.02)
for k in f1:
    print(f"{k[0]:8s} {S.label(k[1], k[2]):14s} 1%: {f1[k][0]:6.0f} {f1[k][1]:5d}   2%: {f2[k][0]:6.0f} {f2[k][1]:5d}")
last = []
for r in recs:
    m = r["metrics"]
    st, vp = np.asarray(m["steps"]), np.asarray(m["val_ppl"])
    i = np.searchsorted(st, st[-1] - 200)
    last.append((vp[i] - vp[-1]) / vp[-1])
print(f"relative val-ppl drop over the last 200 steps: median {100*np.median(last):.2f}%, max {100*np.max(last):.2f}%")

print("\n## Energy by category, default constants (analog, mean over seeds, J)\n")
g = S.group_records(recs)
print("| run | " + " | ".join(CATEGORIES) + " | total |")
print("|" + "---|" * (len(CATEGORIES) + 2))
for (bk, m, rk), rs in g.items():
    if bk != "analog":
        continue
    e = {c: np.mean([r["budget"][f"energy_{c}_J"] for r in rs]) for c in CATEGORIES}
    tot = sum(e.values())
    print(f"| {S.label(m, rk)} | " + " | ".join(f"{e[c]:.3g} ({100*e[c]/tot:.0f}%)" for c in CATEGORIES)
          + f" | {tot:.4g} |")

print("\n## Ranking by training energy per scenario (cheapest first)\n")
for bk in ("analog", "digital"):
    print(f"\n### {bk} backend\n")
    base = [l for l, _ in S.energy_ranking(recs, "default", bk)]
    print("| scenario | at r8: ranking (energy / AdamW's) | full ranking same as default? |")
    print("|---|---|---|")
    for name in SCENARIOS:
        rk = S.energy_ranking(recs, name, bk)
        e = dict(rk)
        adam = e.get("AdamW")
        sub = [(l, v) for l, v in rk if l in ("AdamW", "GaLore r8", "OSD r8", "Tiki-Taka")]
        s = " < ".join(f"{l} ({v / adam:.3g})" for l, v in sub)
        full = [l for l, _ in rk]
        same = "yes" if full == base else "no: " + " < ".join(full)
        print(f"| {name} | {s} | {same} |")

path = write_tradeoff_figure(rows, os.path.join(outdir, "lowrank_stats_tradeoff.png"), paired)
print("\nfigure:", path)
