"""Adapter: rule audit_claims -> actflow.jobs.audit_claims."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
i, p = snakemake.input, snakemake.params
jobs.audit_claims(i.claims, dict(zip(p.tables, i.tables)), dict(zip(p.run_kinds, i.runs)),
                  [tuple(v) for v in p.variants], dict(snakemake.output.items()),
                  claims_name=p.claims_name)
