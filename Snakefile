"""How do activation functions shape training? A reproducible audit of the study.

Data flows one way: config -> data -> train (one job per experiment x activation,
all seeds inside) -> metrics (Parquet) -> figures -> audit. See README.md for the
commands and docs/outputs.md for every output file.
"""

import os
import re

from snakemake.utils import min_version

min_version("9.0")

# This file's folder: the workflow's code, schemas and default config live under it, also when
# it runs with --directory elsewhere or is used as a module of another workflow.
WORKFLOW_DIR = workflow.current_basedir.get_path_or_uri(secret_free=True)
# The working directory's config/config.yaml where there is one (a deployed copy), else the
# workflow's own. Used as a module, the including workflow's `config:` replaces it.
LOCAL_CONFIG = os.path.join("config", "config.yaml")
CONFIG_FILE = (
    LOCAL_CONFIG
    if os.path.exists(LOCAL_CONFIG)
    else os.path.join(WORKFLOW_DIR, LOCAL_CONFIG)
)


configfile: CONFIG_FILE


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# Only the configured names: a request for another fails at planning, naming the file.
wildcard_constraints:
    activation="|".join(ACTIVATIONS),
    variant="|".join(map(re.escape, VARIANTS)),


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/audit.smk"


check_folders()


onstart:
    run_started()


onsuccess:
    run_succeeded()


onerror:
    run_failed()


# On a cluster these run on the submitting machine: seconds each and little memory, they would
# spend longer waiting for the scheduler than working (with the warm worker, well under a second).
localrules:
    all,
    verify,
    exp1,
    exp2,
    exp3,
    sensitivity,
    data_sine,
    data_targets_train,
    data_targets_test,
    activation_curves,
    union_table,
    figure,
    audit_claims,
    manifest,
    bundle,
    comparison,
    compare,


rule all:
    """Everything of the default configuration: tables, figures, claim verdicts, manifest."""
    default_target: True
    input:
        rules.exp1.input,
        rules.exp2.input,
        rules.exp3.input,
        rules.sensitivity.input,
        rules.audit_claims.output,
        rules.manifest.output,
        # with compare_with set: the comparison with that run too
        rules.comparison.output if COMPARE_SOURCE else [],
