"""Verdicts a careful researcher would sign: every reading of a claim, enough seeds to decide,
checks that test what the sentence says (readings, seeds, outcome classes, unit fates)."""

import json

import numpy as np
import pandas as pd
import pytest

from actflow import claims, io, readings
from conftest import ROOT

CLAIM = {"id": "c", "statement": "s", "quote": "q", "table": "metrics/dead_neurons.parquet",
         "filter": {"experiment": "exp2", "activation": "relu"}, "column": "dead_fraction",
         "test": {"op": "approx", "value": 0.066, "tolerance": 0.02}}


# ------------------------------------------------------------------ readings
def test_readings_are_every_combination_with_the_claim_as_written_flagged():
    fams = {"tol": {"choice": "tolerance", "set": "test.tolerance",
                    "values": [{"label": "1", "value": 0.01}, {"label": "2", "value": 0.02}]},
            "lay": {"choice": "layers", "set": "filter.layer",
                    "values": [{"label": "all", "value": None}, {"label": "1", "value": 1},
                               {"label": "2", "value": 2}]}}
    c = claims.check([CLAIM | {"readings": ["tol", "lay"]}], "f", fams)[0]
    rs = c["_readings"]
    assert len(rs) == 6 and sum(r.primary for r in rs) == 1
    assert [r.index for r in rs] == list(range(6))
    prim = next(r for r in rs if r.primary)
    assert prim.choices == {"tolerance": "2", "layers": "all"}  # the claim as written
    assert prim.claims[0]["test"]["tolerance"] == 0.02 and "layer" not in prim.claims[0]["filter"]
    assert [r.label for r in rs][:3] == ["tolerance: 1; layers: all", "tolerance: 1; layers: 1",
                                         "tolerance: 1; layers: 2"]  # the families' order
    one = next(r for r in rs if r.choices == {"tolerance": "1", "layers": "1"})
    assert one.claims[0]["test"]["tolerance"] == 0.01 and one.claims[0]["filter"]["layer"] == 1
    # a family without the claim's own value gains it, labelled as stated
    c = claims.check([CLAIM | {"test": {"op": "approx", "value": 0.066, "tolerance": 0.05},
                               "readings": ["tol"]}], "f", fams)[0]
    assert [r.label for r in c["_readings"]] == ["tolerance: as stated", "tolerance: 1", "tolerance: 2"]


def test_a_family_may_set_several_keys_and_make_its_all_of_reading_the_primary():
    fam = {"choice": "read as", "set": ["column", "test"],
           "values": [{"label": "dead", "value": ["dead_fraction", {"op": "<", "value": 0.5}]},
                      {"label": "sparse", "value": ["dead_fraction", {"op": ">", "value": 0.1}]}],
           "all_of": "both", "primary": "all_of"}
    c = claims.check([CLAIM | {"readings": [fam]}], "f")[0]
    rs = c["_readings"]
    assert [r.label for r in rs] == ["read as: dead", "read as: sparse", "read as: both"]
    assert [r.primary for r in rs] == [False, False, True]
    assert [m["test"]["op"] for m in rs[2].claims] == ["<", ">"]
    with pytest.raises(claims.ClaimError, match="each value is a list of 2"):
        claims.check([CLAIM | {"readings": [fam | {"values": [{"label": "x", "value": 1}]}]}], "f")


def test_a_reading_that_names_an_unknown_column_is_refused_before_any_job():
    fam = {"choice": "column", "set": "column", "values": [{"label": "x", "value": "no_such"}]}
    with pytest.raises(claims.ClaimError, match="claim 'c' \\(reading column: x\\).*no_such"):
        claims.check([CLAIM | {"readings": [fam]}], "f")
    with pytest.raises(claims.ClaimError, match="no family 'nope'"):
        claims.check([CLAIM | {"readings": ["nope"]}], "f", {})


def test_an_all_of_reading_holds_only_when_every_member_holds():
    ok = {"verdict": "holds", "margin": 0.5, "reason": "a"}
    close = {"verdict": "holds", "margin": 0.1, "reason": "b"}
    bad = {"verdict": "does not hold", "margin": 0.2, "reason": "c"}
    assert readings.combine([ok, close], ["ReLU", "GELU"])["reason"].count("shown: GELU") == 1
    assert readings.combine([ok, bad], ["ReLU", "GELU"])["verdict"] == "does not hold"
    assert readings.label_of("holds", ["holds", "holds"], 2) == "robust"
    assert readings.label_of("holds", ["holds", "inconclusive"], 2) == "depends on reading"
    assert readings.label_of("holds", ["holds"], 1) == "single reading"


