"""Adapter: rule summary -> actflow.summary.write."""
from actflow import io, summary

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
text = summary.write(snakemake.input.claims, snakemake.input.sensitivity,
                     snakemake.input.manifest, snakemake.output.markdown,
                     snakemake.output.front_page, snakemake.input.description)
with open(snakemake.log[0], "a") as fh:
    fh.write(text + "\n")
