"""Where every output lives and what every table holds: the one definition of each name.

The rules (``workflow/rules/*.smk``), the jobs (:mod:`actflow.jobs`), the audit, the claims
checks and the tests all derive file names, table names and columns from here; nothing else
spells them out. Adding a table is one :class:`Table` entry (plus the code that computes it);
the rule that writes it, the union over experiments, the manifest and the column checks of
the claims follow.

No torch, pandas or matplotlib here: the Snakefile imports this module when it parses.
"""

from __future__ import annotations

from dataclasses import dataclass

RESULTS = "results"
# What a copy of the workflow needs to run (the tests and benchmarks copy these): the code, its
# default configuration and its profiles, in the layout of the Snakemake workflow catalog.
CLONE_PARTS = ("workflow", "config", "profiles")

# ------------------------------------------------------------------ experiments
# The study's experiments and the kind of pipeline each runs. A "sine" experiment trains on the
# noisy sine data and gets history and weight metrics; a "capacity" experiment trains on every
# target function and gets test errors. Variants (actflow.variants) run the pipeline of the
# experiment they derive from, under their own name: paths below take a variant name, and the
# study's own experiments are the variants exp1, exp2, exp3.
EXPERIMENT_KINDS = {"exp1": "sine", "exp2": "sine", "exp3": "capacity"}
EXPERIMENT_TITLES = {
    "exp1": "Experiment 1: gradient flow",
    "exp2": "Experiment 2: dead neurons",
    "exp3": "Experiment 3: representational capacity",
}
# Report categories: the experiments, the sensitivity of the claims to the variants, the audit.
CATEGORIES = {"exp1": "1. Experiment 1: gradient flow", "exp2": "2. Experiment 2: dead neurons",
              "exp3": "3. Experiment 3: representational capacity",
              "sensitivity": "4. Sensitivity: the claims under other settings",
              "audit": "0. Audit",
              "comparison": "5. Comparison with another run"}
# The report's one label column per category: what its entries are ("FIGURE" in the
# experiments' categories; elsewhere figures sit beside tables, manifests and configs).
REPORT_LABEL = {c: "figure" if c in EXPERIMENT_KINDS else "item" for c in CATEGORIES}
# The weights every weights-metrics row is computed from: the initial and the trained ones.
STAGES = ("init", "trained")
KIND_JOBS = {"sine": ("history", "weights"), "capacity": ("capacity",)}

# ------------------------------------------------------------------ training outputs
# What every training job writes into its folder: name -> file.
TRAIN_FILES = {
    "loss": "loss.parquet",
    "grads": "grads.parquet",
    "runs": "runs.parquet",
    "weights": "weights.safetensors",
    # every hidden unit's state (zero, non-positive, varying) at checkpoints through training
    "units": "unit_states.parquet",
    # the activation's own forward + backward cost, timed inside the job on its machine
    "timing": "timing.parquet",
}
# Files that hold wall-clock measurements: they differ between any two runs, so byte-identity
# checks (re-execution, tests of reruns) compare their columns, not their values.
TIMED_FILES = (TRAIN_FILES["timing"], "activation_cost.parquet")


def is_timed(path) -> bool:
    return str(path).rsplit("/", 1)[-1] in TIMED_FILES


# Columns of a training job's unit-state table (one row per run, layer, unit and checkpoint).
UNIT_STATE_COLUMNS = ("epoch", "layer", "neuron", "zero", "nonpositive", "varies")
TIMING_COLUMNS = ("repeat", "elements", "seconds_per_element", "ns_per_element", "device",
                  "machine")


def train_dir(variant: str, activation: str) -> str:
    """One training job's folder: every seed (and, for a capacity experiment, every target) of
    one activation under one variant, stacked in one model."""
    return f"{RESULTS}/train/{variant}/{activation}"


def train_outputs(variant: str, activation: str) -> dict[str, str]:
    folder = train_dir(variant, activation)
    return {name: f"{folder}/{file}" for name, file in TRAIN_FILES.items()}


# ------------------------------------------------------------------ data
# A dataset is named after the settings it is drawn from: "study" for the study's data, else
# the first variant that needs it (variants with the same data settings share it).
def sine_data(dataset: str = "study") -> str:
    return f"{RESULTS}/data/{dataset}/sine.parquet"


