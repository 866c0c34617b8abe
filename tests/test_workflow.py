"""End-to-end: the workflow on a tiny config, its tables, its figures and its caching."""

import json

import pyarrow.parquet as pq
import pytest
import yaml

from actflow import figures as figreg
from actflow import io, layout
from conftest import ROOT, TINY, planned_job_list, planned_jobs

# Target rules, and the audit jobs that summarise everything (the manifest hashes every
# output and records the whole config, so it reruns, in a second, after any change).
TARGETS = {"all", "exp1", "exp2", "exp3", "manifest", "audit_claims"}

def _table_files(root):
    """(path, columns the registry gives) of every metric table of the run."""
    out = []
    for table in layout.TABLES.values():
        kind = layout.kind_of_table(table.name)
        for exp, k in layout.EXPERIMENT_KINDS.items():
            if k == kind:
                out.append((table.path(exp), table.columns))
        if table.union:
            out.append((table.union_path(), table.columns))
    return out + [(layout.curves_path(), layout.ACTIVATION_CURVES.columns)]


def test_tables_have_their_registered_and_documented_schemas(tiny_run):
    cfg = yaml.safe_load(TINY.read_text())
    docs = (ROOT / "docs" / "outputs.md").read_text()
    files = _table_files(tiny_run)
    assert len(files) > 30
    for path, columns in files:
        df = io.read_parquet(tiny_run / path)
        assert list(df.columns) == list(columns), path
        for col in columns:
            assert f"`{col}`" in docs, f"column {col} of {path} is not documented"
    assert list(io.read_parquet(tiny_run / layout.sine_data()).columns) == ["x", "y", "y_clean"]
    grads = io.read_parquet(tiny_run / "results/metrics/gradient_flow.parquet")
    n_act, n_seed = len(cfg["activations"]), len(cfg["seeds"])
    ep, layers = cfg["exp1"]["epochs"], cfg["exp1"]["hidden_layers"]
    assert len(grads) == 2 * n_act * n_seed * ep * layers  # exp1 and exp2
    assert set(grads["experiment"]) == {"exp1", "exp2"}
    assert (grads["weight_grad_norm"] > 0).all()
    assert sorted(grads["layer"].unique()) == list(range(1, layers + 1))
    loss = io.read_parquet(tiny_run / "results/metrics/loss.parquet")
    assert len(loss) == 2 * n_act * n_seed * ep
    dead = io.read_parquet(tiny_run / "results/metrics/dead_neurons.parquet")
    assert len(dead) == 2 * 2 * n_act * n_seed * layers * 3  # experiments × stages × ... × definitions
    assert dead["dead_fraction"].between(0, 1).all()
    summary = io.read_parquet(tiny_run / "results/metrics/exp1/loss_summary.parquet")
    assert (summary["n_seeds"] == n_seed).all()
    assert (summary["ci_low"] <= summary["mean"]).all() and (summary["mean"] <= summary["ci_high"]).all()
    runs = io.read_parquet(tiny_run / "results/metrics/runs.parquet").set_index("experiment")
    assert runs.loc["exp2", "learning_rate"].eq(0.1).all() and runs["hidden_layers"].eq(layers).all()


def test_tables_carry_config_and_versions(tiny_run):
    meta = io.read_metadata(tiny_run / "results/train/exp1/relu/loss.parquet")
    assert meta["config"]["hp"]["epochs"] == 12 and meta["config"]["seeds"] == [0, 1]
    assert {"python", "torch", "pandas", "pyarrow"} <= set(meta["versions"])
    assert pq.read_schema(tiny_run / "results/metrics/runs.parquet").metadata[b"actflow"]