def test_a_reading_grid_is_evaluated_on_a_real_run(tiny_run):
    """Each reading of a real run's claims re-reads the same table: the 10–20 % window of
    Figure 3's ReLU claim is the mean over those epochs, per seed, of the ratio table."""
    rows = io.read_parquet(tiny_run / "results/audit/readings.parquet")
    table = claims.load(ROOT / "config/claims.yaml")
    cid = "relu_stable_magnitudes_across_layers"
    study = rows[(rows["claim"] == cid) & (rows["variant"] == "exp1")]
    declared = next(c for c in table if c["id"] == cid)["_readings"]
    assert len(study) == len(declared) == 11 and study["primary"].sum() == 1
    ratio = io.read_parquet(tiny_run / "results/metrics/gradient_ratio.parquet")
    r = ratio[(ratio["variant"] == "exp1") & (ratio["activation"] == "relu")]
    top = r["epoch"].max()
    for label, lo_f, hi_f in (("10–20 %", 0.1, 0.2), ("90–100 %", 0.9, 1.0)):
        row = study[study["reading"] == f"time window: {label}"].iloc[0]
        lo, hi = max(1, int(np.ceil(lo_f * top))), int(np.floor(hi_f * top))
        want = r[r["epoch"].between(lo, hi)].groupby("seed")["log10_weight_grad_ratio"].mean().mean()
        assert row["measured_mean"] == pytest.approx(want)
        assert json.loads(row["choices"]) == {"time window": label}
    # the claims table carries the primary reading and the label over all of them
    verdicts = io.read_parquet(tiny_run / "results/audit/claims.parquet").set_index("claim")
    prim = study[study["primary"]].iloc[0]
    assert verdicts.loc[cid, "measured_mean"] == pytest.approx(prim["measured_mean"])
    assert verdicts.loc[cid, "n_readings"] == 11
    same = (study["verdict"] == prim["verdict"]).all()
    assert verdicts.loc[cid, "readings_label"] == ("robust" if same else "depends on reading")
    # every claim with readings has its specification curve
    for c in table:
        if len(c["_readings"]) > 1:
            assert (tiny_run / f"results/figures/readings/{c['id']}.png").stat().st_size > 1000
    # and the sensitivity table says how each variant fares over the readings
    sens = io.read_parquet(tiny_run / "results/audit/sensitivity.parquet")
    assert set(sens["readings_label"]) <= set(readings.LABELS)
    assert (sens.loc[sens["claim"] == cid, "n_readings"] == 11).all()


# ------------------------------------------------------------------ enough seeds to decide
def _dead_in_layer_1_at_init(seeds):
    """A real measurement: the share of layer-1 ReLU units dead on [−π, π] under PyTorch's
    default initial weights, one value per seed (1/(4π) ≈ 8.0 % expected)."""
    from actflow import model, neurons

    x = np.linspace(-np.pi, np.pi, 200)
    state = model.init_params(seeds, 1, 64)
    t = neurons.weight_metrics(state, x, "relu", 1, 1e-6, {"activation": "relu"}, seeds)
    d = t["dead_neurons"]
    return d[d["definition"] == "zero"][["seed", "dead_fraction"]]


def test_a_claim_undecidable_at_3_seeds_is_decided_with_more():
    claim = {"id": "c", "statement": "s", "quote": "q", "table": "t", "column": "dead_fraction",
             "test": {"op": "approx", "value": 1 / (4 * np.pi), "tolerance": 0.02}}
    few = claims.evaluate_value(claim, _dead_in_layer_1_at_init([0, 1, 2]))
    assert few["verdict"] == "undecidable", few
    assert claims.verdict_text(few["verdict"], few["n_seeds"], few["basis"]) == "undecidable at 3 seeds"
    assert np.isfinite(few["seeds_needed"]) and few["seeds_needed"] > 3
    assert "could not hold whatever the mean" in few["reason"]
    many = claims.evaluate_value(claim, _dead_in_layer_1_at_init(list(range(300))))
    assert many["verdict"] == "holds", many
    # a straddling interval narrower than the region is inconclusive, not undecidable
    near = claims.evaluate_value(claim | {"test": {"op": "<", "value": 0.09}},
                                 _dead_in_layer_1_at_init([0, 1, 2]))
    assert near["verdict"] == "inconclusive" and "would decide it" in near["reason"]


def test_seeds_needed_follows_the_t_interval():
    from actflow.stats import t_halfwidth

    n = claims.seeds_needed(1.0, 2.0, (0.0, np.inf))
    assert t_halfwidth(2.0, n) < 1.0 <= t_halfwidth(2.0, n - 1)
    assert np.isnan(claims.seeds_needed(0.0, 1.0, (0.0, np.inf)))  # on the border


