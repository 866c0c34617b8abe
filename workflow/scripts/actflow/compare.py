"""Does my run reproduce yours? The statistical comparison of two runs.

Bytes cannot answer that question across machines: float32 results differ in their last bits
between CPU models and on a GPU, and the chaotic runs amplify those bits. What should agree is
what the study is about: each claim's verdict, and each summary metric *within the spread over
seeds*. :func:`compare` sets two runs (each a bundle or a results folder, read and verified by
:mod:`actflow.bundle`) side by side: every claim's verdict in both; every summary metric of
:data:`METRICS`, per variant and activation, with both means, both 95 % intervals and a
two-sample test (Welch's t-test on the seed values, Holm-corrected over all rows, family-wise
level :data:`ALPHA`); settings, versions, device and machine side by side, a difference in a
setting that changes results named first. :func:`document` says it once, rendered as Markdown
and as the report's HTML page by :mod:`actflow.render`; the figure is
:func:`actflow.plotting.comparison_figure`.

No Snakemake here; the rule ``comparison`` calls it through :mod:`actflow.jobs`.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import layout, render
from .bundle import Run, open_run, results_root, under_results
from .config import AFTER_RUN_KEYS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

ALPHA = 0.05  # family-wise level of the "differ" statement (Holm over all tested rows)

# Config keys whose value does not change what a run measures (where and how fast it runs,
# what is written about it): a difference in any other key is named first in a comparison.
# Prefixes of dotted keys. The device and the threads change float bits, not the
# distribution: that is exactly what a comparison is for.
NEUTRAL_SETTINGS = ("device", "train.threads", "train.mem_mb", "train.log_every",
                    "audit.sample_jobs", "audit.sample_seed", "audit.claims",
                    "figures.", *AFTER_RUN_KEYS)
# Settings whose difference makes the runs independent samples of the same experiment: the
# comparison's test assumes exactly that; named in the header, not as a result-changing one.
SAMPLE_SETTINGS = ("seeds",)


# ------------------------------------------------------------------ summary metrics
@dataclass(frozen=True)
class Metric:
    """A summary metric compared between runs: one value per run (seed), grouped by
    experiment, variant, activation and ``detail`` columns."""

    name: str
    table: str  # a union table of actflow.layout.TABLES
    value: str
    label: str  # what it is, for the report and the figure
    detail: tuple[str, ...] = ()  # further grouping columns (definition, target)
    where: tuple[tuple[str, object], ...] = ()  # rows kept: column == value
    over_layers: bool = False  # mean over the hidden layers of each run
    last_epoch: bool = False  # the last epoch of each run only
    log: bool = False  # compare log10(value): means are geometric, the test on log10 scale


TRAINED = layout.STAGES[-1]
METRICS = [
    Metric("final_loss", "runs", "final_loss", "final training loss (MSE)", log=True),
    Metric("gradient_ratio", "gradient_ratio", "log10_weight_grad_ratio",
           "log10 ‖∂L/∂W‖ ratio last / first layer, last epoch", last_epoch=True),
    Metric("dead_fraction", "dead_neurons", "dead_fraction",
           "dead fraction after training, mean over layers", detail=("definition",),
           where=(("stage", TRAINED),), over_layers=True),
    Metric("exact_zero_fraction", "sparsity", "exact_zero_fraction",
           "exact-zero activation fraction after training", where=(("stage", TRAINED),),
           over_layers=True),
    Metric("saturated_fraction", "sparsity", "saturated_fraction",
           "saturated fraction after training", where=(("stage", TRAINED),), over_layers=True),
    Metric("effective_rank", "representations", "effective_rank",
           "effective rank of a layer's outputs after training", where=(("stage", TRAINED),),
           over_layers=True),
    Metric("test_mse", "capacity", "test_mse", "test MSE per target", detail=("target",),
           log=True),
]
NEEDED = [layout.AUDIT["claims_parquet"], layout.AUDIT["sensitivity_parquet"]]  # plus METRICS'


def needed_files() -> list[str]:
    """The files of a run the comparison reads besides its manifest (rule comparison's inputs)."""
    return sorted(set(NEEDED + [layout.TABLES[m.table].union_path() for m in METRICS]))


GROUP = ("experiment", "variant", "activation")
COMPARISON_COLUMNS = (
    "metric", "experiment", "variant", "activation", "detail", "scale", "aggregate",
    "n_a", "n_nonfinite_a", "mean_a", "ci_low_a", "ci_high_a",
    "n_b", "n_nonfinite_b", "mean_b", "ci_low_b", "ci_high_b",
    "difference", "p_value", "p_holm", "intervals_overlap", "status")
CLAIM_COLUMNS = ("claim", "variant", "statement", "verdict_a", "verdict_b", "measured_a",
                 "ci_a", "measured_b", "ci_b", "same_verdict", "definition_differs", "status")
SETTING_COLUMNS = ("section", "setting", "value_a", "value_b", "differs", "changes_results")
STATUSES = ("identical", "agree", "differ", "untestable", "only in A", "only in B")


def seed_values(run: Run, metric: Metric) -> pd.DataFrame:
    """One value per run (seed) of ``metric``: GROUP + detail + seed + value (on the
    comparison's scale: log10 for log metrics; non-finite where the run diverged)."""
    import numpy as np
    df = run.table(metric.table)
    for col, val in metric.where:
        df = df[df[col] == val]
    keys = list(GROUP + metric.detail) + ["seed"]
    if metric.last_epoch and len(df):
        last = df.groupby(["experiment", "variant"])["epoch"].transform("max")
        df = df[df["epoch"] == last]
    v = df[metric.value].astype(float)
    if metric.log:
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.log10(v.where(v > 0))
    df = df[keys].assign(value=v.to_numpy())
    if metric.over_layers or metric.last_epoch:
        # a run with any non-finite layer value is non-finite (mean propagates NaN)
        df = df.groupby(keys, sort=True, observed=True)["value"].agg(
            lambda s: s.mean(skipna=False)).reset_index()
    return df.sort_values(keys).reset_index(drop=True)


def _interval(v: np.ndarray, bounds=None):
    """Mean and 95 % t-interval of ``v``, the interval kept inside ``bounds`` (the range the
    values can take, layout.COLUMN_BOUNDS: a fraction's interval never reaches below 0), as
    the claims' intervals are."""
    import numpy as np
    from .stats import t_halfwidth

    n = len(v)
    if n == 0:
        return np.nan, np.nan, np.nan
    m = float(np.mean(v))
    h = float(t_halfwidth(np.std(v, ddof=1) if n > 1 else np.nan, n))
    lo, hi = m - h, m + h
    if bounds is not None and n > 1:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return m, lo, hi


def _welch(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of Welch's t-test (scipy.stats.ttest_ind, unequal variances); exact
    cases (no spread on either side, where the statistic is undefined) decided by equality."""
    import numpy as np
    from scipy.stats import ttest_ind

    if len(a) < 2 or len(b) < 2:
        return np.nan
    if np.var(a) == 0 and np.var(b) == 0:
        return 1.0 if np.mean(a) == np.mean(b) else 0.0
    with warnings.catch_warnings():
        # one side without spread (every seed's value the same: a fraction of 0, say) is a
        # case Welch's test handles; SciPy still warns that those values are "nearly identical"
        warnings.filterwarnings("ignore", "Precision loss occurred in moment calculation",
                                RuntimeWarning)
        return float(ttest_ind(b, a, equal_var=False).pvalue)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN kept as NaN)."""
    import numpy as np
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if not len(ok):
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out


def compare_metrics(a: Run, b: Run) -> pd.DataFrame:
    import numpy as np
    import pandas as pd
    rows = []
    for metric in METRICS:
        va, vb = seed_values(a, metric), seed_values(b, metric)
        keys = list(GROUP + metric.detail)
        ga = {k: g for k, g in va.groupby(keys, sort=True)} if len(va) else {}
        gb = {k: g for k, g in vb.groupby(keys, sort=True)} if len(vb) else {}
        for key in sorted(set(ga) | set(gb), key=str):
            key = key if isinstance(key, tuple) else (key,)
            row = dict(zip(keys, key))
            detail = ", ".join(f"{c}={row.pop(c)}" for c in metric.detail)
            out = {"metric": metric.name, **row, "detail": detail,
                   "scale": "log10" if metric.log else "linear",
                   "aggregate": "geometric_mean" if metric.log else "mean"}
            finite = {}
            for side, groups in (("a", ga), ("b", gb)):
                g = groups.get(key)
                vals = g["value"].to_numpy(float) if g is not None else np.array([])
                fin = vals[np.isfinite(vals)]
                finite[side] = (g, fin)
                # on the log scale the interval is multiplicative and stays positive
                m, lo, hi = _interval(fin, None if metric.log else
                                      layout.COLUMN_BOUNDS.get(metric.value))
                if metric.log:
                    m, lo, hi = 10.0**m, 10.0**lo, 10.0**hi
                out |= {f"n_{side}": len(fin), f"n_nonfinite_{side}": len(vals) - len(fin),
                        f"mean_{side}": m, f"ci_low_{side}": lo, f"ci_high_{side}": hi}
            (g_a, fa), (g_b, fb) = finite["a"], finite["b"]
            out["difference"] = (np.mean(fb) - np.mean(fa)) if len(fa) and len(fb) else np.nan
            out["p_value"] = np.nan
            if g_a is None:
                out["status"] = "only in B"
            elif g_b is None:
                out["status"] = "only in A"
            elif (list(g_a["seed"]) == list(g_b["seed"])
                  and np.array_equal(g_a["value"].to_numpy(float), g_b["value"].to_numpy(float),
                                     equal_nan=True)):
                out["status"], out["p_value"] = "identical", 1.0
            else:
                out["p_value"] = _welch(fa, fb)
                out["status"] = "untestable" if np.isnan(out["p_value"]) else None
            out["intervals_overlap"] = bool(
                max(out["ci_low_a"], out["ci_low_b"]) <= min(out["ci_high_a"], out["ci_high_b"]))
            rows.append(out)
    df = pd.DataFrame(rows, columns=[c for c in COMPARISON_COLUMNS])
    tested = df["status"].isna()
    df["p_holm"] = np.nan
    df.loc[tested, "p_holm"] = holm(df.loc[tested, "p_value"].to_numpy(float))
    df.loc[tested, "status"] = np.where(df.loc[tested, "p_holm"] < ALPHA, "differ", "agree")
    return df[list(COMPARISON_COLUMNS)]


# ------------------------------------------------------------------ claims
def _verdicts(run: Run) -> pd.DataFrame:
    import pandas as pd
    claims = run.audit_table("claims_parquet").assign(variant="")
    sens = run.audit_table("sensitivity_parquet")
    study = set(layout.EXPERIMENT_KINDS)
    sens = sens[~sens["variant"].isin(study)]
    cols = ["claim", "variant", "statement", "condition", "expected", "verdict",
            "measured_mean", "ci_low", "ci_high"]
    both = pd.concat([claims[cols], sens[cols]], ignore_index=True)
    both["variant"] = both["variant"].replace("", "(study)")
    return both


def fmt_num(x) -> str:
    try:
        return f"{x:.4g}" if math.isfinite(x) else "—"
    except TypeError:
        return "—"


def compare_claims(a: Run, b: Run) -> pd.DataFrame:
    import pandas as pd
    va, vb = _verdicts(a), _verdicts(b)
    m = va.merge(vb, on=["claim", "variant"], how="outer", suffixes=("_a", "_b"),
                 indicator=True, sort=False)
    rows = []
    for ra in m.to_dict("records"):
        in_a, in_b = ra["_merge"] != "right_only", ra["_merge"] != "left_only"
        row = {"claim": ra["claim"], "variant": ra["variant"],
               "statement": ra["statement_a"] if in_a else ra["statement_b"],
               "verdict_a": ra["verdict_a"] if in_a else None,
               "verdict_b": ra["verdict_b"] if in_b else None,
               "measured_a": ra["measured_mean_a"], "ci_a": (
                   f"[{fmt_num(ra['ci_low_a'])}, {fmt_num(ra['ci_high_a'])}]" if in_a else ""),
               "measured_b": ra["measured_mean_b"], "ci_b": (
                   f"[{fmt_num(ra['ci_low_b'])}, {fmt_num(ra['ci_high_b'])}]" if in_b else ""),
               }
        row["same_verdict"] = bool(in_a and in_b and row["verdict_a"] == row["verdict_b"])
        row["definition_differs"] = bool(in_a and in_b and (
            ra["condition_a"] != ra["condition_b"] or ra["expected_a"] != ra["expected_b"]))
        row["status"] = ("only in A" if not in_b else "only in B" if not in_a
                         else "same" if row["same_verdict"] else "differs")
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))
    order = {"differs": 0, "only in A": 1, "only in B": 1, "same": 2}
    return (df.assign(_o=df["status"].map(order), _s=df["variant"] != "(study)")
            .sort_values(["_o", "_s", "variant", "claim"], kind="stable")
            .drop(columns=["_o", "_s"]).reset_index(drop=True))


