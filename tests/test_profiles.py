"""The SLURM profile loads and plans the whole workflow (no SLURM needed for a dry run); which
jobs go through sbatch and which stay local is checked on a real cluster (tests/test_slurm.py)."""

from conftest import planned_jobs


def test_slurm_profile_plans_the_workflow(tiny_run):
    jobs = planned_jobs(tiny_run, "--profile", "profiles/slurm", "--forceall")
    assert jobs["train"] > 0 and jobs["figure"] > 0 and jobs["manifest"] == 1


def test_the_default_profile_quiets_job_listings_and_shows_progress_through_a_pinned_plugin(
        tiny_copy):
    """profiles/default: no per-job listing (quiet: rules), progress through the rich logger
    plugin, which requirements.txt pins; a run through it still ends on its findings, and
    `--workflow-profile none` brings every job's listing back."""
    import yaml

    from conftest import ROOT, snakemake

    profile = yaml.safe_load((ROOT / "profiles/default/profile.yaml").read_text())
    assert profile["quiet"] == ["rules"] and profile["logger"] == ["rich"]
    pins = {line.split("==")[0] for line in (ROOT / "requirements.txt").read_text().splitlines()
            if "==" in line}
    assert "snakemake-logger-plugin-rich" in pins
    out = snakemake(tiny_copy, "--forcerun", "summary")
    text = out.stdout + out.stderr
    assert "Workflow Finished" in text and "What this run found" in text  # the rich log
    assert "localrule summary:" not in text and "input:" not in text
    plain = snakemake(tiny_copy, "--forcerun", "summary", "--workflow-profile", "none")
    assert "localrule summary:" in plain.stdout + plain.stderr
