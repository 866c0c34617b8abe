"""Experiment 3: winners with a paired comparison over seeds, and the tiny end-to-end run."""

import numpy as np
import pandas as pd
import pytest

from actflow import io, layout
from actflow.tables import capacity_winners


def _cap(rows):
    return pd.DataFrame(rows, columns=["activation", "target", "seed", "test_mse"]).assign(
        experiment="exp3", variant="exp3")


def test_lead_holds_only_when_it_holds_for_the_paired_seeds():
    rng = np.random.default_rng(0)
    rows = []
    for s in range(5):
        base = 10 ** rng.normal(-3, 0.5)  # seeds differ a lot, pairs move together
        rows += [("relu", "abs", s, base), ("gelu", "abs", s, base * 1.5),
                 ("relu", "sin", s, base), ("gelu", "sin", s, base * (1.3 if s % 2 else 0.8))]
    w = capacity_winners(_cap(rows)).set_index("target")
    assert w.loc["abs", "best"] == "relu" and w.loc["abs", "runner_up"] == "gelu"
    assert w.loc["abs", "lead_holds"] and w.loc["abs", "seeds_best_wins"] == 5
    assert w.loc["abs", "mean_log10_ratio"] == pytest.approx(np.log10(1.5))
    assert not w.loc["sin", "lead_holds"]
    assert w.loc["sin", "ci_low"] < 0 < w.loc["sin", "ci_high"]


def test_capacity_tables_agree_with_predictions(tiny_run):
    cap = io.read_parquet(tiny_run / layout.TABLES["capacity"].path("exp3"))
    assert len(cap) == 2 * 2 * 2  # activations × targets × seeds
    pred = io.read_parquet(tiny_run / layout.TABLES["predictions"].path("exp3"))
    recomputed = (pred.assign(se=(pred["y_pred"] - pred["y_true"]) ** 2)
                  .groupby(["activation", "target", "seed"])["se"].mean())
    merged = cap.set_index(["activation", "target", "seed"])["test_mse"]
    np.testing.assert_allclose(merged.sort_index(), recomputed.sort_index(), rtol=1e-12)
    assert pred.groupby(["activation", "target", "seed"]).size().eq(50).all()
    grid = io.read_parquet(tiny_run / layout.target_data("study", "test"))
    grid = grid[grid["target"] == "step"]
    np.testing.assert_array_equal(pred[pred["target"] == "step"].drop_duplicates("x")["y_true"],
                                  grid["y"])
    runs = io.read_parquet(tiny_run / layout.train_outputs("exp3", "relu")["runs"])
    runs = runs[runs["target"] == "step"]
    np.testing.assert_allclose(cap.query("activation == 'relu' and target == 'step'")["train_mse"],
                               runs["final_loss"], rtol=1e-5)
    # every target of an activation trained in one stacked job, targets outer, seeds inner
    all_runs = io.read_parquet(tiny_run / layout.train_outputs("exp3", "relu")["runs"])
    assert list(zip(all_runs["target"], all_runs["seed"])) == [
        ("sin", 0), ("sin", 1), ("step", 0), ("step", 1)]


def test_capacity_summary_and_winners_exist(tiny_run):
    s = io.read_parquet(tiny_run / layout.TABLES["capacity_summary"].path("exp3"))
    assert set(s["metric"]) == {"test_mse", "train_mse"} and (s["n_seeds"] == 2).all()
    w = io.read_parquet(tiny_run / layout.TABLES["capacity_winners"].path("exp3"))
    assert sorted(w["target"]) == ["sin", "step"]
    assert set(w["best"]) <= {"sigmoid", "relu"} and w["n_pairs"].eq(2).all()
