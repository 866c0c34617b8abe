"""Variants on the tiny config: their own folders and rows, the claims under each, Figure 12."""

import numpy as np
import pandas as pd
import pytest
import yaml

from actflow import claims, io, layout
from conftest import ROOT, TINY, snakemake

VARIANTS = yaml.safe_load(TINY.read_text())["variants"]


def test_each_variant_trains_into_its_own_folders_and_rows(tiny_run):
    for v in VARIANTS:
        runs = io.read_parquet(tiny_run / layout.train_outputs(v["name"], "relu")["runs"])
        assert set(runs["variant"]) == {v["name"]} and set(runs["experiment"]) == {v["of"]}
    runs = io.read_parquet(tiny_run / layout.TABLES["runs"].union_path())
    assert set(runs["variant"]) == {"exp1", "exp2", "exp2_sgd", "exp1_he"}
    sgd = runs[runs["variant"] == "exp2_sgd"]
    assert (sgd["optimizer"] == "sgd").all() and (sgd["learning_rate"] == 0.1).all()
    # exp1_he draws its noise per seed: each seed has its own data, hence its own var(y)
    he = runs[(runs["variant"] == "exp1_he") & (runs["activation"] == "relu")]
    assert he["baseline_mse"].nunique() == len(he) and (he["init"] == "kaiming_normal").all()
    data = io.read_parquet(tiny_run / layout.sine_data("exp1_he"))
    assert list(data.columns) == ["seed", "x", "y", "y_clean"]
    study = runs[(runs["variant"] == "exp1") & (runs["activation"] == "relu")]
    assert study["baseline_mse"].nunique() == 1
    # exp3_clean: targets without noise
    clean = io.read_parquet(tiny_run / layout.target_data("exp3_clean", "train"))
    np.testing.assert_array_equal(clean["y"], clean["y_clean"])
    cap = io.read_parquet(tiny_run / layout.TABLES["capacity"].union_path())
    assert set(cap["variant"]) == {"exp3", "exp3_clean"}


def test_a_variant_with_its_experiment_s_settings_gives_the_same_numbers(tiny_copy, tmp_path):
    same = {"name": "exp2_same", "of": "exp2", "learning_rate": 0.1, "optimizer": "adam"}
    conf = tmp_path / "same.yaml"
    conf.write_text(yaml.safe_dump({"variants": VARIANTS + [same]}))
    targets = [layout.TABLES[t].path("exp2_same") for t in ("runs", "loss", "dead_neurons",
                                                            "dead_neurons_summary")]
    snakemake(tiny_copy, *targets, configfiles=(TINY, conf))
    for t in ("runs", "loss", "dead_neurons", "dead_neurons_summary", "gradient_flow"):
        a = io.read_parquet(tiny_copy / layout.TABLES[t].path("exp2"))
        b = io.read_parquet(tiny_copy / layout.TABLES[t].path("exp2_same"))
        assert (b["variant"] == "exp2_same").all()
        pd.testing.assert_frame_equal(a.drop(columns="variant"), b.drop(columns="variant"),
                                      check_exact=True, obj=t)
    for act in ("sigmoid", "relu"):
        wa = io.load_weights(tiny_copy / layout.train_outputs("exp2", act)["weights"])
        wb = io.load_weights(tiny_copy / layout.train_outputs("exp2_same", act)["weights"])
        for k in wa[1]:
            assert wa[1][k].numpy().tobytes() == wb[1][k].numpy().tobytes(), k


