"""How do activation functions shape training? A reproducible audit of the study.

Data flows one way: config -> data -> train (one job per experiment x activation,
all seeds inside) -> metrics (Parquet) -> figures. See README.md for the commands
and docs/outputs.md for every output file.
"""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    experiment="|".join(EXPERIMENTS_ON_SINE),
    activation="[a-z_0-9]+",
    target="[a-z_0-9]+",


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/audit.smk"


localrules:
    all,
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
