import numpy as np
import pandas as pd
import pytest
from scipy import stats

from actflow.stats import summarize


def test_summary_is_the_t_interval_of_the_mean():
    v = np.array([1.0, 2.0, 4.0, 3.5, 0.5])
    df = pd.DataFrame({"a": "x", "v": v})
    row = summarize(df, ["a"], "v").iloc[0]
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
    assert row["mean"] == pytest.approx(v.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
    assert row["n_seeds"] == 5 and row["n_nonfinite"] == 0


def test_log_summary_is_geometric_and_non_finite_runs_are_counted():
    df = pd.DataFrame({"a": "x", "v": [1e-3, 1e-1, 1e1, np.nan]})
    row = summarize(df, ["a"], "v", log=True).iloc[0]
    assert row["mean"] == pytest.approx(1e-1)
    assert row["ci_low"] < 1e-3 < 1e1 < row["ci_high"]
    assert row["n_seeds"] == 3 and row["n_nonfinite"] == 1
    assert row["aggregate"] == "geometric_mean"