def test_every_claim_is_evaluated_under_every_variant_of_its_experiment(tiny_run):
    sens = io.read_parquet(tiny_run / layout.AUDIT["sensitivity_parquet"])
    main = io.read_parquet(tiny_run / layout.AUDIT["claims_parquet"]).set_index("claim")
    cl = claims.load(ROOT / "config/claims.yaml")
    for c in cl:
        exp = claims.experiment_of(c)
        rows = sens[sens["claim"] == c["id"]]
        if exp is None:
            assert rows.empty  # about the activation functions: no training behind it
            continue
        want = [exp] + [v["name"] for v in VARIANTS if v["of"] == exp]
        assert list(rows["variant"]) == want, c["id"]
        study = rows[rows["variant"] == exp].iloc[0]
        assert study["verdict"] == main.loc[c["id"], "verdict"] == study["study_verdict"]
        assert study["measured_mean"] == main.loc[c["id"], "measured_mean"] or (
            pd.isna(study["measured_mean"]) and pd.isna(main.loc[c["id"], "measured_mean"]))
        assert (rows["differs"] == (rows["verdict"] != study["verdict"])).all()
        differing = rows[rows["differs"]]
        listed = main.loc[c["id"], "differs_under"]
        assert listed == ", ".join(f"{r.variant} ({r.verdict_text})" for r in differing.itertuples())
        assert (rows["readings_label"] == main.loc[c["id"], "readings_label"]).iloc[0]
    sgd = sens[(sens["variant"] == "exp2_sgd")].iloc[0]
    assert sgd["overrides"] == "optimizer=sgd" and sgd["question"].startswith("Does SGD")
    md = (tiny_run / layout.AUDIT["sensitivity_markdown"]).read_text()
    assert "exp2_sgd" in md and "## Verdicts that change" in md
    assert "verdict differs under" in (tiny_run / layout.AUDIT["claims_markdown"]).read_text()


@pytest.mark.parametrize("variant", ["exp2_sgd"])
def test_claims_read_the_variant_s_own_rows(tiny_run, variant):
    """The reference: a claim's number under a variant, recomputed by hand from the tables."""
    sens = io.read_parquet(tiny_run / layout.AUDIT["sensitivity_parquet"]).set_index(
        ["claim", "variant"])
    dead = io.read_parquet(tiny_run / layout.TABLES["dead_neurons"].union_path())
    sel = dead[(dead["variant"] == variant) & (dead["stage"] == "trained")
               & (dead["activation"] == "relu") & (dead["definition"] == "zero")]
    per_seed = sel.groupby("seed")["dead_fraction"].mean()
    assert sens.loc[("relu_dead_6_6_percent", variant), "measured_mean"] == pytest.approx(
        per_seed.mean(), rel=1e-12)
    layer1 = sel[sel["layer"] == 1].groupby("seed")["dead_fraction"].mean()
    assert sens.loc[("relu_dead_6_6_percent_layer1", variant), "measured_mean"] == pytest.approx(
        layer1.mean(), rel=1e-12)


def test_a_grid_in_the_config_gets_its_figure_without_code(tiny_run, tmp_path):
    """A grid variant added to the config plans its training and its grid figure."""
    from conftest import planned_job_list

    grid = {"name": "exp2_lr", "of": "exp2", "question": "Does the rate decide?",
            "grid": {"learning_rate": [0.05, 0.2]}}
    over = tmp_path / "grid.yaml"
    over.write_text(yaml.safe_dump({"variants": VARIANTS + [grid]}))
    plan = planned_job_list(tiny_run, configfiles=(TINY, over))
    assert [wc["grid"] for r, wc in plan if r == "grid_figure"] == ["exp2_lr"]
    assert {wc["variant"] for r, wc in plan if r == "train"} == {
        "exp2_lr-learning_rate=0.05", "exp2_lr-learning_rate=0.2"}


def test_a_grid_figure_draws_each_claim_it_changes_at_its_measured_values(tiny_run):
    """The grid figure on the tiny run's verdicts, exp2_sgd read as a grid over the optimizer
    with the study's Adam as its other point: one panel per claim whose verdict changes there,
    each drawing the measured mean of the grid point and of the study's setting."""
    import matplotlib.pyplot as plt

    from actflow import plotting

    sens = io.read_parquet(tiny_run / layout.AUDIT["sensitivity_parquet"])
    facts = io.read_parquet(tiny_run / layout.AUDIT["claims_parquet"])
    grid = {"experiment": "exp2", "keys": ["optimizer"], "question": "q",
            "points": [["exp2_sgd", {"optimizer": "sgd"}]], "study": {"optimizer": "adam"}}
    fig = plotting.grid_figure(sens, facts, "opt", grid)
    changed = list(dict.fromkeys(sens.loc[(sens["variant"] == "exp2_sgd") & sens["differs"],
                                          "claim"]))
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in panels] == changed
    for ax in panels:
        rows = sens[sens["claim"] == ax.get_title()].set_index("variant")
        ys = {round(float(y), 9) for line in ax.get_lines() for y in line.get_ydata()}
        for v in ("exp2_sgd", "exp2"):
            m = rows.loc[v, "measured_mean"]
            assert m != m or round(float(m), 9) in ys, (ax.get_title(), v)
    plt.close(fig)
