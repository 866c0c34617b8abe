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

# ------------------------------------------------------------------ experiments
# The study's experiments and the kind of pipeline each runs. A "sine" experiment trains on the
# noisy sine data and gets history and weight metrics; a "capacity" experiment trains on each
# target function and gets test errors.
EXPERIMENT_KINDS = {"exp1": "sine", "exp2": "sine", "exp3": "capacity"}
EXPERIMENT_TITLES = {
    "exp1": "Experiment 1: gradient flow",
    "exp2": "Experiment 2: dead neurons",
    "exp3": "Experiment 3: representational capacity",
}
KIND_JOBS = {"sine": ("history", "weights"), "capacity": ("capacity",)}

# ------------------------------------------------------------------ training outputs
# What every training job writes into its folder: name -> file.
TRAIN_FILES = {
    "loss": "loss.parquet",
    "grads": "grads.parquet",
    "runs": "runs.parquet",
    "weights": "weights.safetensors",
}


def train_dir(experiment: str, activation: str, target: str | None = None) -> str:
    if target is None:
        return f"{RESULTS}/train/{experiment}/{activation}"
    return f"{RESULTS}/train/{experiment}/{target}/{activation}"


def train_outputs(experiment: str, activation: str, target: str | None = None) -> dict[str, str]:
    folder = train_dir(experiment, activation, target)
    return {name: f"{folder}/{file}" for name, file in TRAIN_FILES.items()}


# ------------------------------------------------------------------ data
def sine_data() -> str:
    return f"{RESULTS}/data/sine.parquet"


def target_data(target: str, split: str) -> str:
    """Experiment 3's data of one target; split is ``train`` or ``test``."""
    return f"{RESULTS}/data/targets/{target}_{split}.parquet"


# ------------------------------------------------------------------ metric tables
KEYS = ("experiment", "activation", "seed")
SUMMARY = ("metric", "n_seeds", "mean", "std", "n_nonfinite", "ci_low", "ci_high", "aggregate")
LOG_SUMMARY = ("metric", "n_seeds", "mean", "std_log10", "n_nonfinite", "ci_low", "ci_high",
               "aggregate")
NEURON_KEYS = ("experiment", "stage", "activation", "seed", "layer")
# One row per trained run, as the training job writes it: how it ended and its settings.
TRAIN_RUN_COLUMNS = ("diverged", "diverged_epoch", "last_finite_loss", "final_loss",
                     "baseline_mse", "noise_mse", "epochs", "hidden_layers", "width", "optimizer",
                     "learning_rate", "momentum", "device")
# The metrics' runs tables add the outcome class (config `outcomes`, actflow.tables.outcomes).
RUN_COLUMNS = TRAIN_RUN_COLUMNS + ("outcome",)


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
    Table("loss_summary", "history", ("experiment", "activation", "epoch") + LOG_SUMMARY),
    Table("gradient_flow_summary", "history",
          ("experiment", "activation", "epoch", "layer") + LOG_SUMMARY),
    Table("gradient_ratio_summary", "history", ("experiment", "activation", "epoch") + LOG_SUMMARY),
    # weights: forward passes of the initial and trained weights of one experiment
    Table("neurons", "weights", NEURON_KEYS + (
        "neuron", "diverged", "min_output", "max_output", "max_abs_derivative", "output_std",
        "dead_zero", "dead_nonpositive", "dead_no_gradient"), union=True),
    Table("dead_neurons", "weights",
          NEURON_KEYS + ("definition", "diverged", "dead_fraction"), union=True),
    Table("sparsity", "weights",
          NEURON_KEYS + ("diverged", "exact_zero_fraction", "near_zero_fraction"), union=True),
    Table("activation_hist", "weights",
          NEURON_KEYS + ("diverged", "bin_left", "bin_right", "count", "fraction"), union=True),
    Table("hidden_activations", "weights",
          NEURON_KEYS + ("neuron", "x", "activation_value"), union=True),
    Table("dead_neurons_summary", "weights",
          ("experiment", "stage", "activation", "definition") + SUMMARY),
    Table("sparsity_summary", "weights", ("experiment", "stage", "activation") + SUMMARY),
    # capacity: test errors of every target of one experiment
    Table("target_runs", "capacity", ("experiment", "activation", "target", "seed")
          + RUN_COLUMNS, union=True),
    Table("capacity", "capacity", ("experiment", "activation", "target", "seed", "diverged",
                                   "train_mse", "test_mse"), union=True),
    Table("predictions", "capacity",
          ("experiment", "activation", "target", "seed", "x", "y_pred", "y_true"), union=True),
    Table("capacity_summary", "capacity", ("experiment", "activation", "target") + LOG_SUMMARY),
    Table("capacity_winners", "capacity", (
        "experiment", "target", "best", "best_test_mse", "runner_up", "runner_up_test_mse",
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
FIGURE_FORMATS = ("png", "pdf")


def figure_path(name: str, ext: str = "png") -> str:
    return f"{RESULTS}/figures/{name}.{ext}"


AUDIT = {
    "claims_parquet": f"{RESULTS}/audit/claims.parquet",
    "claims_markdown": f"{RESULTS}/audit/claims.md",
    "claims_html": f"{RESULTS}/audit/claims.html",
    "manifest": f"{RESULTS}/audit/manifest.json",
    "config": f"{RESULTS}/audit/config.yaml",
    "reexecution_parquet": f"{RESULTS}/audit/reexecution.parquet",
    "reexecution_markdown": f"{RESULTS}/audit/reexecution.md",
}
# Written next to the outputs but not outputs of the DAG's results: not in the manifest.
UNCERTIFIED_DIRS = (f"{RESULTS}/logs", f"{RESULTS}/benchmarks", f"{RESULTS}/audit/scratch")
UNCERTIFIED_FILES = (AUDIT["manifest"], AUDIT["config"], AUDIT["reexecution_parquet"],
                     AUDIT["reexecution_markdown"], f"{RESULTS}/report.html")
