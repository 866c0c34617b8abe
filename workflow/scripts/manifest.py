"""Adapter: rule manifest -> actflow.jobs.manifest."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0])
jobs.manifest(list(snakemake.params.files), snakemake.params.config,
              snakemake.scriptdir + "/../..", snakemake.output.json, snakemake.output.config)
