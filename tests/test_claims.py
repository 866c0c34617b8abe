"""Claim verdicts: the interval against the threshold, on hand-made tables."""

import numpy as np
import pandas as pd
import pytest

from actflow import claims

CLAIM = {"id": "c", "statement": "s", "table": "t", "column": "v"}


def table(values):
    return pd.DataFrame({"seed": range(len(values)), "v": values})


@pytest.mark.parametrize(
    "values,test,verdict",
    [
        ([0.10, 0.11, 0.12, 0.09, 0.10], {"op": "<", "value": 0.5}, "holds"),
        ([0.10, 0.11, 0.12, 0.09, 0.10], {"op": ">", "value": 0.5}, "does not hold"),
        ([0.1, 0.9, 0.2, 0.8, 0.5], {"op": "<", "value": 0.5}, "inconclusive"),
        ([0.065, 0.066, 0.067], {"op": "approx", "value": 0.066, "tolerance": 0.02}, "holds"),
        ([0.87, 0.88, 0.86], {"op": "approx", "value": 0.066, "tolerance": 0.02}, "does not hold"),
        ([0.2, 0.3, 0.25], {"op": "between", "range": [0, 1]}, "holds"),
    ],
)
def test_verdict_compares_the_interval_with_the_region(values, test, verdict):
    res = claims.evaluate_value(CLAIM | {"test": test}, table(values))
    assert res["verdict"] == verdict, res
    assert res["n_seeds"] == len(values)
    assert res["ci_low"] <= res["measured_mean"] <= res["ci_high"]


def test_diverged_seeds_are_left_out_and_counted():
    df = table([0.1, 0.1, 0.2, np.nan]).assign(diverged=[False, False, False, True])
    res = claims.evaluate_value(CLAIM | {"test": {"op": "<", "value": 1}}, df)
    assert res["n_seeds"] == 3 and res["n_left_out"] == 1 and "1 diverged" in res["reason"]


def test_filters_by_value_list_last_and_fraction():
    df = pd.DataFrame({"seed": np.repeat([0, 1], 100), "epoch": np.tile(np.arange(1, 101), 2),
                       "layer": 3, "v": np.tile(np.arange(1, 101), 2).astype(float)})
    claim = CLAIM | {"test": {"op": ">", "value": 0},
                     "filter": {"epoch": {"from_fraction": 0.9, "to_fraction": 1.0}, "layer": "last"}}
    res = claims.evaluate_value(claim, df)
    assert res["measured_mean"] == pytest.approx(np.mean(np.arange(90, 101)))
    assert "epoch 90–100" in res["condition"]
    assert claims.evaluate_value(claim | {"filter": {"layer": 7}}, df)["verdict"] == "inconclusive"


def test_winner_claim():
    w = pd.DataFrame([{"target": "abs", "best": "relu", "best_test_mse": 1e-3, "runner_up": "gelu",
                       "runner_up_test_mse": 2e-3, "n_pairs": 5, "mean_log10_ratio": 0.3,
                       "ci_low": 0.1, "ci_high": 0.5, "seeds_best_wins": 5, "lead_holds": True}])
    claim = {"id": "w", "statement": "s", "table": "t", "kind": "winner", "target": "abs"}
    assert claims.evaluate_winner(claim | {"expect_best": "relu"}, w)["verdict"] == "holds"
    assert claims.evaluate_winner(claim | {"expect_best": "gelu"}, w)["verdict"] == "does not hold"
    w.loc[0, "lead_holds"] = False
    assert claims.evaluate_winner(claim | {"expect_best": "gelu"}, w)["verdict"] == "inconclusive"
    assert claims.evaluate_winner(claim | {"expect_best": "sigmoid"}, w)["verdict"] == "does not hold"


def test_malformed_claims_file_is_refused_with_the_claim_named(tmp_path):
    f = tmp_path / "claims.yaml"
    f.write_text("claims:\n  - id: a\n    statement: s\n    table: t\n    column: v\n"
                 "    test: {op: '~', value: 1}\n")
    with pytest.raises(claims.ClaimError, match="claim 'a': test.op must be one of"):
        claims.load(f)
    f.write_text("claims: []\n")
    with pytest.raises(claims.ClaimError, match="non-empty list"):
        claims.load(f)
