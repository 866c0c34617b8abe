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

The claims file is checked whole before any job runs (:func:`load`): known keys, known test
operators with numeric parameters, a table the workflow writes (under ``results/``, never
outside), columns that table has. Every reason states the outcome of the runs it used
(``runs.parquet``: trained, collapsed, exploded, non-finite).

Importing this module loads no pandas or numpy (the Snakefile checks the claims when it parses).
"""

from __future__ import annotations

import hashlib
import html as _html
import math
import posixpath

from . import layout

VERDICTS = ("holds", "does not hold", "inconclusive", "not applicable")
REDUCERS = ("mean", "max", "min", "median", "last")
TRANSFORMS = (None, "log10", "abs")
OPS = ("<", "<=", ">", ">=", "approx", "between")
COLUMNS = ["claim", "statement", "quote", "source", "condition", "expected", "measured_mean", "ci_low",
           "ci_high", "n_seeds", "n_left_out", "outcomes", "verdict", "reason", "differs_under",
           "table", "table_sha256"]
COMMON_KEYS = {"id", "statement", "quote", "source", "table", "kind", "requires"}
VALUE_KEYS = COMMON_KEYS | {"filter", "column", "per_seed", "transform", "test"}
WINNER_KEYS = COMMON_KEYS | {"target", "expect_best"}
COMPARE_KEYS = COMMON_KEYS | {"filter", "column", "per_seed", "left", "right", "combine", "test"}
KIND_KEYS = {"value": VALUE_KEYS, "winner": WINNER_KEYS, "compare": COMPARE_KEYS}
COMBINES = ("difference", "log10_ratio")
RUNS_TABLES = {"sine": layout.TABLES["runs"], "capacity": layout.TABLES["target_runs"]}


class ClaimError(ValueError):
    pass


# ------------------------------------------------------------------ checking the claims file
def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_test(test, where) -> None:
    if not isinstance(test, dict):
        raise ClaimError(f"{where}: test must be a mapping such as {{op: '<', value: 0.5}}")
    op = test.get("op")
    if op not in OPS:
        raise ClaimError(f"{where}: test.op must be one of {', '.join(OPS)} (got {op!r})")
    need = {"approx": {"op", "value", "tolerance"}, "between": {"op", "range"}}.get(op, {"op", "value"})
    missing, extra = need - set(test), set(test) - need
    if missing or extra:
        raise ClaimError(f"{where}: test with op {op!r} takes exactly the keys {sorted(need)}"
                         + (f"; missing {sorted(missing)}" if missing else "")
                         + (f"; unknown {sorted(extra)}" if extra else ""))
    if "value" in test and not _number(test["value"]):
        raise ClaimError(f"{where}: test.value must be a number (got {test['value']!r})")
    if op == "approx" and not (_number(test["tolerance"]) and test["tolerance"] >= 0):
        raise ClaimError(f"{where}: test.tolerance must be a number ≥ 0 (got {test['tolerance']!r})")
    if op == "between":
        r = test["range"]
        if not (isinstance(r, list) and len(r) == 2 and all(map(_number, r)) and r[0] < r[1]):
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
    if flt is None:
        return
    if not isinstance(flt, dict):
        raise ClaimError(f"{where}: filter must be a mapping of column to value")
    for key, want in flt.items():
        if key not in columns:
            raise ClaimError(f"{where}: filter column {key!r} is not a column of the table "
                             f"(columns: {', '.join(columns)})")
        if isinstance(want, dict) and set(want) & VALUE_RANGE:
            if set(want) - VALUE_RANGE or not all(_number(v) for v in want.values()):
                raise ClaimError(f"{where}: filter {key}: a range of values is {{above: a, "
                                 f"below: b}} (either or both, numbers, bounds excluded)")
        elif isinstance(want, dict):
            if not want or set(want) - {"from_fraction", "to_fraction"} or not all(
                    _number(v) and 0 <= v <= 1 for v in want.values()):
                raise ClaimError(f"{where}: filter {key}: a range is {{from_fraction: f, "
                                 f"to_fraction: g}} with fractions between 0 and 1, or "
                                 f"{{above: a, below: b}} of values")


def _check_requires(req, where) -> None:
    if req is None:
        return
    cols = RUNS_TABLES["sine"].columns
    if not isinstance(req, dict):
        raise ClaimError(f"{where}: requires must map a runs column to a test")
    for col, test in req.items():
        if col not in cols:
            raise ClaimError(f"{where}: requires: {col!r} is not a column of runs.parquet "
                             f"(columns: {', '.join(cols)})")
        _check_test(test, f"{where}: requires.{col}")


def check(claims, source) -> list[dict]:
    """Check every claim; return the claims with their tables normalised."""
    if not isinstance(claims, list) or not claims:
        raise ClaimError(f"{source}: expected a non-empty list under 'claims:'")
    seen = set()
    for i, c in enumerate(claims):
        where = f"{source}: claim {i + 1}"
        if not isinstance(c, dict):
            raise ClaimError(f"{where}: each claim is a mapping of keys (id, statement, table, ...)")
        for key in ("id", "statement", "quote", "table"):
            if key not in c:
                raise ClaimError(f"{where}{' ' + repr(c['id']) if 'id' in c else ''}: lacks the "
                                 f"key '{key}'")
        if not isinstance(c["id"], str) or not c["id"].replace("_", "").isalnum():
            raise ClaimError(f"{where}: id must be letters, digits and underscores (got {c['id']!r})")
        where = f"{source}: claim {c['id']!r}"
        if c["id"] in seen:
            raise ClaimError(f"{where} appears twice")
        seen.add(c["id"])
        kind = c.get("kind", "value")
        if kind not in KIND_KEYS:
            raise ClaimError(f"{where}: kind must be one of {', '.join(KIND_KEYS)} (got {kind!r})")
        if not isinstance(c["quote"], str) or not c["quote"].strip():
            raise ClaimError(f"{where}: quote must be the study's sentence it checks, verbatim")
        allowed = KIND_KEYS[kind]
        unknown = set(c) - allowed
        if unknown:
            raise ClaimError(f"{where}: unknown key(s) {sorted(unknown)}; a {kind} claim takes "
                             f"{', '.join(sorted(allowed))}")
        c["table"] = table_of(c["table"], where)
        columns = layout.table_columns(c["table"])
        _check_requires(c.get("requires"), where)
        if kind == "winner":
            if posixpath.basename(c["table"]) != "capacity_winners.parquet":
                raise ClaimError(f"{where}: a winner claim reads a capacity_winners table")
            for key in ("target", "expect_best"):
                if not isinstance(c.get(key), str):
                    raise ClaimError(f"{where}: a winner claim needs '{key}' (a name)")
            continue
        for key in ("column", "test"):
            if key not in c:
                raise ClaimError(f"{where}: lacks the key '{key}'")
        if c["column"] not in columns:
            raise ClaimError(f"{where}: column {c['column']!r} is not a column of {c['table']} "
                             f"(columns: {', '.join(columns)})")
        _check_filter(c.get("filter"), columns, where)
        _check_test(c["test"], where)
        if kind == "compare":
            for side in ("left", "right"):
                if not isinstance(c.get(side), dict) or not c[side]:
                    raise ClaimError(f"{where}: a compare claim needs '{side}', a filter such as "
                                     f"{{experiment: exp1, activation: relu}}")
                _check_filter(c[side], columns, f"{where}: {side}")
            if c.get("combine", "difference") not in COMBINES:
                raise ClaimError(f"{where}: combine must be one of {', '.join(COMBINES)}")
        if c.get("per_seed", "mean") not in REDUCERS:
            raise ClaimError(f"{where}: per_seed must be one of {', '.join(REDUCERS)}")
        if c.get("transform") not in TRANSFORMS:
            raise ClaimError(f"{where}: transform must be log10, abs or absent")
    return claims


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
    if not isinstance(doc, dict):
        raise ClaimError(f"{path}: expected a mapping with a list under 'claims:'")
    return check(doc.get("claims"), path)


def tables(claims) -> list[str]:
    return sorted({c["table"] for c in claims})


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


def _apply_filter(df, flt: dict):
    parts = []
    for key, want in (flt or {}).items():
        if df.empty:
            break
        if isinstance(want, dict) and set(want) & VALUE_RANGE:
            if "above" in want:
                df = df[df[key] > want["above"]]
                parts.append(f"{key} > {want['above']}")
            if "below" in want:
                df = df[df[key] < want["below"]]
                parts.append(f"{key} < {want['below']}")
        elif isinstance(want, dict):
            top = df[key].max()
            lo = max(1, math.ceil(want.get("from_fraction", 0.0) * top))
            hi = max(lo, math.floor(want.get("to_fraction", 1.0) * top))
            df = df[df[key].between(lo, hi)]
            parts.append(f"{key} {lo}–{hi}")
        elif want == "last":
            df = df[df[key] == df[key].max()]
            parts.append(f"{key} = last ({df[key].max()})")
        elif isinstance(want, list):
            df = df[df[key].isin(want)]
            parts.append(f"{key} in {want}")
        else:
            df = df[df[key] == want]
            parts.append(f"{key} = {want}")
    return df, parts


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
    counts = runs["outcome"].value_counts()
    order = [o for o in OUTCOMES if o in counts]
    return f"{len(runs)} runs: " + ", ".join(f"{counts[o]} {o}" for o in order)


OUTCOMES = ("trained", "collapsed", "exploded", "non-finite")


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


def evaluate_value(claim, df, runs=None) -> dict:
    import numpy as np
    import pandas as pd

    df, cond = _apply_filter(df, claim.get("filter"))
    column = claim["column"]
    reducer = claim.get("per_seed", "mean")
    note = outcome_note(runs)
    if df.empty:
        return {"condition": ", ".join(cond), "verdict": "inconclusive", "outcomes": note,
                "reason": "no rows match the filter (is that experiment, epoch or layer in the run?)",
                "n_seeds": 0, "n_left_out": 0}
    seeded = "seed" in df.columns
    per_seed = _per_seed(df, column, reducer) if seeded else pd.Series(
        [float(df[column].agg(reducer))])
    transform = {None: lambda v: v, "log10": np.log10, "abs": np.abs}[claim.get("transform")]
    with np.errstate(divide="ignore", invalid="ignore"):
        values = transform(per_seed.astype(float))
    what = f"{claim.get('transform') + ' ' if claim.get('transform') else ''}{reducer} of {column}"
    base = {"condition": ", ".join(cond + [f"per seed: {what}"]), "outcomes": note}
    return _verdict(values, claim["test"], base, point=not seeded)


def _per_seed(df, column, reducer):
    """One value per seed (NaN for a seed flagged diverged)."""
    per_seed = df.groupby("seed")[column].agg(reducer).astype(float)
    if "diverged" in df.columns:
        bad = df.groupby("seed")["diverged"].any()
        per_seed = per_seed.where(~bad.reindex(per_seed.index, fill_value=False))
    return per_seed


def _verdict(values, test, base, what_left_out="seed(s) without a finite value", point=False):
    """Mean, 95 % t-interval and verdict of per-seed ``values`` against ``test``; ``point``:
    one value without seeds (a property of the function, not of training), its own interval."""
    import numpy as np

    from .stats import t_halfwidth

    finite = values[np.isfinite(values)]
    n, left_out = len(finite), int(len(values) - len(finite))
    lo_r, hi_r, expected = _region(test)
    base = base | {"expected": expected, "n_seeds": n, "n_left_out": left_out}
    if n == 0:
        why = "no seed has a finite value" + (f" ({base['outcomes']})" if base.get("outcomes") else "")
        return base | {"verdict": "inconclusive", "reason": why}
    mean = float(finite.mean())
    if point:
        lo = hi = mean
    elif n < 2:
        return base | {"measured_mean": mean, "verdict": "inconclusive",
                       "reason": "fewer than 2 seeds: no interval"}
    else:
        half = float(t_halfwidth(finite.std(), n))
        lo, hi = mean - half, mean + half
    inside = lo >= lo_r and hi <= hi_r
    outside = hi < lo_r or lo > hi_r
    if test["op"] in ("<", ">"):  # strict
        inside = inside and lo != lo_r and hi != hi_r
    interval = f"[{lo:.4g}, {hi:.4g}]"
    if inside:
        verdict, reason = "holds", f"the 95 % interval {interval} lies inside the region {expected}"
    elif outside:
        verdict, reason = "does not hold", f"the 95 % interval {interval} lies outside the region {expected}"
    else:
        verdict, reason = "inconclusive", f"the 95 % interval {interval} straddles a border of the region {expected}"
    if left_out:
        reason += f"; {left_out} {what_left_out} left out"
    return base | {"measured_mean": mean, "ci_low": lo, "ci_high": hi, "verdict": verdict,
                   "reason": reason}


def evaluate_compare(claim, df, runs=None) -> dict:
    """Paired over seeds: left − right (or log10(left / right)) of one column."""
    import numpy as np

    df, cond = _apply_filter(df, claim.get("filter"))
    column, reducer = claim["column"], claim.get("per_seed", "mean")
    combine = claim.get("combine", "difference")
    sides = {}
    for side in ("left", "right"):
        part, parts = _apply_filter(df, claim[side])
        sides[side] = (_per_seed(part, column, reducer) if not part.empty else None, parts)
    note = outcome_note(runs)
    what = (f"per seed: {'log10(' if combine == 'log10_ratio' else ''}{reducer} of {column} "
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
    return _verdict(values, claim["test"], base, "seed(s) without a finite pair")


def evaluate_winner(claim, df, runs=None) -> dict:
    target, expect = claim["target"], claim["expect_best"]
    row = df[df["target"] == target]
    note = outcome_note(runs)
    base = {"condition": f"target = {target}; paired over seeds: log10(runner-up MSE / best MSE)",
            "expected": f"{expect} best, lead holds across seeds", "outcomes": note}
    if row.empty:
        return base | {"verdict": "inconclusive", "reason": f"target {target!r} was not run",
                       "n_seeds": 0, "n_left_out": 0}
    r = row.iloc[0]
    stats = {"measured_mean": r["mean_log10_ratio"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
             "n_seeds": int(r["n_pairs"]), "n_left_out": 0}
    lead = (f"{r['best']} has the lowest mean test MSE ({r['best_test_mse']:.3g}), runner-up "
            f"{r['runner_up']} ({r['runner_up_test_mse']:.3g}); {r['best']} wins on "
            f"{r['seeds_best_wins']} of {r['n_pairs']} seeds")
    if r["best"] == expect and r["lead_holds"]:
        return base | stats | {"verdict": "holds", "reason": lead + "; the lead holds"}
    if r["best"] == expect or (r["runner_up"] == expect and not r["lead_holds"]):
        return base | stats | {"verdict": "inconclusive",
                               "reason": lead + "; the lead is not established across seeds"}
    return base | stats | {"verdict": "does not hold", "reason": lead}


def _evaluate_one(c, variant, read, runs_tables, claims_file) -> dict:
    """One claim under one variant (the study's own: variant == its experiment)."""
    df, digest = read(table_for(c, variant) if variant else c["table"])
    if variant is not None and "variant" in df.columns:
        df = df[df["variant"] == variant]
    kind = _kind_of(c["table"])
    runs = _runs_for(c, runs_tables.get(kind), variant) if kind else None
    try:
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
    except (KeyError, ValueError) as err:
        raise ClaimError(f"claim {c['id']!r} in {claims_file}: {err}") from err
    untrained = runs is not None and "outcome" in runs and (runs["outcome"] != "trained").any()
    if untrained and res["verdict"] != "not applicable":
        res["reason"] += f"; outcomes of the runs: {res['outcomes']}"
    return {"claim": c["id"], "statement": c["statement"], "quote": c["quote"],
            "source": c.get("source", ""),
            "table": table_for(c, variant) if variant else c["table"], "table_sha256": digest} | res


def _reader(table_paths):
    from . import io

    cache = {}

    def read(rel):
        path = table_paths[rel]
        if path not in cache:
            with open(path, "rb") as fh:
                cache[path] = (io.read_parquet(path), hashlib.sha256(fh.read()).hexdigest())
        return cache[path]
    return read


def _frame(rows, columns):
    import pandas as pd

    out = pd.DataFrame(rows).reindex(columns=columns)
    for col in ("measured_mean", "ci_low", "ci_high"):
        out[col] = out[col].astype(float)
    for col in ("n_seeds", "n_left_out"):
        out[col] = out[col].fillna(0).astype(int)
    out["outcomes"] = out["outcomes"].fillna("").astype(str)
    return out


def evaluate(claims, table_paths: dict[str, str], claims_file="config/claims.yaml",
             runs_paths: dict[str, str] | None = None):
    """Verdicts of every claim on the study's own settings. ``table_paths`` maps each table a
    claim reads (relative to results/) to its file; ``runs_paths`` maps a kind (sine, capacity)
    to the union runs table whose outcomes each reason reports."""
    from . import io

    runs_tables = {kind: io.read_parquet(p) for kind, p in (runs_paths or {}).items()}
    read = _reader(table_paths)
    rows = [_evaluate_one(c, experiment_of(c), read, runs_tables, claims_file) for c in claims]
    return _frame(rows, COLUMNS)


SENSITIVITY_COLUMNS = ["claim", "experiment", "variant", "overrides", "question", "statement",
                       "quote",
                       "condition", "expected", "measured_mean", "ci_low", "ci_high", "n_seeds",
                       "n_left_out", "outcomes", "verdict", "reason", "study_verdict", "differs",
                       "table", "table_sha256"]


def sensitivity(claims, variants, table_paths: dict[str, str], claims_file="config/claims.yaml",
                runs_paths: dict[str, str] | None = None):
    """Every claim about an experiment, evaluated under the study's setting and under every
    variant of that experiment. ``variants``: (name, experiment, overrides text, question) in
    order, the study's own settings included (name == experiment)."""
    from . import io

    runs_tables = {kind: io.read_parquet(p) for kind, p in (runs_paths or {}).items()}
    read = _reader(table_paths)
    rows = []
    for c in claims:
        exp = experiment_of(c)
        if exp is None:
            continue
        study = _evaluate_one(c, exp, read, runs_tables, claims_file)["verdict"]
        for name, of, overrides, question in variants:
            if of != exp:
                continue
            res = _evaluate_one(c, name, read, runs_tables, claims_file)
            rows.append(res | {"experiment": exp, "variant": name, "overrides": overrides,
                               "question": question, "study_verdict": study,
                               "differs": res["verdict"] != study})
    out = _frame(rows, SENSITIVITY_COLUMNS)
    out["differs"] = out["differs"].astype(bool)
    return out


def differing_variants(sens) -> dict[str, str]:
    """claim -> 'variant (verdict), ...' for the variants under which the verdict differs."""
    out = {}
    for claim, g in sens[sens["differs"]].groupby("claim", sort=False):
        out[claim] = ", ".join(f"{r.variant} ({r.verdict})" for r in g.itertuples())
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


def markdown(df) -> str:
    lines = ["# Claims of the study against the measurements", "",
             "Verdicts compare the 95 % interval over seeds with the claim's threshold: "
             "**holds** (inside), **does not hold** (outside), **inconclusive** (straddles), "
             "**not applicable** (the run's settings cannot test it). "
             "Source: `results/audit/claims.parquet`.", "",
             "The last column names the variants (results/audit/sensitivity.md) under which the "
             "verdict is another.", "",
             "| claim | the study says | checked as | measured mean [95 % interval] | seeds | "
             "verdict | why | verdict differs under |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in df.iterrows():
        meas = f"{_fmt(r['measured_mean'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
        lines.append(f"| `{r['claim']}` | “{_cell(r['quote'])}” ({_cell(r['source'])}) | "
                     f"{_cell(r['statement'])} | {meas} | {r['n_seeds']} | **{r['verdict']}** | "
                     f"{_cell(r['condition'])}; expected {_cell(r['expected'])}: {_cell(r['reason'])} | "
                     f"{_cell(r.get('differs_under') or '')} |")
    counts = df["verdict"].value_counts()
    lines += ["", "Totals: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS) + "."]
    return "\n".join(lines) + "\n"


COLORS = {"holds": "#1b7837", "does not hold": "#b2182b", "inconclusive": "#8c6d1f",
          "not applicable": "#555555"}


def html(df) -> str:
    """The claims as an HTML table; every value is escaped (a claim's text is data)."""
    import pandas as pd

    def num(v):
        return "" if pd.isna(v) else f"{v:.4g}"

    head = ["claim", "the study says", "checked as", "measured mean", "95 % interval", "seeds",
            "verdict", "reason"]
    rows = []
    for _, r in df.iterrows():
        verdict = str(r["verdict"])
        quote = f"“{_html.escape(str(r.get('quote', '')))}” ({_html.escape(str(r.get('source', '')))})"
        cells = [_html.escape(str(r["claim"])), quote, _html.escape(str(r["statement"])),
                 num(r["measured_mean"]), f"[{num(r['ci_low'])}, {num(r['ci_high'])}]",
                 str(int(r["n_seeds"])),
                 f'<b style="color:{COLORS.get(verdict, "#000")}">{_html.escape(verdict)}</b>',
                 _html.escape(str(r["reason"]))]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    table = ("<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
             + "".join(rows) + "</tbody></table>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Claims</title><style>"
            "body{font-family:sans-serif} table{border-collapse:collapse} td,th{border:1px solid #ccc;"
            "padding:4px 8px;vertical-align:top}</style></head><body><h1 id='claims-table'>"
            "Claims of the study against the measurements</h1>" + table + "</body></html>\n")


def sensitivity_markdown(sens, variants) -> str:
    """The claims under every variant: one section per experiment, one row per claim and
    variant; ``variants``: (name, experiment, overrides text, question)."""
    lines = ["# The study's claims under every variant", "",
             "Each claim is evaluated on the study's setting (the variant named like its "
             "experiment) and on every variant of that experiment, with the same thresholds. "
             "**differs**: the verdict is not the study's. Source: "
             "`results/audit/sensitivity.parquet`.", "", "## The variants", "",
             "| variant | of | settings | the question |", "|---|---|---|---|"]
    lines += [f"| `{n}` | {of} | {_cell(ov)} | {_cell(q)} |" for n, of, ov, q in variants]
    for exp, g in sens.groupby("experiment", sort=False):
        lines += ["", f"## {exp}", "",
                  "| claim | variant | measured mean [95 % interval] | seeds | verdict | differs |",
                  "|---|---|---|---|---|---|"]
        for r in g.itertuples():
            meas = f"{_fmt(r.measured_mean)} [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"
            lines.append(f"| `{r.claim}` | `{r.variant}` | {meas} | {r.n_seeds} | **{r.verdict}** "
                         f"| {'**yes**' if r.differs else ''} |")
    changed = differing_variants(sens)
    lines += ["", "## Verdicts that change", ""]
    lines += [f"- `{c}`: {v}" for c, v in changed.items()] or ["None."]
    return "\n".join(lines) + "\n"


def sensitivity_html(sens) -> str:
    import pandas as pd

    def num(v):
        return "" if pd.isna(v) else f"{v:.4g}"

    head = ["claim", "variant", "settings", "measured mean", "95 % interval", "seeds", "verdict",
            "study's verdict", "reason"]
    rows = []
    for r in sens.itertuples():
        v = str(r.verdict)
        cells = [_html.escape(str(r.claim)), _html.escape(str(r.variant)),
                 _html.escape(str(r.overrides)), num(r.measured_mean),
                 f"[{num(r.ci_low)}, {num(r.ci_high)}]", str(int(r.n_seeds)),
                 f'<b style="color:{COLORS.get(v, "#000")}">{_html.escape(v)}</b>'
                 + (" (differs)" if r.differs else ""),
                 _html.escape(str(r.study_verdict)), _html.escape(str(r.reason))]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    table = ("<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
             + "".join(rows) + "</tbody></table>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Sensitivity</title><style>"
            "body{font-family:sans-serif} table{border-collapse:collapse} td,th{border:1px solid #ccc;"
            "padding:4px 8px;vertical-align:top}</style></head><body><h1 id='sensitivity-table'>"
            "The study's claims under every variant</h1>" + table + "</body></html>\n")
