"""Adapter: rule figure -> actflow.plotting.draw (the figure's tables by keyword)."""
from actflow import io, plotting
from actflow.figures import FIGURES

io.setup_logging(snakemake.log[0])
name = snakemake.wildcards.figure
tables = {kw: snakemake.input[kw] for kw in FIGURES[name].tables}
plotting.draw(name, tables, {k: snakemake.output[k] for k in ("png", "pdf")},
              **snakemake.params.style)
