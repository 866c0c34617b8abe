"""The study's claims, checked against the measured tables (``config/claims.yaml``).

A claim names a table (relative to ``results/``), a filter, a column, how the rows of
one seed reduce to one value (``per_seed``), an optional ``transform`` of that value,
and a ``test``: a region the value should lie in. Across seeds the mean and its 95 %
t-interval are computed; the verdict compares the *interval* with the region:

- ``holds``: the whole interval lies in the region;
- ``does not hold``: the interval lies wholly outside it;
- ``inconclusive``: the interval straddles a border of the region (or too few seeds);
- ``not applicable``: the run cannot test it (``requires`` on the runs' settings fails, for
  example a gradient ratio of a net with a single hidden layer).

``kind: winner`` claims instead read ``exp3/capacity_winners`` and check that the named
activation is best on the target with a lead that holds across seeds. ``kind: compare``
claims compare two selections of one table seed by seed (``left`` and ``right`` filters, for
example two activations): per seed, left − right (``combine: difference``) or
log10(left / right) (``combine: log10_ratio``), and the test applies to the interval of that
paired statistic.

Every claim quotes the sentence of the study it checks (``quote``, verbatim; a test checks
that it occurs in the study's text) and names where the study says it (``source``).

The claims file is checked whole before any job runs (:func:`load`): its shape against the JSON
Schema ``workflow/schemas/claims.schema.yaml`` (known keys per kind, test operators with
numeric parameters, reducers, filters), then a table the workflow writes (under ``results/``,
never outside), columns that table has, unique ids. Every reason states the outcome of the runs it used
(``runs.parquet``: layout.OUTCOMES).

Importing this module loads no pandas or numpy (the Snakefile checks the claims when it parses).
"""

from __future__ import annotations

import functools
import math
import posixpath

from . import layout, render

VERDICTS = ("holds", "does not hold", "inconclusive", "undecidable", "not applicable")
# One row of an evaluation: what was read, what was measured, the verdict and why.
RESULT_COLUMNS = ["condition", "expected", "region_low", "region_high", "measured_mean",
                  "ci_low", "ci_high", "unit", "basis",
                  "n_seeds", "n_left_out", "seeds_needed", "outcomes", "verdict", "verdict_text",
                  "side", "reason", "table", "table_sha256"]
# What the claims file says of a claim, beside each row.
CLAIM_COLUMNS = ["claim", "statement", "quote", "source", "scope", "by_construction", "note"]
# How a claim fares over its readings (actflow.readings), beside its primary verdict.
READING_SUMMARY = ["readings_label", "n_readings", "readings_verdicts", "flipped_by"]
COLUMNS = CLAIM_COLUMNS[:1] + ["experiment"] + CLAIM_COLUMNS[1:] + RESULT_COLUMNS[:-2] + READING_SUMMARY + ["differs_under", "table",
                                                                   "table_sha256"]
RUNS_TABLES = {"sine": layout.TABLES["runs"], "capacity": layout.TABLES["target_runs"]}
WINNER_TABLE = "capacity"  # the table a winner claim reads (layout.TABLES): test MSE per run


class ClaimError(ValueError):
    pass


# ------------------------------------------------------------------ checking the claims file
# The shape of the file is workflow/schemas/claims.schema.yaml (JSON Schema: keys per kind,
# operators, reducers, filters); what a schema cannot see (the claim's table is one the workflow
# writes, its columns exist, ids are unique, a range's low < high) is checked here.
@functools.cache
def schema() -> dict:
    from .config import SCHEMA_PATH, safe_load

    return safe_load(SCHEMA_PATH.with_name("claims.schema.yaml").read_text())


@functools.cache
def _validator(definition: str | None = None):
    import jsonschema

    root = schema()
    if definition is not None:  # one part of the file, e.g. a claim by itself
        root = {"$ref": f"#/definitions/{definition}", "definitions": root["definitions"]}
    return jsonschema.Draft7Validator(root)


@functools.cache
def _fast_validator(definition: str | None = None):
    """The same schema compiled to Python by fastjsonschema: it only answers "valid or not".
    Every Snakemake invocation checks the claims file's ~570 claims and readings; with
    jsonschema alone that took 0.34 s of claims.load, with this check first 0.22 s (compiling
    included; AMD EPYC, 2026-12-04). jsonschema stays the reference: it finds and words every
    error the fast check reports."""
    import fastjsonschema

    root = schema()
    if definition is not None:
        root = {"$ref": f"#/definitions/{definition}", "definitions": root["definitions"]}
    return fastjsonschema.compile(root, use_default=False)  # never changes what it checks


def _follow(ref: str, root):
    node = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _words(err, root, claim) -> tuple[str, bool]:
    """One schema error in words: the message (``x-message``) of the place in the schema
    nearest the error, filled in ({key}: the key it is about, {kind}, {op}, {enum}), with what
    is missing, unknown or given. Also whether the error is a claim lacking one of its own keys
    (then the claim is named by its position: it may lack its id)."""
    hint, key_of_hint, depth = root.get("x-message", ""), None, 0
    inst = list(err.relative_path)
    path = list(err.absolute_schema_path)
    node, prev = root, None
    for i, key in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, dict) and key not in node and "$ref" in node:
            node = _follow(node["$ref"], root)
        node = node[key]
        if not last and (prev == "properties" or (
                key in ("additionalProperties", "items") and prev != "properties")):
            depth += 1  # the schema went one level down into the claim as well
        prev = key
        while not last and isinstance(node, dict):
            if "x-message" in node:
                hint, key_of_hint = node["x-message"], inst[depth - 1] if depth else None
            if "$ref" not in node:
                break
            node = _follow(node["$ref"], root)
    claim = claim if isinstance(claim, dict) else {}
    test = claim.get("test") if isinstance(claim.get("test"), dict) else {}
    enum = err.schema.get("enum", []) if isinstance(err.schema, dict) else []
    fields = {"key": key_of_hint, "kind": claim.get("kind", "value"), "op": test.get("op"),
              "enum": ", ".join(map(str, enum)),
              "keys": sorted(err.schema.get("properties", {})) if isinstance(err.schema, dict) else []}
    if err.validator == "required" and hint == root["definitions"]["claim"]["x-message"]:
        missing = [k for k in err.validator_value if k not in err.instance]
        return f"lacks the key {missing[0]!r}", True
    if err.validator == "enum" and path[-2:-1] == ["propertyNames"]:
        allowed = sorted(err.validator_value)
        unknown = sorted(k for k in claim if k not in allowed)
        return (f"unknown key(s) {unknown}; a {fields['kind']} claim takes "
                f"{', '.join(allowed)}"), False
    text = hint or err.message
    for name, value in fields.items():  # not str.format: the messages show YAML's braces
        text = text.replace("{" + name + "}", str(value))
    if err.validator == "required":
        return f"{text}; missing {[k for k in err.validator_value if k not in err.instance]}", False
    if err.validator == "additionalProperties":
        known = set(err.schema.get("properties", {}))
        return f"{text}; unknown {sorted(k for k in err.instance if k not in known)}", False
    if err.validator in ("minItems", "minProperties") and not err.instance:
        return text, False
    return f"{text} (got {err.instance!r})", False


def _schema_check(instance, where: str, definition: str | None = None, index=None) -> None:
    """Raise ClaimError for the first error of ``instance`` against the schema (the whole file,
    or one of its definitions), the least deep first."""
    import fastjsonschema

    try:
        _fast_validator(definition)(instance)
        return  # valid: jsonschema would find nothing (tests/test_claims.py checks they agree)
    except fastjsonschema.JsonSchemaException:
        pass
    errors = sorted(_validator(definition).iter_errors(instance),
                    key=lambda e: (list(map(str, e.path))[:2], len(e.path)))
    if not errors:
        return
    err = errors[0]
    claim = instance
    if definition is None and len(err.path) >= 2 and err.path[0] == "claims":
        i = err.path[1]
        claim = instance["claims"][i]
        cid = claim.get("id") if isinstance(claim, dict) else None
        named = isinstance(cid, str) and cid.replace("_", "").isalnum()
        text, own = _words(err, schema(), claim)
        where = (f"{where}: claim {cid!r}" if named and not own else
                 f"{where}: claim {i + 1}" + (f" {cid!r}" if isinstance(cid, str) else ""))
        raise ClaimError(f"{where}: {text}")
    text, _ = _words(err, schema(), claim)
    raise ClaimError(f"{where}: {text}")


