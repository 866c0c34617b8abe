"""Variants: named versions of the study's experiments under settings the study leaves unstated.

A variant derives from one experiment (``of: exp1 | exp2 | exp3``) and overrides some of its
training settings (``learning_rate``, ``optimizer``, ``init``, ...) or data settings
(``data: {per_seed: true}``; for Experiment 3 also ``noise_std``, ``n_test``, ``targets``). A
``grid:`` of keys with lists of values expands to one variant per combination, named
``<name>-<key>=<value>`` (keys joined with ``-``). Each variant then flows through the same
rules as its experiment, into its own folders, and the audit evaluates every claim of its
experiment under it.

The study's own experiments are the variants named ``exp1``, ``exp2`` and ``exp3`` (their
``variant`` column equals their ``experiment`` column): the reference rows everywhere.

No torch or pandas here: the Snakefile expands the variants when it parses.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field

from .layout import EXPERIMENT_KINDS as KIND  # the study's experiments and their kinds

STUDY = tuple(KIND)
NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # a variant's own name; generated names add -key=value
META_KEYS = ("name", "of", "question", "grid", "seeds")
MAX_SEED = 2**32 - 1  # every random generator used keeps a seed in this range in full


@dataclass(frozen=True)
class Variant:
    name: str  # folder and `variant` column; exp1/exp2/exp3 for the study's own settings
    of: str  # the experiment it derives from (its `experiment` column)
    question: str  # what it asks, in one line
    overrides: dict = field(default_factory=dict)  # dotted key -> value, what differs
    settings: dict = field(default_factory=dict)  # the experiment's section, resolved
    data: dict = field(default_factory=dict)  # the data section, resolved
    entry: int = -1  # index of its entry in the config's variants list (-1: the study's)
    seeds: tuple = ()  # its training seeds: the variant's own `seeds:` or the config's

    @property
    def kind(self) -> str:
        return KIND[self.of]

    @property
    def is_study(self) -> bool:
        return self.name == self.of

    @property
    def targets(self) -> list | None:
        """A capacity experiment's targets (each trained as its own run), else None."""
        return self.settings["targets"] if self.kind == "capacity" else None

    @property
    def stacked_runs(self) -> int:
        """The runs one of its training jobs trains as one stacked model: every seed (and for a
        capacity experiment every target)."""
        return len(self.seeds) * len(self.targets or [None])


class VariantError(ValueError):
    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key, self.message = key, message