def test_ratio_is_last_over_first_layer(tiny_run):
    g = io.read_parquet(tiny_run / "results/metrics/gradient_flow.parquet")
    r = io.read_parquet(tiny_run / "results/metrics/gradient_ratio.parquet")
    one = g[(g.experiment == "exp1") & (g.activation == "sigmoid") & (g.seed == 1) & (g.epoch == 3)]
    one = one.set_index("layer")
    row = r[(r.experiment == "exp1") & (r.activation == "sigmoid") & (r.seed == 1) & (r.epoch == 3)]
    row = row.iloc[0]
    assert row["weight_grad_ratio"] == pytest.approx(
        one.loc[one.index.max(), "weight_grad_norm"] / one.loc[1, "weight_grad_norm"])


def test_every_figure_is_a_real_image(tiny_run):
    from matplotlib.image import imread

    figs = sorted((tiny_run / "results/figures").glob("*.png"))
    assert sorted(f.stem for f in figs) == sorted(figreg.FIGURES)
    for png in figs:
        img = imread(png)
        assert img.shape[0] > 100 and img.shape[1] > 100 and img.std() > 0.01, png
        pdf = png.with_suffix(".pdf")
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 2000


def test_training_log_shows_progress(tiny_run):
    text = (tiny_run / "results/logs/train/exp1/relu.log").read_text()
    assert "epoch 12/12" in text and "mean loss" in text and "elapsed" in text


def test_weights_load_without_pickle(tiny_run):
    init, final, meta = io.load_weights(tiny_run / layout.train_outputs("exp1", "sigmoid")["weights"])
    assert meta["seeds"] == [0, 1] and meta["activation"] == "sigmoid"
    assert meta["experiment"] == "exp1" and meta["hyper"]["hidden_layers"] == 3
    assert final["hidden1.weight"].shape == (2, 1, 8)
    assert not (init["hidden1.weight"] == final["hidden1.weight"]).all()


def test_nothing_to_do_after_a_complete_run(tiny_run):
    assert planned_jobs(tiny_run) == {}


# ------------------------------------------------------------ caching, from Snakemake's plan
def _override(tmp_path, text):
    f = tmp_path / "override.yaml"
    merged = yaml.safe_load(TINY.read_text())
    for key, value in yaml.safe_load(text).items():
        if isinstance(value, dict):
            merged.setdefault(key, {}).update(value)
        else:
            merged[key] = value
    f.write_text(yaml.safe_dump(merged))
    return (f,)


def test_figure_only_change_reruns_only_figures(tiny_run, tmp_path):
    jobs = planned_jobs(tiny_run, configfiles=_override(tmp_path, "figures: {dpi: 41}"))
    assert set(jobs) - TARGETS == {"figure"} and jobs["figure"] == len(figreg.FIGURES)
    assert "audit_claims" not in jobs and "train" not in jobs


def _figures_reading(experiment):
    return {f.name for f in figreg.FIGURES.values()
            if any(f"/{experiment}/" in p for p in f.tables.values())}


def _experiments(jobs):
    return {wc.get("experiment") for rule, wc in jobs if "experiment" in wc}


def test_learning_rate_change_reruns_training_not_data(tiny_run, tmp_path):
    plan = planned_job_list(tiny_run, configfiles=_override(tmp_path, "exp1: {learning_rate: 0.01}"))
    jobs = {r: sum(1 for q, _ in plan if q == r) for r, _ in plan}
    assert jobs["train"] == 2 and jobs["history_metrics"] == 1 and jobs["weight_metrics"] == 1
    assert _experiments(plan) == {"exp1"}
    assert "data_sine" not in jobs and "activation_curves" not in jobs
    figures = {wc["figure"] for r, wc in plan if r == "figure"}
    assert "fig1_activations" not in figures and "fig6_loss_curves" in figures


@pytest.mark.parametrize("change", ["exp2: {learning_rate: 0.05}", "exp2: {optimizer: sgd}"])
def test_experiment2_change_reruns_experiment2_only(tiny_run, tmp_path, change):
    plan = planned_job_list(tiny_run, configfiles=_override(tmp_path, change))
    assert _experiments(plan) == {"exp2"}
    rules = {r for r, _ in plan}
    assert rules - TARGETS == {"train", "history_metrics", "weight_metrics", "union_table", "figure"}
    figures = {wc["figure"] for r, wc in plan if r == "figure"}
    assert figures == _figures_reading("exp2") and "fig9_hidden_activations" not in figures


