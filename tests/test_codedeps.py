"""Each rule's code inputs are the package modules its job loads, derived from the imports."""

import textwrap

from actflow import io
from actflow.codedeps import package_modules
from conftest import planned_job_details


def test_every_job_declares_every_module_it_loaded(tiny_run):
    """From Snakemake's plan of the whole tiny workflow: each job's declared code inputs contain
    every package module that job loaded when it ran (logged by the job at its exit)."""
    checked = set()
    for job in planned_job_details(tiny_run, "--forceall"):
        if not job["log"]:
            continue  # target rules: no script
        declared = {p.rsplit("/", 1)[1][:-3] for p in job["input"]
                    if p.startswith("workflow/scripts/actflow/")}
        text = (tiny_run / job["log"]).read_text()
        line = next(ln for ln in text.splitlines() if io.MODULES_LINE in ln)
        loaded = set(line.split(io.MODULES_LINE, 1)[1].split())
        assert loaded, job
        assert loaded <= declared, (job["rule"], sorted(loaded - declared))
        checked.add(job["rule"])
    assert {"data_sine", "data_targets_train", "data_targets_test", "train", "history_metrics",
            "weight_metrics", "capacity_metrics", "union_table", "figure", "audit_claims",
            "manifest"} <= checked


def _package(tmp_path, files):
    pkg = tmp_path / "actflow"
    pkg.mkdir()
    for name, text in files.items():
        (pkg / f"{name}.py").write_text(textwrap.dedent(text))
    script = tmp_path / "adapter.py"
    return pkg, script


def test_imports_are_followed_transitively_and_per_called_function(tmp_path):
    pkg, script = _package(tmp_path, {
        "__init__": "",
        "io": "import json\n",
        "hub": """
            from . import io
            def light():
                from . import small
                return small.f()
            def heavy():
                from .big import g
                return helper()
            def helper():
                from . import deep
            """,
        "small": "def f():\n    return 1\n",
        "big": "from . import deeper\ndef g():\n    pass\n",
        "deeper": "",
        "deep": "",
        "unused": "",
    })
    script.write_text("from actflow import hub, io\nio.json\nhub.light()\n")
    assert [p.stem for p in package_modules(script, pkg)] == ["__init__", "hub", "io", "small"]
    script.write_text("from actflow import hub\nhub.heavy()\n")
    assert [p.stem for p in package_modules(script, pkg)] == [
        "__init__", "big", "deep", "deeper", "hub", "io"]
