"""Shared fixtures: a copy of the workflow in a temporary folder, run on a tiny config."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TINY = ROOT / "tests" / "tiny.yaml"

from actflow import layout  # noqa: E402


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for part in layout.CLONE_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / part)
    return dest


def snakemake(workdir: Path, *args, configfiles=(TINY,), check=True, timeout=600, env=None):
    cmd = [SNAKEMAKE, *args, "--cores", "2"]
    if configfiles:
        cmd += ["--configfile", *map(str, configfiles)]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", **(env or {}))
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def planned_job_list(workdir: Path, *args, configfiles=(TINY,)) -> list[tuple[str, dict]]:
    """Snakemake's own plan: (rule, wildcards) of every job a dry run would execute."""
    # without the default workflow profile (profiles/default: quiet job listings), so that the
    # dry run lists every job
    proc = snakemake(workdir, "--dry-run", "--workflow-profile", "none", *args,
                     configfiles=configfiles)
    out = proc.stdout + proc.stderr
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        m = re.match(r"(?:local)?rule (\w+):", block)
        if not m:
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        pairs = [kv.split("=", 1) for kv in wc.group(1).split(", ")] if wc else []
        jobs.append((rule_family(m.group(1)), dict(pairs)))
    return jobs


def rule_family(name: str) -> str:
    """A rule's name, the rules that share out one job's work (reading_figures_1, _2, …)
    named as one."""
    return re.sub(r"^(reading_figures)_\d+$", r"\1", name)


def planned_job_details(workdir: Path, *args, configfiles=(TINY,)) -> list[dict]:
    """Snakemake's own plan, job by job: rule, wildcards, input and log files, priority."""
    # without the default workflow profile (profiles/default: quiet job listings), so that the
    # dry run lists every job
    proc = snakemake(workdir, "--dry-run", "--workflow-profile", "none", *args,
                     configfiles=configfiles)
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", proc.stdout + proc.stderr):
        m = re.match(r"(?:local)?rule (\w+):", block)
        if not m:
            continue
        fields = dict(re.findall(r"^\s+(\w+): (.*)$", block, re.M))
        jobs.append({"rule": rule_family(m.group(1)),
                     "wildcards": dict(kv.split("=", 1) for kv in fields["wildcards"].split(", "))
                     if "wildcards" in fields else {},
                     "input": fields.get("input", "").split(", ") if fields.get("input") else [],
                     "log": fields.get("log"), "priority": int(fields.get("priority", 0))})
    return jobs


def planned_jobs(workdir: Path, *args, configfiles=(TINY,)) -> dict[str, int]:
    """Snakemake's own plan: rule -> number of jobs a dry run would execute."""
    counts: dict[str, int] = {}
    for rule, _ in planned_job_list(workdir, *args, configfiles=configfiles):
        counts[rule] = counts.get(rule, 0) + 1
    return counts


# Test lanes (pyproject.toml registers the markers; docs/development.md): a test is `slow` when it
# runs the workflow or starts Snakemake (it uses a fixture below that does, or says so with
# @pytest.mark.slow), `cluster`
# when it needs the SLURM scenario, `gpu` when it needs a CUDA device. `pytest -m "not slow"` is
# the fast lane: the unit tests, in about a minute.
SLOW_FIXTURES = {"tiny_run", "cold_run", "tiny_copy", "slurm_run", "shared_copy", "slow_config"}
LANES = {"test_slurm.py": ("cluster", "slow"), "test_gpu.py": ("gpu",)}


def pytest_collection_modifyitems(config, items):
    for item in items:
        marks = set(LANES.get(item.path.name, ()))
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            marks.add("slow")
        for mark in sorted(marks):
            item.add_marker(getattr(pytest.mark, mark))
    # The longest files first, then the other slow ones, the unit tests last: pytest-xdist hands
    # out whole files in this order (pyproject.toml: --dist loadfile --no-loadscope-reorder;
    # without the latter it would order files by their number of tests), so that short files
    # at the end keep both workers busy until the suite ends (a long file handed out last would
    # run alone). Stable: in each group, the files' order.
    slow_files = {item.path.name for item in items if item.get_closest_marker("slow")}
    order = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: (order.get(item.path.name, len(order)),
                                 item.path.name not in slow_files))


# The suite's longest files, longest first: each one's CPU seconds in a full run on 2 cores
# (AMD EPYC, 2026-12-04; pytest --durations gives the wall times), its whole runs of the
# workflow included. An order only: a file not listed runs after these, and
# test_registry.py checks that each listed file exists.
LONGEST_FILES = (
    "test_compare.py",  # 163 s: a second whole run with other seeds, a rerun of Experiment 2
    "test_integrity.py",  # 163 s: failures, repairs and rebuilds of copies of the tiny run
    "test_divergence.py",  # 71 s: a whole diverging run of its own
    "test_readme.py",  # 69 s: every README command
    "test_reliability.py",  # 59 s: interrupted runs resumed
    "test_workflow.py",  # 44 s: dry runs of changed configs, each output built on its own
    "test_audit.py",  # 30 s
    "test_report.py",  # 26 s wall: the report in a headless browser (its own processes)
    "test_train.py",  # 21 s
)


