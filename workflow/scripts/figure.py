"""Adapter: rule figure -> actflow.plotting.<figure name>."""
from actflow import io, plotting

io.setup_logging(snakemake.log[0])
plotting.draw(snakemake.wildcards.figure, list(snakemake.input.tables), dict(snakemake.output.items()),
              **snakemake.params.style)
