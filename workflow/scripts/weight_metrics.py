"""Adapter: rule weight_metrics -> actflow.jobs.weight_metrics."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0])
i, n = snakemake.input, snakemake.params.neurons
jobs.weight_metrics(
    snakemake.wildcards.experiment, i.weights, i.runs, i.data, dict(snakemake.output.items()),
    n["grad_tol"], n["hist_bins"], n["show_layers"], config=dict(snakemake.params.items()),
)
