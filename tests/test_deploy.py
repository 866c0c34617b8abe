"""The workflow runs anywhere: with --directory on a folder outside the clone, and as a module
of another workflow; both give the tables of a plain run, byte for byte."""

from __future__ import annotations

import os
import subprocess

from conftest import SNAKEMAKE, TINY, copy_workflow, study_files

from actflow import layout

def _run(cwd, *args):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([SNAKEMAKE, *args, "--cores", "2"], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _same_tables(a, b):
    """The study's data, weights and tables (both runs left the variants out or not)."""
    files = study_files(b)
    assert len(files) > 40 and study_files(a) == files
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_directory_elsewhere_writes_results_there_and_nothing_in_the_clone(tiny_run, tmp_path):
    clone = copy_workflow(tmp_path / "clone")
    data = tmp_path / "data"
    data.mkdir()
    # Figure 6 of the tiny config, and what it needs: the data, Experiment 1's training and its
    # history tables (what a whole run adds is the same rules again; the module run below runs
    # everything)
    fig = layout.figure_path("fig6_loss_curves", "png")
    _run(clone, fig, "--directory", str(data), "--configfile", str(TINY), "--config",
         "variants=[]")
    assert (data / fig).is_file()
    assert not (clone / layout.RESULTS).exists()
    made = [f for f in study_files(tiny_run) if (data / f).is_file()]
    assert len(made) > 10 and any("/train/exp1/" in f for f in made)
    for rel in made:
        assert (data / rel).read_bytes() == (tiny_run / rel).read_bytes(), rel


def test_deployed_as_snakedeploy_does_using_it_as_a_module(tiny_run, cold_run):
    # cold_run (conftest) is the tiny config run from a deployment shaped as snakedeploy makes
    # one: config/ and a workflow/Snakefile `module actflow: snakefile: ...; config: config`,
    # `use rule * from actflow`, found by Snakemake without -s
    assert "module actflow:" in (cold_run / "workflow" / "Snakefile").read_text()
    assert (cold_run / layout.AUDIT["manifest"]).is_file()
    assert not (cold_run.parent / "clone" / layout.RESULTS).exists()
    _same_tables(cold_run, tiny_run)


def test_each_figure_is_saved_in_every_format_the_config_lists(cold_run):
    """The cold run lists every format figures.formats allows (layout.FIGURE_FORMATS): each
    figure of the study in each, the PDF complete and the same picture (a page of the PNG's
    aspect ratio)."""
    from actflow import audit
    from actflow import figures as figreg
    from matplotlib.image import imread

    folder = cold_run / "results/figures"
    assert sorted(p.name for p in folder.glob("*.*")) == sorted(
        f"{n}.{ext}" for n in figreg.FIGURES for ext in layout.FIGURE_FORMATS)
    for name in figreg.FIGURES:
        pdf = (folder / f"{name}.pdf").read_bytes()
        assert audit.unreadable(folder / f"{name}.pdf") is None and len(pdf) > 2000
        box = [float(v) for v in pdf.split(b"/MediaBox [", 1)[1].split(b"]", 1)[0].split()]
        h, w = imread(folder / f"{name}.png").shape[:2]
        assert abs((box[2] - box[0]) / (box[3] - box[1]) - w / h) < 0.05, name


def test_every_figure_is_laid_out_without_a_warning(tiny_run, cold_run):
    """Every figure job's log, in a run with variants (Fig. 12: 2 settings an experiment) and in
    one without (1 setting): no warning from matplotlib, such as constrained layout giving up
    on a figure too narrow for its legend."""
    for run in (tiny_run, cold_run):
        logs = sorted((run / "results/logs/figures").rglob("*.log"))
        assert len(logs) > 10
        warned = [str(p.relative_to(run)) for p in logs if "Warning" in p.read_text()]
        assert warned == [], warned
