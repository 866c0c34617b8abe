"""Adapter: rule audit -> actflow.audit.reexecution_verdict (fails on any difference)."""
import sys

from actflow import audit, io

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
problem = audit.reexecution_verdict(snakemake.input.table)
with open(snakemake.log[0], "a") as fh:
    fh.write((problem or "the re-execution audit: every file matches") + "\n")
if problem:
    print(problem, file=sys.stderr)
    sys.exit(1)