def test_intervals_stay_inside_a_fraction_s_range_and_analytic_checks_are_exact():
    df = pd.DataFrame({"seed": range(4), "dead_fraction": [0.0, 0.0, 0.0, 0.05]})
    res = claims.evaluate_value(CLAIM | {"filter": {}, "test": {"op": "<", "value": 0.5}}, df)
    assert res["ci_low"] == 0.0 and "kept inside" in res["reason"]
    curve = pd.DataFrame({"x": [0.0, 1.0], "derivative": [0.25, 0.2]})
    exact = claims.evaluate_value({"column": "derivative", "per_seed": "max",
                                   "test": {"op": "approx", "value": 0.25, "tolerance": 1e-3}}, curve)
    assert exact["basis"] == "exact" and exact["verdict"] == "holds"
    assert claims.verdict_text("holds", 0, "exact") == "holds (exact)"


def test_variants_may_set_their_own_seeds():
    from actflow import variants

    cfg = {"seeds": [0, 1], "exp1": {}, "exp2": {}, "exp3": {}, "data": {}}
    ex = variants.expand_entries([{"name": "many", "of": "exp1", "seeds": 4},
                                  {"name": "listed", "of": "exp2", "seeds": [7, 9]},
                                  {"name": "plain", "of": "exp3"}])
    got = {v.name: v.seeds for v in variants.resolve(cfg, ex)}
    assert got["many"] == (0, 1, 2, 3) and got["listed"] == (7, 9) and got["plain"] == (0, 1)
    assert "seeds=0…3 (4 seeds)" in variants.describe(
        next(v for v in variants.resolve(cfg, ex) if v.name == "many"), cfg["seeds"])
    for bad, msg in ((0, "count from 1"), ([1, 1], "listed twice"), ("x", "neither a count")):
        with pytest.raises(variants.VariantError, match=msg):
            variants.expand_entries([{"name": "v", "of": "exp1", "seeds": bad}])


# ------------------------------------------------------------------ checks that test the sentence
def test_winner_claims_compare_with_every_other_activation():
    """GELU is the runner-up by mean and loses to ReLU on every seed; tanh is worse on average
    but so spread that it beats ReLU on some seeds: against the runner-up alone ReLU wins,
    against every other it is not established."""
    log_mse = {"relu": [-3.00, -3.05, -2.95, -3.02, -2.98, -3.00],
               "gelu": [-2.80, -2.86, -2.74, -2.83, -2.77, -2.81],
               "tanh": [-1.5, -3.6, -1.2, -3.5, -1.6, -3.4]}
    df = pd.DataFrame([{"activation": a, "target": "abs", "seed": s, "diverged": False,
                        "test_mse": 10 ** v} for a, vals in log_mse.items()
                       for s, v in enumerate(vals)])
    claim = {"id": "w", "statement": "s", "quote": "q", "table": "metrics/capacity.parquet",
             "kind": "winner", "target": "abs", "expect_best": "relu"}
    strongest = claims.evaluate_winner(claim | {"against": "runner_up"}, df)
    every = claims.evaluate_winner(claim | {"against": "all"}, df)
    assert strongest["verdict"] == "holds", strongest
    assert every["verdict"] in ("inconclusive", "undecidable"), every
    assert "gelu: holds" in every["reason"] and "closest: tanh" in every["reason"]
    worse = claims.evaluate_winner(claim | {"expect_best": "gelu"}, df)
    assert worse["verdict"] == "does not hold" and "relu: does not hold" in worse["reason"]


def test_a_claim_that_cannot_fail_says_so(tiny_run):
    cl = {c["id"]: c for c in claims.load(ROOT / "config/claims.yaml")}
    assert cl["leaky_relu_dead_0_percent"].get("by_construction")
    assert cl["relu_best_on_step"].get("extension")
    df = io.read_parquet(tiny_run / "results/audit/claims.parquet").set_index("claim")
    assert df.loc["relu_best_on_step", "scope"] == "extension"
    assert df.loc["leaky_relu_dead_0_percent", "by_construction"]
    md = (tiny_run / "results/audit/claims.md").read_text()
    assert "cannot fail" in md and "Our extension" in md


def test_failing_numbers_are_explained_with_the_closest_setting(tiny_run):
    claims_df = io.read_parquet(tiny_run / "results/audit/claims.parquet")
    why = io.read_parquet(tiny_run / "results/audit/explanations.parquet")
    failing = set(claims_df.loc[claims_df["verdict"] == "does not hold", "claim"])
    assert set(why["claim"]) == failing
    rows = io.read_parquet(tiny_run / "results/audit/readings.parquet")
    for r in why.itertuples():
        g = rows[rows["claim"] == r.claim]
        assert r.n_settings == len(g[(g["verdict"] != "not applicable") & g["measured_mean"].notna()])
        assert r.n_hold == (g["verdict"] == "holds").sum()
        if r.n_hold:
            assert "the closest" in r.explanation
        else:
            assert "comes close" in r.explanation or "unexplained" in r.explanation or \
                   "straddle" in r.explanation
    assert "Why the numbers that fail fail" in (tiny_run / "results/audit/explanations.md").read_text()
