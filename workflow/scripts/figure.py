"""Adapter: rule figure -> actflow.jobs.draw_figure (the figure's tables by keyword)."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
name = snakemake.wildcards.figure
tables = {kw: snakemake.input[kw] for kw in snakemake.params.tables}
out = {"png": snakemake.output.png} | dict(snakemake.output.items())  # png, then the others
jobs.draw_figure(name, tables, out, study=snakemake.params.study,
                 settings=snakemake.params.settings, **snakemake.params.style)
