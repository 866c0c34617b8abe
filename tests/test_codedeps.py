"""Each rule's code inputs are the package modules its job loads, derived from the imports."""

import json
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
            "weight_metrics", "capacity_metrics", "union_sine", "union_capacity", "figure", "audit_claims",
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


def test_the_cache_between_invocations_answers_as_the_analysis_and_sees_every_edit(tmp_path):
    from actflow import codedeps

    pkg, script = _package(tmp_path, {"__init__": "", "hub": "def f():\n    pass\n", "extra": ""})
    script.write_text("from actflow import hub\nhub.f()\n")
    cache = tmp_path / ".snakemake" / "actflow" / "codedeps.json"

    def fresh():  # a new Snakemake process: nothing remembered in memory
        codedeps._read_cache.cache_clear()
        return [p.stem for p in codedeps.cached_package_modules(script, pkg, cache)]

    assert fresh() == ["__init__", "hub"] and cache.is_file()
    cache.write_text(cache.read_text().replace('"hub"]', '"hub", "planted"]'))
    assert "planted" in cache.read_text()
    assert fresh() == ["__init__", "hub", "planted"]  # answered from the cache: files unchanged
    # an edit of any package file (another size) invalidates the entry
    (pkg / "hub.py").write_text("from . import extra\ndef f():\n    pass\n")
    assert fresh() == ["__init__", "extra", "hub"] == [
        p.stem for p in codedeps.package_modules(script, pkg)]
    cache.write_text("{not json")  # a damaged cache is ignored, and rewritten
    assert fresh() == ["__init__", "extra", "hub"]
    assert json.loads(cache.read_text())
