"""Adapter: rule manifest -> actflow.audit.manifest."""
from actflow import audit, io

io.setup_logging(snakemake.log[0])
audit.manifest(snakemake.params.files, snakemake.params.config, snakemake.scriptdir + "/../..",
               snakemake.output.json, snakemake.output.config)