def _check_range(test, where) -> None:
    """What the schema cannot say of a test: a range's low below its high."""
    r = test.get("range")
    if test.get("op") == "between" and not r[0] < r[1]:
        raise ClaimError(f"{where}: test.range must be [low, high] with low < high (got {r!r})")


def table_of(table, where) -> str:
    """The claim's table as a normalised path relative to results/, which must be a table the
    workflow writes: no absolute path, no way out of results/."""
    if not isinstance(table, str) or not table:
        raise ClaimError(f"{where}: table must be a path relative to results/, such as "
                         f"metrics/loss.parquet (got {table!r})")
    norm = posixpath.normpath(table)
    if posixpath.isabs(table) or norm.startswith("..") or norm.startswith("results/"):
        raise ClaimError(f"{where}: table {table!r} must be a path relative to results/ (such as "
                         f"metrics/loss.parquet) that stays inside it")
    parts = norm.split("/")
    if len(parts) == 3 and parts[1] not in layout.EXPERIMENT_KINDS:
        raise ClaimError(f"{where}: table {table!r}: a claim reads a table of the study's "
                         f"experiments ({', '.join(layout.EXPERIMENT_KINDS)}) or a union table; "
                         f"the audit evaluates every claim under each variant by itself")
    if layout.table_columns(norm) is None:
        raise ClaimError(f"{where}: table {table!r} is not a table the workflow writes; tables "
                         f"are listed in docs/outputs.md, e.g. metrics/loss.parquet, "
                         f"metrics/exp1/gradient_ratio_summary.parquet")
    return norm


VALUE_RANGE = {"above", "below"}  # the keys of a filter by value: {above: a, below: b}


def _check_filter(flt, columns, where) -> None:
    """The filter's columns against the table's (its shape is the schema's)."""
    for key in flt or {}:
        if key not in columns:
            raise ClaimError(f"{where}: filter column {key!r} is not a column of the table "
                             f"(columns: {', '.join(columns)})")


def _check_requires(req, where) -> None:
    cols = RUNS_TABLES["sine"].columns
    for col, test in (req or {}).items():
        if col not in cols:
            raise ClaimError(f"{where}: requires: {col!r} is not a column of runs.parquet "
                             f"(columns: {', '.join(cols)})")
        _check_range(test, f"{where}: requires.{col}")


def check(claims, source, families=None) -> list[dict]:
    """Check every claim (and every reading of it, ``families``: the file's shared families of
    readings) against the schema and the tables; return the claims with their tables
    normalised."""
    from . import readings

    _schema_check({"claims": claims}, source)
    seen = set()
    for c in claims:
        where = f"{source}: claim {c['id']!r}"
        if c["id"] in seen:
            raise ClaimError(f"{where} appears twice")
        seen.add(c["id"])
        _check_one(c, where, shape_checked=True)
        try:
            if "readings" in c:  # the families written out, so that the claim stands alone
                c["readings"] = readings.families_of(c, families or {}, where)
            c["_readings"] = readings.expand(c, {}, where, check=_check_one)
        except readings.ReadingError as err:
            raise ClaimError(str(err)) from None
    return claims


def _check_one(c, where, shape_checked: bool = False) -> None:
    """One claim (or one reading of it): its shape (the schema's definition of a claim, unless
    checked already) and its table and columns."""
    if not shape_checked:
        _schema_check({k: v for k, v in c.items() if not k.startswith("_")}, where, "claim")
    kind = c.get("kind", "value")
    c["table"] = table_of(c["table"], where)
    columns = layout.table_columns(c["table"])
    _check_requires(c.get("requires"), where)
    _check_filter(c.get("filter"), columns, where)
    if kind == "winner":
        if posixpath.basename(c["table"]) != f"{WINNER_TABLE}.parquet":
            raise ClaimError(f"{where}: a winner claim reads the {WINNER_TABLE} table "
                             f"(metrics/{WINNER_TABLE}.parquet): test MSE per run")
        c.setdefault("against", schema()["definitions"]["claim"]["properties"]["against"]["default"])
        return
    if c["column"] not in columns:
        raise ClaimError(f"{where}: column {c['column']!r} is not a column of {c['table']} "
                         f"(columns: {', '.join(columns)})")
    _check_range(c["test"], where)
    if kind == "compare":
        for side in ("left", "right"):
            _check_filter(c[side], columns, f"{where}: {side}")


def load(path) -> list[dict]:
    """Read and check the claims file; every error names the file and the claim."""
    from .config import ConfigError, load_yaml

    try:
        doc = load_yaml(path)
    except ConfigError as err:
        raise ClaimError(str(err)) from None
    except OSError as err:
        raise ClaimError(f"cannot read the claims file {path}: {err.strerror}") from None
    except Exception as err:  # yaml errors
        raise ClaimError(f"{path} is not valid YAML: {err}") from None
    _schema_check(doc, str(path))
    from . import readings

    try:
        shared = {k: readings.check_family(v, f"{path}: readings.{k}")
                  for k, v in (doc.get("readings") or {}).items()}
    except readings.ReadingError as err:
        raise ClaimError(str(err)) from None
    return check(doc["claims"], path, shared)


def reading_claims(claim) -> list[dict]:
    """The claim as every one of its readings states it (the claim itself among them)."""
    return [m for r in claim.get("_readings", ()) for m in r.claims] or [claim]


# ------------------------------------------------------------------ evaluation
def _region(test) -> tuple[float, float, str]:
    op, v = test["op"], test.get("value")
    if op in ("<", "<="):
        return -math.inf, v, f"{op} {v:g}"
    if op in (">", ">="):
        return v, math.inf, f"{op} {v:g}"
    if op == "approx":
        tol = test["tolerance"]
        return v - tol, v + tol, f"≈ {v:g} ± {tol:g}"
    lo, hi = test["range"]
    return lo, hi, f"between {lo:g} and {hi:g}"


def _passes(value, test) -> bool:
    lo, hi, _ = _region(test)
    if test["op"] == "<":
        return value < hi
    if test["op"] == ">":
        return value > lo
    return lo <= value <= hi


# While evaluate_all runs: the rows each filter step selected from each frame, so that the
# readings of a claim, which share most of their filter, select the shared part once.
_STEPS: dict | None = None


def _apply_filter(df, flt: dict):
    """The rows of ``df`` that a filter selects, and the filter in words. Keys apply in order
    (a fraction of a column's maximum, or ``last``, is taken over the rows the keys before it
    selected); each step's rows are remembered while evaluate_all runs."""
    parts = []
    for key, want in (flt or {}).items():
        if df.empty:
            break
        memo = None if _STEPS is None else (id(df), key, repr(want))
        if memo is not None and memo in _STEPS:
            df, part = _STEPS[memo][1:]
        else:
            before = df
            df, part = _filter_step(df, key, want)
            if memo is not None:
                _STEPS[memo] = (before, df, part)  # holds ``before``: its id stays its own
        parts += part
    return df, parts


def _filter_step(df, key, want):
    """One key of a filter: (the rows it keeps, its words)."""
    col = df[key]
    if isinstance(want, dict) and set(want) & VALUE_RANGE:
        mask, parts = col.notna(), []
        if "above" in want:
            mask &= col > want["above"]
            parts.append(f"{key} > {want['above']}")
        if "below" in want:
            mask &= col < want["below"]
            parts.append(f"{key} < {want['below']}")
    elif isinstance(want, dict):
        top = col.max()
        lo = max(1, math.ceil(want.get("from_fraction", 0.0) * top))
        hi = max(lo, math.floor(want.get("to_fraction", 1.0) * top))
        mask, parts = col.between(lo, hi), [f"{key} {lo}–{hi}"]
    elif want == "last":
        top = col.max()
        mask, parts = col == top, [f"{key} = last ({top})"]
    elif isinstance(want, list):
        mask, parts = col.isin(want), [f"{key} in {want}"]
    else:
        mask, parts = col == want, [f"{key} = {want}"]
    mask = mask.to_numpy(dtype=bool, na_value=False)
    return (df if mask.all() else df[mask]), parts


