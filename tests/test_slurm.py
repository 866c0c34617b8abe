"""The tiny workflow through profiles/slurm on a real single-node SLURM (tests/slurm/cluster.sh).

The cluster is started here (root; installed with apt-get when missing) and stopped by PID at
the end. In CI (the CI variable set) a machine that cannot start it fails the test instead of
skipping it.
"""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, SNAKEMAKE, TINY, copy_workflow

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
# What a user adds on a cluster without accounting daemon (README, "Running on SLURM").
SLURM_ARGS = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
              "--seconds-between-status-checks", "2"]  # a test cluster answers at once


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the SLURM test: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """Start the cluster; yield the environment that points clients at it; stop it by PID."""
    if os.geteuid() != 0:
        _unavailable("starting slurmd needs root")
    if not (shutil.which("sbatch") or shutil.which("apt-get")):
        _unavailable("SLURM is not installed and apt-get is not available")
    if not _conf_is_free():
        _unavailable("this machine has a SLURM configuration of its own")
    state = tmp_path_factory.mktemp("slurm")
    proc = subprocess.run(["bash", str(CLUSTER), "start", str(state)], capture_output=True,
                          text=True, timeout=600)
    try:
        assert proc.returncode == 0, f"the test cluster did not start:\n{proc.stdout}\n{proc.stderr}"
        pids = {p.stem: int(p.read_text()) for p in (state / "run").glob("*.pid")}
        assert set(pids) == {"munged", "slurmctld", "slurmd"}
        env = dict(os.environ, SLURM_CONF=str(state / "slurm.conf"), PYTHONDONTWRITEBYTECODE="1")
        env["PATH"] = env["PATH"] + ":/usr/sbin"
        yield env
    finally:
        stopped = subprocess.run(["bash", str(CLUSTER), "stop", str(state)], timeout=180,
                                 capture_output=True, text=True)
    assert stopped.returncode == 0, stopped.stderr
    for name, pid in pids.items():  # every daemon it started is gone
        assert not _running(pid), f"{name} ({pid}) still runs"
    assert not os.path.lexists(CONF)


CONF = "/etc/slurm/slurm.conf"


def _conf_is_free() -> bool:
    """No SLURM configuration at the default path, or only a link that cluster.sh made."""
    if not os.path.lexists(CONF):
        return True
    if not os.path.islink(CONF):
        return False
    target = Path(os.readlink(CONF))
    return not target.exists() or target.read_text().startswith("# Written by tests/slurm/cluster.sh")


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _snakemake_slurm(workdir: Path, env: dict, *args, timeout: int = 900):
    """snakemake through the SLURM profile; `timeout -k` because on SIGTERM Snakemake waits for
    the jobs it submitted."""
    cmd = ["timeout", "-k", "20", str(timeout), SNAKEMAKE, "--profile", "profiles/slurm",
           "--configfile", str(TINY), *SLURM_ARGS, *STUDY_ONLY, *args]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=timeout + 60)


# The tiny config without its variants: what SLURM adds is how jobs are submitted, which the
# study's jobs show; the variants' jobs are the same rules (and would add a minute of sbatch).
STUDY_ONLY = ["--config", "variants=[]"]


def _cluster_jobs(env: dict) -> list[dict]:
    """Every job the controller knows (finished ones stay MinJobAge seconds)."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%j|%T|%k"], env=env,
                         capture_output=True, text=True, check=True).stdout
    keys = ("id", "name", "state", "comment")
    return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line]


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("slurm-wf"))
    before = {j["id"] for j in _cluster_jobs(slurm)}
    t0 = time.monotonic()
    proc = _snakemake_slurm(wd, slurm)
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, f"SLURM run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    jobs = [j for j in _cluster_jobs(slurm) if j["id"] not in before]
    print(f"\nSLURM run of the tiny config: {seconds:.0f} s, {len(jobs)} SLURM jobs")
    return wd, jobs, proc.stdout + proc.stderr


def test_every_job_is_submitted_through_sbatch(slurm_run, tiny_run):
    wd, jobs, log = slurm_run
    assert "Using profiles profiles/slurm" in log
    # the plan of the same config, local rules and all: what must have gone to the cluster
    proc = subprocess.run([SNAKEMAKE, "--dry-run", "--forceall", "--configfile", str(TINY),
                           "--profile", "profiles/slurm", *SLURM_ARGS, *STUDY_ONLY], cwd=wd, text=True,
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
    # SLURM's log of every job is kept, successful ones too, where the README says
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
    assert set(local) == {"data_sine", "data_targets_train", "data_targets_test", "union_table",
                          "activation_curves", "figure", "audit_claims", "manifest", "all"}
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
                    and p.relative_to(tiny_run).parts[2] in ("study", "exp1", "exp2", "exp3"))
    assert len(tables) > 30
    for rel in tables:
        local, cluster = pd.read_parquet(tiny_run / rel), pd.read_parquet(wd / rel)
        pd.testing.assert_frame_equal(cluster, local, check_exact=True, obj=str(rel))
    # the same bytes, metadata included: nothing depends on where a job ran
    for rel in tables:
        assert (wd / rel).read_bytes() == (tiny_run / rel).read_bytes(), rel


def test_cuda_config_asks_slurm_for_a_gpu(slurm, slurm_run):
    """device: cuda makes every training job request one GPU; the job sees the GPU SLURM gave it
    (the test node declares one as a gres device file; torch finds no CUDA behind it, so the job
    stops with the error that names the fix and leaves no output). The job also gets the CPUs
    of its `threads` (config train.threads), not a profile-wide default."""
    wd, _, _ = slurm_run
    before = {j["id"] for j in _cluster_jobs(slurm)}
    target = "results/train/exp1/relu/loss.parquet"
    finished = (wd / target).read_bytes()
    proc = _snakemake_slurm(wd, slurm, "--config", "device=cuda", "train={threads: 2}",
                            "--forcerun", "train", "--", target, timeout=300)
    assert proc.returncode != 0
    new = [j for j in _cluster_jobs(slurm) if j["id"] not in before]
    train = [j for j in new if j["comment"] == "rule_train_wildcards_exp1_relu"]
    assert len(train) == 1, new
    detail = subprocess.run(["scontrol", "show", "job", train[0]["id"]], env=slurm, text=True,
                            capture_output=True, check=True).stdout
    assert re.search(r"TresPer(Job|Node)=\S*gres[:/]gpu[:=]1", detail), detail
    assert re.search(r"\bNumCPUs=2\b", detail), detail
    logs = "".join(p.read_text() for p in (wd / "results/logs/train/exp1").glob("relu.log"))
    assert "CUDA_VISIBLE_DEVICES=0" in logs and "sees no CUDA device" in logs, logs
    # the failed job's previous output is back, byte-identical (actflow.guard.restore)
    assert (wd / target).read_bytes() == finished
