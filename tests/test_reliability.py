"""Interruption, damaged intermediates, concurrent runs and safe loading lose nothing."""

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from actflow import layout
from conftest import ROOT, SNAKEMAKE, TINY, copy_workflow, snakemake

TARGET = "results/metrics/exp1/loss_summary.parquet"


def _hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((folder / "results").rglob("*"))
            if p.is_file() and p.suffix in (".parquet", ".safetensors")
            and not layout.is_timed(p)}  # wall-clock timings differ between any two runs


@pytest.fixture(scope="module")
def slow_config(tmp_path_factory):
    """Training that lasts a few seconds, so that it can be interrupted mid-way."""
    cfg = yaml.safe_load(TINY.read_text())
    cfg["exp1"] |= {"epochs": 8000, "width": 32}
    cfg["train"] = {"log_every": 100}
    path = tmp_path_factory.mktemp("cfg") / "slow.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, slow_config):
    wd = copy_workflow(tmp_path_factory.mktemp("reference"))
    snakemake(wd, TARGET, configfiles=(slow_config,))
    return _hashes(wd)


def _start(wd, slow_config):
    # Snakemake answers Ctrl-C as a terminal's user gets it: SIGINT at its default disposition,
    # whatever an earlier test left in this process (Playwright's driver ignores it, and a child
    # inherits an ignored signal)
    return subprocess.Popen([SNAKEMAKE, TARGET, "--cores", "2", "--configfile", str(slow_config)],
                            cwd=wd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_training(wd, timeout=120):
    log = wd / "results/logs/train/exp1/sigmoid.log"
    t0 = time.time()
    while time.time() - t0 < timeout:
        if log.exists() and "epoch 100/" in log.read_text():
            return
        time.sleep(0.2)
    raise AssertionError("training did not start")


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_interrupted_run_resumes_to_identical_outputs(tmp_path, slow_config, reference, how):
    wd = copy_workflow(tmp_path / "wf")
    proc = _start(wd, slow_config)
    _wait_for_training(wd)
    if how == "SIGINT":
        proc.send_signal(signal.SIGINT)
    else:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, as a reclaimed node would
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, out[-3000:]
    assert not (wd / TARGET).exists()
    # no final path holds a half-written file: every table present is complete
    for p in (wd / "results").rglob("*.parquet"):
        import pyarrow.parquet as pq

        pq.read_table(p)
    # the README's command for this case (make resume): remove the stale lock a killed run
    # leaves, then run again; the default profile reruns incomplete jobs
    snakemake(wd, "--unlock", configfiles=(slow_config,))
    snakemake(wd, TARGET, configfiles=(slow_config,))
    assert _hashes(wd) == reference


def test_a_truncated_table_is_named_and_found_changed_since_its_job(tiny_copy):
    """A table truncated after its job wrote it (a full disk, a bad copy): a reader names it
    and the documented command, and the check a run makes as it starts (actflow.guard.edited:
    its job's log records another SHA-256) finds it, so that the run sets it aside and rebuilds
    it (the rebuild itself: tests/test_integrity.py, a hand-edited claims.md and copied weights)."""
    from actflow import guard, io, layout

    victim = tiny_copy / "results/train/exp1/relu/loss.parquet"
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 2])
    with pytest.raises(io.DamagedFileError, match="loss.parquet is not a readable Parquet file"):
        io.read_parquet(victim)
    assert "make repair" in io.REPAIR
    found = guard.edited(tiny_copy, layout.AUDIT["manifest"])
    assert found == {"results/train/exp1/relu/loss.parquet": "results/logs/train/exp1/relu.log"}


def test_damaged_weights_are_named(tiny_copy):
    from actflow import io

    victim = tiny_copy / "results/train/exp2/relu/weights.safetensors"
    victim.write_bytes(b"\x00" * 64)
    with pytest.raises(io.DamagedFileError, match="weights.safetensors is not a readable weights file"):
        io.load_weights(victim)


def test_a_second_run_and_resume_are_refused_while_a_run_is_active(tmp_path, slow_config):
    wd = copy_workflow(tmp_path / "wf")
    first = _start(wd, slow_config)
    _wait_for_training(wd)
    # the first run held still (SIGSTOP to its process group) while the others try, so that it
    # cannot finish first on a loaded machine: it is still running, as far as they can tell
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        second = snakemake(wd, TARGET, configfiles=(slow_config,), check=False)
        # `make resume` would remove the lock: its first step refuses, naming the running PID
        env = dict(os.environ, PYTHONPATH=str(ROOT / "workflow/scripts"))
        guard = subprocess.run([sys.executable, "-m", "actflow.guard", "--no-running-snakemake",
                                "."], cwd=wd, env=env, capture_output=True, text=True)
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    assert second.returncode != 0
    assert re.search(r"cannot be locked|LockException", second.stdout + second.stderr)
    assert guard.returncode == 1
    assert f"PID {first.pid}" in guard.stdout and "not stale" in guard.stdout
    assert "PYTHONPATH=workflow/scripts $(BIN)/python -m actflow.guard --no-running-snakemake ." \
        in (ROOT / "Makefile").read_text()
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out
    assert (wd / TARGET).exists()


def test_nothing_loads_with_pickle():
    src = "\n".join(p.read_text() for p in (ROOT / "workflow/scripts").rglob("*.py"))
    assert not re.search(r"\bpickle\b|torch\.load\(|np\.load\(.*allow_pickle=True", src)