# ------------------------------------------------------------------ settings and machines
def _flatten(node, prefix=""):
    if isinstance(node, dict):
        for k in sorted(node):
            yield from _flatten(node[k], f"{prefix}{k}.")
    else:
        yield prefix[:-1], node


def _show(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, (list, dict)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def neutral(key: str) -> bool:
    return key in SAMPLE_SETTINGS or any(key == p or (p.endswith(".") and key.startswith(p)) or key.startswith(p + ".")
               for p in NEUTRAL_SETTINGS)


def compare_settings(a: Run, b: Run) -> pd.DataFrame:
    import numpy as np
    import pandas as pd
    rows = []
    ca, cb = dict(_flatten(a.manifest["config"])), dict(_flatten(b.manifest["config"]))
    for key in sorted(set(ca) | set(cb)):
        va, vb = ca.get(key), cb.get(key)
        rows.append({"section": "config", "setting": key, "value_a": _show(va),
                     "value_b": _show(vb), "differs": _show(va) != _show(vb),
                     "changes_results": not neutral(key)})
    env_a, env_b = _environment(a), _environment(b)
    for key in env_a:
        rows.append({"section": "machine", "setting": key, "value_a": env_a[key],
                     "value_b": env_b[key], "differs": env_a[key] != env_b[key],
                     "changes_results": False})
    df = pd.DataFrame(rows, columns=list(SETTING_COLUMNS))
    first = df["differs"] & df["changes_results"]
    return (df.assign(_o=np.where(first, 0, np.where(df["differs"], 1, 2)))
            .sort_values(["_o", "section", "setting"], kind="stable")
            .drop(columns="_o").reset_index(drop=True))


def _environment(run: Run) -> dict[str, str]:
    m = run.manifest
    env = {"training devices": _show(m.get("training_devices")),
           "CUDA": _show((m.get("cuda") or {}).get("devices")) if m.get("cuda") else "—",
           "CPU": _show(m.get("cpu")), "CPU cores": _show(m.get("cpu_count")),
           "platform": _show(m.get("platform")),
           "git commit": _show((m.get("git") or {}).get("commit")),
           "uncommitted changes": _show((m.get("git") or {}).get("dirty")),
           "config SHA-256": _show(m.get("config_sha256"))}
    for pkg, ver in sorted((m.get("versions") or {}).items()):
        env[f"version of {pkg}"] = _show(ver)
    return env


def _seed_note(settings: pd.DataFrame) -> str:
    rows = settings[settings["setting"].isin(SAMPLE_SETTINGS) & settings["differs"]]
    if not len(rows):
        return ""
    r = rows.iloc[0]
    return (f"The runs use different seeds ({r.value_a} in A, {r.value_b} in B): independent "
            "samples of the same experiment, which is what the test below assumes.")


def result_changing_differences(settings: pd.DataFrame) -> pd.DataFrame:
    return settings[settings["differs"] & settings["changes_results"]]


# ------------------------------------------------------------------ the comparison
def describe(run: Run) -> str:
    m = run.manifest
    what = (f"bundle (SHA-256 {run.archive_sha256[:12]}…)" if run.source == "bundle"
            else "results folder")
    commit = ((m.get("git") or {}).get("commit") or "none")[:10]
    devices = ", ".join(m.get("training_devices") or []) or "?"
    gpu = f" ({', '.join(m['cuda']['devices'])})" if m.get("cuda") else ""
    return (f"{run.label}: {what}; trained on {devices}{gpu}; CPU {m.get('cpu')} × "
            f"{m.get('cpu_count')}; commit {commit}; torch {m.get('versions', {}).get('torch')}")


def compare(a: Run, b: Run) -> dict[str, pd.DataFrame]:
    return {"metrics": compare_metrics(a, b), "claims": compare_claims(a, b),
            "settings": compare_settings(a, b)}


def short(run: Run) -> str:
    """A run in a few words: its training devices and CPU."""
    m = run.manifest
    return f"{', '.join(m.get('training_devices') or ['?'])}, {m.get('cpu')}"


def document(a: Run, b: Run, result: dict[str, pd.DataFrame]) -> list:
    """The comparison as blocks of :mod:`actflow.render`: written once, rendered as
    comparison.md and as the report's comparison.html."""
    import numpy as np

    from .render import Heading, Para, Table

    met, cl, st = result["metrics"], result["claims"], result["settings"]
    blocks = [Para(f"A (this run): {describe(a)}"), Para(f"B: {describe(b)}")]
    changed = result_changing_differences(st)
    if len(changed):
        blocks.append(Para(
            "The two runs' configurations differ in settings that change results: "
            + "; ".join(f"{r.setting} {r.value_a} (A) vs {r.value_b} (B)"
                        for r in changed.itertuples())
            + ". The differences below may come from these settings, not from the machines.",
            strong=True))
    else:
        blocks.append(Para("The two runs' configurations agree in every setting that changes "
                           "results (see Settings and machines): the differences below are those "
                           "of the machines, versions and seeds."))
    if _seed_note(st):
        blocks.append(Para(_seed_note(st)))
    counts = met["status"].value_counts()
    ncl = cl[cl["status"] != "same"]
    blocks += [
        Heading("Summary"),
        Para(f"Claims: {int((cl['status'] == 'same').sum())} of {len(cl)} verdicts (the study's "
             f"setting and every variant) are the same in both runs; {len(ncl)} differ or exist "
             "in one run only. Summary metrics: "
             + ", ".join(f"{int(counts.get(s, 0))} {s}" for s in STATUSES if counts.get(s, 0))
             + f" (of {len(met)} rows)."),
        Para("How agreement is decided: for each metric, variant, activation (and definition or "
             "target) the seed values of both runs are compared by Welch's two-sample t-test (on "
             "the log10 scale for losses and MSEs); the p-values are Holm-corrected over all "
             f"{int(met['p_holm'].notna().sum())} tested rows, and a row differs when its "
             f"corrected p-value is below {ALPHA}, that is when the difference is larger than "
             "the seed spread of the two runs allows at a family-wise level of "
             f"{ALPHA:.0%}. Identical: the same seeds with bit-identical values. A row whose "
             "runs diverged in one run and not in the other differs too. Intervals are 95 % "
             "t-intervals over seeds.")]
    tested = met["p_value"].notna() & (met["status"] != "identical")
    if tested.any():
        raw = int((met.loc[tested, "p_value"] < ALPHA).sum())
        blocks.append(Para(f"Without the correction, {raw} of {int(tested.sum())} tested rows "
                           f"have p < {ALPHA} (about {ALPHA * tested.sum():.1f} would by chance "
                           "if both runs drew from one distribution)."))
    view = st.assign(differs=np.where(st["differs"], "≠", ""),
                     changes_results=np.where(st["changes_results"], "yes", ""))
    study = met[met["variant"].isin(list(layout.EXPERIMENT_KINDS))]
    blocks += [
        Heading("Claims whose verdicts differ"),
        Table(ncl, ["claim", "variant", "verdict_a", "verdict_b", "measured_a", "ci_a",
                    "measured_b", "ci_b", "status"],
              empty="None: every claim has the same verdict in both runs."),
        Heading("Metrics that differ beyond the seed spread"),
        Table(met[met["status"] == "differ"],
              ["metric", "variant", "activation", "detail", "mean_a", "ci_low_a", "ci_high_a",
               "mean_b", "ci_low_b", "ci_high_b", "p_holm"], empty="None."),
        Heading("Settings and machines"),
        Para("Differences are marked ≠; settings that change results come first. "
             f"{int((~st['differs'] & (st['section'] == 'config')).sum())} further config "
             "settings are equal; every row is in comparison_settings.parquet."),
        Table(view[st["differs"] | (st["section"] == "machine")],
              ["differs", "section", "setting", "value_a", "value_b", "changes_results"]),
        Heading("Every claim"),
        Table(cl, ["claim", "variant", "verdict_a", "verdict_b", "status"]),
        Heading("Every metric of the study's setting"),
        Para("The variants' rows: comparison.parquet."),
        Table(study, ["metric", "variant", "activation", "detail", "n_a", "mean_a", "n_b",
                      "mean_b", "p_holm", "status"]),
    ]
    return blocks


TITLE = "Comparison of two runs"


def write(a_path, b_path, out: dict[str, str], dpi: int = 150, label_b: str | None = None):
    """Open both runs, compare them and write ``out`` (keys: those of
    :data:`actflow.layout.COMPARISON` without the ``comparison_`` prefix). Nothing is written
    unless both runs open and verify."""
    from . import io, plotting

    a = open_run(a_path, label="this run", verify=needed_files())
    try:
        b = open_run(b_path, label=label_b or str(b_path), verify=needed_files())
        try:
            result = compare(a, b)
            blocks = document(a, b, result)
            for key, name in (("parquet", "metrics"), ("claims", "claims"),
                              ("settings", "settings")):
                io.write_parquet(result[name], out[key])
            with io.atomic_path(out["markdown"]) as tmp:
                tmp.write_text(render.markdown(TITLE, blocks, number=fmt_num))
            with io.atomic_path(out["html"]) as tmp:
                tmp.write_text(render.html(TITLE, blocks, number=fmt_num))
            plotting.style()
            fig = plotting.comparison_figure(
                result["metrics"], {m.name: m.label for m in METRICS},
                (f"A: {a.label}", short(a)), (f"B: {Path(b.label).name}", short(b)), ALPHA)
            plotting.save(fig, {"png": out["png"], "pdf": out["pdf"]}, dpi)
        finally:
            b.close()
    finally:
        a.close()
    return result


def check(path) -> str:
    """Open and verify a run (at Snakefile parse time): the file the DAG should watch."""
    run = open_run(path, verify=needed_files())
    try:
        if run.source == "bundle":
            return str(path)
        return str(results_root(path) / under_results(layout.AUDIT["manifest"]))
    finally:
        run.close()
