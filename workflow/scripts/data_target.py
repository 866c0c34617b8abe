"""Adapter: rules data_target_train and data_target_test -> actflow.jobs."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0])
d, target, out = snakemake.params.data, snakemake.wildcards.target, snakemake.output[0]
if snakemake.rule == "data_target_train":
    jobs.make_train_data(out, target, d["n_samples"], d["x_min"], d["x_max"], d["noise_std"],
                         d["seed"], d["sampling"], config={"data": d})
else:
    jobs.make_test_data(out, target, d["n_test"], d["x_min"], d["x_max"], config={"data": d})
