# Config validation, wildcard constraints, target lists. Small helpers only.
import os
import shutil
import sys
from pathlib import Path

import yaml

sys.path.insert(0, os.path.join(workflow.basedir, "workflow", "scripts"))

from actflow.config import ConfigError, validate  # noqa: E402

SCHEMA = os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml")
try:
    validate(config, SCHEMA)
except ConfigError as err:
    raise WorkflowError(f"Invalid configuration: {err}") from None

# The optimisation settings of a training job: all of an experiment's keys but its data.
TRAIN_KEYS = list(
    yaml.safe_load(Path(SCHEMA).read_text())["definitions"]["training"]["properties"]
)

# Relative to the working directory, so that a moved or copied project keeps its cache.
PKG = os.path.relpath(os.path.join(workflow.basedir, "workflow", "scripts", "actflow"))
EXPERIMENTS_ON_SINE = ["exp1", "exp2"]
FIGURE_SUFFIXES = ["png", "pdf"]


def pkg(*modules):
    """Package modules that a job imports, as its inputs; editing one reruns its jobs only."""
    return [os.path.join(PKG, f"{m}.py") for m in ("__init__", "io") + modules]


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
TARGETS = config["exp3"]["targets"]
# What every training job writes (rules train and train_target; actflow.audit.TRAIN_FILES).
TRAIN_FILES = ["loss.parquet", "grads.parquet", "runs.parquet", "weights.safetensors"]


def train_gpus():
    """The gpu resource of training jobs: 1 when they will train on CUDA."""
    if config["device"] == "cuda":
        return 1
    if config["device"] == "auto":
        return int(shutil.which("nvidia-smi") is not None)
    return 0


def per_activation(experiment, name):
    return expand(
        "results/train/{experiment}/{activation}/{name}",
        experiment=experiment,
        activation=config["activations"],
        name=name,
    )


def per_target(name):
    return expand(
        "results/train/exp3/{target}/{activation}/{name}",
        target=TARGETS,
        activation=config["activations"],
        name=name,
    )


def figure_files(*names):
    return expand("results/figures/{name}.{ext}", name=names, ext=FIGURE_SUFFIXES)


# Figure name -> the Parquet tables it reads; figures read nothing else.
FIGURES = {
    "fig1_activations": ["results/metrics/activation_curves.parquet"],
    "fig2_telephone_game": [
        "results/metrics/activation_curves.parquet",
        "results/metrics/exp1/gradient_flow_summary.parquet",
    ],
    "fig3_gradient_by_layer": ["results/metrics/exp1/gradient_flow_summary.parquet"],
    "fig4_gradient_ratio": ["results/metrics/exp1/gradient_ratio_summary.parquet"],
    "fig5_gradient_over_epochs": ["results/metrics/exp1/gradient_flow_summary.parquet"],
    "fig6_loss_curves": [
        "results/metrics/exp1/loss_summary.parquet",
        "results/metrics/exp1/runs.parquet",
    ],
}
EXP1_FIGURES = list(FIGURES)
FIGURES |= {
    "fig7_dead_neurons": [
        f"results/metrics/{e}/{t}_summary.parquet"
        for e in EXPERIMENTS_ON_SINE
        for t in ("dead_neurons", "sparsity")
    ]
    + ["results/metrics/exp2/runs.parquet"],
    "fig8_activation_distributions": [
        f"results/metrics/{e}/activation_hist.parquet" for e in EXPERIMENTS_ON_SINE
    ],
    "fig9_hidden_activations": ["results/metrics/exp1/hidden_activations.parquet"],
}
EXP2_FIGURES = [f for f in FIGURES if f not in EXP1_FIGURES]
FIGURES |= {
    "fig10_capacity_heatmap": [
        "results/metrics/exp3/capacity_summary.parquet",
        "results/metrics/exp3/capacity_winners.parquet",
    ],
    "fig11_predictions": ["results/metrics/predictions.parquet"],
}
EXP3_FIGURES = ["fig10_capacity_heatmap", "fig11_predictions"]


def figure_tables(wildcards):
    return FIGURES[wildcards.figure]


def _claim_tables():
    try:
        claims = yaml.safe_load(Path(config["audit"]["claims"]).read_text())["claims"]
        return sorted({c["table"] for c in claims})
    except (OSError, yaml.YAMLError, KeyError, TypeError) as err:
        raise WorkflowError(
            f"Cannot read the claims file {config['audit']['claims']} ({err}): it must be YAML "
            "with a list under 'claims:', each claim with a 'table' (see config/claims.yaml)"
        ) from None


CLAIM_TABLES = _claim_tables()
FIGURE_CATEGORIES = {
    "1. Experiment 1: gradient flow": EXP1_FIGURES,
    "2. Experiment 2: dead neurons": EXP2_FIGURES,
    "3. Experiment 3: representational capacity": EXP3_FIGURES,
}


def figure_category(wildcards):
    return next(c for c, figs in FIGURE_CATEGORIES.items() if wildcards.figure in figs)


def figure_label(wildcards):
    return {"figure": f"Figure {wildcards.figure.split('_')[0][3:]}"}
