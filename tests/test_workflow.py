"""End-to-end: the workflow on a tiny config, its tables, its figures and its caching."""

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from actflow import figures as figreg
from actflow import io, layout
from conftest import ROOT, TINY, figures_reading, planned_job_list, planned_jobs, union_tables

# Target rules, and the audit jobs that summarise everything (the manifest hashes every
# output and records the whole config, so it reruns, in a second, after any change).
# the audit's products, which any change of a result redraws: the claims, their
# specification curves (rules reading_figures_N, one family), the manifest and the summary
TARGETS = {"all", "exp1", "exp2", "exp3", "manifest", "audit_claims", "reading_figures",
           "summary"}

def _table_files(root):
    """(path, columns the registry gives) of every metric table of the run, variants included."""
    out = []
    variants = {v["name"]: v["of"] for v in yaml.safe_load(TINY.read_text())["variants"]}
    for table in layout.TABLES.values():
        kind = layout.kind_of_table(table.name)
        for exp, k in layout.EXPERIMENT_KINDS.items():
            if k == kind:
                out += [(table.path(v), table.columns) for v in [exp] + [
                    n for n, of in variants.items() if of == exp]]
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
    grads = grads[grads["variant"] == grads["experiment"]]  # the study's settings
    n_act, n_seed = len(cfg["activations"]), len(cfg["seeds"])
    ep, layers = cfg["exp1"]["epochs"], cfg["exp1"]["hidden_layers"]
    assert len(grads) == 2 * n_act * n_seed * ep * layers  # exp1 and exp2
    assert set(grads["experiment"]) == {"exp1", "exp2"}
    assert (grads["weight_grad_norm"] > 0).all()
    assert sorted(grads["layer"].unique()) == list(range(1, layers + 1))
    loss = io.read_parquet(tiny_run / "results/metrics/loss.parquet")
    assert len(loss[loss["variant"] == loss["experiment"]]) == 2 * n_act * n_seed * ep
    assert set(loss["variant"]) == {"exp1", "exp2", "exp2_sgd", "exp1_he"}
    dead = io.read_parquet(tiny_run / "results/metrics/exp1/dead_neurons.parquet")
    dead = pd.concat([dead, io.read_parquet(tiny_run / "results/metrics/exp2/dead_neurons.parquet")])
    assert len(dead) == 2 * 2 * n_act * n_seed * layers * 3  # experiments × stages × ... × definitions
    assert dead["dead_fraction"].between(0, 1).all()
    summary = io.read_parquet(tiny_run / "results/metrics/exp1/loss_summary.parquet")
    assert (summary["n_seeds"] == n_seed).all()
    assert (summary["ci_low"] <= summary["mean"]).all() and (summary["mean"] <= summary["ci_high"]).all()
    runs = io.read_parquet(tiny_run / "results/metrics/runs.parquet").set_index("variant")
    assert runs.loc["exp2", "learning_rate"].eq(0.1).all() and runs["hidden_layers"].eq(layers).all()
    assert runs.loc["exp2_sgd", "optimizer"].eq("sgd").all()
    assert runs.loc["exp1_he", "init"].eq("kaiming_normal").all()
    assert runs.loc["exp1", "init"].eq("pytorch").all()


def test_tables_carry_config_and_versions(tiny_run):
    meta = io.read_metadata(tiny_run / "results/train/exp1/relu/loss.parquet")
    assert meta["config"]["hp"]["epochs"] == 12 and meta["config"]["seeds"] == [0, 1]
    assert {"python", "torch", "pandas", "pyarrow"} <= set(meta["versions"])
    assert pq.read_schema(tiny_run / "results/metrics/runs.parquet").metadata[b"actflow"]


