"""Adapter: rule train -> actflow.jobs.train_job."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0])
p = snakemake.params
jobs.train_job(
    snakemake.input.data, dict(snakemake.output.items()),
    p.ids | {"activation": snakemake.wildcards.activation}, p.seeds, p.hp, p.device,
    snakemake.threads, log_every=p.log_every, compile=p.compile, targets=p.targets,
    unit_every=p.unit_every,
    config=dict(p.items()) | {"data": snakemake.input.data},
)
