"""Adapter: rule data_sine -> actflow.jobs.make_train_data."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0])
d = snakemake.params.data
jobs.make_train_data(
    snakemake.output[0], "sin", d["n_samples"], d["x_min"], d["x_max"], d["noise_std"],
    d["seed"], d["sampling"], config={"data": d},
)
