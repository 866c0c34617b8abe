"""How do activation functions shape training? A reproducible audit of the study.

Data flows one way: config -> data -> train (one job per experiment x activation,
all seeds inside) -> metrics (Parquet) -> figures -> audit. See README.md for the
commands and docs/outputs.md for every output file.
"""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# Only the configured names: a request for another fails at planning, naming the file.
wildcard_constraints:
    activation="|".join(ACTIVATIONS),
    target="|".join(TARGETS),


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/audit.smk"


check_folders()


onstart:
    run_started()


onsuccess:
    guard.discard_backup(".")


onerror:
    run_failed()


localrules:
    all,
    verify,
    exp1,
    exp2,
    exp3,


rule all:
    """Everything of the default configuration: tables, figures, claim verdicts, manifest."""
    default_target: True
    input:
        rules.exp1.input,
        rules.exp2.input,
        rules.exp3.input,
        rules.audit_claims.output,
        rules.manifest.output,
