"""Adapter: rule reexecute -> actflow.jobs.reexecute."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
p = snakemake.params
jobs.reexecute(snakemake.input.manifest, p.scratch, p.sample, p.seed, snakemake.output.table,
               snakemake.output.markdown, threads=snakemake.threads)
