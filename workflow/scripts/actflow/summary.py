"""The run's findings in a few lines: what ``make run`` prints when it ends, ``results/summary.md``
and the report's front page (the same text).

Everything is derived from the audit's tables (claims, sensitivity) and the manifest (the
machine): verdict counts per experiment, the claims whose verdict changes under a variant or
a reading, the numbers of the claims that do not hold with their intervals, the machine, and
where to read the rest.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from . import layout
from .claims import VERDICTS

# the claims about the functions themselves (Figure 1) belong to no experiment
EXPERIMENTS = {**layout.EXPERIMENT_TITLES, None: "Activation functions (Figure 1)"}
ORDER = tuple(v for v in VERDICTS if v != "not applicable")  # a study-setting verdict


def _num(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.3g}"


def _value(r) -> str:
    if r.get("basis") == "exact":
        return f"{_num(r['measured_mean'])} (exact)"
    return f"{_num(r['measured_mean'])} [{_num(r['ci_low'])}, {_num(r['ci_high'])}]"


def facts(claims: pd.DataFrame, sensitivity: pd.DataFrame, manifest: dict) -> dict:
    """The summary's content as data (tested; rendered by :func:`markdown` and :func:`rst`)."""
    study = sensitivity[sensitivity["variant"] == sensitivity["experiment"]]
    experiment = dict(zip(study["claim"], study["experiment"]))
    rows = claims.assign(experiment=claims["claim"].map(experiment))
    counts = []
    for exp, title in EXPERIMENTS.items():
        part = rows[rows["experiment"].isna()] if exp is None else rows[rows["experiment"] == exp]
        if len(part):
            vc = part["verdict"].value_counts()
            counts.append({"experiment": title, "claims": len(part),
                           **{v: int(vc.get(v, 0)) for v in ORDER}})
    variants = [(r.claim, r.verdict_text, r.differs_under) for r in rows.itertuples()
                if isinstance(r.differs_under, str) and r.differs_under]
    depends = [(r.claim, r.verdict_text, r.readings_verdicts) for r in rows.itertuples()
               if r.readings_label == "depends on reading"]
    failing = [(r["claim"], r["statement"], _value(r), r["expected"])
               for _, r in rows.iterrows() if r["verdict"] == "does not hold"]
    return {"counts": counts, "variants": variants, "depends": depends, "failing": failing,
            "total": len(rows),
            "machine": f"{manifest.get('cpu', 'unknown CPU')} ({manifest.get('cpu_count', '?')} "
                       f"cores), training on {', '.join(manifest.get('training_devices') or ['?'])}",
            "versions": manifest.get("versions", {})}


def markdown(f: dict) -> str:
    total = {v: sum(c[v] for c in f["counts"]) for v in ORDER}
    lines = ["# What this run found", "",
             f"{f['total']} claims of the study checked on its setting: "
             + ", ".join(f"{total[v]} {v}" for v in ORDER if total[v]) + ". "
             f"Made on {f['machine']}; torch {f['versions'].get('torch', '?')}, "
             f"snakemake {f['versions'].get('snakemake', '?')}.", "",
             "| | claims | holds | does not hold | inconclusive | undecidable |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {c['experiment']} | {c['claims']} | " + " | ".join(str(c[v]) for v in ORDER)
              + " |" for c in f["counts"]]
    lines += ["", f"## Verdicts that change under a variant ({len(f['variants'])})", ""]
    lines += [f"- `{c}`: {v} on the study's setting; {d}" for c, v, d in f["variants"]] or ["- none"]
    lines += ["", f"## Verdicts that depend on how the study's words are read ({len(f['depends'])})",
              ""]
    lines += [f"- `{c}`: {v} as written; over its readings: {d}" for c, v, d in f["depends"]] \
        or ["- none"]
    lines += ["", f"## Numbers that do not hold ({len(f['failing'])})", "",
              "| claim | measured (mean [95 % interval]) | the study |", "|---|---|---|"]
    lines += [f"| `{c}` | {v} | {e} |" for c, _, v, e in f["failing"]]
    lines += ["", "## Where to read more", "",
              f"- the report: `{layout.REPORT}` (open it in a browser; `make report` rewrites it)",
              f"- every verdict with its reason: `{layout.AUDIT['claims_markdown']}`; under every "
              f"variant: `{layout.AUDIT['sensitivity_markdown']}`; under every reading: "
              f"`{layout.AUDIT['readings_markdown']}`; why the failing numbers fail: "
              f"`{layout.AUDIT['explanations_markdown']}`",
              "- every output file: `docs/outputs.md`", ""]
    return "\n".join(lines)


