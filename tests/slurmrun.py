"""The SLURM scenario of tests/test_slurm.py, run in a thread once the session's runs are built.

A SLURM run of the tiny config spends most of its two minutes waiting on the scheduler (sbatch,
status polls), not computing, so conftest starts it in the background when the session
collects the SLURM tests, and the rest of the suite runs meanwhile; the tests then assert on
what it recorded. In order, it starts the single-node cluster (tests/slurm/cluster.sh), runs
the tiny config through profiles/slurm, then asks for one training job with `device: cuda`;
at the end of the session conftest stops the cluster and checks that its daemons are gone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from conftest import ROOT, SNAKEMAKE, TINY, copy_workflow

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
CONF = "/etc/slurm/slurm.conf"
# What a user adds on a cluster without accounting daemon (docs/slurm.md).
SLURM_ARGS = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
              "--seconds-between-status-checks", "2"]  # a test cluster answers at once
# The tiny config without its variants: what SLURM adds is how jobs are submitted, which the
# study's jobs show; the variants' jobs are the same rules (and would add a minute of sbatch).
STUDY_ONLY = ["--config", "variants=[]"]
CUDA_TARGET = "results/train/exp1/relu/loss.parquet"


def unavailable_reason() -> str | None:
    """Why this machine cannot run the test cluster, or None."""
    if os.geteuid() != 0:
        return "starting slurmd needs root"
    if not (shutil.which("sbatch") or shutil.which("apt-get")):
        return "SLURM is not installed and apt-get is not available"
    if not conf_is_free():
        return "this machine has a SLURM configuration of its own"
    return None


def conf_is_free() -> bool:
    """No SLURM configuration at the default path, or only a link that cluster.sh made."""
    if not os.path.lexists(CONF):
        return True
    if not os.path.islink(CONF):
        return False
    target = Path(os.readlink(CONF))
    return not target.exists() or target.read_text().startswith("# Written by tests/slurm/cluster.sh")


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def snakemake_slurm(workdir: Path, env: dict, *args, timeout: int = 900):
    """snakemake through the SLURM profile; `timeout -k` because on SIGTERM Snakemake waits for
    the jobs it submitted."""
    cmd = ["timeout", "-k", "20", str(timeout), SNAKEMAKE, "--profile", "profiles/slurm",
           "--workflow-profile", "none",  # job listings (profiles/default quiets them)
           "--configfile", str(TINY), *SLURM_ARGS, *STUDY_ONLY, *args]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=timeout + 60)


def cluster_jobs(env: dict) -> list[dict]:
    """Every job the controller knows (finished ones stay MinJobAge seconds)."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%j|%T|%k"], env=env,
                         capture_output=True, text=True, check=True).stdout
    keys = ("id", "name", "state", "comment")
    return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line]