def _runs_for(claim, runs, variant=None):
    """The rows of the runs table that a claim's filter selects (by the run keys it names)."""
    if runs is None:
        return None
    flt = {k: v for k, v in (claim.get("filter") or {}).items()
           if k in ("experiment", "activation", "target", "seed") and k in runs.columns}
    if claim.get("kind") == "winner":
        flt = {"target": claim["target"]} if "target" in runs.columns else {}
        flt["experiment"] = experiment_of(claim)
    elif claim.get("kind") == "compare":
        sides = [claim["left"], claim["right"]]
        flt = {"experiment": experiment_of(claim)}
        acts = [s["activation"] for s in sides if isinstance(s.get("activation"), str)]
        if acts:
            flt["activation"] = sorted(set(acts))
    if variant is not None and "variant" in runs.columns:
        flt["variant"] = variant
    return _apply_filter(runs, flt)[0]


def study_values(claims, figure: int) -> list[dict]:
    """The study's numbers and the claims' thresholds that Figure ``figure`` shows beside what
    was measured: every value claim whose ``source`` is that figure and whose test compares
    with a number (``approx``: the study states a number; ``<``, ``>``, ...: a threshold;
    ``between``: a range), each as its filter, column, op, value and range (a figure draws
    those it has an axis for)."""
    out = []
    for c in claims:
        test = c.get("test") or {}
        if (c.get("source") == f"Figure {figure}" and c.get("kind", "value") == "value"
                and test.get("op") in ("approx", "<", "<=", ">", ">=", "between")):
            out.append({"claim": c["id"], "filter": dict(sorted((c.get("filter") or {}).items())),
                        "column": c.get("column"), "op": test["op"],
                        "value": test.get("value"), "range": test.get("range")})
    # in a canonical order (a figure job's params: rewriting the file in another key order
    # must not redraw the figure)
    return sorted(out, key=lambda s: s["claim"])


def tables_read(claims, variants) -> list[str]:
    """Every table the claims read (results-relative paths, sorted): the study's, and for a
    claim of an experiment the same table of each of its variants (actflow.variants.Variant)."""
    tables = set()
    for c in claims:
        exp = experiment_of(c)
        names = [exp] + [v.name for v in variants if v.of == exp and not v.is_study] if exp else [None]
        for m in reading_claims(c):
            tables |= {table_for(m, v) if v else m["table"] for v in names}
    return sorted(tables)


def read_in_several_ways(claims) -> list[str]:
    """The ids of the claims with more than one reading: each gets a specification curve."""
    return [c["id"] for c in claims if len(c["_readings"]) > 1]


def deal(items, parts: int) -> list[list]:
    """``items`` dealt out in turn to at most ``parts`` non-empty lists (the reading figures'
    jobs: one figure each, costly ones spread)."""
    return [p for p in (list(items[i::parts]) for i in range(parts)) if p]


def experiment_of(claim) -> str | None:
    """The study's experiment a claim is about: its filter's, or its table's folder; None for
    claims about the activation functions themselves (no training behind them)."""
    exp = (claim.get("filter") or {}).get("experiment") or (claim.get("left") or {}).get("experiment")
    if isinstance(exp, str):
        return exp
    parts = claim["table"].split("/")
    return parts[1] if len(parts) == 3 else None


def table_for(claim, variant: str) -> str:
    """The table a claim reads under a variant: the variant's own folder for a per-experiment
    table (metrics/exp3/x -> metrics/<variant>/x); union tables are filtered by variant."""
    parts = claim["table"].split("/")
    if len(parts) == 3 and parts[1] == experiment_of(claim):
        return f"{parts[0]}/{variant}/{parts[2]}"
    return claim["table"]


def outcome_note(runs) -> str:
    """'5 seeds: 4 collapsed, 1 trained' for the runs behind a claim ('' without runs)."""
    if runs is None or runs.empty or "outcome" not in runs.columns:
        return ""
    counts = dict(zip(*__import__("numpy").unique(runs["outcome"].to_numpy(str),
                                                  return_counts=True)))
    order = [o for o in layout.OUTCOMES if o in counts]
    return f"{len(runs)} runs: " + ", ".join(f"{counts[o]} {o}" for o in order)


def _not_applicable(claim, runs):
    req = claim.get("requires")
    if not req or runs is None or runs.empty:
        return None
    for col, test in req.items():
        bad = [v for v in runs[col].unique() if not _passes(v, test)]
        if bad:
            _, _, expected = _region(test)
            return (f"not testable here: it needs {col} {expected}, the runs have {col} = "
                    f"{', '.join(map(str, bad))}")
    return None


def _unit(df) -> str | None:
    """The replicate a table's rows belong to: ``seed`` (a training run), ``repeat`` (a timing
    repeat), or None (a property of the function itself: one exact value)."""
    return next((c for c in ("seed", "repeat") if c in df.columns), None)


def unit_of(claim) -> str:
    """The unit of a claim's measured value: its column's (layout.COLUMN_UNITS), with what its
    transform or comparison makes of it ('log₁₀ of MSE', 'difference in fraction of units')."""
    if claim.get("kind") == "winner":
        return "log₁₀ test-MSE ratio, other / expected best"
    base = layout.COLUMN_UNITS.get(claim.get("column"), "")
    if claim.get("kind") == "compare":
        if claim.get("combine", "difference") == "log10_ratio":
            return "log₁₀ ratio, left / right"
        return f"difference in {base}" if base else "difference"
    if claim.get("transform") == "log10":
        return f"log₁₀ of {base}" if base else "log₁₀"
    return base


def _bounds(claim) -> tuple[float, float] | None:
    """The range the claim's per-seed statistic can take (layout.COLUMN_BOUNDS), or None."""
    b = layout.COLUMN_BOUNDS.get(claim.get("column"))
    if b is None or claim.get("kind") == "winner":
        return None
    if claim.get("kind") == "compare":
        if claim.get("combine", "difference") == "difference":
            return (b[0] - b[1], b[1] - b[0])
        return None
    return {None: b, "abs": (max(0.0, b[0]), max(abs(b[0]), abs(b[1]))), "log10": None}[
        claim.get("transform")]


def evaluate_value(claim, df, runs=None) -> dict:
    import numpy as np
    import pandas as pd

    df, cond = _apply_filter(df, claim.get("filter"))
    column = claim["column"]
    reducer = claim.get("per_seed", "mean")
    note = outcome_note(runs)
    if df.empty:
        return {"condition": ", ".join(cond), "verdict": "inconclusive", "outcomes": note,
                "expected": _region(claim["test"])[2],
                "reason": "no rows match the filter (is that experiment, epoch or layer in the run?)",
                "n_seeds": 0, "n_left_out": 0}
    unit = _unit(df)
    per_seed = _per_seed(df, column, reducer, unit) if unit else pd.Series(
        [float(df[column].agg(reducer))])
    transform = {None: lambda v: v, "log10": np.log10, "abs": np.abs}[claim.get("transform")]
    with np.errstate(divide="ignore", invalid="ignore"):
        values = transform(per_seed.astype(float))
    what = f"{claim.get('transform') + ' ' if claim.get('transform') else ''}{reducer} of {column}"
    base = {"condition": ", ".join(cond + [f"per {unit or 'function'}: {what}"]), "outcomes": note}
    return _verdict(values, claim["test"], base, point=unit is None, bounds=_bounds(claim),
                    unit=unit or "seed")


