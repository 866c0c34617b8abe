# Snakemake glue: config validation, input functions, target lists and the run's start and end.
# What a config makes (variants, datasets, priorities, captions, the claims' tables) is computed
# by the package (actflow.variants, .budget, .figures, .claims; tested in tests/test_plan.py),
# and every file name, table name and figure comes from its registries (actflow.layout,
# actflow.figures); nothing is spelt out here.
import atexit
import gc
import os
import shutil
import sys
import time
from pathlib import Path

from snakemake.logging import logger

# As Snakemake's process exits, the garbage collector's objects are frozen (gc.freeze), so
# that the interpreter's teardown skips the collections that would walk every object Snakemake
# and its plugins built (0.4 s of every invocation on a 2-core AMD EPYC: a no-op rerun, a dry
# run, each SLURM job's step). Only the exit changes; jobs do the same (actflow.io.setup_logging).
atexit.register(gc.freeze)

SCRIPTS = os.path.join(WORKFLOW_DIR, "workflow", "scripts")
sys.path.insert(0, SCRIPTS)

from actflow import claims as claimreg  # noqa: E402
from actflow import figures as figreg  # noqa: E402
from actflow import budget, guard, layout  # noqa: E402
from actflow import variants as varreg  # noqa: E402
from actflow.codedeps import cached_package_modules  # noqa: E402
from actflow.config import (  # noqa: E402
    AFTER_RUN_KEYS,
    SCHEMA_PATH,
    ConfigError,
    hyper,
    load_yaml,
    validate,
)

try:
    for (
        _file
    ) in workflow.configfiles:  # YAML keeps the last of a duplicate key silently
        load_yaml(_file)
    validate(config, SCHEMA_PATH)
except ConfigError as err:
    raise WorkflowError(f"Invalid configuration: {err}") from None

ACTIVATIONS = config["activations"]
# What each figure of the study is saved as (png always; the report shows it).
FIGURE_FORMATS = config["figures"]["formats"]

# The study's experiments and every variant, resolved: name -> actflow.variants.Variant.
VARIANTS = {
    v.name: v for v in varreg.resolve(config, varreg.expand_entries(config["variants"]))
}
SINE = [n for n, v in VARIANTS.items() if v.kind == "sine"]
CAPACITY = [n for n, v in VARIANTS.items() if v.kind == "capacity"]
STUDY = [n for n, v in VARIANTS.items() if v.is_study]
OF_KIND = {"sine": SINE, "capacity": CAPACITY}
# The jobs' scheduling priorities: data, tables and the audit, then figures, then training,
# the costliest first (actflow.budget.priorities says why).
PRIORITY = budget.priorities(VARIANTS.values())


# Each rule's code inputs, remembered between invocations while the package is unchanged.
CODEDEPS_CACHE = os.path.join(".snakemake", "actflow", "codedeps.json")


def code(script):
    """The package modules that ``script`` imports (transitively) as inputs of its rule, so that
    editing one reruns exactly the jobs that run it. Relative to the working directory, so that
    a moved or copied project keeps its cache."""
    found = cached_package_modules(
        os.path.join(SCRIPTS, script), os.path.join(SCRIPTS, "actflow"), CODEDEPS_CACHE
    )
    return [os.path.relpath(p) for p in found]


def train_hyper(wildcards):
    """The training settings of a variant (the study's experiments are variants too)."""
    return hyper(VARIANTS[wildcards.variant])


def train_priority(wildcards):
    """A training job's priority: below every other job's, costlier ones first
    (actflow.budget.priorities)."""
    return PRIORITY.training[wildcards.variant]


def variant_seeds(wildcards):
    """The training seeds of a variant: its own `seeds:` or the config's."""
    return list(VARIANTS[wildcards.variant].seeds)


def variant_keys(wildcards):
    """The identifying columns of a variant's rows: its experiment and its name."""
    return {"experiment": VARIANTS[wildcards.variant].of, "variant": wildcards.variant}


def targets_of(variant):
    return VARIANTS[variant].targets


