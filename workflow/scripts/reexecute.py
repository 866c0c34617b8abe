"""Adapter: rule audit -> actflow.audit.reexecute."""
from actflow import audit, io

io.setup_logging(snakemake.log[0])
p = snakemake.params
audit.reexecute(snakemake.input.manifest, p.scratch, p.sample, p.seed, snakemake.output.table,
                snakemake.output.markdown, threads=snakemake.threads)