def _per_seed(df, column, reducer, unit="seed"):
    """One value per seed (or timing repeat), NaN for a seed flagged diverged; as pandas'
    groupby would give it (missing values skipped), computed with numpy (the audit reduces
    thousands of small selections)."""
    import numpy as np
    import pandas as pd

    keys = df[unit].to_numpy()
    vals = df[column].to_numpy(dtype=float, na_value=np.nan)
    order = np.argsort(keys, kind="stable")
    keys, vals = keys[order], vals[order]
    uniq, start = np.unique(keys, return_index=True)
    out = np.empty(len(uniq))
    for i, (a, b) in enumerate(zip(start, list(start[1:]) + [len(keys)])):
        v = vals[a:b]
        v = v[~np.isnan(v)]
        if not len(v):
            out[i] = np.nan
        elif reducer == "last":
            out[i] = v[-1]
        else:
            out[i] = getattr(np, reducer)(v)
    if "diverged" in df.columns and len(keys):
        bad = df["diverged"].to_numpy(dtype=bool, na_value=False)[order]
        out[np.logical_or.reduceat(bad, start)] = np.nan
    return pd.Series(out, index=pd.Index(uniq, name=unit))


def seeds_needed(mean: float, sd: float, region: tuple[float, float], cap: int = 100_000):
    """How many seeds would decide a claim, estimated from the seed spread: the smallest n
    whose 95 % t-interval around ``mean`` (half-width t(n−1)·sd/√n) clears the border of
    ``region`` nearest the mean. NaN where no number would (a mean on a border, or no spread),
    ``cap`` + 1 where more than ``cap`` would be needed."""
    import numpy as np

    from .stats import t_halfwidth

    lo, hi = region
    margin = min(abs(mean - b) for b in (lo, hi) if np.isfinite(b))
    if not (np.isfinite(sd) and sd > 0 and margin > 0):
        return float("nan")
    # the half-width falls with n: find the first n on a coarse grid, then step within it
    grid = np.unique(np.concatenate([np.arange(2, 1001), np.geomspace(1000, cap, 400).astype(int)]))
    ok = np.flatnonzero(t_halfwidth(sd, grid) < margin)
    if not ok.size:
        return float(cap + 1)
    if ok[0] == 0:
        return float(grid[0])
    fine = np.arange(grid[ok[0] - 1] + 1, grid[ok[0]] + 1)
    return float(fine[np.flatnonzero(t_halfwidth(sd, fine) < margin)[0]])


def verdict_text(verdict: str, n: int, basis: str | None = None, by_construction=False) -> str:
    """The verdict as a reader sees it: 'undecidable at 5 seeds', 'holds (exact)', 'holds (by
    construction)'."""
    if verdict == "undecidable":
        return f"undecidable at {n} {'repeats' if basis == 'repeats' else 'seeds'}"
    if basis == "exact" and verdict in ("holds", "does not hold"):
        return f"{verdict} (exact)"
    if by_construction and verdict == "holds":
        return "holds (by construction)"
    return verdict


def _verdict(values, test, base, what_left_out="seed(s) without a finite value", point=False,
             bounds=None, unit="seed"):
    """Mean, 95 % t-interval and verdict of per-seed ``values`` against ``test``.

    ``point``: one exact value without seeds (a property of the function, not of training).
    ``bounds``: the range the statistic can take; the interval is kept inside it (the true mean
    lies in that range, so the intersection keeps the 95 % coverage). An interval that
    straddles a border is ``undecidable`` when it is wider than the region it would have to
    fit in (at this many seeds the claim could not hold whatever the mean), else
    ``inconclusive``; both say how many seeds would decide it at the observed spread."""
    import numpy as np

    from .stats import t_halfwidth

    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    n, left_out = len(finite), int(len(values) - len(finite))
    lo_r, hi_r, expected = _region(test)
    units = f"{unit}s"
    base = base | {"expected": expected, "n_seeds": n, "n_left_out": left_out,
                   "basis": "exact" if point else units, "region_low": lo_r, "region_high": hi_r}
    infinite = int(np.isinf(values).sum())
    if infinite:  # a ratio with a zero in it: e.g. weights that did not move at all in float32
        what_left_out += f" ({infinite} infinite: a ratio with a zero in it)"
    if n == 0:
        why = f"no {unit} has a finite value" + (f" ({infinite} infinite: a ratio with a zero "
                                                  f"in it)" if infinite else "") + (
            f" ({base['outcomes']})" if base.get("outcomes") else "")
        return base | {"verdict": "inconclusive", "reason": why}
    mean = float(finite.mean())
    sd = float(finite.std(ddof=1)) if n > 1 else float("nan")
    if point:
        lo = hi = mean
    elif n < 2:
        return base | {"measured_mean": mean, "verdict": "undecidable",
                       "reason": f"1 {unit}: no interval; at least 2 are needed"}
    else:
        half = float(t_halfwidth(sd, n))
        lo, hi = mean - half, mean + half
    clipped = ""
    if bounds is not None and not point:
        lo2, hi2 = max(lo, bounds[0]), min(hi, bounds[1])
        if (lo2, hi2) != (lo, hi):
            clipped = f" (the t-interval kept inside the statistic's range [{bounds[0]:g}, {bounds[1]:g}])"
        lo, hi = lo2, hi2
    inside = lo >= lo_r and hi <= hi_r
    outside = hi < lo_r or lo > hi_r
    if test["op"] in ("<", ">"):  # strict
        inside = inside and lo != lo_r and hi != hi_r
    interval = f"[{lo:.4g}, {hi:.4g}]" + clipped
    # how far the interval lies from leaving its verdict: the distance of its nearer end to
    # the region's border (for holds), or of the region to the interval (for does not hold)
    margin = min(lo - lo_r, hi_r - hi) if inside else max(lo_r - hi, lo - hi_r)
    out = {"measured_mean": mean, "ci_low": lo, "ci_high": hi, "margin": float(margin)}
    if point:
        what = f"the exact value {mean:.4g} (a property of the function, no seeds)"
        if inside:
            return base | out | {"verdict": "holds", "reason": f"{what} lies inside the region {expected}"}
        if outside or mean < lo_r or mean > hi_r:
            side = "above" if mean > hi_r else "below"
            return base | out | {"verdict": "does not hold", "side": side,
                                 "reason": f"{what} lies outside the region {expected}, {side} it"}
        return base | out | {"verdict": "inconclusive", "reason": f"{what} lies on a border of {expected}"}
    if inside:
        verdict, reason = "holds", f"the 95 % interval {interval} lies inside the region {expected}"
    elif outside:
        verdict, reason = "does not hold", f"the 95 % interval {interval} lies outside the region {expected}"
        out["side"] = "above" if lo > hi_r else "below"
        reason += f", {out['side']} it"
    else:
        needed = seeds_needed(mean, sd, (lo_r, hi_r))
        out["seeds_needed"] = needed
        width = hi_r - lo_r
        about = ("no number of seeds would: the mean lies on the border" if not np.isfinite(needed)
                 else f"about {needed:.0f} {units} would decide it at this spread"
                 if needed <= 100_000 else f"more than 100000 {units} would be needed at this spread")
        if np.isfinite(width) and hi - lo >= width:
            verdict = "undecidable"
            reason = (f"the 95 % interval {interval} is wider ({hi - lo:.3g}) than the region "
                      f"{expected} ({width:.3g}): at {n} {units} the claim could not hold whatever "
                      f"the mean; {about}")
        else:
            verdict = "inconclusive"
            reason = f"the 95 % interval {interval} straddles a border of the region {expected}; {about}"
    if left_out:
        reason += f"; {left_out} {what_left_out} left out"
    return base | out | {"verdict": verdict, "reason": reason}