def variant_targets(wildcards):
    return targets_of(wildcards.variant)


# ------------------------------------------------------------------ datasets
# Variants whose data settings are equal share one dataset (actflow.variants.datasets).
DATASETS = varreg.datasets(VARIANTS.values())


def datasets(kind):
    return DATASETS.names(kind)


def dataset_params(wildcards, kind):
    return DATASETS.settings[(kind, wildcards.dataset)]


def sine_params(wildcards):
    return dataset_params(wildcards, "sine")


TEST_GRID_KEYS = ("targets", "n_test", "x_min", "x_max")  # all the test grids depend on


def target_train_params(wildcards):
    d = dataset_params(wildcards, "capacity")
    return {k: v for k, v in d.items() if k != "n_test"}


def target_test_params(wildcards):
    d = dataset_params(wildcards, "capacity")
    return {k: d[k] for k in TEST_GRID_KEYS}


def training_data(wildcards):
    v = VARIANTS[wildcards.variant]
    ds = DATASETS.of[v.name]
    if v.kind == "sine":
        return layout.sine_data(ds)
    return layout.target_data(ds, "train")


def variant_sine_data(wildcards):
    return layout.sine_data(DATASETS.of[wildcards.variant])


def variant_target_data(wildcards):
    ds = DATASETS.of[wildcards.variant]
    return {s: layout.target_data(ds, s) for s in ("train", "test")}


def train_gpus():
    """The gpu resource of training jobs: 1 when they will train on CUDA."""
    if config["device"] == "cuda":
        return 1
    if config["device"] == "auto":
        return int(shutil.which("nvidia-smi") is not None)
    return 0


# ------------------------------------------------------------------ file lists
def per_activation(variant, name):
    """One training output (layout.TRAIN_FILES key) of every activation of a variant."""
    return [layout.train_outputs(variant, a)[name] for a in ACTIVATIONS]


def variant_inputs(name):
    """Input function: a training output of every activation of the variant in the wildcards."""

    def files(wildcards):
        return per_activation(wildcards.variant, name)

    return files


def variant_tables(variant):
    kind = VARIANTS[variant].kind
    return [
        p
        for job in layout.KIND_JOBS[kind]
        for p in layout.job_outputs(job, variant).values()
    ]


def union_tables(kind):
    return [layout.TABLES[t].union_path() for t in layout.union_tables(kind)]


def union_inputs(kind):
    """The per-variant tables that a kind's union tables join (every variant of the kind), by
    table name."""
    return {
        t: [layout.TABLES[t].path(v) for v in OF_KIND[kind]]
        for t in layout.union_tables(kind)
    }


def union_outputs(kind):
    """A kind's union tables, by table name."""
    return {t: layout.TABLES[t].union_path() for t in layout.union_tables(kind)}


def figure_files(names):
    return [layout.figure_path(n, ext) for n in names for ext in FIGURE_FORMATS]


def experiment_target(experiment):
    """What an experiment's target builds (its tables, its unions, its figures)."""
    kind = layout.EXPERIMENT_KINDS[experiment]
    extra = [layout.curves_path()] if experiment == "exp1" else []
    return (
        variant_tables(experiment)
        + union_tables(kind)
        + extra
        + figure_files(figreg.by_experiment(experiment))
    )


def data_files():
    out = [layout.sine_data(n) for n in datasets("sine")]
    return out + [
        layout.target_data(n, s)
        for n in datasets("capacity")
        for s in ("train", "test")
    ]


def train_files():
    return [p for n in layout.TRAIN_FILES for p in per_activation_all(n)]


def per_activation_all(name):
    """One training output (layout.TRAIN_FILES) of every variant and activation."""
    return [p for v in VARIANTS for p in per_activation(v, name)]


# ------------------------------------------------------------------ figures
def figure_inputs(wildcards):
    return figreg.FIGURES[wildcards.figure].tables


def figure_study_values(wildcards):
    """The study's numbers the figure draws beside the measured ones, from the claims file."""
    return claimreg.study_values(CLAIMS, figreg.FIGURES[wildcards.figure].number)


