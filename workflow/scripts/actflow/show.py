"""``make show``: a finished run's results as tables in the terminal, one per experiment: every
setting (the study's and each variant's) × activation, with the key metrics' means and 95 %
intervals over seeds (the comparison's metrics, actflow.compare.METRICS, from the run's union
tables, verified against its manifest); with ``--comparison``, the differences the comparison
with another run found (results/audit/comparison*.parquet, written by ``make compare``).

    python -m actflow.show [RESULTS] [--comparison] [--width N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import layout

# The columns of the table: a metric of actflow.compare.METRICS, with the detail value it
# shows (the dead-neuron definition the study's figure uses) and a short heading.
COLUMNS = (
    ("final_loss", None, "final loss (MSE, geometric mean)"),
    ("gradient_ratio", None, "log₁₀ grad ratio last/first"),
    ("dead_fraction", ("definition", layout.DEAD_DEFINITIONS[0]),
     f"dead fraction ({layout.DEAD_DEFINITIONS[0]})"),
    ("test_mse", None, "test MSE (geometric mean)"),
)


def _fmt(v: float) -> str:
    return "—" if v != v else f"{v:.3g}"


def cell(values, log: bool) -> str:
    """'m [lo, hi]' over seeds (geometric for a log metric), with the count of non-finite runs."""
    import numpy as np

    from .stats import t_halfwidth

    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    bad = len(v) - len(finite)
    m = float(np.mean(finite)) if len(finite) else np.nan
    h = float(t_halfwidth(np.std(finite, ddof=1), len(finite))) if len(finite) > 1 else np.nan
    lo, hi = m - h, m + h
    if log:
        m, lo, hi = (10 ** x if x == x else x for x in (m, lo, hi))
    text = _fmt(m) if len(finite) < 2 else f"{_fmt(m)} [{_fmt(lo)}, {_fmt(hi)}]"
    return text + (f" ({bad} non-finite)" if bad else "")


def tables(root: Path) -> dict[str, tuple[list[str], list[list[str]]]]:
    """experiment -> (headings, rows): one row per setting and activation (and target, for
    test MSE), the study's setting first."""
    from . import bundle, compare
    from . import variants as varreg

    run = bundle.open_run(root, verify=compare.needed_files())
    sens = run.audit_table("sensitivity_parquet")
    settings = dict(zip(sens["variant"], sens["overrides"]))
    metrics = {m.name: m for m in compare.METRICS}
    values = {}
    for name, detail, _ in COLUMNS:
        df = compare.seed_values(run, metrics[name])
        if detail is not None:
            df = df[df[detail[0]] == detail[1]]
        values[name] = df
    out = {}
    for exp in layout.EXPERIMENT_KINDS:
        present = [(n, d, h) for n, d, h in COLUMNS
                   if len(values[n]) and (values[n]["experiment"] == exp).any()]
        if not present:
            continue
        frames = {n: values[n][values[n]["experiment"] == exp] for n, _, _ in present}
        variants = sorted({v for f in frames.values() for v in f["variant"]},
                          key=lambda v: (v != exp, list(settings).index(v) if v in settings else 0))
        targets = sorted(frames["test_mse"]["target"].unique()) if "test_mse" in frames else []
        head = ["setting", "activation"] + [h for n, _, h in present if n != "test_mse"] + [
            f"test MSE, {t} (geometric mean)" for t in targets]
        rows = []
        for v in variants:
            label = varreg.label(exp, settings.get(v, v)) + ("" if v == exp else f"  ({v})")
            acts = list(dict.fromkeys(a for f in frames.values()
                                      for a in f.loc[f["variant"] == v, "activation"]))
            for k, act in enumerate(acts):
                row = [label if k == 0 else "", act]
                for n, _, _ in present:
                    f = frames[n]
                    f = f[(f["variant"] == v) & (f["activation"] == act)]
                    if n == "test_mse":
                        row += [cell(f.loc[f["target"] == t, "value"], metrics[n].log)
                                for t in targets]
                    else:
                        row.append(cell(f["value"], metrics[n].log))
                rows.append(row)
        out[exp] = (head, rows)
    return out


