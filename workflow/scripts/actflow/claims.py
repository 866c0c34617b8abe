"""The study's claims, checked against the measured tables (``config/claims.yaml``).

A claim names a table (relative to ``results/``), a filter, a column, how the rows of
one seed reduce to one value (``per_seed``), an optional ``transform`` of that value,
and a ``test``: a region the value should lie in. Across seeds the mean and its 95 %
t-interval are computed; the verdict compares the *interval* with the region:

- ``holds``: the whole interval lies in the region;
- ``does not hold``: the interval lies wholly outside it;
- ``inconclusive``: the interval straddles a border of the region (or too few seeds).

``kind: winner`` claims instead read ``exp3/capacity_winners`` and check that the named
activation is best on the target with a lead that holds across seeds.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import yaml

from . import io
from .stats import t_halfwidth

VERDICTS = ("holds", "does not hold", "inconclusive")
REDUCERS = {"mean": "mean", "max": "max", "min": "min", "median": "median", "last": "last"}
TRANSFORMS = {None: lambda v: v, "log10": np.log10, "abs": np.abs}
COLUMNS = ["claim", "statement", "source", "condition", "expected", "measured_mean", "ci_low",
           "ci_high", "n_seeds", "n_left_out", "verdict", "reason", "table", "table_sha256"]


class ClaimError(ValueError):
    pass


def load(path) -> list[dict]:
    with open(path) as fh:
        doc = yaml.safe_load(fh) or {}
    claims = doc.get("claims")
    if not isinstance(claims, list) or not claims:
        raise ClaimError(f"{path}: expected a non-empty list under 'claims:'")
    seen = set()
    for i, c in enumerate(claims):
        for key in ("id", "statement", "table"):
            if key not in c:
                raise ClaimError(f"{path}: claim {i + 1} lacks the key '{key}'")
        if c["id"] in seen:
            raise ClaimError(f"{path}: claim id {c['id']!r} appears twice")
        seen.add(c["id"])
        if c.get("kind", "value") == "value":
            for key in ("column", "test"):
                if key not in c:
                    raise ClaimError(f"{path}: claim {c['id']!r} lacks the key '{key}'")
            if c["test"].get("op") not in ("<", "<=", ">", ">=", "approx", "between"):
                raise ClaimError(f"{path}: claim {c['id']!r}: test.op must be one of <, <=, >, >=, "
                                 f"approx, between")
            if c.get("per_seed", "mean") not in REDUCERS:
                raise ClaimError(f"{path}: claim {c['id']!r}: per_seed must be one of {list(REDUCERS)}")
            if c.get("transform") not in TRANSFORMS:
                raise ClaimError(f"{path}: claim {c['id']!r}: transform must be log10, abs or absent")
    return claims


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


def _apply_filter(df: pd.DataFrame, flt: dict) -> tuple[pd.DataFrame, list[str]]:
    parts = []
    for key, want in (flt or {}).items():
        if key not in df.columns:
            raise ClaimError(f"filter column {key!r} is not in the table (columns: {list(df.columns)})")
        if df.empty:
            break
        if isinstance(want, dict) and ("from_fraction" in want or "to_fraction" in want):
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


def evaluate_value(claim, df: pd.DataFrame) -> dict:
    df, cond = _apply_filter(df, claim.get("filter"))
    column = claim["column"]
    reducer = REDUCERS[claim.get("per_seed", "mean")]
    if df.empty:
        return {"condition": ", ".join(cond), "verdict": "inconclusive",
                "reason": "no rows match the filter (is that experiment, epoch or layer in the run?)",
                "n_seeds": 0, "n_left_out": 0}
    if "seed" in df.columns:
        per_seed = df.groupby("seed")[column].agg(reducer)
        if "diverged" in df.columns:
            bad = df.groupby("seed")["diverged"].any()
            per_seed = per_seed.where(~bad.reindex(per_seed.index, fill_value=False))
    else:
        per_seed = pd.Series([df[column].agg(reducer)])
    with np.errstate(divide="ignore", invalid="ignore"):
        values = TRANSFORMS[claim.get("transform")](per_seed.astype(float))
    finite = values[np.isfinite(values)]
    n, left_out = len(finite), int(len(values) - len(finite))
    lo_r, hi_r, expected = _region(claim["test"])
    what = f"{claim.get('transform') + ' ' if claim.get('transform') else ''}{reducer} of {column}"
    base = {"condition": ", ".join(cond + [f"per seed: {what}"]), "expected": expected,
            "n_seeds": n, "n_left_out": left_out}
    if n == 0:
        return base | {"verdict": "inconclusive", "reason": "every seed diverged or is missing"}
    mean = float(finite.mean())
    if "seed" in df.columns:
        if n < 2:
            return base | {"measured_mean": mean, "verdict": "inconclusive",
                           "reason": "fewer than 2 seeds: no interval"}
        half = float(t_halfwidth(finite.std(), n))
        lo, hi = mean - half, mean + half
    else:
        lo = hi = mean
    inside = lo >= lo_r and hi <= hi_r
    outside = hi < lo_r or lo > hi_r
    if claim["test"]["op"] in ("<", ">"):  # strict
        inside = inside and lo != lo_r and hi != hi_r
    interval = f"[{lo:.4g}, {hi:.4g}]"
    if inside:
        verdict, reason = "holds", f"the 95 % interval {interval} lies inside the region {expected}"
    elif outside:
        verdict, reason = "does not hold", f"the 95 % interval {interval} lies outside the region {expected}"
    else:
        verdict, reason = "inconclusive", f"the 95 % interval {interval} straddles a border of the region {expected}"
    if left_out:
        reason += f"; {left_out} diverged seed(s) left out"
    return base | {"measured_mean": mean, "ci_low": lo, "ci_high": hi, "verdict": verdict,
                   "reason": reason}


def evaluate_winner(claim, df: pd.DataFrame) -> dict:
    target, expect = claim["target"], claim["expect_best"]
    row = df[df["target"] == target]
    base = {"condition": f"target = {target}; paired over seeds: log10(runner-up MSE / best MSE)",
            "expected": f"{expect} best, lead holds across seeds"}
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


def evaluate(claims, table_paths: dict[str, str], claims_file="config/claims.yaml") -> pd.DataFrame:
    rows, cache = [], {}
    for c in claims:
        path = table_paths[c["table"]]
        if path not in cache:
            cache[path] = (io.read_parquet(path), hashlib.sha256(open(path, "rb").read()).hexdigest())
        df, digest = cache[path]
        try:
            res = evaluate_winner(c, df) if c.get("kind") == "winner" else evaluate_value(c, df)
        except (KeyError, ClaimError) as err:
            raise ClaimError(f"claim {c['id']!r} in {claims_file}: {err}") from err
        rows.append({"claim": c["id"], "statement": c["statement"], "source": c.get("source", ""),
                     "table": c["table"], "table_sha256": digest} | res)
    out = pd.DataFrame(rows).reindex(columns=COLUMNS)
    for col in ("measured_mean", "ci_low", "ci_high"):
        out[col] = out[col].astype(float)
    for col in ("n_seeds", "n_left_out"):
        out[col] = out[col].fillna(0).astype(int)
    return out


def markdown(df: pd.DataFrame) -> str:
    def fmt(v):
        return "" if pd.isna(v) else f"{v:.4g}"

    lines = ["# Claims of the study against the measurements", "",
             "Verdicts compare the 95 % interval over seeds with the claim's threshold: "
             "**holds** (inside), **does not hold** (outside), **inconclusive** (straddles). "
             "Source: `results/audit/claims.parquet`.", "",
             "| claim | the study says | measured mean [95 % interval] | seeds | verdict | why |",
             "|---|---|---|---|---|---|"]
    def cell(text):
        return str(text).replace("|", "\\|")

    for _, r in df.iterrows():
        meas = f"{fmt(r['measured_mean'])} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"
        lines.append(f"| `{r['claim']}` | {cell(r['statement'])} | {meas} | {r['n_seeds']} | "
                     f"**{r['verdict']}** | {cell(r['condition'])}; expected {r['expected']}: "
                     f"{cell(r['reason'])} |")
    counts = df["verdict"].value_counts()
    lines += ["", "Totals: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS) + "."]
    return "\n".join(lines) + "\n"


def html(df: pd.DataFrame) -> str:
    colors = {"holds": "#1b7837", "does not hold": "#b2182b", "inconclusive": "#8c6d1f"}
    body = df[["claim", "statement", "measured_mean", "ci_low", "ci_high", "n_seeds", "verdict",
               "reason"]].copy()
    body["verdict"] = [f'<b style="color:{colors[v]}">{v}</b>' for v in body["verdict"]]
    table = body.to_html(index=False, escape=False, float_format=lambda v: f"{v:.4g}", na_rep="")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Claims</title><style>"
            "body{font-family:sans-serif} table{border-collapse:collapse} td,th{border:1px solid #ccc;"
            "padding:4px 8px;vertical-align:top}</style></head><body><h1 id='claims-table'>"
            "Claims of the study against the measurements</h1>" + table + "</body></html>\n")
