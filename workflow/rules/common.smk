# Config validation, target lists and small helpers. Every file name, table name and figure
# comes from the package's registries (actflow.layout, actflow.figures); nothing is spelt out here.
import os
import shutil
import sys
from pathlib import Path

import yaml
from snakemake.logging import logger

SCRIPTS = os.path.join(workflow.basedir, "workflow", "scripts")
sys.path.insert(0, SCRIPTS)

from actflow import claims as claimreg  # noqa: E402
from actflow import figures as figreg  # noqa: E402
from actflow import guard, layout  # noqa: E402
from actflow.codedeps import package_modules  # noqa: E402
from actflow.config import ConfigError, load_yaml, validate  # noqa: E402

SCHEMA = os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml")
try:
    for (
        _file
    ) in workflow.configfiles:  # YAML keeps the last of a duplicate key silently
        load_yaml(_file)
    validate(config, SCHEMA)
except ConfigError as err:
    raise WorkflowError(f"Invalid configuration: {err}") from None

# The optimisation settings of a training job: all of an experiment's keys but its data.
TRAIN_KEYS = list(
    yaml.safe_load(Path(SCHEMA).read_text())["definitions"]["training"]["properties"]
)
ACTIVATIONS = config["activations"]
TARGETS = config["exp3"]["targets"]
SINE_EXPERIMENTS = [e for e, k in layout.EXPERIMENT_KINDS.items() if k == "sine"]
CAPACITY_EXPERIMENTS = [
    e for e, k in layout.EXPERIMENT_KINDS.items() if k == "capacity"
]


def code(script):
    """The package modules that ``script`` imports (transitively) as inputs of its rule, so that
    editing one reruns exactly the jobs that run it. Relative to the working directory, so that
    a moved or copied project keeps its cache."""
    found = package_modules(
        os.path.join(SCRIPTS, script), os.path.join(SCRIPTS, "actflow")
    )
    return [os.path.relpath(p) for p in found]


def hyper(experiment):
    return {k: config[experiment][k] for k in sorted(TRAIN_KEYS)}


def train_hyper(wildcards):
    return hyper(wildcards.experiment)


def _target_data():
    noise = config["exp3"]["noise_std"]
    return config["data"] | {
        "noise_std": config["data"]["noise_std"] if noise is None else noise
    }


TARGET_TRAIN_DATA = _target_data()
TARGET_TEST_DATA = {
    "n_test": config["exp3"]["n_test"],
    "x_min": config["data"]["x_min"],
    "x_max": config["data"]["x_max"],
}


def train_gpus():
    """The gpu resource of training jobs: 1 when they will train on CUDA."""
    if config["device"] == "cuda":
        return 1
    if config["device"] == "auto":
        return int(shutil.which("nvidia-smi") is not None)
    return 0


# ------------------------------------------------------------------ file lists
def per_activation(experiment, name):
    """One training output (layout.TRAIN_FILES key) of every activation of an experiment."""
    return [layout.train_outputs(experiment, a)[name] for a in ACTIVATIONS]


def per_target(experiment, name):
    return [
        layout.train_outputs(experiment, a, t)[name]
        for t in TARGETS
        for a in ACTIVATIONS
    ]


def experiment_tables(experiment):
    kind = layout.EXPERIMENT_KINDS[experiment]
    return [
        p
        for job in layout.KIND_JOBS[kind]
        for p in layout.job_outputs(job, experiment).values()
    ]


def union_tables(kind):
    return [layout.TABLES[t].union_path() for t in layout.union_tables(kind)]


def union_inputs(wildcards):
    """The per-experiment tables that one union table joins."""
    kind = layout.kind_of_table(wildcards.table)
    experiments = SINE_EXPERIMENTS if kind == "sine" else CAPACITY_EXPERIMENTS
    return [layout.TABLES[wildcards.table].path(e) for e in experiments]


def figure_files(names):
    return [layout.figure_path(n, ext) for n in names for ext in layout.FIGURE_FORMATS]