def terminal(f: dict) -> str:
    """The few lines a finished run prints."""
    total = {v: sum(c[v] for c in f["counts"]) for v in ORDER}
    out = [f"What this run found ({f['machine']}):",
           f"  {f['total']} claims: " + ", ".join(f"{total[v]} {v}" for v in ORDER if total[v])]
    for c in f["counts"]:
        out.append(f"    {c['experiment']}: " + ", ".join(f"{c[v]} {v}" for v in ORDER if c[v]))
    out.append(f"  {len(f['variants'])} verdicts change under a variant, {len(f['depends'])} "
               f"depend on how the words are read, {len(f['failing'])} numbers do not hold:")
    for c, _, v, e in f["failing"][:6]:
        out.append(f"    {c}: {v}, the study: {e}")
    if len(f["failing"]) > 6:
        out.append(f"    … {len(f['failing']) - 6} more in {layout.SUMMARY}")
    out.append(f"  The report: {layout.REPORT} (open it in a browser); the summary: "
               f"{layout.SUMMARY}")
    return "\n".join(out)


def _list_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        out += [f"   {'*' if i == 0 else ' '} - {cell}" for i, cell in enumerate(row)]
    return out + [""]


FRONT_PAGE_FAILING = 2  # numbers that do not hold, named on the report's front page


def rst(f: dict, description: str) -> str:
    """The report's front page: the workflow's description, then the summary (as text only:
    every value goes through actflow.figures.rst_plain, claim names as literals).

    Its length does not grow with the claims or the variants: Snakemake's report centres the
    front page vertically, and a page taller than the window loses its top (the counts) out of
    reach of the scroll bar. The full lists are in the Audit and Sensitivity categories and in
    results/summary.md."""
    from .figures import rst_plain

    total = {v: sum(c[v] for c in f["counts"]) for v in ORDER}
    lines = [description.rstrip(), "", "**What this run found.** " + rst_plain(
        f"{f['total']} claims of the study checked on its setting: "
        + ", ".join(f"{total[v]} {v}" for v in ORDER if total[v])
        + f". Made on {f['machine']}; torch {f['versions'].get('torch', '?')}."), ""]
    shown_verdicts = [v for v in ORDER if total[v]]  # a column of zeros only widens the table
    lines += _list_table(["", "claims", *shown_verdicts], [
        [rst_plain(c["experiment"]), str(c["claims"]), *(str(c[v]) for v in shown_verdicts)]
        for c in f["counts"]])
    failing = f["failing"]
    if failing:
        shown = failing[:FRONT_PAGE_FAILING]
        lines += [f"**Numbers that do not hold ({len(failing)})**: " + "; ".join(
            f"``{c}`` {rst_plain(v)}, the study {rst_plain(e)}" for c, _, v, e in shown)
            + (f"; {len(failing) - len(shown)} more" if len(failing) > len(shown) else "")
            + ". Every verdict and its reason: **Audit**.", ""]
    lines += [f"**What changes them**: {len(f['variants'])} verdicts change under a variant of "
              f"the unstated settings, {len(f['depends'])} with how the words are read: "
              "**Sensitivity** (tables, Figures 12 and 13, a figure per grid).", ""]
    return "\n".join(lines)


def load(claims_path=layout.AUDIT["claims_parquet"],
         sensitivity_path=layout.AUDIT["sensitivity_parquet"],
         manifest_path=layout.AUDIT["manifest"]) -> dict:
    """:func:`facts` of a run's audit tables and manifest."""
    from . import io

    return facts(io.read_parquet(claims_path), io.read_parquet(sensitivity_path),
                 json.loads(Path(manifest_path).read_text()))


def write(claims_path, sensitivity_path, manifest_path, out_md, out_rst=None,
          description_path=None) -> str:
    from . import io

    f = load(claims_path, sensitivity_path, manifest_path)
    with io.atomic_path(out_md) as tmp:
        tmp.write_text(markdown(f))
    if out_rst:
        with io.atomic_path(out_rst) as tmp:
            tmp.write_text(rst(f, Path(description_path).read_text() if description_path else ""))
    return terminal(f)