def evaluate_compare(claim, df, runs=None) -> dict:
    """Paired over seeds: left − right (or log10(left / right)) of one column."""
    import numpy as np

    df, cond = _apply_filter(df, claim.get("filter"))
    column, reducer = claim["column"], claim.get("per_seed", "mean")
    combine = claim.get("combine", "difference")
    unit = _unit(df) or "seed"
    sides = {}
    for side in ("left", "right"):
        part, parts = _apply_filter(df, claim[side])
        sides[side] = (_per_seed(part, column, reducer, unit) if not part.empty else None, parts)
    note = outcome_note(runs)
    what = (f"per {unit}: {'log10(' if combine == 'log10_ratio' else ''}{reducer} of {column} "
            f"[{', '.join(sides['left'][1])}] {'/' if combine == 'log10_ratio' else '−'} "
            f"[{', '.join(sides['right'][1])}]{')' if combine == 'log10_ratio' else ''}")
    base = {"condition": ", ".join(cond + [what]), "outcomes": note}
    if sides["left"][0] is None or sides["right"][0] is None:
        return base | {"verdict": "inconclusive", "n_seeds": 0, "n_left_out": 0,
                       "expected": _region(claim["test"])[2],
                       "reason": "no rows match one side's filter (was it run?)"}
    a, b = sides["left"][0].align(sides["right"][0], join="outer")
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.log10(a / b) if combine == "log10_ratio" else a - b
    return _verdict(values, claim["test"], base, f"{unit}(s) without a finite pair",
                    bounds=_bounds(claim), unit=unit)


def evaluate_winner(claim, df, runs=None) -> dict:
    """``expect_best`` has the lowest test MSE on ``target``, against every other activation
    (``against: all``) or against its strongest competitor (``runner_up``): per seed,
    d = log10(MSE of the other) − log10(MSE of the expected best); holds when d's 95 % interval
    is above 0 against each; does not hold when another activation is better with an interval
    wholly below 0; the competitor closest to winning is shown."""
    import numpy as np

    target, expect = claim["target"], claim["expect_best"]
    against = claim.get("against", "all")
    df, _ = _apply_filter(df, claim.get("filter"))
    rows = df[df["target"] == target]
    if "diverged" in rows.columns:
        rows = rows.assign(test_mse=rows["test_mse"].where(~rows["diverged"].astype(bool)))
    note = outcome_note(runs)
    test = {"op": ">", "value": 0}
    versus = {"all": "every other activation", "runner_up": "the strongest other"}.get(
        against if isinstance(against, str) else "", f"each of {', '.join(against)}"
        if isinstance(against, list) else str(against))
    base = {"condition": f"target = {target}; per seed: log10(test MSE of the other / of {expect}), "
                         f"against {versus}",
            "expected": f"{expect} best: every interval above 0", "outcomes": note}
    if rows.empty or expect not in set(rows["activation"]):
        return base | {"verdict": "inconclusive", "n_seeds": 0, "n_left_out": 0,
                       "reason": f"target {target!r} or activation {expect!r} was not run"}
    with np.errstate(divide="ignore", invalid="ignore"):
        logmse = np.log10(rows["test_mse"].where(rows["test_mse"] > 0))
    wide = rows.assign(v=logmse).pivot_table(index="seed", columns="activation", values="v",
                                             aggfunc="first", dropna=False)
    others = [a for a in wide.columns if a != expect]
    if not others:
        return base | {"verdict": "inconclusive", "n_seeds": 0, "n_left_out": 0,
                       "reason": "no other activation to compare with"}
    geo = wide.mean()  # NaN for an activation without a finite test MSE (every run diverged)
    if isinstance(against, list):
        others = [a for a in others if a in against]
        if not others:
            return base | {"verdict": "inconclusive", "n_seeds": 0, "n_left_out": 0,
                           "reason": f"none of {against} was run"}
    elif against == "runner_up":
        others = [min(others, key=lambda a: geo[a] if geo[a] == geo[a] else np.inf)]
    results = {a: _verdict((wide[a] - wide[expect]).to_numpy(), test, {"outcomes": note},
                           "seed(s) without a finite pair") for a in others}
    rank = ("does not hold", "undecidable", "inconclusive", "holds")
    worst = min(others, key=lambda a: (rank.index(results[a]["verdict"]),
                                       results[a].get("measured_mean", np.inf)))
    r = results[worst]
    best = geo.idxmin() if geo.notna().any() else "none (no finite test MSE)"
    summary = ", ".join(f"{a}: {results[a]['verdict']}" for a in others)
    lead = (f"lowest mean log test MSE: {best}; {expect} against {summary}; closest: {worst} "
            f"(d = {r.get('measured_mean', float('nan')):.3g}, {r['reason']})")
    if all(results[a]["verdict"] == "holds" for a in others):
        verdict = "holds"
    elif any(results[a]["verdict"] == "does not hold" for a in others):
        verdict = "does not hold"
        worst = next(a for a in others if results[a]["verdict"] == "does not hold")
        r = results[worst]
    else:
        verdict = r["verdict"]
    return base | {k: r[k] for k in ("measured_mean", "ci_low", "ci_high", "margin", "side",
                                     "region_low", "region_high",
                                     "seeds_needed", "n_seeds", "n_left_out", "basis") if k in r} | {
        "verdict": verdict, "reason": lead, "expected": f"{expect} best (d > 0 against {versus})"}


def _evaluate_claim(c, variant, frames, runs_tables, runs_cache=None) -> dict:
    """One claim (one reading of it) under one variant; ``frames(table, variant)`` gives the
    table's rows of that variant and the file's SHA-256."""
    table = table_for(c, variant) if variant else c["table"]
    df, digest = frames(table, variant)
    kind = _kind_of(c["table"])
    runs = None
    if kind:
        key = (kind, variant, repr({k: c.get(k) for k in ("kind", "filter", "left", "right",
                                                          "target")}))
        if runs_cache is None or key not in runs_cache:
            runs = _runs_for(c, runs_tables.get(kind), variant)
            if runs_cache is not None:
                runs_cache[key] = runs
        runs = runs_cache[key] if runs_cache is not None else runs
    na = _not_applicable(c, runs)
    if na:
        res = {"condition": "", "verdict": "not applicable", "reason": na,
               "outcomes": outcome_note(runs), "n_seeds": 0, "n_left_out": 0}
    elif c.get("kind") == "winner":
        res = evaluate_winner(c, df, runs)
    elif c.get("kind") == "compare":
        res = evaluate_compare(c, df, runs)
    else:
        res = evaluate_value(c, df, runs)
    untrained = runs is not None and "outcome" in runs and (runs["outcome"] != "trained").any()
    if untrained and res["verdict"] != "not applicable":
        res["reason"] += f"; outcomes of the runs: {res['outcomes']}"
    return res | {"unit": unit_of(c), "table": table, "table_sha256": digest}


def _frames(table_paths):
    """(table, variant) -> (that variant's rows, the file's SHA-256), each read once."""
    from . import io

    files, subsets = {}, {}

    def get(rel, variant):
        path = table_paths[rel]
        if path not in files:
            files[path] = (io.read_parquet(path), io.sha256(path))
        key = (path, variant)
        if key not in subsets:
            df, digest = files[path]
            if variant is not None and "variant" in df.columns:
                df = df[df["variant"] == variant]
            subsets[key] = (df, digest)
        return subsets[key]
    return get


def _claim_facts(c) -> dict:
    return {"claim": c["id"], "statement": c["statement"], "quote": c["quote"],
            "source": c.get("source", ""), "scope": "extension" if c.get("extension") else "study",
            "by_construction": bool(c.get("by_construction")),
            "note": " ".join(c.get(k, "") for k in ("extension", "by_construction", "note")
                             if c.get(k)).strip()}


READING_COLUMNS = ["claim", "experiment", "variant", "reading", "reading_index", "primary",
                   "choices", "statement"] + RESULT_COLUMNS[:-2] + ["margin", "table"]