def target_data(dataset: str, split: str) -> str:
    """A capacity experiment's data, every target in one table; split is ``train`` or ``test``."""
    return f"{RESULTS}/data/{dataset}/targets_{split}.parquet"


# ------------------------------------------------------------------ metric tables
KEYS = ("experiment", "variant", "activation", "seed")
SUMMARY = ("metric", "n_seeds", "mean", "std", "n_nonfinite", "ci_low", "ci_high", "aggregate")
LOG_SUMMARY = ("metric", "n_seeds", "mean", "std_log10", "n_nonfinite", "ci_low", "ci_high",
               "aggregate")
NEURON_KEYS = ("experiment", "variant", "stage", "activation", "seed", "layer")
TARGET_KEYS = ("experiment", "variant", "activation", "target", "seed")
# One row per trained run, as the training job writes it: how it ended and its settings.
RUN_SETTINGS = ("hidden_layers", "width", "optimizer", "learning_rate", "momentum", "init",
                "bias_init")  # the training settings each run's row repeats
TRAIN_RUN_COLUMNS = ("diverged", "diverged_epoch", "last_finite_loss", "final_loss",
                     "baseline_mse", "noise_mse", "epochs", *RUN_SETTINGS, "device")
# The metrics' runs tables add the outcome class (config `outcomes`, actflow.tables.outcomes).
RUN_COLUMNS = TRAIN_RUN_COLUMNS + ("outcome",)
# How a run ended (runs.parquet, column outcome), from its final loss against var(y), the loss
# of the best constant predictor: the one list of the classes, in this order everywhere.
OUTCOMES = {
    "trained": "final loss below var(y) by more than collapse_rtol: it beat the constant predictor",
    "collapsed": "final loss within collapse_rtol of var(y): the net predicts a constant",
    "worse than constant": "finite final loss above (1 + collapse_rtol) × var(y) and at most "
                           "explode_factor × var(y): worse than predicting the mean",
    "exploded": "finite final loss above explode_factor × var(y)",
    "non-finite": "the loss, a gradient or a weight became NaN or infinite",
}
NOT_TRAINED = tuple(o for o in OUTCOMES if o != "trained")
# The range each bounded column can take: a claim's interval over seeds is kept inside it
# (actflow.claims). Fractions and rates in [0, 1]; losses, norms, ranks and ratios >= 0.
INF = float("inf")
COLUMN_BOUNDS = {
    **dict.fromkeys(("dead_fraction", "exact_zero_fraction", "near_zero_fraction",
                     "saturated_fraction", "revival_rate", "end_revival_rate", "revived",
                     "died", "dead_at_init", "dead_after", "peak_fraction",
                     "died_fraction", "r_squared"), (0.0, 1.0)),
    **dict.fromkeys(("loss", "relative_loss", "late_over_peak", "effective_rank",
                     "output_std", "mean_output_std", "relative_change", "weight_grad_norm",
                     "preact_grad_norm", "median_weight_grad_norm", "weight_grad_ratio",
                     "preact_grad_ratio", "test_mse", "train_mse", "ns_per_element"),
                    (0.0, INF)),
    "derivative": (-INF, INF),
    **dict.fromkeys(("mean_rank_correlation", "min_rank_correlation"), (-1.0, 1.0)),
}
# The unit of each column a claim can read, as a table or figure shows it beside a value
# (actflow.claims.unit_of adds what a claim's transform or comparison does to it); a test checks
# that every column of config/claims.yaml has one.
COLUMN_UNITS = {
    **dict.fromkeys(("dead_fraction", "exact_zero_fraction", "near_zero_fraction",
                     "saturated_fraction", "died_fraction"), "fraction of units"),
    **dict.fromkeys(("revival_rate", "end_revival_rate"), "fraction of dead units"),
    "peak_fraction": "fraction of training",
    "r_squared": "R²",
    **dict.fromkeys(("loss", "test_mse", "train_mse"), "MSE"),
    "relative_loss": "× var(y)",
    "reset_increase": "× var(y)",
    "late_over_peak": "ratio",
    "effective_rank": "directions",
    **dict.fromkeys(("output_std", "mean_output_std"), "std of σ(z)"),
    "relative_change": "‖ΔW‖/‖W₀‖",
    **dict.fromkeys(("weight_grad_norm", "median_weight_grad_norm", "preact_grad_norm"),
                    "gradient norm"),
    **dict.fromkeys(("weight_grad_ratio", "preact_grad_ratio"), "ratio, last / first layer"),
    "log10_weight_grad_ratio": "log₁₀ ratio, last / first layer",
    "slope_log10_per_layer": "log₁₀ per layer",
    "ns_per_element": "ns per element",
    "derivative": "σ′(x)",
    "epoch_below": "epoch",
    **dict.fromkeys(("mean_rank_correlation", "min_rank_correlation"), "Spearman ρ"),
}


