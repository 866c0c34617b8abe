"""Adapter: rule weight_metrics -> actflow.jobs.weight_metrics."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
i, p = snakemake.input, snakemake.params
n = p.neurons
jobs.weight_metrics(
    p.ids, dict(zip(p.activations, i.weights)), i.runs, i.data, dict(snakemake.output.items()),
    p.seeds, p.hp, n["grad_tol"], n["hist_bins"], n["show_layers"], config=dict(p.items()),
    threads=snakemake.threads, saturation_tol=n["saturation_tol"],
    units=dict(zip(p.activations, i.units)), outcomes=p.outcomes,
)