def figure_variant_settings(wildcards):
    """What each variant changes, for a figure that draws the variants: those of its
    experiment (else nothing, so that a new variant redraws only the figures it is in).
    """
    fig = figreg.FIGURES[wildcards.figure]
    if not fig.settings:
        return {}
    exp = fig.options.get("experiment")
    return {
        v.name: varreg.describe(v, config["seeds"])
        for v in VARIANTS.values()
        if exp is None or v.of == exp
    }


def figure_keywords(wildcards):
    return list(figreg.FIGURES[wildcards.figure].tables)


CAPTION_FIELDS = figreg.caption_fields(config, VARIANTS.values())


def figure_caption(wildcards):
    return figreg.FIGURES[wildcards.figure].caption_for(CAPTION_FIELDS)


def figure_category(wildcards):
    return figreg.category(wildcards.figure)


def figure_label(wildcards):
    # one label: the report would show a second label with two values in a category of two
    # figures as a toggle between them
    fig = figreg.FIGURES[wildcards.figure]
    return {layout.REPORT_LABEL[fig.experiment]: fig.label}


# ------------------------------------------------------------------ claims
def claims_file():
    """audit.claims relative to the working directory, else to the workflow's folder (the
    default config/claims.yaml of a run with --directory elsewhere, or of a module)."""
    path = config["audit"]["claims"]
    if os.path.isabs(path) or os.path.exists(path):
        return path
    own = os.path.join(WORKFLOW_DIR, path)
    return own if os.path.exists(own) else path


CLAIMS_FILE = claims_file()
try:
    CLAIMS = claimreg.load(CLAIMS_FILE)
except claimreg.ClaimError as err:
    raise WorkflowError(f"Invalid claims file: {err}") from None
# The runs table of each kind.
RUN_KINDS = {k: t.name for k, t in claimreg.RUNS_TABLES.items()}
# (name, experiment, overrides, question) of the study's settings and every variant
VARIANT_ROWS = [
    (v.name, v.of, varreg.describe(v, config["seeds"]), v.question)
    for v in VARIANTS.values()
]


CLAIM_TABLES = claimreg.tables_read(CLAIMS, VARIANTS.values())
# The claims read in more than one way: each gets a specification curve (a figure), drawn by
# READING_FIGURE_JOBS jobs that share them (claims dealt out in turn).
READ_CLAIMS = claimreg.read_in_several_ways(CLAIMS)
READING_FIGURE_JOBS = 4
READ_CLAIM_PARTS = claimreg.deal(READ_CLAIMS, READING_FIGURE_JOBS)


def reading_figure_files():
    return [layout.reading_figure_path(c) for c in READ_CLAIMS]


# The grid variants (actflow.variants.grids): each gets a figure of the claims it changes.
GRIDS = varreg.grids(config["variants"], config)


def grid_figure_files():
    return [layout.grid_figure_path(g) for g in GRIDS]


def grid_label(wildcards):
    return {layout.REPORT_LABEL["sensitivity"]: f"grid {wildcards.grid}"}


def sensitivity_caption():
    return figreg.sensitivity_caption(config, VARIANTS.values())


# ------------------------------------------------------------------ bundle and comparison
# The config the manifest records: all of it but the keys that only say what to do with the
# finished run (actflow.config.AFTER_RUN_KEYS), so that setting them reruns nothing.
RUN_CONFIG = {k: v for k, v in config.items() if k not in AFTER_RUN_KEYS}
BUNDLE_FILES = layout.bundle_files(
    {v: VARIANTS[v].kind for v in VARIANTS},
    weights_of=per_activation_all("weights") if config["bundle_weights"] else (),
)


def compare_source():
    """The other run of the comparison (config compare_with), opened and verified when the
    workflow is read: a damaged or foreign bundle stops the run before any job, with nothing
    written. Returns the file the comparison job watches (the bundle, or the other run's
    manifest), None when compare_with is not set."""
    other = config["compare_with"]
    if not other:
        return None
    from actflow import bundle, compare

    try:
        return compare.check(other)
    except bundle.BundleError as err:
        raise WorkflowError(str(err)) from None


