"""A learning rate far too high: the workflow finishes, flags diverged runs, draws every figure."""

import numpy as np
import yaml

from actflow import io
from actflow.figures import FIGURES
from conftest import TINY, copy_workflow, snakemake


def test_diverging_configuration_finishes_with_flags_and_figures(tmp_path):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["exp2"] |= {"optimizer": "sgd", "learning_rate": 1.0e4}  # diverges for every activation
    cfg["exp1"] |= {"optimizer": "sgd", "learning_rate": 1.0e4}
    cfg["exp3"] |= {"optimizer": "sgd", "learning_rate": 1.0e4}
    conf = tmp_path / "diverge.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    wd = copy_workflow(tmp_path / "wf")
    snakemake(wd, configfiles=(conf,))

    runs = io.read_parquet(wd / "results/metrics/runs.parquet")
    assert runs["diverged"].all(), runs
    assert (runs["diverged_epoch"] > 0).all()
    assert np.isfinite(runs["last_finite_loss"]).all()
    dead = io.read_parquet(wd / "results/metrics/dead_neurons.parquet")
    trained = dead[dead["stage"] == "trained"]
    assert trained["diverged"].all() and trained["dead_fraction"].isna().all()
    init = dead[dead["stage"] == "init"]
    assert not init["diverged"].any() and init["dead_fraction"].notna().all()
    summary = io.read_parquet(wd / "results/metrics/exp2/dead_neurons_summary.parquet")
    t = summary[summary["stage"] == "trained"]
    assert (t["n_seeds"] == 0).all() and (t["n_nonfinite"] == len(cfg["seeds"])).all()
    for png in (wd / "results/figures").glob("*.png"):
        assert png.stat().st_size > 5000, png
    assert len(list((wd / "results/figures").glob("*.png"))) == len(FIGURES)
    cap = io.read_parquet(wd / "results/metrics/capacity.parquet")
    assert cap["diverged"].all()
    verdicts = io.read_parquet(wd / "results/audit/claims.parquet")
    assert set(verdicts["verdict"]) <= {"inconclusive", "does not hold", "holds"}
    left = verdicts.set_index("claim").loc["relu_dead_6_6_percent"]
    assert left["verdict"] == "inconclusive" and left["n_left_out"] == 2
    log = (wd / "results/logs/train/exp2/relu.log").read_text()
    assert "2 of 2 seeds diverged" in log
