"""Statistics of sweeps: t-intervals equal the textbook values and cover at their nominal rate, paired
differences equal scipy's paired t-test, Holm's procedure, flattening steps, tables from records, energy
rankings re-priced under scenarios."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from crossbar_sim.energy import EventCounts, compute_budget
from crossbar_sim.errors import ConfigError
from crossbar_sim.lowrank import stats as S


def test_mean_interval_textbook_values():
    iv = S.mean_interval([1.0, 2.0, 3.0, 4.0])
    # t_{0.975, 3} = 3.182446305 (tables), s = sqrt(5/3)
    half = 3.182446305284263 * math.sqrt(5 / 3) / 2
    assert iv.mean == 2.5 and iv.n == 4
    assert iv.half == pytest.approx(half, rel=1e-12) and iv.lo == pytest.approx(2.5 - half)
    assert S.mean_interval([1.0, 3.0], 0.9).half == pytest.approx(sps.t.ppf(0.95, 1) * math.sqrt(2) / math.sqrt(2))
    one = S.mean_interval([7.0])
    assert one.mean == 7.0 and math.isnan(one.half) and str(one) == "7"
    for bad, msg in (([], "at least one value"), ([1.0, np.nan], "finite values")):
        with pytest.raises(ConfigError, match=msg):
            S.mean_interval(bad)
    with pytest.raises(ConfigError, match="confidence"):
        S.mean_interval([1.0, 2.0], 1.0)


def test_interval_coverage_is_nominal():
    """Seeded: 2000 samples of 4 normal values; the 95 % interval covers the true mean in 95 % of them.
    Binomial sd sqrt(0.95 * 0.05 / 2000) = 0.0049: the tolerance 0.017 is 3.5 sd."""
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (2000, 4))
    cover = np.mean([not S.mean_interval(row).excludes(3.0) for row in x])
    assert abs(cover - 0.95) < 0.017


def test_paired_difference_equals_scipy_paired_t_test():
    rng = np.random.default_rng(1)
    shared = rng.normal(10, 1, 5)           # what both methods share at one seed (init, batches)
    a = shared + rng.normal(0, 0.05, 5)
    b = shared + 0.2 + rng.normal(0, 0.05, 5)
    d = S.paired_difference(a, b)
    ref = sps.ttest_rel(a, b)
    assert d.t == pytest.approx(ref.statistic, rel=1e-12) and d.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert d.n == 5 and d.mean == pytest.approx(np.mean(a - b)) and d.significant and d.interval.hi < 0
    # pairing matters: the unpaired interval of the same data is far wider than the paired one
    assert S.mean_interval(a).half > 5 * d.interval.half
    assert not S.paired_difference([1.0, 2.0, 3.0], [1.5, 1.5, 3.0]).significant
    same = S.paired_difference([1.0, 2.0], [0.5, 1.5])  # every difference 0.5: zero width
    assert same.p == 0.0 and same.significant
    assert S.paired_difference([1.0, 2.0], [1.0, 2.0]).p == 1.0
    with pytest.raises(ConfigError, match="at least 2 pairs"):
        S.paired_difference([1.0], [2.0])
    with pytest.raises(ConfigError, match="as many values"):
        S.paired_difference([1.0, 2.0], [2.0])


def test_holm():
    # sorted p 0.01, 0.015, 0.03, 0.5 against 0.05/4, 0.05/3, 0.05/2, 0.05: the first two are rejected,
    # 0.03 > 0.025 stops the procedure
    assert S.holm([0.03, 0.01, 0.5, 0.015]) == [False, True, False, True]
    assert S.holm([0.001, 0.04]) == [True, True]
    assert S.holm([0.2]) == [False]


def test_steps_to_flatten():
    steps = np.arange(0, 600, 100)
    assert S.steps_to_flatten(steps, [10, 8, 7, 6.95, 6.93, 6.9], rel_tol=0.01) == 300
    assert S.steps_to_flatten(steps, [5, 5, 5, 5, 5, 5]) == 0
    assert S.steps_to_flatten(steps, [10, 9, 8, 7, 6, 5]) == 500
    with pytest.raises(ConfigError, match="one curve value per step"):
        S.steps_to_flatten(steps, [1.0])


def _rec(method, rank, seed, ppl, backend="analog", pulses=0, flops=0, status="complete"):
    ev = EventCounts(n_pulses=pulses, optimizer_flops=flops)
    b = compute_budget(ev, memory_bytes={"optimizer_state_total": 100 * (rank or 64),
                                         "optimizer_state_matrices": 10 * (rank or 64)}).as_attrs()
    steps = np.array([0, 50, 100])
    return {"point": {"method": method, "rank": rank, "seed": seed, "backend": backend}, "status": status,
            "final_val_ppl": ppl, "budget": b, "wall_time_s": 1.0,
            "metrics": {"steps": steps, "val_ppl": np.array([20.0, ppl + 0.5, ppl])}}


def test_tables_from_records_pair_by_seed_and_drop_diverged_runs():
    recs = []
    for s in range(4):
        base = 7.0 + 0.3 * s  # seed effect shared by both methods
        recs += [_rec("galore", 8, s, base + 0.1, pulses=10**6), _rec("osd", 8, s, base, pulses=10**6, flops=10),
                 _rec("galore", 16, s, base), _rec("osd", 16, s, base + (0.05 if s % 2 else -0.05)),
                 _rec("tiki_taka", None, s, base + 1.0, pulses=10**9)]
    recs.append(_rec("osd", 16, 9, float("nan"), status="diverged"))
    rows = S.cell_table(recs)
    assert [(r["method"], r["rank"]) for r in rows] == [("galore", 8), ("galore", 16), ("osd", 8), ("osd", 16),
                                                         ("tiki_taka", None)]
    osd16 = rows[3]
    assert osd16["n"] == 4 and osd16["n_diverged"] == 1
    assert osd16["opt_state_bytes"].mean == 1600 and osd16["val_ppl"].mean == pytest.approx(7.45)
    pt = S.paired_table(recs)
    assert [(r["rank"], r["seeds"]) for r in pt] == [(8, [0, 1, 2, 3]), (16, [0, 1, 2, 3])]
    assert pt[0]["diff"].mean == pytest.approx(-0.1) and pt[0]["diff"].significant and pt[0]["holm"]
    assert not pt[1]["diff"].significant and not pt[1]["holm"]
    assert "| analog | 8 | 4 |" in S.format_paired_table(pt)
    assert "osd" in S.format_cell_table(rows) and "osd" in S.format_cell_table(rows, markdown=False)
    assert S.flatten_summary(recs)[("analog", "osd", 8)] == (100.0, 100)
    # energy ranking: Tiki-Taka's 1e9 pulses cost 10 uJ at 10 fJ, 10 mJ at ENODe's 10 pJ
    rk = S.energy_ranking(recs)
    assert rk[0][0] == "GaLore r16" and rk[-1][0] == "Tiki-Taka"
    assert S.energy_ranking(recs, "enode_10pJ")[-1][1] == pytest.approx(1e9 * 10e-12)


def test_tradeoff_figure(tmp_path):
    from crossbar_sim.lowrank.plots import write_tradeoff_figure

    recs = [_rec(m, r, s, 7.0 + 0.1 * s + (0.2 if m == "osd" else 0.0), backend=b, pulses=10**6)
            for b in ("digital", "analog") for m, r in (("galore", 8), ("osd", 8), ("adamw", None)) for s in range(3)]
    recs += [_rec("tiki_taka", None, s, 11.0, pulses=10**9) for s in range(3)]
    path = write_tradeoff_figure(S.cell_table(recs), str(tmp_path / "f.png"), S.paired_table(recs))
    assert (tmp_path / "f.png").stat().st_size > 10_000 and path.endswith("f.png")


def test_lowrank_stats_experiment_is_registered_and_paired():
    from crossbar_sim.engine.spec import expand, resolve_spec

    spec, _ = resolve_spec("lowrank_stats")
    sw = expand(spec)
    assert len(sw["points"]) == 2 * (1 + 4 + 4) * 4 + 4  # digital + analog x (AdamW, 4 GaLore, 4 OSD), + Tiki-Taka
    seeds = {}
    for p in sw["points"]:
        seeds.setdefault(p["values"]["seed"], set()).add(p["seed"])
        assert sw["configs"][p["run_id"]].steps == 1000
    assert all(len(v) == 1 for v in seeds.values()) and len(seeds) == 4  # one run seed per label: paired