def _fmt(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "+".join(map(_fmt, value))
    return str(value)


def _flatten(overrides: dict) -> dict:
    flat = {}
    for k, v in overrides.items():
        if k == "data" and isinstance(v, dict):
            flat |= {f"data.{dk}": dv for dk, dv in v.items()}
        else:
            flat[k] = v
    return flat


def _nest(flat: dict) -> dict:
    out: dict = {}
    for k, v in flat.items():
        if k.startswith("data."):
            out.setdefault("data", {})[k[5:]] = v
        else:
            out[k] = v
    return out


def expand_entries(entries) -> list[dict]:
    """The config's ``variants:`` list with every grid expanded: one dict per variant, with
    ``name``, ``of``, ``question``, ``index`` (of its entry) and ``overrides`` (nested as in the
    config). Raises VariantError(key, message) for a malformed entry."""
    out = []
    for i, entry in enumerate(entries or []):
        where = f"variants[{i}]"
        if not isinstance(entry, dict):
            raise VariantError(where, "each variant is a mapping with at least name and of")
        name = entry.get("name")
        where_named = f"{where} ({name})" if isinstance(name, str) else where
        if not isinstance(name, str) or not NAME.match(name):
            raise VariantError(f"{where}.name", f"{name!r} is not a name of lower-case letters, "
                               "digits and underscores that starts with a letter (it names "
                               "folders and table rows)")
        if entry.get("of") not in STUDY:
            raise VariantError(f"{where_named}.of", f"{entry.get('of')!r} is not one of "
                               f"{', '.join(STUDY)}: the experiment the variant derives from")
        question = entry.get("question", "")
        if not isinstance(question, str):
            raise VariantError(f"{where_named}.question", "must be a line of text")
        seeds = _seeds(entry.get("seeds"), f"{where_named}.seeds")
        base = {k: v for k, v in entry.items() if k not in META_KEYS}
        grid = entry.get("grid") or {}
        if not isinstance(grid, dict) or not all(
                isinstance(v, list) and v for v in grid.values()):
            raise VariantError(f"{where_named}.grid", "a grid maps keys (data keys as data.key) to "
                               "non-empty lists of values")
        flat = _flatten(base)
        clash = set(flat) & set(grid)
        if clash:
            raise VariantError(f"{where_named}.grid", f"{sorted(clash)[0]} is given both as a "
                               "setting and in the grid")
        if not grid:
            out.append({"name": name, "of": entry["of"], "question": question, "index": i,
                        "overrides": _nest(flat), "seeds": seeds})
            continue
        keys = sorted(grid)  # names do not depend on the order the keys are written in
        for k in keys:  # two values written alike in a name would name two variants alike
            shown: dict = {}
            for v in grid[k]:
                if _fmt(v) in shown and shown[_fmt(v)] != v:
                    raise VariantError(
                        f"{where_named}.grid.{k}",
                        f"the values {shown[_fmt(v)]!r} and {v!r} are both written {_fmt(v)!r} "
                        f"in the generated variant names (6 significant digits): use values "
                        f"that differ within 6 digits, or give each its own variant and name")
                shown[_fmt(v)] = v
        for values in itertools.product(*(grid[k] for k in keys)):
            label = "-".join(f"{k.removeprefix('data.')}={_fmt(v)}" for k, v in zip(keys, values))
            out.append({"name": f"{name}-{label}", "of": entry["of"], "question": question,
                        "index": i, "overrides": _nest(flat | dict(zip(keys, values))),
                        "seeds": seeds})
    seen = set(STUDY)
    for v in out:
        if v["name"] in seen:
            what = "the study's experiment" if v["name"] in STUDY else "another variant"
            raise VariantError(f"variants[{v['index']}] ({v['name']}).name",
                               f"{v['name']!r} is already the name of {what}: names must be unique")
        seen.add(v["name"])
        if not re.match(r"^[a-z0-9_.=+\-]+$", v["name"]) or len(v["name"]) > 120:
            raise VariantError(f"variants[{v['index']}] ({v['name']}).name",
                               "a generated name must be short and path-safe: use simpler grid values")
    return out


def _seeds(value, key):
    """A variant's own seeds: a list of distinct whole numbers, or a count n for 0 … n−1;
    None (absent) for the config's seeds."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= 10_000:
            raise VariantError(key, f"{value} seeds: give a count from 1 to 10000 (seeds 0 … n−1) "
                               "or a list of seeds")
        return list(range(value))
    if (not isinstance(value, list) or not value
            or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED
                       for s in value)):
        raise VariantError(key, f"{value!r} is neither a count of seeds (e.g. 20 for seeds "
                           f"0 … 19) nor a list of whole numbers from 0 to {MAX_SEED}")
    if len(set(value)) != len(value):
        dup = next(s for s in value if value.count(s) > 1)
        raise VariantError(key, f"seed {dup} is listed twice")
    return list(value)


def resolve(config: dict, expanded: list[dict]) -> list[Variant]:
    """The study's experiments and every variant, with their settings resolved (the variant's
    experiment section and the data section, with its overrides on top, and its seeds)."""
    seeds = tuple(config["seeds"])
    out = [Variant(e, e, "the study's setting", {}, copy.deepcopy(config[e]),
                   copy.deepcopy(config["data"]), seeds=seeds) for e in STUDY]
    for v in expanded:
        ov = copy.deepcopy(v["overrides"])
        data = copy.deepcopy(config["data"]) | ov.pop("data", {})
        settings = copy.deepcopy(config[v["of"]]) | ov
        own = v.get("seeds")
        out.append(Variant(v["name"], v["of"], v["question"], _flatten(v["overrides"]),
                           settings, data, v["index"],
                           seeds=tuple(own) if own is not None else seeds))
    return out


def describe(variant: Variant, study_seeds=None) -> str:
    """'learning_rate=0.01, optimizer=sgd' (or 'the study's setting'), with 'seeds=0…19' where
    the variant has seeds of its own (other than ``study_seeds``)."""
    if variant.is_study:
        return "the study's setting"
    parts = [f"{k}={_fmt(v)}" for k, v in sorted(variant.overrides.items())]
    if study_seeds is not None and tuple(variant.seeds) != tuple(study_seeds):
        parts.append(f"seeds={seed_text(variant.seeds)}")
    return ", ".join(parts) or "the study's setting"


def grids(entries, config: dict | None = None) -> dict[str, dict]:
    """The config's grid variants, each entry that has a ``grid:``: its name -> experiment,
    the grid's keys (sorted, data keys as data.key), its points, one per variant it expands to:
    [variant name, {key: value}] (what a grid figure draws its claims against), and
    ``study``: the study's own values of the keys where the entry changes nothing else (then
    the study's setting is one more point of the same curve), else None."""
    out = {}
    expanded = expand_entries(entries)
    for i, entry in enumerate(entries or []):
        grid = entry.get("grid") if isinstance(entry, dict) else None
        if not grid:
            continue
        keys = sorted(grid)
        points = []
        for v in expanded:
            if v["index"] == i:
                flat = _flatten(v["overrides"])
                points.append([v["name"], {k: flat[k] for k in keys}])
        rest = {k: v for k, v in entry.items() if k not in META_KEYS}
        study = None
        if config is not None and not rest:
            sections = {"data": config.get("data", {}), "": config.get(entry["of"], {})}
            study = {k: sections["data" if k.startswith("data.") else ""].get(
                k.removeprefix("data.")) for k in keys}
        out[entry["name"]] = {"experiment": entry["of"], "keys": keys, "points": points,
                              "question": entry.get("question", ""), "study": study}
    return out


def dataset_settings(variant: Variant) -> dict:
    """What a variant's training data is drawn from: the data section (for a capacity variant
    with Experiment 3's own noise, targets and test grid), and its seeds when each seed draws
    its own data (``per_seed``)."""
    d = dict(variant.data)
    if variant.kind == "capacity":
        noise = variant.settings["noise_std"]
        d |= {"noise_std": d["noise_std"] if noise is None else noise,
              "targets": variant.settings["targets"], "n_test": variant.settings["n_test"]}
    if d["per_seed"]:
        d["seeds"] = list(variant.seeds)
    return d


@dataclass(frozen=True)
class Datasets:
    """The distinct datasets of a set of variants: variants whose data settings are equal share
    one (one data job, one file). ``settings``: (kind, name) -> dataset_settings; the study's
    data is named "study", another dataset after the first variant that needs it. ``of``:
    variant name -> its dataset's name."""

    settings: dict
    of: dict

    def names(self, kind: str) -> list[str]:
        return [n for k, n in self.settings if k == kind]


def datasets(variants) -> Datasets:
    settings, of = {}, {}
    for v in variants:
        s = dataset_settings(v)
        name = next((n for (k, n), t in settings.items() if k == v.kind and t == s), None)
        if name is None:
            name = "study" if v.is_study else v.name
            settings[(v.kind, name)] = s
        of[v.name] = name
    return Datasets(settings, of)


def label(experiment: str, settings_text: str) -> str:
    """A variant as a reader names it, from its experiment and its settings (describe):
    'Exp 1, init=kaiming_normal', 'Exp 2, the study's setting'."""
    return f"Exp {experiment.removeprefix('exp')}, {settings_text}"


def seed_text(seeds) -> str:
    """'0…19' for a run of consecutive seeds, else the list."""
    s = list(seeds)
    if len(s) > 2 and s == list(range(s[0], s[0] + len(s))):
        return f"{s[0]}…{s[-1]} ({len(s)} seeds)"
    return "+".join(map(str, s))