def test_ratio_is_last_over_first_layer(tiny_run):
    g = io.read_parquet(tiny_run / "results/metrics/gradient_flow.parquet")
    r = io.read_parquet(tiny_run / "results/metrics/gradient_ratio.parquet")
    g, r = g[g.variant == "exp1"], r[r.variant == "exp1"]
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
    # figures.formats: [png] in the tiny config (the cold run makes PDFs: tests/test_deploy.py)
    assert not list((tiny_run / "results/figures").glob("*.pdf"))



@pytest.mark.parametrize("name", ["fig4_gradient_ratio", "fig6_loss_curves",
                                  "fig13a_variants_exp1", "fig13b_variants_exp2"])
def test_curves_are_drawn_over_the_reference_lines_they_may_sit_on(tiny_run, monkeypatch, name):
    """A run that learns nothing stays at var(y): its curve lies on the dashed var(y) line, and
    drawn under it, it vanished (Fig. 13's SGD panels at small learning rates looked empty).
    In every panel, each black dashed reference line (var(y), a ratio of 1) is drawn before
    every curve; Fig. 6's noise floor stays above them, by design (it is where they end)."""
    import matplotlib

    from actflow import plotting

    drawn = []
    monkeypatch.setattr(plotting, "save", lambda fig, outputs, dpi: drawn.append(fig))
    entry = figreg.FIGURES[name]
    monkeypatch.chdir(tiny_run)
    plotting.draw(name, dict(entry.tables), {}, settings={})
    checked = 0
    for ax in drawn[0].axes:
        lines = [a for a in ax.get_children() if isinstance(a, matplotlib.lines.Line2D)]
        order = sorted(ax.get_children(), key=lambda a: a.get_zorder())  # matplotlib's order
        rank = {id(a): i for i, a in enumerate(order)}
        refs = [a for a in lines if a.get_linestyle() == "--" and len(set(a.get_ydata())) == 1
                and matplotlib.colors.to_hex(a.get_color()) == "#000000"]  # not the noise floor
        curves = [a for a in lines if len(a.get_xdata()) > 2]
        if refs and curves:
            checked += 1
            assert max(rank[id(r)] for r in refs) < min(rank[id(c)] for c in curves), ax.get_title()
    assert checked
    matplotlib.pyplot.close("all")


@pytest.mark.parametrize("name", ["fig13a_variants_exp1", "fig13b_variants_exp2"])
def test_each_variant_panel_names_its_runs_that_did_not_train(tiny_run, monkeypatch, name):
    """Curves on var(y) lie on one another (every run of Fig. 13b's SGD panels collapsed, and
    one line showed): each loss panel names, in the activation's colour, the runs that did not
    end trained, as runs.parquet classifies them, and nothing for an activation whose runs all
    trained."""
    import matplotlib

    from actflow import plotting

    drawn = []
    monkeypatch.setattr(plotting, "save", lambda fig, outputs, dpi: drawn.append(fig))
    entry = figreg.FIGURES[name]
    monkeypatch.chdir(tiny_run)
    plotting.draw(name, dict(entry.tables), {}, settings={})
    experiment = entry.options["experiment"]
    runs = pd.read_parquet(tiny_run / entry.tables["runs"])
    runs = runs[runs["experiment"] == experiment]
    panels = [ax for ax in drawn[0].axes if ax.get_visible() and ax.get_yscale() == "log"]
    names = plotting._settings_of(pd.read_parquet(tiny_run / entry.tables["loss"]), experiment, {})
    assert len(panels) == len(names) == runs["variant"].nunique()
    noted = 0
    for ax, variant in zip(panels, names):
        r, want = runs[runs["variant"] == variant], {}
        for act, g in r.groupby("activation"):
            counts = g["outcome"].value_counts()
            parts = [f"{counts[o]} {o}" for o in layout.NOT_TRAINED if o in counts]
            if parts:
                want[f"{plotting.label(act)}: {', '.join(parts)}"] = matplotlib.colors.to_hex(
                    plotting.color(act))
        texts = {t.get_text(): matplotlib.colors.to_hex(t.get_color()) for t in ax.texts}  # annotations too
        assert {k: texts.get(k) for k in want} == want, (variant, texts)
        assert not [t for t in texts if ": " in t and t not in want], (variant, texts)
        noted += len(want)
    assert noted  # the tiny run has runs that did not train (exp1's, exp2_sgd's Sigmoid)
    matplotlib.pyplot.close("all")


