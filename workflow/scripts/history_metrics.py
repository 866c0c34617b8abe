"""Adapter: rule history_metrics -> actflow.jobs.history_metrics."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
i = snakemake.input
p = snakemake.params
jobs.history_metrics(i.loss, i.grads, i.runs, dict(snakemake.output.items()), p.outcomes,
                     {"variant": snakemake.wildcards.variant} | dict(p.items()),
                     timing_paths=i.timing, keys=p.ids, activations=p.activations)
