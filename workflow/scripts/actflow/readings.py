"""Readings: every way the study's words allow a claim to be read (a specification curve).

Where the study leaves a choice open (a time window, a cutoff, a comparator, a tolerance, a
subset of layers, a definition), a claim declares the defensible range in ``config/claims.yaml``
and the audit evaluates it under every reading, from the same tables (a reading re-reads the
tables; it never retrains). A *family* of readings is one open choice:

    windows_through_training:            # a name, shared by the claims that list it
      choice: time window                # what is open, in words
      set: filter.epoch                  # the claim key it sets (dotted path; null removes it)
      values:                            # each defensible value, with a short label
        - {label: "first 2 %", value: {from_fraction: 0.0, to_fraction: 0.02}}
        - ...
      all_of: ReLU and GELU              # optional: one more reading, holding only when the
                                         # claim holds under every value at once

``primary: all_of`` makes the all_of reading the primary one (a claim about every value at
once, such as "throughout": every tenth of training). ``set`` may also list several keys (``set: [table, column]``): each value is then a list of
as many values, set together (a reading that reads another table's column).

A claim lists its families under ``readings:`` (names of the file's families, or a family
written in place). Its readings are every combination of one value per family; the *primary*
reading is the claim as written (its own value of each choice; a family that lacks it gains it,
labelled "as stated"). For each claim the audit reports the primary verdict, how many readings
give each verdict, and a label: ``robust`` (every reading gives the primary verdict) or
``depends on reading`` (naming the readings that flip it); ``single reading`` where none are
declared. Anchors: specification-curve analysis (Simonsohn, Simmons & Nelson, Nature Human
Behaviour 2020), multiverse analysis (Steegen et al. 2016).

No pandas here: the Snakefile checks the claims file, readings included, when it parses.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field

FAMILY_KEYS = {"choice", "set", "values", "all_of", "primary"}
ABSENT = object()  # a key the claim does not set
MAX_READINGS = 400  # per claim: a product of families larger than this is refused
LABELS = ("robust", "depends on reading", "single reading")


class ReadingError(ValueError):
    pass


@dataclass(frozen=True)
class Reading:
    label: str  # "window: 10–20 %; tolerance: ± 1 point" ("as stated" for no families)
    choices: dict  # family choice -> value label
    claims: tuple  # one claim dict, or several that must all hold (an all_of reading)
    primary: bool = False
    index: int = 0
    members: tuple = field(default=())  # labels of the all_of members, in order


def get(claim: dict, path: str):
    node = claim
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return ABSENT
        node = node[part]
    return node


def put(claim: dict, path: str, value) -> dict:
    """A copy of ``claim`` with ``path`` set to ``value`` (removed where value is None)."""
    out = copy.deepcopy(claim)
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = copy.deepcopy(value)
    return out


def paths(fam: dict) -> list[str]:
    return [fam["set"]] if isinstance(fam["set"], str) else list(fam["set"])


def _get_all(claim: dict, fam: dict):
    got = [get(claim, p) for p in paths(fam)]
    return got[0] if isinstance(fam["set"], str) else got


def _put_all(claim: dict, fam: dict, value) -> dict:
    if isinstance(fam["set"], str):
        return put(claim, fam["set"], value)
    for p, v in zip(paths(fam), value):
        claim = put(claim, p, v)
    return claim


def _same(value, own, multi: bool) -> bool:
    """A family's value against the claim's own (None in a value stands for an absent key)."""
    if not multi:
        return (ABSENT if value is None else value) == own
    return [ABSENT if v is None else v for v in value] == own


def check_family(fam, where: str) -> dict:
    if not isinstance(fam, dict):
        raise ReadingError(f"{where}: a family of readings is a mapping with choice, set, values")
    unknown = set(fam) - FAMILY_KEYS
    missing = {"choice", "set", "values"} - set(fam)
    if unknown or missing:
        raise ReadingError(f"{where}: a family of readings takes {', '.join(sorted(FAMILY_KEYS))}"
                           + (f"; unknown {sorted(unknown)}" if unknown else "")
                           + (f"; missing {sorted(missing)}" if missing else ""))
    if not isinstance(fam["choice"], str) or not fam["choice"].strip():
        raise ReadingError(f"{where}: choice must name what is open, e.g. 'time window'")
    keys = fam["set"] if isinstance(fam["set"], list) else [fam["set"]]
    if not keys or not all(isinstance(k, str) and all(p.isidentifier() for p in k.split("."))
                           for k in keys):
        raise ReadingError(f"{where}: set must be a dotted claim key such as filter.epoch or "
                           f"test.tolerance, or a list of them (got {fam['set']!r})")
    values = fam["values"]
    if not isinstance(values, list) or not values:
        raise ReadingError(f"{where}: values must be a non-empty list of {{label, value}}")
    labels = []
    for i, v in enumerate(values):
        if not isinstance(v, dict) or set(v) != {"label", "value"} or not isinstance(v["label"], str):
            raise ReadingError(f"{where}: values[{i}] must be {{label: text, value: ...}} "
                               f"(value null removes the key)")
        labels.append(v["label"])
        if isinstance(fam["set"], list) and not (isinstance(v["value"], list)
                                                 and len(v["value"]) == len(keys)):
            raise ReadingError(f"{where}: values[{i}]: set lists {len(keys)} keys, so each value "
                               f"is a list of {len(keys)} values")
    dup = {x for x in labels if labels.count(x) > 1}
    if dup:
        raise ReadingError(f"{where}: the label {sorted(dup)[0]!r} is given twice")
    if "all_of" in fam and (not isinstance(fam["all_of"], str) or fam["all_of"] in labels):
        raise ReadingError(f"{where}: all_of must be the label of the reading under which every "
                           f"value must hold at once, unlike the values' labels")
    if "primary" in fam and (fam["primary"] != "all_of" or "all_of" not in fam):
        raise ReadingError(f"{where}: primary: all_of (the only value) needs an all_of reading")
    return fam


def families_of(claim: dict, shared: dict, where: str) -> list[dict]:
    """The families a claim declares: names of the file's shared families, or families in place."""
    listed = claim.get("readings")
    if listed is None:
        return []
    if not isinstance(listed, list) or not listed:
        raise ReadingError(f"{where}: readings must be a list of family names (from the claims "
                           f"file's readings:) or families written in place")
    out = []
    for i, item in enumerate(listed):
        if isinstance(item, str):
            if item not in shared:
                raise ReadingError(f"{where}: readings[{i}]: no family {item!r} under the file's "
                                   f"readings: (known: {', '.join(sorted(shared)) or 'none'})")
            out.append(shared[item])
        else:
            out.append(check_family(item, f"{where}: readings[{i}]"))
    sets = [p for f in out for p in paths(f)]
    if len(set(sets)) != len(sets):
        raise ReadingError(f"{where}: two families set the same key {sets}")
    return out


