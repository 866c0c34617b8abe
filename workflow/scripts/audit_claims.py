"""Adapter: rule audit_claims -> actflow.jobs.audit_claims."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0])
tables = dict(zip(snakemake.params.tables, snakemake.input.tables))
jobs.audit_claims(snakemake.input.claims, tables, dict(snakemake.output.items()))
