"""Adapter: rule data_sine -> actflow.jobs.sine_data."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
d = snakemake.params.data
jobs.sine_data(snakemake.output[0], d, d.get("seeds", []), config={"data": d})
