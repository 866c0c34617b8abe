"""Adapter: rule capacity_metrics -> actflow.jobs.capacity_metrics."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
i, p = snakemake.input, snakemake.params
jobs.capacity_metrics(
    p.ids, dict(zip(p.activations, i.weights)), i.runs, i.train, i.test,
    dict(snakemake.output.items()), p.targets, p.seeds, p.hp, p.outcomes, config=dict(p.items()),
    threads=snakemake.threads,
)
