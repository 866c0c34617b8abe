"""Adapter: rule train -> actflow.jobs.train_job (the device from the config: not a param, so
that changing it reruns no finished training; rule train says why)."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
p = snakemake.params
spec = jobs.TrainSpec(
    data=snakemake.input.data, keys=p.ids | {"activation": snakemake.wildcards.activation},
    seeds=p.seeds, hp=p.hp, device=snakemake.config["device"], log_every=p.log_every,
    unit_every=p.unit_every,
    targets=p.targets,
)
jobs.train_job(spec, dict(snakemake.output.items()), snakemake.threads)
