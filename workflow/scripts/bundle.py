"""Adapter: rule bundle -> actflow.jobs.bundle."""
from actflow import io, jobs

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
jobs.bundle(list(snakemake.params.files), snakemake.output.archive, snakemake.output.checksum,
            weights=snakemake.params.weights)
