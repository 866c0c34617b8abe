"""The conda environments stay true to requirements.txt and to what each rule imports.

Conda channels cannot be reached from the test machines, so `--sdm conda` is not exercised
here (the README says so); instead: every workflow/envs/*.yaml parses and pins exactly the versions of
requirements.txt, every rule's `conda:` names an existing file, and every package a job of a
real run imported (its log says which; the tiny run with a fresh Python per job) is pinned in
that rule's environment."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from conftest import ROOT

from actflow import io, layout

RULE_FILES = sorted((ROOT / "workflow" / "rules").glob("*.smk"))


def _requirements() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def _env_pins(path: Path) -> dict[str, str]:
    doc = yaml.safe_load(path.read_text())
    assert {"channels", "dependencies"} <= set(doc), path
    assert "python=3.11" in doc["dependencies"], path
    pip = next(d["pip"] for d in doc["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {name.lower(): v for name, v in (p.split("==") for p in pip)}


def _rules() -> dict[str, tuple[Path, str | None]]:
    """rule -> (its conda environment file, resolved against the rule file as Snakemake does;
    its log pattern); every rule that runs a script has an environment. A rule defined in a
    loop (``rule:`` with ``name: f"union_{_kind}"``) is keyed by its name pattern, and its
    log's loop variable becomes a wildcard."""
    out = {}
    for smk in RULE_FILES:
        text = smk.read_text()
        for m in re.finditer(r"^ *rule(?: (\w+))?:(.*?)(?=^ *rule[ :]|^\S|\Z)", text, re.M | re.S):
            body = m.group(2)
            name = m.group(1) or re.search(r'name:\s*\n\s*f?"([^"]+)"', body).group(1)
            env = re.search(r'^ +conda:\s*\n\s*"([^"]+)"', body, re.M)
            log = re.search(r'^ +log:\s*\n\s*layout\.log\(f?"([^"]+)"\)', body, re.M)
            if re.search(r"^ +script:", body, re.M):
                assert env, f"rule {name} runs a script but names no conda environment"
            if env:
                pattern = re.sub(r"\{_[^}]*\}", "{loop}", log.group(1)) if log else None
                out[name] = ((smk.parent / env.group(1)).resolve(),
                             layout.log(pattern) if pattern else None)
    return out


def _rule_of(log: str, rules) -> str:
    """The rule whose log pattern matches ``log`` (the most specific one)."""
    found = []
    for rule, (_, pattern) in rules.items():
        if pattern and re.fullmatch(re.sub(r"\\\{\w+\\\}", ".+", re.escape(pattern)), log):
            found.append((len(re.sub(r"\{\w+\}", "", pattern)), rule))
    assert found, log
    return max(found)[1]


def test_every_environment_parses_and_pins_requirements_versions_exactly():
    req = _requirements()
    envs = sorted((ROOT / "workflow" / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        for name, version in _env_pins(env).items():
            assert req.get(name) == version, f"{env.name}: {name}=={version}, requirements.txt " \
                                             f"pins {req.get(name)}"


def test_every_conda_directive_points_to_an_existing_environment():
    rules = _rules()
    assert len(rules) >= 15
    for rule, (env, _) in rules.items():
        assert env.is_file(), f"rule {rule}: {env} does not exist"
        assert env.parent == ROOT / "workflow" / "envs", rule
    assert {e.name for e, _ in rules.values()} == {e.name for e in (ROOT / "workflow" / "envs").glob("*.yaml")}


def test_every_package_a_job_imported_is_pinned_in_its_rule_environment(cold_run):
    rules = _rules()
    seen = {}
    for log in (cold_run / "results" / "logs").rglob("*.log"):
        line = next((ln for ln in log.read_text().splitlines() if io.PACKAGES_LINE in ln), None)
        if line is None:
            continue
        rule = _rule_of(str(log.relative_to(cold_run)), rules)
        seen.setdefault(rule, set()).update(io.third_party(line.split(io.PACKAGES_LINE, 1)[1].split()))
    assert {"train", "figure", "history_metrics", "audit_claims", "data_sine"} <= set(seen), seen
    assert "torch" in seen["train"] and "torch" not in seen["figure"], seen
    # the project's own requirements a job imported (their dependencies come with them; the
    # Snakemake of the run provides itself to a script job, in an environment or not)
    direct = set(_requirements()) - {"snakemake", "snakemake-executor-plugin-slurm"}
    for rule, packages in seen.items():
        env = rules[rule][0]
        missing = sorted((packages & direct) - set(_env_pins(env)))
        assert not missing, f"rule {rule} imported {missing}, which {env.name} does not pin"
