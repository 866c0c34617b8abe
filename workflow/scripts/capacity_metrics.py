"""Adapter: rule capacity_metrics -> actflow.jobs.capacity_metrics."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0])
i, p = snakemake.input, snakemake.params
pairs = [(a, t) for t in p.targets for a in p.activations]  # the order of the rule's inputs
jobs.capacity_metrics(
    snakemake.wildcards.experiment, dict(zip(pairs, i.weights)), i.runs,
    dict(zip(p.targets, i.train)), dict(zip(p.targets, i.test)), dict(snakemake.output.items()),
    p.seeds, p.hp, p.outcomes, config=dict(p.items()),
)
