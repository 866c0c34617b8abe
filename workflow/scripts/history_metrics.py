"""Adapter: rule history_metrics -> actflow.jobs.history_metrics."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0])
i = snakemake.input
jobs.history_metrics(i.loss, i.grads, i.runs, dict(snakemake.output.items()),
                     snakemake.params.outcomes,
                     {"variant": snakemake.wildcards.variant} | dict(snakemake.params.items()))
