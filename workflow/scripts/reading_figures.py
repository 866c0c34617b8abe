"""Adapter: rule reading_figures -> actflow.jobs.reading_figures."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
i, p, o = snakemake.input, snakemake.params, snakemake.output
jobs.reading_figures(
    i.readings, i.claims,
    {c: getattr(o, f"{c}_png") for c in p.claims},
    dpi=p.dpi, context=p.context,
)
