"""The SLURM profile loads, and groups the small jobs (no SLURM needed for a dry run)."""

import re

from actflow.figures import FIGURES
from actflow.layout import TABLES
from conftest import snakemake


def test_slurm_profile_groups_figures_and_tables(tiny_run):
    proc = snakemake(tiny_run, "--profile", "profiles/slurm", "--dry-run", "--forceall")
    out = proc.stdout + proc.stderr
    assert "Using profiles profiles/slurm" in out
    groups = re.findall(r"Group job (\w+)", out)
    assert sorted(groups) == ["figures", "tables"]
    grouped = re.findall(r"^    rule (\w+):", out, re.M)  # jobs inside a group job are indented
    n_unions = sum(t.union for t in TABLES.values())
    assert grouped.count("figure") == len(FIGURES) and grouped.count("union_table") == n_unions
    alone = re.findall(r"^rule (\w+):", out, re.M)  # each becomes its own SLURM job
    assert "figure" not in alone and "union_table" not in alone and "train" in alone
    # submissions: 20 small jobs become 2 group jobs
    assert len(alone) + len(groups) == len(alone) + 2 < len(alone) + 20
