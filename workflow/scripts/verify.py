"""Adapter: rule verify -> actflow.audit.verify (prints the report; fails on any difference)."""
import sys

from actflow import audit, io

io.setup_logging(snakemake.log[0], outputs=snakemake.output)
result = audit.verify(snakemake.params.manifest)
report = audit.verify_report(result)
print(report)
with open(snakemake.log[0], "a") as fh:
    fh.write(report + "\n")
if result["missing"] or result["changed"] or result["unlisted"] or result["stale"]:
    sys.exit(1)