def evaluate_all(claims, variants, table_paths: dict[str, str],
                 claims_file="config/claims.yaml", runs_paths: dict[str, str] | None = None):
    """Every claim under every reading (actflow.readings), on the study's setting and under
    every variant of its experiment. ``variants``: (name, experiment, ...) in order, the study's
    own settings included (name == experiment); ``table_paths`` maps each table a claim or
    reading reads (relative to results/) to its file; ``runs_paths`` maps a kind (sine,
    capacity) to the union runs table whose outcomes each reason reports. One row per claim,
    variant and reading (READING_COLUMNS)."""
    from . import io

    global _STEPS
    runs_tables = {kind: io.read_parquet(p) for kind, p in (runs_paths or {}).items()}
    frames = _frames(table_paths)
    runs_cache: dict = {}
    rows = []
    _STEPS = {}
    try:
        _evaluate_every(claims, variants, frames, runs_tables, runs_cache, rows, claims_file)
    finally:
        _STEPS = None
    return _frame(rows, READING_COLUMNS)


def _evaluate_every(claims, variants, frames, runs_tables, runs_cache, rows, claims_file):
    import json

    from . import readings

    for c in claims:
        exp = experiment_of(c)
        names = [exp] + [v[0] for v in variants if v[1] == exp and v[0] != exp] if exp else [None]
        for variant in names:
            for r in readings.expand(c, {}, c["id"]):  # from the claim as it stands
                try:
                    parts = [_evaluate_claim(m, variant, frames, runs_tables, runs_cache)
                             for m in r.claims]
                except (KeyError, ValueError) as err:
                    raise ClaimError(f"claim {c['id']!r} ({r.label}) in {claims_file}: {err}") from err
                res = parts[0] if len(parts) == 1 else readings.combine(parts, r.members)
                res["verdict_text"] = verdict_text(res["verdict"], res.get("n_seeds", 0),
                                                   res.get("basis"), bool(c.get("by_construction")))
                rows.append(res | {"claim": c["id"], "experiment": exp or "", "variant": variant or "",
                                   "reading": r.label, "reading_index": r.index,
                                   "primary": r.primary, "statement": c["statement"],
                                   "choices": json.dumps(r.choices, ensure_ascii=False)})


def _frame(rows, columns):
    import pandas as pd

    out = pd.DataFrame(rows).reindex(columns=columns)
    for col in ("measured_mean", "ci_low", "ci_high", "seeds_needed", "margin", "region_low",
                "region_high"):
        if col in out:
            out[col] = out[col].astype(float)
    for col in ("n_seeds", "n_left_out", "n_readings", "reading_index"):
        if col in out:
            out[col] = out[col].fillna(0).astype(int)
    for col in ("outcomes", "basis", "verdict_text", "note", "flipped_by", "differs_under", "side",
                "unit"):
        if col in out:
            out[col] = out[col].astype(object).where(out[col].notna(), "").astype(str)
    return out


def reading_summary(rows) -> dict:
    """claim (or (claim, variant)) -> the READING_SUMMARY columns, from evaluate_all's rows of
    one variant: the label, the number of readings, the count of each verdict, and the readings
    whose verdict is not the primary's. (Over plain lists: a pandas selection per group was a
    fifth of the audit job.)"""
    from collections import Counter

    from . import readings

    groups: dict = {}
    names = ("claim", "variant", "primary", "verdict", "n_seeds", "measured_mean", "reading")
    for claim, variant, *row in zip(*(rows[c].tolist() for c in names)):
        groups.setdefault((claim, variant), []).append(row)
    out = {}
    for key, g in groups.items():
        primary = next(verdict for first, verdict, *_ in g if first)
        # a reading this run has nothing to measure for (no rows, no seed pair) is no evidence
        # either way: counted apart, not as a verdict
        kept = [(verdict, reading) for first, verdict, n, mean, reading in g
                if not (n == 0 and math.isnan(mean) and not first and verdict != "not applicable")]
        empty = len(g) - len(kept)
        counts = Counter(verdict for verdict, _ in kept)
        out[key] = {
            "readings_label": readings.label_of(primary, [v for v, _ in kept], len(kept)),
            "n_readings": len(kept),
            "readings_verdicts": ", ".join(f"{counts[v]} {v}" for v in VERDICTS if v in counts)
            + (f" ({empty} more without a value in this run)" if empty else ""),
            "flipped_by": "; ".join(f"{reading} ({verdict})" for verdict, reading in kept
                                    if verdict != primary),
        }
    return out


def evaluate(claims, table_paths: dict[str, str], claims_file="config/claims.yaml",
             runs_paths: dict[str, str] | None = None, all_rows=None):
    """Verdicts of every claim on the study's own settings, under its primary reading, with
    how it fares over its readings (READING_SUMMARY). ``all_rows``: evaluate_all's rows, when
    already computed."""
    rows = all_rows if all_rows is not None else evaluate_all(
        claims, [], table_paths, claims_file, runs_paths)
    study = rows[rows["variant"] == rows["experiment"]]
    summary = reading_summary(study)
    facts = {c["id"]: _claim_facts(c) for c in claims}
    out = []
    for r in study[study["primary"]].to_dict("records"):
        out.append(r | facts[r["claim"]] | summary[(r["claim"], r["variant"])])
    return _frame(out, COLUMNS)


SENSITIVITY_COLUMNS = ["claim", "experiment", "variant", "overrides", "question", "statement",
                       "quote", "condition", "expected", "measured_mean", "ci_low", "ci_high",
                       "unit", "basis", "n_seeds", "n_left_out", "seeds_needed", "outcomes", "verdict",
                       "verdict_text", "reason", "study_verdict", "differs"] + READING_SUMMARY + [
                       "table", "table_sha256"]


def sensitivity(claims, variants, table_paths: dict[str, str], claims_file="config/claims.yaml",
                runs_paths: dict[str, str] | None = None, all_rows=None):
    """Every claim about an experiment, evaluated (primary reading) under the study's setting
    and under every variant of that experiment, with how it fares over its readings there.
    ``variants``: (name, experiment, overrides text, question) in order, the study's own
    settings included (name == experiment)."""
    rows = all_rows if all_rows is not None else evaluate_all(
        claims, variants, table_paths, claims_file, runs_paths)
    rows = rows[rows["experiment"] != ""]
    summary = reading_summary(rows)
    info = {name: (of, ov, q) for name, of, ov, q in variants}
    prim = rows[rows["primary"]]
    study = {r.claim: r.verdict for r in prim[prim["variant"] == prim["experiment"]].itertuples()}
    quotes = {c["id"]: c["quote"] for c in claims}
    out = []
    order = {name: i for i, (name, *_) in enumerate(variants)}
    prim = prim.assign(_o=prim["variant"].map(order)).sort_values(["_o"], kind="stable")
    prim = prim.sort_values("claim", key=lambda s: s.map({c["id"]: i for i, c in enumerate(claims)}),
                            kind="stable")
    for r in prim.to_dict("records"):
        if r["variant"] not in info:
            continue
        _, ov, q = info[r["variant"]]
        out.append(r | {"overrides": ov, "question": q, "quote": quotes[r["claim"]],
                        "study_verdict": study[r["claim"]],
                        "differs": r["verdict"] != study[r["claim"]]}
                   | summary[(r["claim"], r["variant"])])
    out = _frame(out, SENSITIVITY_COLUMNS)
    out["differs"] = out["differs"].astype(bool)
    return out


def differing_variants(sens) -> dict[str, str]:
    """claim -> 'variant (verdict), ...' for the variants under which the verdict differs."""
    out = {}
    for claim, g in sens[sens["differs"]].groupby("claim", sort=False):
        out[claim] = ", ".join(f"{r.variant} ({r.verdict_text or r.verdict})" for r in g.itertuples())
    return out


def _kind_of(table: str) -> str | None:
    name = posixpath.basename(table).removesuffix(".parquet")
    if name in layout.TABLES:
        return layout.kind_of_table(name)
    return None


# ------------------------------------------------------------------ reports
def _fmt(v) -> str:
    import pandas as pd

    return "" if pd.isna(v) else f"{v:.4g}"


