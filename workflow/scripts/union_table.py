"""Adapter: rules union_sine, union_capacity -> actflow.jobs.union, once per table."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
for table, out in snakemake.output.items():
    jobs.union(snakemake.input[table], out, {"table": table})
