"""Adapter: rules train and train_target -> actflow.jobs.train_job."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0])
p, w = snakemake.params, snakemake.wildcards
keys = {"experiment": w.experiment, "activation": w.activation}
if "target" in w.keys():
    keys["target"] = w.target
jobs.train_job(
    snakemake.input.data, dict(snakemake.output.items()), keys, p.seeds, p.hp, p.device,
    snakemake.threads, log_every=p.log_every, compile=p.compile,
    config=dict(p.items()) | {"data": snakemake.input.data},
)
