"""Every command of the README runs, as written, so that none can go stale.

The commands run in a copy of the finished tiny run whose config/config.yaml is the tiny
configuration merged in (so `make run` and `.venv/bin/snakemake --cores all exp1` run exactly
as a user types them, on a small config), in the README's order. Four are run elsewhere and
named here; a placeholder path is replaced by the file the command before it made."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import ROOT, TINY

VENV = Path(sys.executable).parent.parent
# Commands this test does not run, and where they are run instead.
ELSEWHERE = {
    "make test": "the suite itself",
    ".venv/bin/snakemake --profile profiles/slurm": "tests/test_slurm.py, on a real SLURM",
    ".venv/bin/snakemake --cores all --directory ../my-run": "tests/test_deploy.py",
    # needs the network and a published copy; tests/conftest.py (cold_run) runs the deployment
    # it writes (config/ and a workflow/Snakefile using the workflow as a module)
    "snakedeploy deploy-workflow https://github.com/OWNER/REPO my-run --tag vX.Y.Z": "cold_run",
    "cd my-run && snakemake --cores all --sdm conda": "cold_run (without conda: tests/test_envs.py)",
}
PLACEHOLDERS = {"path/to/bundle.tar.gz": "results/bundle.tar.gz"}


def _figures(experiment):
    from actflow import figures as figreg
    from actflow import layout

    return [layout.figure_path(n, "png") for n in figreg.by_experiment(experiment)]


# What a command must have produced, beyond its exit status: (text in its output, files that
# must exist after it), by the command's start. Every README command but those run elsewhere
# has an entry (a test below checks).
EXPECT = {
    "make run": ("", ["results/report.html", "results/summary.md"]),
    ".venv/bin/snakemake --cores all exp1": ("", _figures("exp1")),
    ".venv/bin/snakemake --cores all exp2": ("", _figures("exp2")),
    ".venv/bin/snakemake --cores all exp3": ("", _figures("exp3")),
    ".venv/bin/snakemake --cores all sensitivity": ("", _figures("sensitivity")),
    ".venv/bin/snakemake --cores all results/figures/fig4_gradient_ratio.png": (
        "", ["results/figures/fig4_gradient_ratio.png"]),
    ".venv/bin/snakemake --cores all bundle": ("", ["results/bundle.tar.gz",
                                                    "results/bundle.tar.gz.sha256"]),
    ".venv/bin/snakemake --cores all compare": ("", ["results/audit/comparison.md"]),
    ".venv/bin/snakemake --cores all --config device=cuda": ("", []),
    ".venv/bin/snakemake --cores all": ("", ["results/audit/manifest.json"]),
    ".venv/bin/snakemake --dry-run": ("", []),
    "make verify": ("file(s) match the manifest.", []),
    "make repair": ("file(s) match the manifest.", []),
    "make clean-stale": ("deleted 0 output(s)", []),
    "make audit": ("", ["results/audit/reexecution.md"]),
    "make bundle": ("", ["results/bundle.tar.gz"]),
    "make resume": ("", ["results/report.html"]),
    "make compare": ("", ["results/audit/comparison.md"]),
    "make show": ("Claims whose verdicts differ", []),
}


def expectation(cmd: str):
    """The entry of EXPECT for a command: the longest key it starts with."""
    keys = [k for k in EXPECT if cmd == k or cmd.startswith(k + " ")]
    return EXPECT[max(keys, key=len)] if keys else None


def _training_outputs(wd) -> dict:
    """Every training output of a run folder: its size and modification time."""
    return {str(p.relative_to(wd)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted((wd / "results/train").rglob("*")) if p.is_file()}


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            cmd = line.split(" #", 1)[0].strip()
            if cmd and not cmd.startswith("#"):
                out.append(cmd)
    return out


def _merge(base, over):
    for k, v in over.items():
        base[k] = _merge(base.get(k, {}), v) if isinstance(v, dict) and isinstance(
            base.get(k), dict) else v
    return base


def test_readme_lists_the_commands_this_test_knows():
    cmds = readme_commands()
    assert cmds[:2] == ["make run", "make test"]  # the two set-up commands come first
    assert set(ELSEWHERE) <= set(cmds)
    for cmd in cmds:  # every command that runs here says what it must produce
        assert cmd in ELSEWHERE or expectation(cmd) is not None, cmd


def test_every_readme_command_runs_as_written(tiny_run, tmp_path):
    wd = tmp_path / "wf"
    shutil.copytree(tiny_run, wd, symlinks=True, copy_function=shutil.copy2)
    for name in ("Makefile", "requirements.txt"):
        shutil.copy2(ROOT / name, wd / name)
    (wd / ".venv").symlink_to(VENV)
    cfg = _merge(yaml.safe_load((wd / "config/config.yaml").read_text()),
                 yaml.safe_load(TINY.read_text()))
    (wd / "config/config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", CORES="2")
    ran = []
    for cmd in dict.fromkeys(readme_commands()):  # a command given twice runs once
        if cmd in ELSEWHERE:
            continue
        for placeholder, path in PLACEHOLDERS.items():
            cmd = cmd.replace(placeholder, path)
        trained = _training_outputs(wd)
        t0 = time.monotonic()
        proc = subprocess.run(cmd.replace("--cores all", "--cores 2"), shell=True, cwd=wd,
                              env=env, capture_output=True, text=True, timeout=600)
        print(f"{time.monotonic() - t0:5.1f} s  {cmd}")  # shown with pytest -s
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{cmd}\n{out[-3000:]}"
        text, files = expectation(cmd)
        assert text in out, f"{cmd}: {text!r} not in its output\n{out[-3000:]}"
        missing = [f for f in files if not (wd / f).is_file()]
        assert not missing, f"{cmd} did not leave {missing}"
        if "device=cuda" in cmd:
            # where a job trains is not what it trains: a finished run retrains nothing, with
            # or without a GPU, and loses nothing (a fresh run's jobs would train on CUDA, or
            # stop at their start naming the fix: tests/test_train.py, tests/test_integrity.py)
            assert _training_outputs(wd) == trained, out[-3000:]
        ran.append(cmd)
    assert len(ran) >= 15
    assert (wd / "results/report.html").is_file()
    assert (wd / "results/audit/comparison.md").is_file()