@pytest.mark.parametrize("dpi", [40, 150])
def test_a_figure_keeps_its_longest_labels_and_margin_at_any_resolution(tmp_path, dpi):
    """plotting.save crops to the box its layout pass measures; text measured at matplotlib's
    100 dpi is narrower than at 40 (the test config's resolution: glyphs are rounded to
    pixels), and Figure 12's longest row labels lost about ten characters there. The saved
    image must hold every label, measured at the resolution it is saved at, with its margin."""
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.image import imread

    from actflow import plotting

    plotting.style()
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.set_yticks(range(3), [f"claim_{i}_with_a_long_name [log10 of ratio, last / first layer]"
                             for i in range(3)], fontsize="small")
    ax.set_title("a title wider than the axes it stands over, as in Figure 12")
    out = tmp_path / "figure.png"
    plotting.save(fig, {"png": out}, dpi=dpi)
    fig.set_dpi(dpi)
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.findobj(matplotlib.text.Text)
             if t.get_visible() and t.get_text()]
    span = max(b.x1 for b in boxes) - min(b.x0 for b in boxes)
    margin = 2 * plt.rcParams["savefig.pad_inches"] * dpi
    assert imread(out).shape[1] >= span + margin - 2

def test_training_log_shows_progress(tiny_run):
    text = (tiny_run / "results/logs/train/exp1/relu.log").read_text()
    assert "epoch 12/12" in text and "mean loss" in text and "elapsed" in text


def test_weights_load_without_pickle(tiny_run):
    init, final, meta = io.load_weights(tiny_run / layout.train_outputs("exp1", "sigmoid")["weights"])
    assert meta["seeds"] == [0, 1] and meta["activation"] == "sigmoid"
    assert meta["experiment"] == "exp1" and meta["hyper"]["hidden_layers"] == 3
    assert final["hidden1.weight"].shape == (2, 1, 8)
    assert not (init["hidden1.weight"] == final["hidden1.weight"]).all()


def test_every_result_has_the_mode_of_a_file_made_under_the_user_s_umask(tiny_run, tmp_path):
    """Readable by whoever may read the user's other files (a collaborator on a shared
    machine, another account that audits the run): no result is made owner-only. The weights
    once were: safetensors' save_file makes its file 0600."""
    probe = tmp_path / "probe"
    probe.write_text("")  # the mode the same umask gives a new file (the run inherited it)
    want = probe.stat().st_mode & 0o777
    files = [p for p in (tiny_run / layout.RESULTS).rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files) and len(files) > 100
    odd = {str(p.relative_to(tiny_run)): oct(p.stat().st_mode & 0o777) for p in files
           if p.stat().st_mode & 0o777 != want}
    assert odd == {}, f"want {oct(want)}"


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
    assert jobs["reading_figures"] >= 1  # the specification curves are figures too


def test_changing_the_device_retrains_nothing(tiny_run, tmp_path):
    # where a job trains is not what it trains (the runs record their device): a finished run
    # asked for CUDA reruns no training job, so that a machine without one loses nothing
    jobs = planned_jobs(tiny_run, configfiles=_override(tmp_path, "device: cuda"))
    assert "train" not in jobs and set(jobs) <= TARGETS, jobs


def _figures_reading(experiment):
    """The figures drawn from an experiment's tables, and those drawn from the claims under
    every variant (Figure 12) or from the union tables of its kind (Figure 13), which any
    change of an experiment's results redraws."""
    return {f.name for f in figreg.FIGURES.values()
            if any(f"/{experiment}/" in p for p in f.tables.values())} | figures_reading(
        layout.AUDIT["sensitivity_parquet"], *union_tables(layout.EXPERIMENT_KINDS[experiment]))


