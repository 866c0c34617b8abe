"""The package's shape: no import cycle inside it, no private Snakemake attribute touched.

A cycle makes the order of imports matter and a module impossible to test alone; a private
attribute of Snakemake (``workflow.persistence._record_path``, ``workflow.dag``) changes in any
minor release without notice, and a newcomer cannot see from the rules what it does.
"""

import ast
import re

from conftest import ROOT

PACKAGE = ROOT / "workflow" / "scripts" / "actflow"
RULES = [ROOT / "workflow" / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
SCRIPTS = sorted((ROOT / "workflow" / "scripts").glob("*.py"))
# Snakemake's internals that the workflow once read: the DAG, the persistence store, the
# deployment and execution settings, a job's rule
INTERNALS = re.compile(r"\bworkflow\.(dag|persistence|scheduler|executor_plugin|deployment_settings"
                       r"|execution_settings|remote_exec|local_exec)\b|\bneedrun_jobs\b|\.conda_env\b")


# torch's multi-tensor ops (torch._foreach_*), which torch.optim's own Adam runs on: the
# training loop's optimizer uses them without importing torch.optim (1.35 s of a job's start)
NOT_SNAKEMAKE = {"torch"}


def _imports(path) -> set[str]:
    """The package modules that ``path`` imports, anywhere in it (functions included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                out.add(node.module.split(".")[0])
            elif node.level == 1:
                out.update(a.name for a in node.names)
            elif node.module and node.module.startswith("actflow."):
                out.add(node.module.split(".")[1])
            elif node.module == "actflow":
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("actflow."))
    return out


def import_graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return {m: _imports(PACKAGE / f"{m}.py") & modules - {m} for m in modules}


def cycles(graph) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle_and_nothing_else():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_inside_the_package():
    graph = import_graph()
    assert len(graph) > 15 and "layout" in graph["jobs"]  # the graph is read, not empty
    found = cycles(graph)
    assert not found, f"import cycles inside actflow (each list imports itself): {found}"


def _own_private_names() -> set[str]:
    names = set()
    for p in [*PACKAGE.glob("*.py"), *RULES, *SCRIPTS]:
        names.update(re.findall(r"\b(?:def|class)\s+(_\w+)", p.read_text()))
        names.update(re.findall(r"^\s*(_\w+)\s*[:=]", p.read_text(), re.M))
        names.update(re.findall(r"\bself\.(_\w+)\s*[:=]", p.read_text()))
    return names


def private_uses(text: str, own: set[str]) -> list[str]:
    """Attribute accesses to a private name (``x._name``, not a dunder) not defined in our own
    code, and reads of Snakemake's internals."""
    found = [m.group(0) for m in re.finditer(r"\b(\w+)\.(_[A-Za-z]\w*)\b", text)
             if not m.group(2).startswith("__") and m.group(2) not in own
             and m.group(1) not in NOT_SNAKEMAKE]
    return found + [m.group(0) for m in INTERNALS.finditer(text)]


def test_the_private_attribute_finder_finds_what_the_guard_once_used():
    own = _own_private_names()
    assert private_uses("persistence._record_path(base, rel)", own) == ["persistence._record_path"]
    assert private_uses("jobs = list(workflow.dag.needrun_jobs())", own) == [
        "workflow.dag", "needrun_jobs"]
    assert private_uses("x.__dict__; audit._manifest(root)", own) == []


def test_no_private_snakemake_attribute_in_the_package_or_the_rules():
    own = _own_private_names()
    found = {str(p.relative_to(ROOT)): private_uses(p.read_text(), own)
             for p in [*PACKAGE.glob("*.py"), *RULES, *SCRIPTS]}
    found = {k: v for k, v in found.items() if v}
    assert not found, found


def test_the_package_docstring_and_the_development_guide_name_every_module():
    import actflow

    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    guide = (ROOT / "docs" / "development.md").read_text()
    for name in modules:
        assert f"``{name}``" in actflow.__doc__, f"actflow/__init__.py does not describe {name}"
        assert re.search(rf"\b{name}\b", guide), f"docs/development.md does not name {name}"
