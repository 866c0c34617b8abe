"""Adapter: rule comparison -> actflow.jobs.compare_runs."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
jobs.compare_runs(snakemake.params.ours, snakemake.params.theirs,
                  {k: v for k, v in snakemake.output.items()}, dpi=snakemake.params.dpi)
