"""A learning rate far too high: the workflow finishes, flags diverged runs, draws every figure."""

import numpy as np
import pytest
import yaml

from actflow import io, layout
from actflow.figures import FIGURES
from conftest import TINY, copy_workflow, snakemake


@pytest.mark.slow
def test_diverging_configuration_finishes_with_flags_and_figures(tmp_path):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["exp2"] |= {"optimizer": "sgd", "learning_rate": 1.0e4}  # diverges for every activation
    cfg["exp1"] |= {"optimizer": "sgd", "learning_rate": 1.0e4}
    cfg["exp3"] |= {"optimizer": "sgd", "learning_rate": 1.0e4}
    cfg["variants"] = []  # the study's experiments say it all; variants would only add time
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
    for png in (wd / "results/figures/readings").glob("*.png"):
        assert png.stat().st_size > 1000, png
    cap = io.read_parquet(wd / "results/metrics/capacity.parquet")
    assert cap["diverged"].all()
    verdicts = io.read_parquet(wd / "results/audit/claims.parquet")
    assert set(verdicts["verdict"]) <= {"inconclusive", "undecidable", "does not hold", "holds"}
    left = verdicts.set_index("claim").loc["relu_dead_6_6_percent"]
    assert left["verdict"] == "inconclusive" and left["n_left_out"] == 2
    log = (wd / "results/logs/train/exp2/relu.log").read_text()
    assert "2 of 2 seeds diverged" in log
    # each job imported only its own libraries: no figure job imported torch
    fig_log = (wd / "results/logs/figures/fig4_gradient_ratio.log").read_text()
    imported = io.third_party(fig_log.split(io.PACKAGES_LINE, 1)[1].split("\n", 1)[0].split())
    assert "matplotlib" in imported and "torch" not in imported, imported


def test_outcomes_of_real_runs_trained_collapsed_worse_exploded_and_non_finite():
    """Real training, not a hand-made table: the study's net at a sane learning rate trains,
    at Adam lr 0.1 (Experiment 2's setting) ReLU collapses to a constant, a small Sigmoid net
    at Adam lr 3 ends finite at a few times var(y) (worse than the constant predictor, no
    longer counted as trained), Leaky ReLU with He initial weights at lr 0.1 ends thousands of
    times above var(y), SGD at lr 5 blows up."""
    import pandas as pd

    from actflow import data, tables, train

    d = data.make_train_set("sin", 200, -np.pi, np.pi, 0.1, 2024)
    x, y = d["x"].to_numpy()[:, None], d["y"].to_numpy()[:, None]
    want = {(1e-3, "adam", "relu", "pytorch", 200, (0, 1, 2), 10, 64): "trained",
            (0.1, "adam", "relu", "pytorch", 200, (0, 1, 2), 10, 64): "collapsed",
            (3.0, "adam", "sigmoid", "pytorch", 60, (0, 1, 2), 3, 16): "worse than constant",
            (0.1, "adam", "leaky_relu", "kaiming_normal", 100, (1, 2), 10, 64): "exploded",
            (5.0, "sgd", "relu", "pytorch", 200, (0, 1, 2), 10, 64): "non-finite"}
    assert {o for o in want.values()} == set(layout.OUTCOMES)
    for (lr, opt, act, init, epochs, seeds, depth, width), outcome in want.items():
        hp = train.Hyper(hidden_layers=depth, width=width, epochs=epochs, learning_rate=lr,
                         optimizer=opt, init=init)
        r = train.train(x, y, list(seeds), act, hp, log_every=0)
        runs = pd.DataFrame({"final_loss": r.final_loss, "baseline_mse": y.var(),
                             "diverged": r.diverged_epoch > 0})
        got = tables.outcomes(runs, collapse_rtol=0.02, explode_factor=10.0)
        assert list(got) == [outcome] * len(seeds), (lr, opt, act, list(got),
                                                      r.final_loss / y.var())
