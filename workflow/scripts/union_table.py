"""Adapter: rule union_table -> actflow.jobs.union."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0])
jobs.union(snakemake.input.tables, snakemake.output[0], {"table": snakemake.wildcards.table})