@dataclass
class Scenario:
    base: Path  # a fresh temporary folder
    unavailable: str | None = None
    error: str | None = None  # a traceback of the thread, or why the cluster did not start
    env: dict | None = None
    pids: dict = field(default_factory=dict)
    # the tiny config through profiles/slurm
    workdir: Path | None = None
    returncode: int | None = None
    log: str = ""
    jobs: list = field(default_factory=list)
    seconds: float = 0.0
    # one training job with device: cuda
    cuda: dict = field(default_factory=dict)
    # where to record what it found, for the test workers that did not run it (None: nowhere)
    record: Path | None = None

    def __post_init__(self):
        self._thread = threading.Thread(target=self._main, name="slurm-scenario", daemon=True)

    def start(self) -> "Scenario":
        self._thread.start()
        return self

    def wait(self, timeout: float = 1800) -> "Scenario":
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the SLURM scenario did not finish in {timeout:.0f} s")
        return self

    def _main(self):
        try:
            self.unavailable = unavailable_reason()
            if self.unavailable is None and self._start_cluster():
                self._run()
                if self.returncode == 0:
                    self._cuda()
        except BaseException:  # recorded for the tests to show
            self.error = traceback.format_exc()
        finally:
            if self.record is not None:
                doc = {k: getattr(self, k) for k in RECORDED}
                doc["workdir"] = str(self.workdir) if self.workdir else None
                tmp = self.record.with_suffix(".tmp")
                tmp.write_text(json.dumps(doc))
                tmp.rename(self.record)

    def _start_cluster(self) -> bool:
        state = self.base / "cluster"
        state.mkdir()
        proc = subprocess.run(["bash", str(CLUSTER), "start", str(state)], capture_output=True,
                              text=True, timeout=600)
        self.pids = {p.stem: int(p.read_text()) for p in (state / "run").glob("*.pid")}
        if proc.returncode != 0:
            self.error = f"the test cluster did not start:\n{proc.stdout}\n{proc.stderr}"
            return False
        if set(self.pids) != {"munged", "slurmctld", "slurmd"}:
            self.error = f"the test cluster started other daemons than expected: {self.pids}"
            return False
        env = dict(os.environ, SLURM_CONF=str(state / "slurm.conf"), PYTHONDONTWRITEBYTECODE="1")
        env["PATH"] = env["PATH"] + ":/usr/sbin"
        self.env = env
        return True

    def _run(self):
        self.workdir = copy_workflow(self.base / "wf")
        before = {j["id"] for j in cluster_jobs(self.env)}
        t0 = time.monotonic()
        proc = snakemake_slurm(self.workdir, self.env)
        self.seconds = time.monotonic() - t0
        self.returncode, self.log = proc.returncode, proc.stdout + proc.stderr
        self.jobs = [j for j in cluster_jobs(self.env) if j["id"] not in before]

    def _cuda(self):
        """device: cuda for one training job, its previous outputs in place: what SLURM asked
        for, what the job saw, and whether the run named the finished output it lost."""
        # in a copy of the finished run: the failing job's outputs are deleted there (Snakemake
        # removes a job's old outputs before it reruns it), and the tables stay for the others
        wd = self.base / "wf_cuda"
        shutil.copytree(self.workdir, wd, symlinks=True, copy_function=shutil.copy2)
        before = {j["id"] for j in cluster_jobs(self.env)}
        proc = snakemake_slurm(wd, self.env, "--config", "device=cuda",
                               "train={threads: 2}", "--forcerun", "train", "--", CUDA_TARGET,
                               timeout=300)
        new = [j for j in cluster_jobs(self.env) if j["id"] not in before]
        train = [j for j in new if j["comment"] == "rule_train_wildcards_exp1_relu"]
        detail = ""
        if len(train) == 1:
            detail = subprocess.run(["scontrol", "show", "job", train[0]["id"]], env=self.env,
                                    text=True, capture_output=True, check=True).stdout
        logs = "".join(p.read_text() for p in (wd / "results/logs/train/exp1").glob("relu.log"))
        self.cuda = {"returncode": proc.returncode, "jobs": new, "train": train,
                     "detail": detail, "logs": logs,
                     "gone": not (wd / CUDA_TARGET).exists(),
                     "named": "that the manifest certified are gone" in proc.stderr + proc.stdout
                     and CUDA_TARGET in proc.stderr + proc.stdout}

    def stop(self) -> list[str]:
        """Stop the cluster by PID (after the thread ended); what went wrong, if anything."""
        self.wait()
        problems = []
        state = self.base / "cluster"
        if state.exists():
            stopped = subprocess.run(["bash", str(CLUSTER), "stop", str(state)], timeout=180,
                                     capture_output=True, text=True)
            if stopped.returncode != 0:
                problems.append(f"cluster.sh stop failed: {stopped.stderr}")
        problems += [f"{name} ({pid}) still runs" for name, pid in self.pids.items()
                     if running(pid)]
        if state.exists() and os.path.lexists(CONF):
            problems.append(f"{CONF} was left behind")
        return problems



RECORDED = ("unavailable", "error", "workdir", "returncode", "log", "jobs", "seconds", "cuda")


class Recorded:
    """The scenario as another test worker ran it: what it recorded (Scenario.record), read
    once it is there."""

    def __init__(self, path: Path):
        self.path = path

    def wait(self, timeout: float = 1800) -> "Recorded":
        t0 = time.monotonic()
        while not self.path.exists():
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"the SLURM scenario did not finish in {timeout:.0f} s")
            time.sleep(2)
        doc = json.loads(self.path.read_text())
        for k in RECORDED:
            setattr(self, k, doc[k])
        self.workdir = Path(doc["workdir"]) if doc["workdir"] else None
        return self
