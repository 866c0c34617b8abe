"""Adapter: rule capacity_metrics -> actflow.jobs.capacity_metrics."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0])
i, targets = snakemake.input, snakemake.params.targets
jobs.capacity_metrics(
    i.weights, i.runs, dict(zip(targets, i.train)), dict(zip(targets, i.test)),
    dict(snakemake.output.items()), config=dict(snakemake.params.items()),
)