def _figures_of_variants(experiment):
    """What a change to a variant of ``experiment`` redraws: the figures of the claims under
    every variant and of the variants of its kind."""
    return figures_reading(layout.AUDIT["sensitivity_parquet"],
                           *union_tables(layout.EXPERIMENT_KINDS[experiment]))


def _variants(jobs):
    return {wc["variant"] for rule, wc in jobs if "variant" in wc}


def test_learning_rate_change_reruns_training_not_data(tiny_run, tmp_path):
    plan = planned_job_list(tiny_run, configfiles=_override(tmp_path, "exp1: {learning_rate: 0.01}"))
    jobs = {r: sum(1 for q, _ in plan if q == r) for r, _ in plan}
    # exp1 and its variant exp1_he, which inherits exp1's learning rate
    assert _variants(plan) == {"exp1", "exp1_he"}
    assert jobs["train"] == 4 and jobs["history_metrics"] == 2 and jobs["weight_metrics"] == 2
    assert "data_sine" not in jobs and "activation_curves" not in jobs
    figures = {wc["figure"] for r, wc in plan if r == "figure"}
    assert "fig1_activations" not in figures and "fig6_loss_curves" in figures


@pytest.mark.parametrize("change,variants", [
    ("exp2: {learning_rate: 0.05}", {"exp2", "exp2_sgd"}),  # exp2_sgd inherits the rate
    ("exp2: {optimizer: sgd}", {"exp2"}),  # exp2_sgd already overrides the optimizer
])
def test_experiment2_change_reruns_experiment2_and_its_variants_only(tiny_run, tmp_path, change,
                                                                       variants):
    plan = planned_job_list(tiny_run, configfiles=_override(tmp_path, change))
    assert _variants(plan) == variants
    rules = {r for r, _ in plan}
    assert rules - TARGETS == {"train", "history_metrics", "weight_metrics", "union_sine", "figure"}
    figures = {wc["figure"] for r, wc in plan if r == "figure"}
    assert figures == _figures_reading("exp2") and "fig9_hidden_activations" not in figures


def test_adding_an_activation_trains_only_that_one(tiny_run, tmp_path):
    plan = planned_job_list(tiny_run, configfiles=_override(tmp_path, "activations: [sigmoid, relu, tanh]"))
    trained = sorted((wc["variant"], wc["activation"]) for r, wc in plan if r == "train")
    variants = yaml.safe_load(TINY.read_text())["variants"]
    assert trained == sorted([(v, "tanh") for v in ("exp1", "exp2", "exp3")]
                             + [(v["name"], "tanh") for v in variants])
    rules = [r for r, _ in plan]
    assert "data_sine" not in rules and rules.count("activation_curves") == 1
    assert rules.count("history_metrics") == 4 and rules.count("figure") == len(figreg.FIGURES)


def test_adding_a_variant_trains_only_that_variant(tiny_run, tmp_path):
    variants = yaml.safe_load(TINY.read_text())["variants"]
    extra = {"name": "exp2_gentle", "of": "exp2", "learning_rate": 0.01}
    plan = planned_job_list(tiny_run, configfiles=_override(
        tmp_path, yaml.safe_dump({"variants": variants + [extra]})))
    assert {(r, wc.get("variant")) for r, wc in plan if "variant" in wc} == {
        ("train", "exp2_gentle"), ("history_metrics", "exp2_gentle"),
        ("weight_metrics", "exp2_gentle")}
    assert sum(r == "train" for r, _ in plan) == 2
    rules = {r for r, _ in plan} - TARGETS
    assert rules == {"train", "history_metrics", "weight_metrics", "union_sine", "figure"}
    assert {wc["figure"] for r, wc in plan if r == "figure"} == _figures_of_variants("exp2")