def test_adding_an_activation_trains_only_that_one(tiny_run, tmp_path):
    plan = planned_job_list(tiny_run, configfiles=_override(tmp_path, "activations: [sigmoid, relu, tanh]"))
    trained = sorted((wc["experiment"], wc["activation"]) for r, wc in plan if r == "train")
    assert trained == [("exp1", "tanh"), ("exp2", "tanh")]
    rules = [r for r, _ in plan]
    assert "data_sine" not in rules and rules.count("activation_curves") == 1
    assert rules.count("history_metrics") == 2 and rules.count("figure") == len(figreg.FIGURES)
    exp3 = sorted((wc["target"], wc["activation"]) for r, wc in plan if r == "train_target")
    assert exp3 == [("sin", "tanh"), ("step", "tanh")]


def test_editing_plotting_code_reruns_figures_not_training(tiny_copy):
    plotting = tiny_copy / "workflow/scripts/actflow/plotting.py"
    plotting.write_text(plotting.read_text() + "\n# restyled\n")
    jobs = planned_jobs(tiny_copy)
    assert set(jobs) - TARGETS == {"figure"}


def test_each_output_builds_on_its_own(tiny_copy):
    from conftest import snakemake

    for f in (tiny_copy / "results").rglob("*"):
        if f.is_file():
            f.unlink()
    jobs = planned_jobs(tiny_copy, "results/figures/fig1_activations.png")
    assert set(jobs) == {"activation_curves", "figure"}
    snakemake(tiny_copy, "results/metrics/exp1/gradient_ratio.parquet")
    assert (tiny_copy / "results/metrics/exp1/gradient_ratio.parquet").exists()
    assert not list((tiny_copy / "results/figures").glob("*"))
    for exp in ("exp1", "exp2", "exp3"):
        assert planned_jobs(tiny_copy, exp)["figure"] == len(figreg.by_experiment(exp))


def test_default_config_equals_the_schema_defaults():
    from actflow.config import validate

    filled = validate({}, ROOT / "workflow/schemas/config.schema.yaml")
    assert filled == yaml.safe_load((ROOT / "config/config.yaml").read_text())
    json.dumps(filled)


def test_adding_a_target_runs_only_what_it_needs(tiny_run, tmp_path):
    plan = planned_job_list(tiny_run, configfiles=_override(tmp_path, "exp3: {targets: [sin, step, abs]}"))
    rules = {r for r, _ in plan} - TARGETS
    assert rules == {"data_target_train", "data_target_test", "train_target", "capacity_metrics",
                     "union_table", "figure"}
    assert {wc["target"] for r, wc in plan if "target" in wc} == {"abs"}
    assert sorted(wc["activation"] for r, wc in plan if r == "train_target") == ["relu", "sigmoid"]
    assert {wc["figure"] for r, wc in plan if r == "figure"} == _figures_reading("exp3")


@pytest.mark.parametrize("change", ["exp3: {learning_rate: 0.01}", "exp3: {n_test: 60}",
                                    "exp3: {noise_std: 0.2}"])
def test_experiment3_change_reruns_nothing_of_experiments_1_and_2(tiny_run, tmp_path, change):
    plan = planned_job_list(tiny_run, configfiles=_override(tmp_path, change))
    rules = {r for r, _ in plan} - TARGETS
    assert rules <= {"data_target_train", "data_target_test", "train_target", "capacity_metrics",
                     "union_table", "figure"}
    assert {wc["table"] for r, wc in plan if r == "union_table"} <= set(layout.union_tables("capacity"))
    assert "capacity_metrics" in rules
    assert {wc["figure"] for r, wc in plan if r == "figure"} == _figures_reading("exp3")
    if "n_test" in change:
        assert "train_target" not in rules and "data_target_train" not in rules