def experiment_target(experiment):
    """What an experiment's target builds (its tables, its unions, its figures)."""
    kind = layout.EXPERIMENT_KINDS[experiment]
    extra = [layout.curves_path()] if experiment == "exp1" else []
    return (
        experiment_tables(experiment)
        + union_tables(kind)
        + extra
        + figure_files(figreg.by_experiment(experiment))
    )


def data_files():
    return [layout.sine_data()] + [
        layout.target_data(t, s) for t in TARGETS for s in ("train", "test")
    ]


def train_files():
    files = []
    for e in SINE_EXPERIMENTS:
        files += [p for n in layout.TRAIN_FILES for p in per_activation(e, n)]
    for e in CAPACITY_EXPERIMENTS:
        files += [p for n in layout.TRAIN_FILES for p in per_target(e, n)]
    return files


# ------------------------------------------------------------------ figures
def figure_inputs(wildcards):
    return figreg.FIGURES[wildcards.figure].tables


def figure_settings():
    """The config as the captions' fields see it (lists written out for reading)."""
    shown = config["neurons"]["show_layers"]
    listed = ", ".join(map(str, shown[:-1])) + (" and " if len(shown) > 1 else "")
    return config | {
        "neurons": config["neurons"] | {"show_layers": listed + str(shown[-1])}
    }


def figure_caption(wildcards):
    return figreg.FIGURES[wildcards.figure].caption_for(figure_settings())


def figure_category(wildcards):
    return figreg.category(wildcards.figure)


def figure_label(wildcards):
    # one label: the report would show a second label with two values in a category of two
    # figures as a toggle between them
    return {"figure": figreg.FIGURES[wildcards.figure].label}


# ------------------------------------------------------------------ claims
try:
    CLAIMS = claimreg.load(config["audit"]["claims"])
except claimreg.ClaimError as err:
    raise WorkflowError(f"Invalid claims file: {err}") from None
CLAIM_TABLES = claimreg.tables(CLAIMS)
RUN_KINDS = {"sine": "runs", "capacity": "target_runs"}  # the runs table of each kind


# ------------------------------------------------------------------ guards around a run
def check_folders():
    """Every folder the rules write into must be a folder (called after all rules are read)."""
    paths = []
    for r in workflow.rules:
        for f in [*r.output, *r.log, *([r.benchmark] if r.benchmark else [])]:
            paths.append(str(f).split("{", 1)[0])  # up to the first wildcard
    try:
        guard.check_output_dirs(paths)
    except guard.GuardError as err:
        raise WorkflowError(str(err)) from None


def run_started():
    """Before any job (not on dry runs): refuse what would fail or mislead, then back up every
    finished result, so that a failing job cannot lose one (actflow.guard)."""
    if config["device"] == "cuda" and workflow.local_exec:
        import torch

        if not torch.cuda.is_available():
            raise WorkflowError(
                f"config device: cuda, but this run executes locally and torch "
                f"{torch.__version__} sees no CUDA device: set device: auto or cpu (or run "
                "on a GPU machine, or through profiles/slurm on a GPU partition)"
            )
    jobs = list(workflow.dag.needrun_jobs())
    rebuilt = {str(f) for j in jobs for f in j.output}
    read = {str(f) for j in jobs for f in j.input} - rebuilt
    bad = guard.tampered(read, layout.AUDIT["manifest"])
    if bad:
        raise WorkflowError(
            f"{len(bad)} finished result(s) changed since the manifest certified them, with "
            f"their size and modification time kept (damaged or edited, not rewritten by a "
            f"job): {', '.join(bad)}. No job has read them. Delete them and run again (or "
            f"make repair), which rebuilds them and what depends on them."
        )
    guard.backup(".", workflow.persistence)


def run_failed():
    restored = guard.restore(".", workflow.persistence)
    guard.discard_backup(".")
    if restored:
        logger.warning(
            f"Restored {len(restored)} finished result(s) that the failed job(s) had deleted, "
            f"byte-identical, with their old metadata: {', '.join(restored)}"
        )
