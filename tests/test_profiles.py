"""The SLURM profile loads and plans the whole workflow (no SLURM needed for a dry run); which
jobs go through sbatch and which stay local is checked on a real cluster (tests/test_slurm.py)."""

from conftest import planned_jobs


def test_slurm_profile_plans_the_workflow(tiny_run):
    jobs = planned_jobs(tiny_run, "--profile", "profiles/slurm", "--forceall")
    assert jobs["train"] > 0 and jobs["figure"] > 0 and jobs["manifest"] == 1
