"""Adapter: rule activation_curves -> actflow.jobs.activation_curves."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
jobs.activation_curves(snakemake.output[0], snakemake.params.activations, dict(snakemake.params.items()))