@dataclass(frozen=True)
class Table:
    name: str
    job: str  # the metrics job that writes it: history, weights or capacity (KIND_JOBS)
    columns: tuple[str, ...]  # in order; docs/outputs.md documents each (a test checks)
    union: bool = False  # also one table over all experiments of the kind: results/metrics/<name>

    def path(self, experiment: str) -> str:
        return f"{RESULTS}/metrics/{experiment}/{self.name}.parquet"

    def union_path(self) -> str:
        return f"{RESULTS}/metrics/{self.name}.parquet"


TABLES: dict[str, Table] = {t.name: t for t in [
    # history: from the training histories of every activation of one experiment
    Table("loss", "history", KEYS + ("epoch", "loss", "relative_loss"), union=True),
    Table("gradient_flow", "history",
          KEYS + ("epoch", "layer", "weight_grad_norm", "preact_grad_norm"), union=True),
    Table("gradient_ratio", "history",
          KEYS + ("epoch", "weight_grad_ratio", "preact_grad_ratio", "log10_weight_grad_ratio"),
          union=True),
    Table("runs", "history", KEYS + RUN_COLUMNS, union=True),
    Table("gradient_peaks", "history", KEYS + (
        "layer", "peak_epoch", "peak_fraction", "peak_weight_grad_norm", "median_weight_grad_norm",
        "late_weight_grad_norm", "late_over_peak"), union=True),
    Table("convergence", "history", KEYS + ("threshold_fraction", "reached", "epoch_below"),
          union=True),
    Table("gradient_decay", "history",
          KEYS + ("epoch", "slope_log10_per_layer", "r_squared"), union=True),
    Table("gradient_consistency", "history",
          KEYS + ("windows", "mean_rank_correlation", "min_rank_correlation"), union=True),
    Table("activation_cost", "history", ("experiment", "variant", "activation") + TIMING_COLUMNS,
          union=True),
    Table("loss_summary", "history", ("experiment", "variant", "activation", "epoch") + LOG_SUMMARY),
    Table("gradient_flow_summary", "history",
          ("experiment", "variant", "activation", "epoch", "layer") + LOG_SUMMARY),
    Table("gradient_ratio_summary", "history",
          ("experiment", "variant", "activation", "epoch") + LOG_SUMMARY),
    # weights: forward passes of the initial and trained weights of one experiment
    Table("neurons", "weights", NEURON_KEYS + (
        "neuron", "diverged", "min_output", "max_output", "max_abs_derivative", "output_std",
        "saturated", "dead_zero", "dead_nonpositive", "dead_no_gradient"), union=True),
    Table("dead_neurons", "weights",
          NEURON_KEYS + ("definition", "diverged", "dead_fraction"), union=True),
    Table("sparsity", "weights", NEURON_KEYS + (
        "diverged", "exact_zero_fraction", "near_zero_fraction", "saturated_fraction"), union=True),
    Table("representations", "weights",
          NEURON_KEYS + ("diverged", "effective_rank", "mean_output_std"), union=True),
    Table("neuron_changes", "weights", KEYS + (
        "layer", "definition", "diverged", "dead_at_init", "dead_after", "revived", "died",
        "revival_rate"), union=True),
    Table("weight_change", "weights", KEYS + (
        "layer", "diverged", "init_norm", "final_norm", "relative_change"), union=True),
    Table("neuron_fates", "weights", KEYS + (
        "outcome", "layer", "definition", "diverged", "units", "alive_at_init", "died",
        "came_back", "alive_at_end", "died_fraction", "revival_rate", "end_revival_rate"),
          union=True),
    Table("layer_reset", "weights", KEYS + (
        "layer", "diverged", "baseline_mse", "loss_trained", "loss_reset", "reset_increase"),
          union=True),
    Table("activation_hist", "weights",
          NEURON_KEYS + ("diverged", "bin_left", "bin_right", "count", "fraction"), union=True),
    # per variant only: one row per run, shown layer, neuron and input (26 MB over the default
    # variants); no claim or figure needs them joined
    Table("hidden_activations", "weights", NEURON_KEYS + ("neuron", "x", "activation_value")),
    Table("dead_neurons_summary", "weights",
          ("experiment", "variant", "stage", "activation", "definition") + SUMMARY),
    Table("sparsity_summary", "weights", ("experiment", "variant", "stage", "activation") + SUMMARY),
    # capacity: test errors of every target of one experiment
    Table("target_runs", "capacity", TARGET_KEYS + RUN_COLUMNS, union=True),
    Table("capacity", "capacity", TARGET_KEYS + ("diverged", "train_mse", "test_mse"), union=True),
    Table("predictions", "capacity", TARGET_KEYS + ("x", "y_pred", "y_true"), union=True),
    Table("capacity_summary", "capacity",
          ("experiment", "variant", "activation", "target") + LOG_SUMMARY),
    Table("capacity_winners", "capacity", (
        "experiment", "variant", "target", "best", "best_test_mse", "runner_up", "runner_up_test_mse",
        "n_pairs", "mean_log10_ratio", "ci_low", "ci_high", "seeds_best_wins", "lead_holds")),
]}
# Tables that are not per experiment.
ACTIVATION_CURVES = Table("activation_curves", "curves",
                          ("activation", "label", "formula", "x", "value", "derivative"))