def _cell(text) -> str:
    """A Markdown table cell: pipes escaped, on one line."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def measured(r) -> str:
    """'0.12 [0.08, 0.15]', '0.25 (exact)' or '' for a row of any of the audit's tables."""
    if str(r.get("basis", "")) == "exact":
        return f"{_fmt(r['measured_mean'])} (exact)"
    if all(_fmt(r.get(k)) == "" for k in ("measured_mean", "ci_low", "ci_high")):
        return ""
    return f"{_fmt(r['measured_mean'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"


def _n(r) -> str:
    return "exact" if str(r.get("basis", "")) == "exact" else str(r["n_seeds"])


def _shown(r) -> str:
    return r.get("verdict_text") or r["verdict"]


def markdown(df) -> str:
    lines = ["# Claims of the study against the measurements", "",
             "Verdicts compare the 95 % interval over seeds with the claim's threshold: "
             "**holds** (inside), **does not hold** (outside), **inconclusive** (straddles a "
             "border it could have cleared), **undecidable at n seeds** (wider than the region: "
             "it could not hold at n seeds whatever the mean; the reason estimates how many "
             "would decide it), **not applicable** (the run's settings cannot test it). Checks of "
             "the functions themselves are exact. Source: `results/audit/claims.parquet`.", "",
             "**Readings**: *robust* when every reading the study's words allow gives the same "
             "verdict, *depends on reading* otherwise (results/audit/readings.md). "
             "**Differs under**: the variants (results/audit/sensitivity.md) under which the "
             "verdict is another.", "",
             "| claim | the study says | checked as | measured mean [95 % interval] | seeds | "
             "verdict | readings | why | verdict differs under |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, r in df.iterrows():
        note = f" *{_cell(r['note'])}*" if r.get("note") else ""
        lines.append(f"| `{r['claim']}` | “{_cell(r['quote'])}” ({_cell(r['source'])}) | "
                     f"{_cell(r['statement'])}{note} | {measured(r)} | {_n(r)} | "
                     f"**{_shown(r)}** | {r.get('readings_label', '')} "
                     f"({r.get('readings_verdicts', '')}) | "
                     f"{_cell(r['condition'])}; expected {_cell(r['expected'])}: {_cell(r['reason'])} | "
                     f"{_cell(r.get('differs_under') or '')} |")
    counts = df["verdict"].value_counts()
    lines += ["", "Totals: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS) + "."]
    if "readings_label" in df:
        lab = df["readings_label"].value_counts()
        lines += ["", "Over the readings: " + ", ".join(f"{lab.get(v, 0)} {v}" for v in (
            "robust", "depends on reading", "single reading")) + "."]
    return "\n".join(lines) + "\n"


# The colour of each verdict, in every table and figure (a verdict's badge in HTML, its cell
# or marker in a figure): colour-blind-safe, light enough to carry black text.
COLORS = {"holds": "#5aae61", "does not hold": "#d6604d", "inconclusive": "#e0c46c",
          "undecidable": "#9e9ac8", "not applicable": "#bdbdbd"}
assert set(COLORS) == set(VERDICTS)
# The sign of each verdict in a compact cell (the sensitivity table, the terminal).
SIGNS = {"holds": "✓", "does not hold": "✗", "inconclusive": "?", "undecidable": "…",
         "not applicable": "–"}
assert set(SIGNS) == set(VERDICTS)
# The experiment a claim is about, as a group heading ('' for the functions themselves).
FUNCTIONS_GROUP = "The activation functions themselves (exact)"


def group_title(experiment: str) -> str:
    return layout.EXPERIMENT_TITLES.get(experiment, FUNCTIONS_GROUP) if experiment else FUNCTIONS_GROUP


def _verdict_html(r) -> dict:
    v = str(r["verdict"])
    return {"html": f'<b style="background:{COLORS.get(v, "#fff")};padding:1px 4px;'
                    f'border-radius:3px;display:inline-block">{render.esc(_shown(r))}</b>', "value": v}


def _measured_html(r) -> dict:
    unit = str(r.get("unit") or "")
    text = measured(r)
    mean = r.get("measured_mean")
    return {"html": f"<span class='num'>{render.esc(text)}</span>"
                    + (f"<br><span class='unit'>{render.esc(unit)}</span>" if unit and text else ""),
            "sort": "" if mean is None or mean != mean else repr(float(mean))}


def totals_line(df) -> str:
    counts = df["verdict"].value_counts()
    return (f"{len(df)} claims: "
            + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS if counts.get(v, 0)) + ".")


def html(df) -> str:
    """The claims as an HTML table, grouped by experiment, filterable and sortable, with a
    totals line; every value is escaped (a claim's text is data)."""
    esc = render.esc
    head = [{"text": "claim", "sortable": True}, "the study says", "checked as",
            {"text": "measured mean [95 % interval]", "sortable": True,
             "title": "mean over seeds with its 95 % t-interval, in the unit below it"},
            {"text": "seeds", "sortable": True},
            {"text": "verdict", "sortable": True, "menu": "verdict", "count": True},
            {"text": "readings", "menu": "reading label"},
            {"text": "verdict differs under", "title": "the variants (other runs) under which "
                                                      "the verdict is another"},
            "why"]
    rows = []
    experiments = df["experiment"] if "experiment" in df else [""] * len(df)
    order = {e: i for i, e in enumerate(layout.EXPERIMENT_TITLES)}
    frame = df.assign(_g=[order.get(e, -1) for e in experiments])
    for exp, g in frame.groupby("_g", sort=True):
        first = g.iloc[0]
        rows.append({"group": f"{group_title(first.get('experiment', ''))} "
                              f"({totals_line(g).removesuffix('.')})", "span": len(head)})
        for _, r in g.iterrows():
            quote = f"“{esc(str(r.get('quote', '')))}” ({esc(str(r.get('source', '')))})"
            note = f"<br><i>{esc(str(r['note']))}</i>" if r.get("note") else ""
            label = str(r.get("readings_label", ""))
            readings = {"html": esc(f"{label} ({r.get('readings_verdicts', '')})" if label else ""),
                        "value": label}
            seeds = _n(r)
            rows.append([{"html": f"<code>{render.breakable(str(r['claim']))}</code>",
                          "value": r["claim"]},
                         quote, esc(str(r["statement"])) + note, _measured_html(r),
                         {"html": esc(seeds), "sort": "" if seeds == "exact" else seeds},
                         _verdict_html(r), readings, esc(str(r.get("differs_under") or "")),
                         esc(_why(r))])
    body = (f"<p><b>{esc(totals_line(df))}</b> {esc(_VERDICT_KEY)} Click a column's name to sort "
            "by it (again to reverse; double-click the table for the original order).</p>"
            + render.table(head, rows, interactive=True))
    return render.page("Claims of the study against the measurements", body, anchor="claims-table",
                       interactive=True)


def _why(r) -> str:
    """'condition; expected region: reason' (the parts a row has)."""
    head = "; ".join(str(r.get(k)) if k == "condition" else f"expected {r.get(k)}"
                     for k in ("condition", "expected") if r.get(k))
    return f"{head}: {r.get('reason', '')}" if head else str(r.get("reason", ""))


_VERDICT_KEY = ("Verdicts compare the 95 % interval over seeds with the claim's region: holds "
                "(inside), does not hold (outside), inconclusive (straddles a border it could "
                "clear), undecidable at n seeds (wider than the region), not applicable (the run's "
                "settings cannot test it); checks of the functions themselves are exact.")


def sensitivity_markdown(sens, variants) -> str:
    """The claims under every variant: one section per experiment, one row per claim and
    variant; ``variants``: (name, experiment, overrides text, question)."""
    lines = ["# The study's claims under every variant", "",
             "Each claim is evaluated on the study's setting (the variant named like its "
             "experiment) and on every variant of that experiment, with the same thresholds "
             "(its primary reading), and under every reading of its words there (*readings*). "
             "**differs**: the verdict is not the study's. Source: "
             "`results/audit/sensitivity.parquet`.", "", "## The variants", "",
             "| variant | of | settings | the question |", "|---|---|---|---|"]
    lines += [f"| `{n}` | {of} | {_cell(ov)} | {_cell(q)} |" for n, of, ov, q in variants]
    for exp, g in sens.groupby("experiment", sort=False):
        lines += ["", f"## {exp}", "",
                  "| claim | variant | measured mean [95 % interval] | seeds | verdict | readings | differs |",
                  "|---|---|---|---|---|---|---|"]
        for r in g.to_dict("records"):
            lines.append(f"| `{r['claim']}` | `{r['variant']}` | {measured(r)} | {_n(r)} | "
                         f"**{_shown(r)}** | {r['readings_label']} ({r['readings_verdicts']}) | "
                         f"{'**yes**' if r['differs'] else ''} |")
    changed = differing_variants(sens)
    lines += ["", "## Verdicts that change", ""]
    lines += [f"- `{c}`: {v}" for c, v in changed.items()] or ["None."]
    lines += seeds_settle(sens)
    return "\n".join(lines) + "\n"


def seeds_settle(sens) -> list[str]:
    """Markdown lines: for each variant that differs from its experiment only in its seeds,
    the verdicts the study's seeds leave open (inconclusive or undecidable) that it settles,
    and those that stay open, with the seeds an open one would need."""
    out = []
    for variant, g in sens.groupby("variant", sort=False):
        if not str(g["overrides"].iloc[0]).startswith("seeds=") or "," in str(g["overrides"].iloc[0]):
            continue
        open_ = g[g["study_verdict"].isin(["inconclusive", "undecidable"])]
        settled = open_[open_["verdict"].isin(["holds", "does not hold"])]
        still = open_[~open_["verdict"].isin(["holds", "does not hold"])]
        out += ["", f"## What `{variant}` settles ({g['overrides'].iloc[0]})", ""]
        out += [f"- settled: `{r.claim}`: {r.study_verdict} with the study's seeds, "
                f"**{r.verdict_text or r.verdict}** here" for r in settled.itertuples()]
        out += [f"- still open: `{r.claim}`: {r.verdict_text or r.verdict}"
                + (f" (about {r.seeds_needed:.0f} seeds would decide it at this spread)"
                   if r.seeds_needed == r.seeds_needed else "") for r in still.itertuples()]
        if open_.empty:
            out.append("Nothing was open with the study's seeds.")
    return out


def sensitivity_html(sens) -> str:
    """The claims under every variant as claims × settings, one table per experiment: each cell
    the verdict's sign and colour with the measured mean, the interval and the reason on hover;
    a framed cell's verdict differs from the study's setting. Columns: readable variant labels
    (actflow.variants.label) with the technical name beside."""
    from . import variants as varreg

    esc = render.esc
    legend = "".join(f"<span style='background:{COLORS[v]}'>{SIGNS[v]} {esc(v)}</span>"
                     for v in VERDICTS)
    parts = [f"<p class='legend'>{legend}<span class='differs'>framed: differs from the study's "
             "setting</span></p><p>Each cell: the verdict under that setting and the measured mean "
             "over seeds; hover a cell for its 95 % interval, seeds and reason. Every claim about an "
             "experiment is evaluated on the study's setting (first column) and on each variant of "
             "it, with the same thresholds (its primary reading).</p>"]
    for exp, g in sens.groupby("experiment", sort=False):
        settings = list(dict.fromkeys(g["variant"]))
        settings.sort(key=lambda v: v != exp)  # the study's setting first
        info = g.drop_duplicates("variant").set_index("variant")
        head = ["claim", "unit"]
        for v in settings:
            label = varreg.label(exp, str(info.loc[v, "overrides"]))
            question = str(info.loc[v, "question"])
            head.append({"html": f"{esc(label)}<br><span class='tech'>{esc(v)}</span>",
                         "text": label, "title": question})
        cell = {(r["claim"], r["variant"]): r for r in g.to_dict("records")}
        rows = []
        for claim in dict.fromkeys(g["claim"]):
            first = cell[(claim, exp)] if (claim, exp) in cell else next(
                r for (c, _), r in cell.items() if c == claim)
            row = [{"html": f"<code>{render.breakable(claim)}</code>",
                    "title": str(first["statement"])},
                   {"html": f"<span class='unit'>{esc(str(first.get('unit') or ''))}</span>"}]
            for v in settings:
                r = cell.get((claim, v))
                if r is None:
                    row.append("")
                    continue
                mean = "" if _missing(r["measured_mean"]) else f"{r['measured_mean']:.3g}"
                tip = (f"{_shown(r)}: {measured(r) or 'no value'}, {_n(r)} seeds"
                       f"{' (differs from the study)' if r['differs'] else ''}; {r['reason']}")
                row.append({"html": f"<b>{SIGNS[r['verdict']]}</b> {esc(mean)}",
                            "title": tip, "value": r["verdict"],
                            "cls": "cell differs" if r["differs"] else "cell",
                            "style": f"background:{COLORS[r['verdict']]}"})
            rows.append(row)
        parts.append(f"<h2 id='{esc(exp)}'>{esc(group_title(exp))}</h2>"
                     + render.table(head, rows, cls="pivot"))
    return render.page("The study's claims under every variant", "".join(parts),
                       anchor="sensitivity-table")


def _missing(v) -> bool:
    return v is None or v != v  # None or NaN


def readings_markdown(rows, claims_df) -> str:
    """Every claim under every reading of the study's setting: per claim, its label, then one
    line per reading (the primary first)."""
    study = rows[rows["variant"] == rows["experiment"]]
    lab = claims_df["readings_label"].value_counts()
    lines = ["# Every reading of the study's words", "",
             "Where the study leaves a choice open (a window, a cutoff, a comparator, a tolerance, "
             "a subset, a definition), each claim is evaluated under every defensible reading, "
             "from the same runs (config/claims.yaml, readings). **robust**: every reading gives "
             "the primary verdict; **depends on reading**: some reading flips it (named below). "
             "Under every variant too: results/audit/readings.parquet. Source of this page: the "
             "study's setting.", "",
             "Totals: " + ", ".join(f"{lab.get(v, 0)} {v}" for v in (
                 "robust", "depends on reading", "single reading")) + ".", ""]
    facts = claims_df.set_index("claim")
    for claim, g in study.groupby("claim", sort=False):
        f = facts.loc[claim]
        if f["n_readings"] <= 1:
            continue
        lines += [f"## `{claim}`: {f['readings_label']}", "", _cell(f["statement"]), "",
                  f"Primary verdict **{f['verdict_text'] or f['verdict']}**; over {f['n_readings']} "
                  f"readings: {f['readings_verdicts']}.", "",
                  "| reading | measured mean [95 % interval] | verdict |", "|---|---|---|"]
        for r in g.to_dict("records"):
            star = " (primary)" if r["primary"] else ""
            lines.append(f"| {_cell(r['reading'])}{star} | {measured(r)} | **{_shown(r)}** |")
        lines.append("")
    return "\n".join(lines) + "\n"


def readings_html(rows, claims_df) -> str:
    esc = render.esc
    study = rows[rows["variant"] == rows["experiment"]]
    facts = claims_df.set_index("claim")
    parts = []
    for claim, g in study.groupby("claim", sort=False):
        f = facts.loc[claim]
        if f["n_readings"] <= 1:
            continue
        body = [[esc(str(r["reading"])) + (" <b>(primary)</b>" if r["primary"] else ""),
                 _measured_html(r), _verdict_html(r), esc(str(r["reason"]))]
                for r in g.to_dict("records")]
        parts.append(f"<h2 id='{esc(claim)}'>{esc(claim)}: "
                     f"{esc(str(f['readings_label']))}</h2><p>"
                     f"{esc(str(f['statement']))}<br>over {int(f['n_readings'])} readings: "
                     f"{esc(str(f['readings_verdicts']))}</p>"
                     + render.table(["reading", "measured mean [95 % interval]", "verdict",
                                     "reason"], body))
    return render.page("Every reading of the study's words", "".join(parts),
                       anchor="readings-table")
