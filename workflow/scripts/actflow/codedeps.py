"""Which package modules a job runs: the code inputs of each rule, derived from the imports.

Snakemake reruns a job when its script changes, but not when a module that script imports
changes. Each rule therefore lists, as inputs, the modules of this package that its script
loads. They are read from the source with :mod:`ast` (nothing is imported), so the list cannot
drift from the code:

- the script's own imports of the package, and for each module the script calls into
  (``jobs.train_job(...)``), the module's top-level imports plus the imports inside the
  functions it calls (and the functions of that module those call): so the data jobs do not
  depend on the training code that ``jobs.py`` imports only inside ``train_job``;
- every other module reached counts whole: its top-level imports and the imports inside all
  of its functions.

A test checks the result against the modules each job of a real run actually loaded.
"""

from __future__ import annotations

import ast
import functools
import json
import os
from pathlib import Path

PACKAGE = "actflow"


def _module_of(node, this: str | None) -> tuple[str | None, list[str]]:
    """For an import node: (module named by ``from X import``, names imported), package-local."""
    if isinstance(node, ast.Import):
        mods = []
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == PACKAGE:
                mods.append(parts[1] if len(parts) > 1 else "__init__")
        return None, mods
    if node.level == 0 and node.module and node.module.split(".")[0] == PACKAGE:
        parts = node.module.split(".")
        return (parts[1] if len(parts) > 1 else None), [a.name for a in node.names]
    if node.level == 1 and this is not None:
        return (node.module.split(".")[0] if node.module else None), [a.name for a in node.names]
    return None, []


def _imports(nodes, this: str | None, package_dir: Path) -> set[str]:
    found = set()
    for node in nodes:
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        base, names = _module_of(node, this)
        if isinstance(node, ast.Import):
            found |= set(names)
        elif base is not None:
            found.add(base)
        elif names:  # from actflow import x / from . import x: x is a module where a file exists
            found |= {n for n in names if (package_dir / f"{n}.py").exists()}
    return found


def _walk_skipping_functions(node):
    """Nodes of a module's body, not descending into function bodies."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        yield child
        yield from _walk_skipping_functions(child)


@functools.lru_cache(maxsize=None)
def _parse(text: str, filename: str) -> ast.AST:
    """Each source is parsed once per process (the Snakefile asks for every rule)."""
    return ast.parse(text, filename=filename)


def _module(path: Path, name: str | None, package_dir: Path) -> "_Module":
    """One analysed module per file version and process: the Snakefile asks for every rule's
    code inputs, and the rules share most modules (this keeps a no-op run's planning short)."""
    st = Path(path).stat()
    return _load(str(path), (st.st_mtime_ns, st.st_size), name, str(package_dir))


@functools.lru_cache(maxsize=None)
def _load(path: str, stamp, name: str | None, package_dir: str) -> "_Module":
    return _Module(Path(path), name, Path(package_dir))


class _Module:
    def __init__(self, path: Path, name: str | None, package_dir: Path):
        self.tree = _parse(Path(path).read_text(), str(path))
        self.name, self.dir = name, package_dir
        self.functions = {n.name: n for n in ast.walk(self.tree)
                          if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        self._for: dict[frozenset, set[str]] = {}

    @functools.cached_property
    def _top_level(self) -> frozenset[str]:
        return frozenset(_imports(_walk_skipping_functions(self.tree), self.name, self.dir))

    @functools.cached_property
    def _everything(self) -> frozenset[str]:
        return frozenset(_imports(ast.walk(self.tree), self.name, self.dir))

    def top_level(self) -> set[str]:
        return set(self._top_level)

    def everything(self) -> set[str]:
        return set(self._everything)

    def for_functions(self, entry: set[str]) -> set[str]:
        """Top-level imports plus those inside ``entry`` and the module's functions they call."""
        key = frozenset(entry)
        if key not in self._for:
            self._for[key] = self._for_functions(entry)
        return set(self._for[key])

    def _for_functions(self, entry: set[str]) -> set[str]:
        found, todo, seen = self.top_level(), list(entry), set()
        while todo:
            fn = self.functions.get(todo.pop())
            if fn is None or fn.name in seen:
                continue
            seen.add(fn.name)
            found |= _imports(ast.walk(fn), self.name, self.dir)
            todo += [c.func.id for c in ast.walk(fn)
                     if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)]
        return found

    def calls_into(self, modules: set[str]) -> dict[str, set[str]]:
        """Functions called as ``<module>.<function>(...)`` for each package module bound to a
        name here (by ``from actflow import x``)."""
        calls: dict[str, set[str]] = {}
        for c in ast.walk(self.tree):
            if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) \
                    and isinstance(c.func.value, ast.Name) and c.func.value.id in modules:
                calls.setdefault(c.func.value.id, set()).add(c.func.attr)
        return calls


def package_modules(script, package_dir) -> list[Path]:
    """Files of the package that ``script`` (a rule's adapter) loads, sorted; always __init__."""
    package_dir = Path(package_dir)
    adapter = _module(Path(script), None, package_dir)
    direct = adapter.everything()
    entries = adapter.calls_into(direct)
    seen = {"__init__"}
    todo: list[tuple[str, set[str] | None]] = [(m, entries.get(m)) for m in direct]
    todo.append(("__init__", None))
    whole_done: set[str] = set()
    while todo:
        name, entry = todo.pop()
        file = package_dir / f"{name}.py"
        if not file.exists() or (entry is None and name in whole_done):
            continue
        seen.add(name)
        mod = _module(file, name, package_dir)
        if entry is None:
            whole_done.add(name)
            found = mod.everything()
        else:
            found = mod.for_functions(entry)
        todo += [(m, None) for m in found if m not in whole_done]
    return sorted(package_dir / f"{m}.py" for m in seen)


def _stamp(files) -> list:
    """Name, modification time and size of each file: what a cache entry holds for (names, not
    paths, so that a copied or moved project with its times kept still finds its entries)."""
    return [[Path(f).name, *((st.st_mtime_ns, st.st_size) if (st := _stat(f)) else (None, None))]
            for f in files]


def _stat(path):
    try:
        return os.stat(path)
    except OSError:
        return None


@functools.lru_cache(maxsize=None)
def _read_cache(cache_file: str) -> dict:
    try:
        with open(cache_file) as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def cached_package_modules(script, package_dir, cache_file) -> list[Path]:
    """:func:`package_modules`, remembered in ``cache_file`` (JSON) between processes: an
    entry holds for as long as the script and every file of the package have the same
    modification time and size, so a no-op run does not parse the package again. A cache that
    cannot be read or written is ignored (the answer is computed)."""
    package_dir = Path(package_dir)
    stamp = _stamp([Path(script), *sorted(package_dir.glob("*.py"))])
    cache = _read_cache(str(cache_file))
    entry = cache.get(Path(script).name)
    if entry and entry.get("stamp") == stamp:
        return [package_dir / f"{m}.py" for m in entry["modules"]]
    found = package_modules(script, package_dir)
    cache[Path(script).name] = {"stamp": stamp, "modules": [p.stem for p in found]}
    try:
        os.makedirs(os.path.dirname(cache_file) or ".", exist_ok=True)
        tmp = f"{cache_file}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump(cache, fh)
        os.replace(tmp, cache_file)
    except OSError:
        pass
    return found