def job_tables(job: str) -> list[str]:
    """Names of the tables one metrics job writes, in registry order."""
    return [t.name for t in TABLES.values() if t.job == job]


def job_outputs(job: str, experiment: str) -> dict[str, str]:
    return {name: TABLES[name].path(experiment) for name in job_tables(job)}


def union_tables(kind: str) -> list[str]:
    jobs = KIND_JOBS[kind]
    return [t.name for t in TABLES.values() if t.union and t.job in jobs]


def kind_of_table(name: str) -> str:
    job = TABLES[name].job
    return next(k for k, jobs in KIND_JOBS.items() if job in jobs)


def table_columns(relpath: str) -> tuple[str, ...] | None:
    """Columns of the table at ``relpath`` (relative to results/), None if no table lives there."""
    parts = relpath.removesuffix(".parquet").split("/")
    if parts[0] != "metrics":
        return None
    if len(parts) == 2 and parts[1] == ACTIVATION_CURVES.name:
        return ACTIVATION_CURVES.columns
    name = parts[-1]
    if name not in TABLES:
        return None
    if len(parts) == 2 and TABLES[name].union:
        return TABLES[name].columns
    return TABLES[name].columns if len(parts) == 3 else None


def curves_path() -> str:
    return f"{RESULTS}/metrics/{ACTIVATION_CURVES.name}.parquet"


# ------------------------------------------------------------------ figures and audit
FIGURE_FORMATS = ("png", "pdf")  # what figures.formats may list (the config chooses; png always)


def figure_path(name: str, ext: str = "png") -> str:
    return f"{RESULTS}/figures/{name}.{ext}"


def reading_figure_path(claim: str) -> str:
    """The specification curve of one claim (PNG): its verdict under every reading."""
    return f"{RESULTS}/figures/readings/{claim}.png"


def grid_figure_path(grid: str) -> str:
    """The figure of one grid variant (PNG): each claim it changes against the grid's values."""
    return f"{RESULTS}/figures/grids/{grid}.png"


