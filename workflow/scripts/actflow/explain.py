"""Why a number fails: for every claim that does not hold on the study's setting, the closest
setting the workflow measured, over variants (other runs) and readings (other ways to read the
same runs: windows, cutoffs, tolerances, layer subsets, dead-neuron definitions).

"Closest" is decided in this order: a setting under which the claim holds, with the fewest
changes from the study's (a reading of the same runs, or a variant at the primary reading,
before both together) and, among those, the widest margin; else the setting whose 95 %
interval lies nearest the claim's region (the gap between them, in the claim's own units). A
claim comes close when some setting holds or straddles the region; otherwise it stays
unexplained, and the table says so. Nothing here tunes a setting: it reads what was run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import render
from .claims import _cell, measured

COLUMNS = ["claim", "statement", "note", "measured", "expected", "side", "gap",
           "n_settings", "n_hold", "closest_variant", "closest_reading", "closest_measured",
           "closest_verdict", "closest_gap", "changes", "explanation"]


def _gap(r) -> float:
    """How far the interval lies outside the region (0 when it touches or overlaps it)."""
    m = r["margin"]
    if r["verdict"] == "does not hold" and np.isfinite(m):
        return float(m)
    return 0.0


def _side(r) -> str:
    return {"above": "above the region", "below": "below the region"}.get(str(r.get("side", "")), "")


def explain(rows: pd.DataFrame, claims_df: pd.DataFrame) -> pd.DataFrame:
    """One row per claim that does not hold on the study's setting under its primary reading,
    from evaluate_all's ``rows`` (every variant and reading) and the claims table."""
    out = []
    facts = claims_df.set_index("claim")
    for claim, f in facts.iterrows():
        if f["verdict"] != "does not hold":
            continue
        g = rows[(rows["claim"] == claim) & (rows["verdict"] != "not applicable")
                 & rows["measured_mean"].notna()].copy()  # a setting measured something
        g["changes"] = (g["variant"] != g["experiment"]).astype(int) + (~g["primary"]).astype(int)
        g["gap"] = [_gap(r) for r in g.to_dict("records")]
        prim = g[(g["variant"] == g["experiment"]) & g["primary"]].iloc[0]
        holds = g[g["verdict"] == "holds"].sort_values(["changes", "margin"], ascending=[True, False],
                                                       kind="stable")
        close = g[g["verdict"].isin(["inconclusive", "undecidable"])]
        if not holds.empty:
            best = holds.iloc[0]
            how = "holds"
        else:
            best = g[g["changes"] > 0].sort_values(["gap", "changes"], kind="stable").iloc[0] \
                if (g["changes"] > 0).any() else prim
            how = "comes close" if best["verdict"] in ("inconclusive", "undecidable") else "stays unexplained"
        where = _where(best)
        side = _side(prim)
        text = (f"On the study's setting it measures {measured(prim)} against {prim['expected']}"
                + (f" ({side})" if side else "") + f". Of {len(g)} settings measured (variants × "
                f"readings), it holds under {len(holds)}")
        if how == "holds":
            text += f"; the closest: {where}, {measured(best)}."
        elif how == "comes close":
            text += (f"; none holds, {len(close)} straddle the region; the closest: {where}, "
                     f"{measured(best)} ({best['verdict_text'] or best['verdict']}).")
        elif best["changes"] == 0:
            text += "; no other setting was measured (no variant or reading of it). It stays unexplained."
        else:
            text += (f"; none holds or comes close: the nearest, {where}, measures "
                     f"{measured(best)}, {best['gap']:.3g} outside the region. It stays unexplained "
                     f"by every setting measured.")
        out.append({"claim": claim, "statement": f["statement"], "note": f.get("note", ""),
                    "measured": measured(prim), "expected": prim["expected"], "side": side,
                    "gap": _gap(prim), "n_settings": len(g), "n_hold": len(holds),
                    "closest_variant": best["variant"], "closest_reading": best["reading"],
                    "closest_measured": measured(best),
                    "closest_verdict": best["verdict_text"] or best["verdict"],
                    "closest_gap": best["gap"], "changes": int(best["changes"]),
                    "explanation": text})
    df = pd.DataFrame(out, columns=COLUMNS)
    df["gap"] = df["gap"].astype(float)
    df["closest_gap"] = df["closest_gap"].astype(float)
    return df


def _where(r) -> str:
    parts = []
    if r["variant"] != r["experiment"]:
        parts.append(f"variant {r['variant']}")
    if not r["primary"]:
        parts.append(f"reading {r['reading']}")
    return " with ".join(parts) or "the study's setting"


def markdown(df: pd.DataFrame) -> str:
    lines = ["# Why the numbers that fail fail", "",
             "For every claim that does not hold on the study's setting: where its measured value "
             "lies, and the closest setting measured over the variants (other runs) and the "
             "readings (other ways to read the same runs). Nothing was tuned: these are the "
             "settings the configuration runs. Source: `results/audit/explanations.parquet`.", ""]
    if df.empty:
        lines.append("Every claim holds, is inconclusive or undecidable on the study's setting.")
    for r in df.to_dict("records"):
        lines += [f"## `{r['claim']}`", "", _cell(r["statement"]), "", r["explanation"]]
        if r["note"]:
            lines += ["", f"*{r['note']}*"]
        lines.append("")
    return "\n".join(lines) + "\n"


def html(df: pd.DataFrame) -> str:
    esc = render.esc
    head = ["claim", "measured (study's setting)", "expected", "settings holding", "closest setting",
            "there", "explanation"]
    rows = [[esc(r["claim"]), esc(r["measured"]), esc(str(r["expected"])),
             f"{r['n_hold']} of {r['n_settings']}",
             esc(f"{r['closest_variant']}; {r['closest_reading']}"),
             esc(f"{r['closest_measured']} ({r['closest_verdict']})"),
             esc(r["explanation"]) + (f"<br><i>{esc(r['note'])}</i>" if r["note"] else "")]
            for r in df.to_dict("records")]
    return render.page("Why the numbers that fail fail", render.table(head, rows),
                       anchor="explanations-table")
