"""make show: a finished run's key results as terminal tables, and what a comparison found."""

import subprocess
import sys

import numpy as np
import pandas as pd
import yaml

from actflow import io, layout, show
from actflow import variants as varreg
from conftest import ROOT, TINY


def _lines(text):
    return [ln for ln in text.splitlines() if ln.startswith("│")]


def _cells(line):
    return [c.strip() for c in line.strip("│").split("│")]


def test_show_lists_every_setting_and_activation_with_values_from_the_tables(tiny_run):
    cfg = yaml.safe_load(TINY.read_text())
    proc = subprocess.run([sys.executable, "-m", "actflow.show", "--width", "400"],
                          cwd=tiny_run, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "workflow" / "scripts"), "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    blocks = {e: out.split(t, 1)[1] for e, t in layout.EXPERIMENT_TITLES.items()}
    sens = io.read_parquet(tiny_run / layout.AUDIT["sensitivity_parquet"])
    for exp in layout.EXPERIMENT_TITLES:
        rows = _lines(blocks[exp].split("└", 1)[0])
        settings = [v for v in dict.fromkeys(sens.loc[sens["experiment"] == exp, "variant"])]
        assert len(rows) == len(settings) * len(cfg["activations"]), (exp, rows)
        overrides = dict(zip(sens["variant"], sens["overrides"]))
        labels = [c[0] for c in map(_cells, rows) if c[0]]
        assert labels[0] == varreg.label(exp, "the study's setting")
        assert [lab.split("  (")[0] for lab in labels[1:]] == [
            varreg.label(exp, overrides[v]) for v in settings if v != exp]
    # a value, recomputed from the runs table: the geometric mean of the final loss over seeds
    runs = io.read_parquet(tiny_run / "results/metrics/runs.parquet")
    mine = runs[(runs["variant"] == "exp1") & (runs["activation"] == "relu")]
    geo = 10 ** np.log10(mine["final_loss"]).mean()
    row = next(_cells(r) for r in _lines(blocks["exp1"].split("└", 1)[0]) if _cells(r)[1] == "relu")
    assert row[2].split(" [")[0] == f"{geo:.3g}"
    # Experiment 3: one test-MSE column per target
    head = blocks["exp3"].split("┡", 1)[0]
    for t in cfg["exp3"]["targets"]:
        assert f"test MSE, {t}" in head


def test_show_on_a_folder_that_is_not_a_finished_run_says_so(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "actflow.show", str(tmp_path)],
                          capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "workflow" / "scripts"), "PATH": ""})
    assert proc.returncode == 2 and "not a finished run" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_show_lists_what_a_comparison_found(tmp_path, capsys):
    """The differences of a comparison (the comparison's own tables, made small here)."""
    res = tmp_path / layout.RESULTS
    paths = {k: tmp_path / v for k, v in layout.COMPARISON.items()}
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"claim": "c1", "variant": "(study)", "verdict_a": "holds",
                   "verdict_b": "does not hold", "measured_a": "1", "measured_b": "2",
                   "status": "differs"},
                  {"claim": "c2", "variant": "(study)", "verdict_a": "holds", "verdict_b": "holds",
                   "measured_a": "1", "measured_b": "1", "status": "same"}]).to_parquet(
        paths["comparison_claims"])
    pd.DataFrame([{"metric": "final_loss", "variant": "exp2", "activation": "relu", "detail": "",
                   "mean_a": 0.1, "ci_low_a": 0.09, "ci_high_a": 0.11, "mean_b": 0.5,
                   "ci_low_b": 0.4, "ci_high_b": 0.6, "p_holm": 0.001, "status": "differ"},
                  {"metric": "final_loss", "variant": "exp1", "activation": "relu", "detail": "",
                   "mean_a": 0.1, "ci_low_a": 0.09, "ci_high_a": 0.11, "mean_b": 0.1,
                   "ci_low_b": 0.09, "ci_high_b": 0.11, "p_holm": 1.0, "status": "agree"}]
                 ).to_parquet(paths["comparison_parquet"])
    pd.DataFrame([{"section": "config", "setting": "exp2.learning_rate", "value_a": "0.02",
                   "value_b": "0.1", "differs": True, "changes_results": True},
                  {"section": "config", "setting": "seeds", "value_a": "[0]", "value_b": "[0]",
                   "differs": False, "changes_results": False}]).to_parquet(
        paths["comparison_settings"])
    text = show.render(show.differences(res), 200)
    assert "Claims whose verdicts differ (1 of 2)" in text and "c1" in text and "c2" not in text
    assert "Metrics that differ beyond the seed spread (1 of 2)" in text
    assert "exp2.learning_rate" in text and "seeds" not in text.split("Settings")[1]
