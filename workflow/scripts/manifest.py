"""Adapter: rule manifest -> actflow.jobs.manifest."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
o = snakemake.output
jobs.manifest(list(snakemake.params.files), snakemake.params.config,
              snakemake.scriptdir + "/../..", o.json, o.config, o.json_html, o.config_html)
