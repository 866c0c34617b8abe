"""The tiny workflow through profiles/slurm on a real single-node SLURM (tests/slurm/cluster.sh).

The scenario runs in the background from the start of the session (tests/slurmrun.py, started
by conftest: it mostly waits on the scheduler); these tests assert on what it recorded. The
cluster is started there (root; installed with apt-get when missing) and stopped by PID at the
end of the session. In CI (the CI variable set) a machine that cannot start it fails the test
instead of skipping it.
"""

import os
import re
import subprocess

import pandas as pd
import pytest

from actflow import layout
from conftest import SNAKEMAKE, TINY, rule_family
from slurmrun import SLURM_ARGS, STUDY_ONLY


@pytest.fixture
def slurm_run(slurm_scenario):
    """The scenario conftest started in the background, once it has finished: the tiny config's
    run folder, the SLURM jobs it made, and Snakemake's output."""
    if slurm_scenario is None:
        pytest.skip("the SLURM scenario runs only in a session that collects tests/test_slurm.py")
    sc = slurm_scenario.wait()
    if sc.unavailable:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the SLURM test: {sc.unavailable}")
        pytest.skip(sc.unavailable)
    assert sc.error is None, sc.error
    assert sc.returncode == 0, f"SLURM run failed:\n{sc.log[-9000:]}"
    print(f"\nSLURM run of the tiny config: {sc.seconds:.0f} s, {len(sc.jobs)} SLURM jobs")
    return sc.workdir, sc.jobs, sc.log


def test_every_job_is_submitted_through_sbatch(slurm_run, tiny_run):
    wd, jobs, log = slurm_run
    assert "Using profile profiles/slurm" in log
    # the plan of the same config, local rules and all: what must have gone to the cluster
    proc = subprocess.run([SNAKEMAKE, "--dry-run", "--forceall", "--configfile", str(TINY),
                           "--profile", "profiles/slurm", "--workflow-profile", "none", *SLURM_ARGS, *STUDY_ONLY], cwd=wd, text=True,
                          capture_output=True, check=True, env=dict(os.environ))
    plan = proc.stdout + proc.stderr
    trainings = sorted(re.findall(r"^rule (train\w*):\n(?:    .*\n)*?    wildcards: (.*)", plan,
                                  re.M))
    assert len(trainings) == 6  # (exp1 + exp2 + exp3, its targets stacked) x 2 activations

    assert jobs and all(j["state"] == "COMPLETED" for j in jobs), jobs
    assert len({j["name"] for j in jobs}) == 1  # one Snakemake run submitted them all
    comments = [j["comment"] for j in jobs]
    # the training jobs went as job arrays (profile: slurm-array-jobs: train): one sbatch call
    # for the jobs ready together (the plugin submits what is ready: here the sine experiments'
    # jobs, then Experiment 3's, whose data comes later), a task per job
    train = [j for j in jobs if j["comment"].startswith("rule_train_")]
    assert len(train) == len(trainings), (train, trainings)
    assert all("_" in j["id"] for j in train), train  # <array id>_<task>
    arrays = {j["id"].split("_", 1)[0] for j in train}
    assert len(arrays) < len(train), train
    tasks = {j["id"] for j in train}
    assert len(tasks) == len(trainings), tasks
    # every other job individually, under its own rule and wildcards
    others = [j for j in jobs if j not in train]
    assert others and all("_" not in j["id"] for j in others), others
    # SLURM's log of every job is kept, successful ones too, where docs/slurm.md says
    logdir = wd / "results/logs/slurm"
    kept = {p.relative_to(logdir).as_posix() for p in logdir.rglob("*.log")}
    assert {f"rule_train/{t}.log" for t in tasks} <= kept, kept
    for j in others:
        rule = re.match(r"rule_(\w+?)_wildcards_", j["comment"]).group(1)
        assert any(k.startswith(f"rule_{rule}/") and j["id"] in k for k in kept), (j, kept)
    print(f"SLURM: {len(train)} training jobs as {len(arrays)} arrays ({sorted(tasks)}), "
          f"{len(others)} jobs one by one; {len(kept)} SLURM logs kept")
    # the small jobs ran on the submitting machine (local rules), the rest through sbatch
    submitted = re.findall(r"^rule (\w+):", log, re.M)
    local = re.findall(r"^localrule (\w+):", log, re.M)
    assert set(map(rule_family, local)) == {
        "data_sine", "data_targets_train", "data_targets_test", "union_sine", "union_capacity",
        "activation_curves", "figure", "audit_claims", "reading_figures", "manifest", "summary",
        "all"}
    assert set(submitted) == {"train", "history_metrics", "weight_metrics", "capacity_metrics"}
    assert not any(c.startswith(tuple(f"rule_{r}_" for r in local)) for c in comments), comments
    print(f"SLURM jobs submitted: {len(jobs)}; local jobs: {len(local)}")
    assert len(jobs) == len(submitted) == len(re.findall(r"^rule \w+:", plan, re.M)) - len(local)


def test_slurm_tables_equal_local_run(slurm_run, tiny_run):
    wd, _, _ = slurm_run
    # the study's own data, training and tables (the local run also has the variants, which the
    # union tables and the audit gather)
    study = ("results/data/study/", "results/train/exp", "results/metrics/exp")
    tables = sorted(p.relative_to(tiny_run) for p in (tiny_run / "results").rglob("*.parquet")
                    if str(p.relative_to(tiny_run)).startswith(study)
                    and p.relative_to(tiny_run).parts[2] in ("study", "exp1", "exp2", "exp3")
                    and not layout.is_timed(p))  # wall-clock timings differ between any two runs
    assert len(tables) > 30
    for rel in tables:
        local, cluster = pd.read_parquet(tiny_run / rel), pd.read_parquet(wd / rel)
        pd.testing.assert_frame_equal(cluster, local, check_exact=True, obj=str(rel))
    # the same bytes, metadata included: nothing depends on where a job ran
    for rel in tables:
        assert (wd / rel).read_bytes() == (tiny_run / rel).read_bytes(), rel


def test_cuda_config_asks_slurm_for_a_gpu(slurm_run, slurm_scenario):
    """device: cuda makes every training job request one GPU; the job sees the GPU SLURM gave it
    (the test node declares one as a gres device file; there is no NVIDIA driver behind it, so
    the job stops with the error that names the fix and leaves no output). The job also gets the CPUs
    of its `threads` (config train.threads), not a profile-wide default."""
    cuda = slurm_scenario.cuda  # tests/slurmrun.py: Scenario._cuda
    assert cuda["returncode"] != 0
    assert len(cuda["train"]) == 1, cuda["jobs"]
    detail = cuda["detail"]
    assert re.search(r"TresPer(Job|Node)=\S*gres[:/]gpu[:=]1", detail), detail
    assert re.search(r"\bNumCPUs=2\b", detail), detail
    logs = cuda["logs"]
    assert "CUDA_VISIBLE_DEVICES=0" in logs and "sees no CUDA device" in logs, logs
    # Snakemake deleted the failed job's previous outputs before it ran; the run names them
    # (and make repair rebuilds them: tests/test_integrity.py)
    assert cuda["gone"] and cuda["named"]