AUDIT = {
    "claims_parquet": f"{RESULTS}/audit/claims.parquet",
    "claims_markdown": f"{RESULTS}/audit/claims.md",
    "claims_html": f"{RESULTS}/audit/claims.html",
    "sensitivity_parquet": f"{RESULTS}/audit/sensitivity.parquet",
    "sensitivity_markdown": f"{RESULTS}/audit/sensitivity.md",
    "sensitivity_html": f"{RESULTS}/audit/sensitivity.html",
    "manifest": f"{RESULTS}/audit/manifest.json",
    "config": f"{RESULTS}/audit/config.yaml",
    # the same, readable inside the HTML report
    "manifest_html": f"{RESULTS}/audit/manifest.html",
    "config_html": f"{RESULTS}/audit/config.html",
    # every claim under every reading the study's words allow (actflow.claims)
    "readings_parquet": f"{RESULTS}/audit/readings.parquet",
    "readings_markdown": f"{RESULTS}/audit/readings.md",
    "readings_html": f"{RESULTS}/audit/readings.html",
    # for every number that fails: the closest setting measured, and how far it is
    "explanations_parquet": f"{RESULTS}/audit/explanations.parquet",
    "explanations_markdown": f"{RESULTS}/audit/explanations.md",
    "explanations_html": f"{RESULTS}/audit/explanations.html",
    "reexecution_parquet": f"{RESULTS}/audit/reexecution.parquet",
    "reexecution_markdown": f"{RESULTS}/audit/reexecution.md",
    # the comparison with another run (config compare_with; actflow.compare)
    "comparison_parquet": f"{RESULTS}/audit/comparison.parquet",
    "comparison_claims": f"{RESULTS}/audit/comparison_claims.parquet",
    "comparison_settings": f"{RESULTS}/audit/comparison_settings.parquet",
    "comparison_markdown": f"{RESULTS}/audit/comparison.md",
    "comparison_html": f"{RESULTS}/audit/comparison.html",
    "comparison_png": f"{RESULTS}/audit/comparison.png",
    "comparison_pdf": f"{RESULTS}/audit/comparison.pdf",
}
# A run packed for another person to compare with (actflow.bundle.make_bundle).
BUNDLE = {"archive": f"{RESULTS}/bundle.tar.gz", "checksum": f"{RESULTS}/bundle.tar.gz.sha256"}
COMPARISON = {k: v for k, v in AUDIT.items() if k.startswith("comparison")}


def bundle_files(variant_kinds: dict[str, str], weights_of=()) -> list[str]:
    """The files a bundle packs, as paths under results/: every union table, every summary
    table of every variant (``variant_kinds``: variant -> kind), the activation curves, the
    claims and sensitivity verdicts, the manifest and the resolved config; and
    ``weights_of`` (training folders' weight files) when weights are asked for."""
    files = [t.union_path() for t in TABLES.values() if t.union]
    for variant, kind in variant_kinds.items():
        jobs = KIND_JOBS[kind]
        files += [t.path(variant) for t in TABLES.values()
                  if t.job in jobs and t.name.endswith(("_summary", "_winners"))]
    files.append(curves_path())
    files += [AUDIT[k] for k in ("claims_parquet", "sensitivity_parquet", "manifest", "config")]
    files += list(weights_of)
    return sorted(set(files))


# Written next to the outputs but not outputs of the DAG's results: not in the manifest.
# When a hidden unit counts as dead (dead_neurons.parquet, column definition), for every
# training input: its output is exactly 0, its output is <= 0, or its derivative is below
# neurons.grad_tol. The one list: the metrics, the claims and Figure 7 use it in this order.
DEAD_DEFINITIONS = ("zero", "nonpositive", "no_gradient")
LOGS, BENCHMARKS = f"{RESULTS}/logs", f"{RESULTS}/benchmarks"  # a job's log:, benchmark:
SCRATCH = f"{RESULTS}/audit/scratch"  # where the re-execution audit retrains, then deletes
UNCERTIFIED_DIRS = (LOGS, BENCHMARKS, SCRATCH)


def log(name: str) -> str:
    """A job's log file: results/logs/<name>.log (name may hold wildcards)."""
    return f"{LOGS}/{name}.log"


def benchmark(name: str) -> str:
    """A job's Snakemake benchmark file: results/benchmarks/<name>.tsv."""
    return f"{BENCHMARKS}/{name}.tsv"
# The HTML report (snakemake --report) and the run's summary (actflow.summary): the report's
# front page and what a finished run prints; made after the manifest, from it.
REPORT = f"{RESULTS}/report.html"
SUMMARY = f"{RESULTS}/summary.md"
FRONT_PAGE = f"{RESULTS}/audit/front_page.rst"  # the report's front page: description + summary
# The manifest job's outputs.
MANIFEST_OUTPUTS = (AUDIT["manifest"], AUDIT["config"], AUDIT["manifest_html"], AUDIT["config_html"])
# The bundle and the comparison are made from the manifest (and another run), after it.
UNCERTIFIED_FILES = (*MANIFEST_OUTPUTS, AUDIT["reexecution_parquet"],
                     AUDIT["reexecution_markdown"], REPORT, SUMMARY, FRONT_PAGE,
                     *BUNDLE.values(), *COMPARISON.values())
