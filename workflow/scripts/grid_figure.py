"""Adapter: rule grid_figure -> actflow.jobs.grid_figure."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
i, p = snakemake.input, snakemake.params
jobs.grid_figure(i.sensitivity, i.claims, snakemake.wildcards.grid, p.grid, snakemake.output.png,
                 dpi=p.dpi, context=p.context)