def differences(root: Path) -> list[tuple[str, list[str], list[list[str]]]]:
    """The comparison's findings as (title, headings, rows): claims whose verdicts differ,
    metrics that differ beyond the seed spread, settings that differ."""
    import pandas as pd

    res = Path(root)
    paths = {k: res / layout.COMPARISON[k].removeprefix(layout.RESULTS + "/")
             for k in ("comparison_parquet", "comparison_claims", "comparison_settings")}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"make show WITH=…: no comparison in {res} ({', '.join(missing)} missing): "
                         f"run make compare WITH=path/to/bundle.tar.gz first (make show WITH=… "
                         f"does)")
    claims = pd.read_parquet(paths["comparison_claims"])
    met = pd.read_parquet(paths["comparison_parquet"])
    st = pd.read_parquet(paths["comparison_settings"])
    out = []
    c = claims[claims["status"] != "same"]
    out.append((f"Claims whose verdicts differ ({len(c)} of {len(claims)})",
                ["claim", "variant", "this run", "the other run"],
                [[r.claim, r.variant, f"{r.verdict_a} {r.measured_a}", f"{r.verdict_b} {r.measured_b}"]
                 for r in c.itertuples()]))
    m = met[met["status"] == "differ"]
    out.append((f"Metrics that differ beyond the seed spread ({len(m)} of {len(met)})",
                ["metric", "variant", "activation", "detail", "this run", "the other run", "p (Holm)"],
                [[r.metric, r.variant, r.activation, r.detail,
                  f"{_fmt(r.mean_a)} [{_fmt(r.ci_low_a)}, {_fmt(r.ci_high_a)}]",
                  f"{_fmt(r.mean_b)} [{_fmt(r.ci_low_b)}, {_fmt(r.ci_high_b)}]", _fmt(r.p_holm)]
                 for r in m.itertuples()]))
    s = st[st["differs"]]
    out.append((f"Settings and machines that differ ({len(s)})",
                ["section", "setting", "this run", "the other run", "changes results"],
                [[r.section, r.setting, str(r.value_a), str(r.value_b),
                  "yes" if r.changes_results else ""] for r in s.itertuples()]))
    return out


def render(blocks, width: int | None = None) -> str:
    """Tables as text, one after the other (rich's layout: columns wrap to the width)."""
    import io

    from rich.console import Console
    from rich.table import Table

    console = Console(width=width or 200, record=True, file=io.StringIO(), highlight=False)
    for title, head, rows in blocks:
        t = Table(title=title, title_justify="left", show_lines=False, header_style="bold")
        for h in head:
            t.add_column(h, overflow="fold")
        for r in rows:
            t.add_row(*map(str, r))
        if not rows:
            t.add_row(*(["none"] + [""] * (len(head) - 1)))
        console.print(t)
    return console.export_text()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m actflow.show", description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="?", default=layout.RESULTS,
                    help="the run's results folder (default: results)")
    ap.add_argument("--comparison", action="store_true",
                    help="also list what the comparison with another run found (make compare)")
    ap.add_argument("--width", type=int, default=None, help="the width of the tables in columns")
    args = ap.parse_args(argv)
    import shutil

    from .bundle import BundleError

    width = args.width or shutil.get_terminal_size((160, 40)).columns
    try:
        blocks = [(layout.EXPERIMENT_TITLES[e] + ": mean [95 % interval] over seeds", head, rows)
                  for e, (head, rows) in tables(Path(args.results)).items()]
    except BundleError as err:
        print(f"make show: {err}".replace("compare_with: ", ""), file=sys.stderr)
        return 2
    if args.comparison:
        blocks += differences(Path(args.results))
    sys.stdout.write(render(blocks, width))
    return 0


if __name__ == "__main__":
    sys.exit(main())
