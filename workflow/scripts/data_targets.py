"""Adapter: rules data_targets_train and data_targets_test -> actflow.jobs."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
d = snakemake.params.data
if snakemake.rule == "data_targets_train":
    jobs.target_train_data(snakemake.output[0], d["targets"], d, d.get("seeds", []),
                           config={"data": d})
else:
    jobs.target_test_data(snakemake.output[0], d["targets"], d["n_test"], d["x_min"],
                          d["x_max"], config={"data": d})