COMPARE_SOURCE = compare_source()


def comparison_source(wildcards):
    if COMPARE_SOURCE is None:
        raise WorkflowError(
            "the comparison needs another run: give its bundle or results folder, e.g. "
            "snakemake --cores all compare --config compare_with=path/to/bundle.tar.gz "
            "(or set compare_with in the config)"
        )
    return COMPARE_SOURCE


def comparison_tables():
    """The files of this run that the comparison reads (besides the manifest)."""
    from actflow import compare

    return compare.needed_files()


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
    if not os.path.exists(
        layout.RESULTS
    ):  # a folder without an earlier run: say where to
        print(  # (stderr: the --dag / --rulegraph output on stdout stays clean)
            f"No earlier run in {os.getcwd()}: this run writes a new "
            f"{os.path.join(os.getcwd(), layout.RESULTS)}",
            file=sys.stderr,
        )


# Where the results edited by hand since their job wrote them are kept (set_aside_edited).
EDITED = os.path.join(".snakemake", "actflow", "edited")


def set_aside_edited():
    """A result changed since the job that wrote it (edited by hand, truncated, copied over:
    its job's log records another SHA-256, actflow.guard.edited) is moved to EDITED before the
    DAG is built, and returned: rule all asks for it, so that the default target rebuilds it
    (Snakemake would not rebuild a missing intermediate whose downstream files exist), and the
    manifest never certifies an edit."""
    moved = guard.set_aside(".", guard.edited(".", layout.AUDIT["manifest"]), EDITED)
    for rel, dest in moved.items():
        print(  # stderr: the --dag / --rulegraph output on stdout stays clean
            f"{rel} changed after the job that wrote it (edited by hand?): kept as {dest}; "
            "the default target rebuilds it (make run; for another target, make repair)",
            file=sys.stderr,
        )
    return sorted(moved)


STARTED = [float("inf")]  # when this run's first job started (onstart)


def run_started():
    """Before any job (not on dry runs): refuse to read a damaged result, remove what killed
    jobs left behind."""
    bad = guard.tampered(guard.certified_files(Path(".")), layout.AUDIT["manifest"])
    if bad:
        raise WorkflowError(
            f"{len(bad)} finished result(s) changed since the manifest certified them, with "
            f"their size and modification time kept (damaged or edited, not rewritten by a "
            f"job): {', '.join(bad)}. No job has read them. Delete them and run again (or "
            f"make repair), which rebuilds them and what depends on them."
        )
    for tmp in guard.stale_temporaries():
        os.unlink(tmp)
        logger.info(f"Removed {tmp}, a temporary file a killed job left behind")
    STARTED[0] = time.time()


def run_succeeded():
    print_summary()


def print_summary():
    """After a run that wrote results/summary.md (the summary job): its findings in a few lines."""
    if (
        not os.path.exists(layout.SUMMARY)
        or os.path.getmtime(layout.SUMMARY) < STARTED[0]
    ):
        return
    from actflow import summary

    try:
        text = summary.terminal(summary.load())
    except (
        OSError,
        ValueError,
        KeyError,
    ) as err:  # the run succeeded: say, do not fail
        text = f"(no summary: {err}; see {layout.SUMMARY})"
    logger.info(f"\n{text}")


def run_failed():
    lost = guard.missing(".", layout.AUDIT["manifest"])
    if lost:
        logger.warning(
            f"{len(lost)} result(s) that the manifest certified are gone (Snakemake deleted "
            f"them before it reran the job(s) that failed): {', '.join(lost[:10])}"
            f"{' and more (make verify lists all)' if len(lost) > 10 else ''}. Fix the cause "
            f"and run again, which rebuilds them under the new settings; or run make repair, "
            f"which rebuilds them byte-identical under the settings the manifest recorded."
        )
