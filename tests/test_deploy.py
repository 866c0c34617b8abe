"""The workflow runs anywhere: with --directory on a folder outside the clone, and as a module
of another workflow; both give the tables of a plain run, byte for byte."""

from __future__ import annotations

import os
import subprocess

from conftest import SNAKEMAKE, TINY, copy_workflow

from actflow import layout

COMPARED = [layout.TABLES[n].union_path() for n in ("runs", "loss", "dead_neurons", "capacity")]
COMPARED += [layout.AUDIT["claims_parquet"]]


def _run(cwd, *args):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([SNAKEMAKE, *args, "--cores", "2"], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _same_tables(a, b):
    for rel in COMPARED:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_directory_elsewhere_writes_results_there_and_nothing_in_the_clone(tiny_run, tmp_path):
    clone = copy_workflow(tmp_path / "clone")
    data = tmp_path / "data"
    data.mkdir()
    _run(clone, "--directory", str(data), "--configfile", str(TINY))
    assert (data / layout.AUDIT["manifest"]).is_file()
    assert not (clone / layout.RESULTS).exists()
    _same_tables(data, tiny_run)


def test_used_as_a_module_from_a_wrapper_snakefile(tiny_run, tmp_path):
    clone = copy_workflow(tmp_path / "clone")
    wrapper = tmp_path / "mine"
    wrapper.mkdir()
    (wrapper / "Snakefile").write_text(
        f'configfile: "{TINY}"\n\n\n'
        "module actflow:\n"
        f'    snakefile: "{clone / "Snakefile"}"\n'
        "    config: config\n\n\n"
        "use rule * from actflow\n")
    _run(wrapper, "all")
    assert (wrapper / layout.AUDIT["manifest"]).is_file()
    assert not (clone / layout.RESULTS).exists()
    _same_tables(wrapper, tiny_run)