# The suite runs on every core (pytest-xdist, pyproject.toml: each test file on one worker).
# A session's runs below are built once for all workers: the first worker to need one builds it
# under a file lock in the folder the workers share, the others wait for it and use it.
def _worker() -> str | None:
    return os.environ.get("PYTEST_XDIST_WORKER")


def _once(tmp_path_factory, name: str, build) -> Path:
    """``build(folder)`` once per test run, for every worker; returns what it returned."""
    if _worker() is None:
        return build(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent
    done = shared / f"{name}.done"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.exists():
            folder = shared / name
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed in another worker
            folder.mkdir()
            done.write_text(str(build(folder)))
        return Path(done.read_text())


@pytest.fixture(scope="session", autouse=True)
def slurm_scenario(request, tmp_path_factory):
    """The SLURM scenario of tests/test_slurm.py (tests/slurmrun.py), started in a background
    thread at the start of a session that runs those tests, once the session's runs are
    built (it mostly waits on the scheduler, while the other tests run); None in other
    sessions. With several workers, the first to get there runs it and records what it found;
    the others read the record. At the end the cluster is stopped and its daemons must be gone."""
    items = request.session.items
    if not any(item.path.name == "test_slurm.py" for item in items):
        yield None
        return
    import slurmrun

    record = None
    if _worker() is not None:
        from filelock import FileLock, Timeout

        shared = tmp_path_factory.getbasetemp().parent
        record = shared / "slurm.json"
        owner = FileLock(str(shared / "slurm.lock"))
        try:
            owner.acquire(timeout=0)
        except Timeout:  # another worker runs it; this one goes on with its tests
            yield slurmrun.Recorded(record)
            return
    # the session's runs first (they take 1 min alone on both cores, 2 beside the scenario);
    # the scenario, mostly waiting on the scheduler, then overlaps the tests, most of which keep
    # one core busy. (Another worker that needs a run meanwhile builds it or waits for it.)
    for name in ("tiny_run", "cold_run"):
        if any(name in getattr(item, "fixturenames", ()) for item in items):
            request.getfixturevalue(name)
    scenario = slurmrun.Scenario(tmp_path_factory.mktemp("slurm"), record=record).start()
    yield scenario
    problems = scenario.stop()
    assert not problems, problems


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The workflow, run once on the tiny config; tests must not modify this folder."""
    def build(folder):
        wd = copy_workflow(folder)
        snakemake(wd)
        return wd

    return _once(tmp_path_factory, "tiny", build)


@pytest.fixture(scope="session")
def cold_run(tmp_path_factory) -> Path:
    """The tiny config (without its variants, with every figure format) run again from clean,
    in another way: deployed as ``snakedeploy deploy-workflow`` deploys a catalog workflow (a
    folder of its own with its ``config/`` and a ``workflow/Snakefile`` that uses the clone,
    elsewhere, as a module); its logs list what each job imported.
    Returns the deployment's folder (results/ in it); tests must not modify it."""
    return _once(tmp_path_factory, "cold", _deploy)


def _deploy(root: Path) -> Path:
    import yaml

    clone = copy_workflow(root / "clone")
    deployed = root / "deployed"
    shutil.copytree(clone / "config", deployed / "config")
    config = dict(yaml.safe_load(TINY.read_text()), variants=[])
    config["figures"] = config["figures"] | {"formats": list(layout.FIGURE_FORMATS)}  # each once
    (deployed / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (deployed / "workflow").mkdir()
    (deployed / "workflow" / "Snakefile").write_text(
        'configfile: "config/config.yaml"\n\n\n'
        "module actflow:\n"
        f'    snakefile: "{clone / "workflow" / "Snakefile"}"\n'
        "    config: config\n\n\n"
        "use rule * from actflow\n")
    snakemake(deployed, "all", configfiles=())
    return deployed


def figures_reading(*tables: str) -> set[str]:
    """The registry's figures that read any of ``tables`` (paths as in the registry)."""
    from actflow import figures as figreg

    return {f.name for f in figreg.FIGURES.values() if set(f.tables.values()) & set(tables)}


def union_tables(kind: str) -> list[str]:
    """The union tables (every variant of a kind's experiments) a kind's jobs feed."""
    return [t.union_path() for t in layout.TABLES.values()
            if t.union and t.job in layout.KIND_JOBS[kind]]


def study_files(root: Path) -> list[str]:
    """The study's own data, training outputs and per-experiment tables of a run (what a run
    without the variants shares with one that has them), relative to ``root``; not the tables
    of wall-clock times (layout.TIMED_FILES), which differ between any two runs."""
    out = []
    for p in sorted((root / "results").rglob("*")):
        rel = p.relative_to(root)
        parts = rel.parts
        if layout.is_timed(rel):
            continue
        if p.suffix in (".parquet", ".safetensors") and len(parts) > 2 and parts[1] in (
                "data", "train", "metrics") and parts[2] in ("study", "exp1", "exp2", "exp3"):
            out.append(str(rel))
    return out


@pytest.fixture
def tiny_copy(tiny_run, tmp_path) -> Path:
    """A private copy of the finished tiny run that a test may change."""
    dest = tmp_path / "wf"
    shutil.copytree(tiny_run, dest, symlinks=True, copy_function=shutil.copy2)
    return dest