def test_changing_a_variant_reruns_only_that_variant(tiny_run, tmp_path):
    variants = yaml.safe_load(TINY.read_text())["variants"]
    changed = [v | {"momentum": 0.9} if v["name"] == "exp2_sgd" else v for v in variants]
    plan = planned_job_list(tiny_run, configfiles=_override(
        tmp_path, yaml.safe_dump({"variants": changed})))
    assert _variants(plan) == {"exp2_sgd"}
    assert {wc["figure"] for r, wc in plan if r == "figure"} == _figures_of_variants("exp2")


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
    assert not [p for p in (tiny_copy / "results/figures").rglob("*") if p.is_file()]
    for exp in ("exp1", "exp2", "exp3"):
        assert planned_jobs(tiny_copy, exp)["figure"] == len(figreg.by_experiment(exp))
    only = planned_job_list(tiny_copy, "sensitivity")
    assert {wc["figure"] for r, wc in only if r == "figure"} == set(figreg.by_experiment("sensitivity"))


def test_a_request_for_an_unconfigured_name_fails_at_planning(tiny_run):
    from conftest import snakemake

    proc = snakemake(tiny_run, "--dry-run", "results/train/exp1/swish/loss.parquet", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "MissingRuleException" in out and "results/train/exp1/swish/loss.parquet" in out


def test_default_config_equals_the_schema_defaults():
    from actflow.config import validate

    filled = validate({}, ROOT / "workflow/schemas/config.schema.yaml")
    default = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    assert filled["variants"] == [] and default["variants"]  # no variants unless configured
    assert filled == default | {"variants": []}
    json.dumps(filled)


def test_adding_a_target_retrains_each_capacity_job_and_nothing_else(tiny_run, tmp_path):
    """Experiment 3 trains every target of an activation in one stacked job (the unit of
    caching), so a new target retrains each activation of each capacity variant."""
    plan = planned_job_list(tiny_run, configfiles=_override(tmp_path, "exp3: {targets: [sin, step, abs]}"))
    rules = {r for r, _ in plan} - TARGETS
    assert rules == {"data_targets_train", "data_targets_test", "train", "capacity_metrics",
                     "union_capacity", "figure"}
    assert _variants(plan) == {"exp3", "exp3_clean"}
    assert sorted(wc["activation"] for r, wc in plan if r == "train") == [
        "relu", "relu", "sigmoid", "sigmoid"]
    assert {wc["figure"] for r, wc in plan if r == "figure"} == _figures_reading("exp3")


@pytest.mark.parametrize("change", ["exp3: {learning_rate: 0.01}", "exp3: {n_test: 60}",
                                    "exp3: {noise_std: 0.2}"])
def test_experiment3_change_reruns_nothing_of_experiments_1_and_2(tiny_run, tmp_path, change):
    plan = planned_job_list(tiny_run, configfiles=_override(tmp_path, change))
    rules = {r for r, _ in plan} - TARGETS
    assert rules <= {"data_targets_train", "data_targets_test", "train", "capacity_metrics",
                     "union_capacity", "figure"}
    assert _variants(plan) <= {"exp3", "exp3_clean"}
    assert "capacity_metrics" in rules
    assert {wc["figure"] for r, wc in plan if r == "figure"} == _figures_reading("exp3")
    if "n_test" in change:
        assert "train" not in rules and "data_targets_train" not in rules


@pytest.mark.slow
def test_costlier_training_jobs_start_first(tmp_path):
    """The train rule's priority is its job's rank by estimated work
    (actflow.budget.training_gflop): on the default config Experiment 3's jobs (25 stacked
    runs) go before Experiment 1's (5). Every other job goes before any training job: the data,
    the tables and the claims audit (the chain that ends a run) first, then the figures."""
    from conftest import copy_workflow, planned_job_details

    from actflow import budget

    from actflow import variants
    from actflow.config import validate

    wd = copy_workflow(tmp_path / "wf")
    jobs = planned_job_details(wd, configfiles=())
    prio = {(j["wildcards"]["variant"], j["wildcards"]["activation"]): j["priority"]
            for j in jobs if j["rule"] == "train"}
    cfg = validate(yaml.safe_load((ROOT / "config/config.yaml").read_text()),
                   ROOT / "workflow/schemas/config.schema.yaml")
    resolved = variants.resolve(cfg, variants.expand_entries(cfg["variants"]))
    assert len(prio) == len(resolved) * len(cfg["activations"])
    cost = {}
    for v in resolved:  # each job's own work: its seeds (a variant may have its own), targets
        s = v.settings
        runs = len(v.seeds) * (len(s["targets"]) if v.kind == "capacity" else 1)
        cost[v.name] = budget.training_gflop(runs, s["hidden_layers"], s["width"],
                                             v.data["n_samples"], s["epochs"])
        assert len({p for (name, _), p in prio.items() if name == v.name}) == 1, v.name
    by_variant = {name: p for (name, _), p in prio.items()}
    for a in cost:  # the order of the priorities is the order of the costs
        for b in cost:
            assert (by_variant[a] > by_variant[b]) == (cost[a] > cost[b]), (a, b)
    assert prio[("exp3", "relu")] > prio[("exp1", "relu")] >= 1  # 25 runs of 5 layers, 5 of 10
    want = budget.priorities(resolved)
    tables = {"data_sine", "data_targets_train", "data_targets_test", "activation_curves",
              "history_metrics", "weight_metrics", "capacity_metrics", "union_sine",
              "union_capacity", "audit_claims"}
    figures = {"figure", "grid_figure", "reading_figures"}
    assert tables | figures <= {j["rule"] for j in jobs}
    assert all(j["priority"] == want.tables for j in jobs if j["rule"] in tables)
    assert all(j["priority"] == want.figures for j in jobs if j["rule"] in figures)
    assert want.tables > want.figures > max(prio.values())


# A handler registered before the code under test runs after its own (atexit is last in, first
# out): it sees the exit as the interpreter's teardown will.
_SEES_THE_EXIT = ("import atexit, gc, sys\n"
                  "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0, "
                  "flush=True))\n")


@pytest.mark.parametrize("fails", [False, True])
def test_a_job_works_with_the_cyclic_collector_off_and_exits_with_its_objects_frozen(tmp_path,
                                                                                    fails):
    import subprocess
    import sys

    log, out = tmp_path / "job.log", tmp_path / "out.txt"
    code = (_SEES_THE_EXIT + f"sys.path.insert(0, {str(ROOT / 'workflow/scripts')!r})\n"
            "from actflow import io\n"
            f"io.setup_logging({str(log)!r}, outputs=[{str(out)!r}])\n"
            "assert gc.get_freeze_count() == 0  # nothing frozen while the job works\n"
            "assert not gc.isenabled()  # and the cyclic collector off (io.setup_logging)\n"
            f"open({str(out)!r}, 'w').write('result')\n"
            + ("raise RuntimeError('the job failed')\n" if fails else ""))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.splitlines()[-1] == "frozen at exit: True", proc.stdout + proc.stderr
    assert proc.returncode == (1 if fails else 0), proc.stderr
    text = log.read_text()
    assert (f"{io.OUTPUT_LINE} {out} sha256=" in text) is not fails  # written before the freeze
    assert text.rstrip().splitlines()[-1].split(": ", 1)[1].startswith(io.PACKAGES_LINE)


@pytest.mark.slow
def test_snakemake_s_process_exits_with_the_collector_s_objects_frozen(tmp_path):
    import subprocess
    import sys

    from conftest import SNAKEMAKE, copy_workflow

    wd = copy_workflow(tmp_path / "wf")
    code = (_SEES_THE_EXIT + "import runpy\n"
            f"sys.argv = ['snakemake', '--dry-run', '--configfile', {str(TINY)!r}]\n"
            f"runpy.run_path({SNAKEMAKE!r}, run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=wd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1] == "frozen at exit: True", proc.stdout[-3000:]