def _options(claim: dict, fam: dict) -> list[tuple[str, object, bool]]:
    """(label, value, is the claim's own) of each value of a family, the claim's own value
    added (labelled "as stated") where the family lacks it."""
    own = _get_all(claim, fam)
    multi = not isinstance(fam["set"], str)
    every = fam.get("primary") == "all_of"  # the all_of reading is the claim's own
    opts = []
    found = every
    for v in fam["values"]:
        mine = not every and _same(v["value"], own, multi)
        found |= mine
        opts.append((v["label"], v["value"], mine))
    if not found:
        stated = ([None if o is ABSENT else o for o in own] if multi
                  else None if own is ABSENT else own)
        opts.insert(0, ("as stated", stated, True))
    return opts


def expand(claim: dict, shared: dict, where: str, check=None) -> list[Reading]:
    """Every reading of one claim, in the order of the families' values (the primary is
    flagged). ``check(claim, where)`` validates each
    reading's claim (so that a reading naming a column the table lacks is refused before any
    job runs)."""
    fams = families_of(claim, shared, where)
    base = {k: v for k, v in claim.items() if k not in ("readings", "_readings")}
    if not fams:
        return [Reading("as stated", {}, (base,), primary=True)]
    per_fam = []
    for fam in fams:
        opts = [(label, (value,), mine) for label, value, mine in _options(base, fam)]
        if "all_of" in fam:
            opts.append((fam["all_of"], tuple(v["value"] for v in fam["values"]),
                         fam.get("primary") == "all_of"))
        per_fam.append(opts)
    total = 1
    for opts in per_fam:
        total *= len(opts)
    if total > MAX_READINGS:
        raise ReadingError(f"{where}: its families give {total} readings; at most {MAX_READINGS}")
    out = []
    for combo in itertools.product(*per_fam):
        choices = {fam["choice"]: label for fam, (label, _, _) in zip(fams, combo)}
        primary = all(mine for _, _, mine in combo)
        members = []
        for values in itertools.product(*(vals for _, vals, _ in combo)):
            c = base
            for fam, value in zip(fams, values):
                c = _put_all(c, fam, value)
            members.append(c)
        label = "; ".join(f"{k}: {v}" for k, v in choices.items())
        if check is not None:
            for c in members:
                try:
                    check(c, f"{where} (reading {label})")
                except ValueError as err:
                    raise ReadingError(str(err)) from None
        member_labels = ()
        if len(members) > 1:
            member_labels = tuple(
                "; ".join(f"{fam['choice']}: {lab}" for fam, lab in zip(fams, labs))
                for labs in itertools.product(*(
                    [v["label"] for v in fam["values"]] if len(vals) > 1 else [lab]
                    for fam, (lab, vals, _) in zip(fams, combo))))
        out.append(Reading(label, choices, tuple(members), primary, members=member_labels))
    # in the families' order (the primary where its values put it)
    return [Reading(r.label, r.choices, r.claims, r.primary, i, r.members)
            for i, r in enumerate(out)]


# ------------------------------------------------------------------ verdicts over readings
WORST = ("does not hold", "undecidable", "inconclusive", "not applicable", "holds")


def combine(results: list[dict], labels) -> dict:
    """The verdict of an all_of reading: holds when every member holds; otherwise the member
    with the weakest verdict (does not hold, then undecidable, then inconclusive) speaks for it."""
    ranked = sorted(zip(results, labels), key=lambda rl: WORST.index(rl[0]["verdict"]))
    worst, which = ranked[0]
    if worst["verdict"] == "holds":  # all hold: the one closest to failing stands for it
        worst, which = min(zip(results, labels), key=lambda rl: rl[0].get("margin", float("inf")))
    verdicts = ", ".join(f"{lab}: {r['verdict']}" for r, lab in zip(results, labels))
    return worst | {"reason": f"every one must hold ({verdicts}); shown: {which}: "
                              + worst.get("reason", "")}


def label_of(primary: str, verdicts: list[str], n_declared: int) -> str:
    if n_declared <= 1:
        return "single reading"
    return "robust" if all(v == primary for v in verdicts) else "depends on reading"
