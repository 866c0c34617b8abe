"""Does my run reproduce yours? A bundle of a run, and a statistical comparison of two runs.

Bytes cannot answer that question across machines: float32 results differ in their last bits
between CPU models and on a GPU, and the chaotic runs amplify those bits. What should agree is
what the study is about: each claim's verdict, and each summary metric *within the spread over
seeds*. This module

- packs a run into a **bundle** (:func:`make_bundle`): the tables the comparison reads, every
  summary table, the claim verdicts and the manifest (config, versions, device, CPU, commit),
  one gzip tar archive with a SHA-256 beside it and every member's SHA-256 inside;
- reads a run back (:func:`open_run`) from a bundle or a results folder, refusing anything it
  cannot verify: a damaged or foreign archive, a member whose hash differs from the bundle's
  list, a table whose hash differs from the run's own manifest;
- compares two runs (:func:`compare`): every claim's verdict in both; every summary metric of
  :data:`METRICS`, per variant and activation, with both means, both 95 % intervals and a
  two-sample test (Welch's t-test on the seed values, Holm-corrected over all rows, family-wise
  level :data:`ALPHA`); settings, versions, device and machine side by side, a difference in a
  setting that changes results named first.

No Snakemake here; the rules ``bundle`` and ``comparison`` call it (workflow/rules/audit.smk).
"""

from __future__ import annotations

import gzip
import io as _io
import json
import math
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import layout, render
from .config import AFTER_RUN_KEYS
from .io import sha256

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "actflow-bundle"  # the format name in every bundle's bundle.json
VERSION = 1
ROOT = "actflow-bundle"  # the folder every member lives under inside the archive
INDEX = "bundle.json"
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


class BundleError(ValueError):
    """A bundle or results folder that cannot be compared with: names the problem and the fix."""


# ------------------------------------------------------------------ making a bundle
def _rel(path: str) -> str:
    return str(path).removeprefix(layout.RESULTS + "/")


def make_bundle(files, out_archive, out_checksum, weights: bool = False) -> dict:
    """Pack ``files`` (paths under results/) into ``out_archive``, a gzip tar archive with
    ``actflow-bundle/bundle.json`` (format, version, every member's SHA-256 and size, the
    run's manifest summary) first; write ``sha256sum``'s line for it to ``out_checksum``.
    Byte-identical for identical files: members sorted, times and owners zeroed."""
    from . import io

    manifest = json.loads(Path(layout.AUDIT["manifest"]).read_text())
    members = {}
    for f in sorted(files):
        members[_rel(f)] = {"sha256": sha256(f), "bytes": Path(f).stat().st_size}
    index = {"format": FORMAT, "version": VERSION, "weights": bool(weights),
             "config_sha256": manifest.get("config_sha256"), "git": manifest.get("git"),
             "cpu": manifest.get("cpu"), "training_devices": manifest.get("training_devices"),
             "files": members}
    index_bytes = (json.dumps(index, indent=1, sort_keys=True) + "\n").encode()

    def info(name, size):
        ti = tarfile.TarInfo(f"{ROOT}/{name}")
        ti.size, ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = size, 0, 0o644, 0, 0, "", ""
        return ti

    with io.atomic_path(out_archive) as tmp:
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                   filename="") as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(info(INDEX, len(index_bytes)), _io.BytesIO(index_bytes))
            for f in sorted(files):
                with open(f, "rb") as fh:
                    tar.addfile(info(_rel(f), members[_rel(f)]["bytes"]), fh)
    digest = sha256(out_archive)
    with io.atomic_path(out_checksum) as tmp:
        tmp.write_text(f"{digest}  {Path(out_archive).name}\n")
    return index


# ------------------------------------------------------------------ reading a run back
@dataclass
class Run:
    """One side of a comparison: where it came from and its verified files."""

    label: str
    source: str  # "bundle" or "folder"
    root: Path  # the folder holding its results (audit/, metrics/); a temporary one for a bundle
    manifest: dict
    archive_sha256: str | None = None
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def table(self, name: str) -> pd.DataFrame:
        import pandas as pd
        path = self.root / _rel(layout.TABLES[name].union_path())
        if not path.exists():
            return pd.DataFrame(columns=list(layout.TABLES[name].columns))
        return pd.read_parquet(path)

    def audit_table(self, key: str) -> pd.DataFrame:
        import pandas as pd
        return pd.read_parquet(self.root / _rel(layout.AUDIT[key]))

    def close(self):
        if self._tmp is not None:
            self._tmp.cleanup()


NEEDED = [layout.AUDIT["claims_parquet"], layout.AUDIT["sensitivity_parquet"]]  # plus METRICS'


def needed_files() -> list[str]:
    """The files of a run the comparison reads besides its manifest (rule comparison's inputs)."""
    return sorted(set(NEEDED + [layout.TABLES[m.table].union_path() for m in METRICS]))


def results_root(path) -> Path | None:
    """The results folder of a run at ``path``: the folder itself or its ``results/``."""
    path = Path(path)
    for cand in (path, path / layout.RESULTS):
        if (cand / _rel(layout.AUDIT["manifest"])).is_file():
            return cand
    return None


def open_run(path, label: str | None = None) -> Run:
    """A run from a bundle (a file) or a results folder, every file the comparison reads
    verified: a bundle against its own checksum file (if beside it) and member list, and both
    kinds against the run's manifest. Raises :class:`BundleError` naming what is wrong."""
    path = Path(path)
    label = label or str(path)
    if not path.exists():
        raise BundleError(f"compare_with: {path} does not exist: give the path of another run's "
                          f"bundle (results/bundle.tar.gz, made there by `snakemake bundle`) or "
                          f"of its results folder")
    if path.is_dir():
        return _open_folder(path, label)
    return _open_bundle(path, label)


def _check_against_manifest(root: Path, manifest: dict, what: str, files) -> None:
    listed = manifest.get("files", {})
    for f in files:
        rel = _rel(f)
        rec = listed.get(f)
        if rec is None:
            raise BundleError(f"{what}: its manifest does not list {f}: it was made by another "
                              f"version of this workflow, or is not one of its runs; make the "
                              f"bundle again with this workflow's `bundle` target")
        p = root / rel
        if not p.is_file():
            raise BundleError(f"{what}: {f} is missing: run the workflow there to the end "
                              f"(or make a new bundle) before comparing")
        if sha256(p) != rec["sha256"]:
            raise BundleError(f"{what}: {f} differs from what its manifest certifies (SHA-256): "
                              f"it was changed or damaged after the run; rerun that workflow "
                              f"(make repair) and compare again")


def _open_folder(path: Path, label: str) -> Run:
    root = results_root(path)
    if root is None:
        raise BundleError(f"compare_with: {path} is a folder without "
                          f"{_rel(layout.AUDIT['manifest'])} (nor results/"
                          f"{_rel(layout.AUDIT['manifest'])}): not a finished run of this "
                          f"workflow; run it there to the end first, or give its bundle")
    manifest = _load_manifest(root / _rel(layout.AUDIT["manifest"]), f"compare_with: {path}")
    _check_against_manifest(root, manifest, f"compare_with: {path}", needed_files())
    return Run(label=label, source="folder", root=root, manifest=manifest)


def _load_manifest(path: Path, what: str) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise BundleError(f"{what}: its manifest {path.name} cannot be read ({err}): the run is "
                          f"damaged; make its bundle again") from None
    if not isinstance(doc, dict) or not {"config", "files", "versions"} <= set(doc):
        raise BundleError(f"{what}: {path.name} is not a manifest of this workflow (no config, "
                          f"files and versions): give a bundle made by its `bundle` target")
    return doc


def _open_bundle(path: Path, label: str) -> Run:
    what = f"compare_with: {path}"
    digest = sha256(path)
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file():
        expected = sidecar.read_text().split()[:1]
        if expected != [digest]:
            raise BundleError(f"{what}: its SHA-256 {digest[:12]}… differs from the one in "
                              f"{sidecar.name} ({(expected or ['nothing'])[0][:12]}…): the "
                              f"archive is damaged or truncated; copy it again")
    tmp = tempfile.TemporaryDirectory(prefix="actflow-compare-")
    try:
        try:
            with tarfile.open(path, mode="r:gz") as tar:
                names = tar.getnames()
                if f"{ROOT}/{INDEX}" not in names:
                    raise BundleError(
                        f"{what}: not a bundle of this workflow (no {ROOT}/{INDEX} inside); "
                        f"make one with `snakemake --cores 1 bundle` in the other run's folder")
                tar.extractall(tmp.name, filter="data")
        except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as err:
            raise BundleError(f"{what}: cannot be read as a gzip tar archive ({err}): it is "
                              f"damaged, truncated or not a bundle; copy it again or make a new "
                              f"one with the `bundle` target") from None
        root = Path(tmp.name) / ROOT
        try:
            index = json.loads((root / INDEX).read_text())
        except ValueError as err:
            raise BundleError(f"{what}: its {INDEX} cannot be read ({err}): the bundle is "
                              f"damaged; make it again") from None
        if index.get("format") != FORMAT:
            raise BundleError(f"{what}: not a bundle of this workflow ({INDEX} has format "
                              f"{index.get('format')!r}, expected {FORMAT!r})")
        if index.get("version") != VERSION:
            raise BundleError(f"{what}: bundle format version {index.get('version')!r}, this "
                              f"workflow reads version {VERSION}: make the bundle again with "
                              f"this version of the workflow")
        for rel, rec in sorted(index.get("files", {}).items()):
            p = root / rel
            if not p.is_file() or sha256(p) != rec.get("sha256"):
                raise BundleError(f"{what}: member {rel} is missing or differs from the SHA-256 "
                                  f"its {INDEX} lists: the bundle is damaged; make it again")
        manifest = _load_manifest(root / _rel(layout.AUDIT["manifest"]), what)
        _check_against_manifest(root, manifest, what, needed_files())
    except BaseException:
        tmp.cleanup()
        raise
    return Run(label=label, source="bundle", root=root, manifest=manifest,
               archive_sha256=digest, _tmp=tmp)


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


def _interval(v: np.ndarray):
    import numpy as np
    from .stats import t_halfwidth

    n = len(v)
    if n == 0:
        return np.nan, np.nan, np.nan
    m = float(np.mean(v))
    h = float(t_halfwidth(np.std(v, ddof=1) if n > 1 else np.nan, n))
    return m, m - h, m + h


def _welch(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of Welch's t-test (scipy.stats.ttest_ind, unequal variances); exact
    cases (no spread on either side, where the statistic is undefined) decided by equality."""
    import numpy as np
    from scipy.stats import ttest_ind

    if len(a) < 2 or len(b) < 2:
        return np.nan
    if np.var(a) == 0 and np.var(b) == 0:
        return 1.0 if np.mean(a) == np.mean(b) else 0.0
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
                m, lo, hi = _interval(fin)
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


def _fmt_num(x) -> str:
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
                   f"[{_fmt_num(ra['ci_low_a'])}, {_fmt_num(ra['ci_high_a'])}]" if in_a else ""),
               "measured_b": ra["measured_mean_b"], "ci_b": (
                   f"[{_fmt_num(ra['ci_low_b'])}, {_fmt_num(ra['ci_high_b'])}]" if in_b else ""),
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


def _cell(v) -> str:
    if isinstance(v, float):
        return _fmt_num(v)
    return str(v).replace("|", "\\|").replace("\n", " ")


def _md_table(df: pd.DataFrame, cols: list[str]) -> list[str]:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_cell(r[c]) for c in cols) + " |" for _, r in df.iterrows()]
    return out


def markdown(a: Run, b: Run, result: dict[str, pd.DataFrame]) -> str:
    import numpy as np
    met, cl, st = result["metrics"], result["claims"], result["settings"]
    lines = ["# Comparison of two runs", "",
             f"- **A** (this run) — {describe(a)}", f"- **B** — {describe(b)}", ""]
    changed = result_changing_differences(st)
    if len(changed):
        lines += ["**The two runs' configurations differ in settings that change results:** "
                  + "; ".join(f"`{r.setting}` {r.value_a} (A) vs {r.value_b} (B)"
                              for r in changed.itertuples())
                  + ". The differences below may come from these settings, not from the "
                  "machines.", ""]
    else:
        lines += ["The two runs' configurations agree in every setting that changes results "
                  "(see *Settings and machines*): the differences below are those of the machines, "
                  "versions and seeds.", ""]
    lines += [_seed_note(st), ""] if _seed_note(st) else []
    counts = met["status"].value_counts()
    ncl = cl[cl["status"] != "same"]
    lines += ["## Summary", "",
              f"- Claims: {int((cl['status'] == 'same').sum())} of {len(cl)} verdicts (the study's "
              f"setting and every variant) are the same in both runs; {len(ncl)} differ or exist "
              "in one run only.",
              "- Summary metrics: " + ", ".join(f"{int(counts.get(s, 0))} {s}" for s in STATUSES
                                               if counts.get(s, 0)) + f" (of {len(met)} rows).",
              "", "**How agreement is decided.** For each metric, variant, activation (and "
              "definition or target) the seed values of both runs are compared by Welch's "
              "two-sample t-test (on the log10 scale for losses and MSEs); the p-values are "
              f"Holm-corrected over all {int(met['p_holm'].notna().sum())} tested rows, and a row "
              f"*differs* when its corrected p-value is below {ALPHA}, that is when the difference "
              "is larger than the seed spread of the two runs allows at a family-wise level of "
              f"{ALPHA:.0%}. *Identical*: the same seeds with bit-identical values. A row whose "
              "runs diverged in one run and not in the other differs too. Intervals are 95 % "
              "t-intervals over seeds."]
    tested = met["p_value"].notna() & (met["status"] != "identical")
    if tested.any():
        raw = int((met.loc[tested, "p_value"] < ALPHA).sum())
        lines += ["", f"Without the correction, {raw} of {int(tested.sum())} tested rows have "
                  f"p < {ALPHA} (about {ALPHA * tested.sum():.1f} would by chance if both runs "
                  "drew from one distribution)."]
    lines += ["", "## Claims whose verdicts differ", ""]
    if len(ncl):
        lines += _md_table(ncl, ["claim", "variant", "verdict_a", "verdict_b", "measured_a",
                                 "ci_a", "measured_b", "ci_b", "status"])
    else:
        lines += ["None: every claim has the same verdict in both runs."]
    lines += ["", "## Metrics that differ beyond the seed spread", ""]
    bad = met[met["status"].isin(["differ"])]
    cols = ["metric", "variant", "activation", "detail", "mean_a", "ci_low_a", "ci_high_a",
            "mean_b", "ci_low_b", "ci_high_b", "p_holm"]
    lines += _md_table(bad, cols) if len(bad) else ["None."]
    lines += ["", "## Settings and machines", "",
              "Differences are marked **≠**; settings that change results come first.", ""]
    view = st.assign(mark=np.where(st["differs"], "**≠**", ""),
                     changes=np.where(st["changes_results"], "yes", ""))
    lines += _md_table(view[view["differs"] | (view["section"] == "machine")],
                       ["mark", "section", "setting", "value_a", "value_b", "changes"])
    lines += ["", f"({int((~st['differs'] & (st['section'] == 'config')).sum())} further config "
              "settings are equal; every row is in comparison_settings.parquet.)",
              "", "## Every claim", ""]
    lines += _md_table(cl, ["claim", "variant", "verdict_a", "verdict_b", "status"])
    lines += ["", "## Every metric of the study's setting", "",
              "(Variants' rows: comparison.parquet.)", ""]
    study = met[met["variant"].isin(list(layout.EXPERIMENT_KINDS))]
    lines += _md_table(study, ["metric", "variant", "activation", "detail", "n_a", "mean_a",
                               "n_b", "mean_b", "p_holm", "status"])
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the figure
def plot(metrics: pd.DataFrame, a: Run, b: Run, out_png, dpi: int = 150) -> None:
    """Per metric, the study setting's rows: both runs' means with 95 % intervals side by side,
    rows that differ beyond the seed spread marked."""
    import numpy as np
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    study = metrics[metrics["variant"].isin(list(layout.EXPERIMENT_KINDS))]
    names = [m for m in METRICS if (study["metric"] == m.name).any()]
    ncols = 2
    nrows = max(1, -(-len(names) // ncols))
    heights = []
    for i in range(nrows):
        heights.append(max(3, max(int((study["metric"] == m.name).sum())
                                  for m in names[i * ncols:(i + 1) * ncols]) if names else 3))
    fig, axes = plt.subplots(nrows, ncols, figsize=(14, 1.0 + 0.28 * sum(heights) + nrows),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    colours = {"A": "#1f77b4", "B": "#ff7f0e"}
    for ax, m in zip(axes.flat, names):
        d = study[study["metric"] == m.name].reset_index(drop=True)
        labels = [f"{r.variant} · {r.activation}" + (f" · {r.detail.split('=', 1)[1]}"
                                                     if r.detail else "")
                  for r in d.itertuples()]
        y = np.arange(len(d))
        for side, off in (("a", -0.17), ("b", 0.17)):
            mean = d[f"mean_{side}"].to_numpy(float)
            lo, hi = d[f"ci_low_{side}"].to_numpy(float), d[f"ci_high_{side}"].to_numpy(float)
            err = np.vstack([np.where(np.isfinite(lo), mean - lo, 0),
                             np.where(np.isfinite(hi), hi - mean, 0)])
            run = a if side == "a" else b
            ax.errorbar(mean, y + off, xerr=err, fmt="o", ms=4, capsize=2, lw=1,
                        color=colours[side.upper()],
                        label=f"{side.upper()}: {Path(run.label).name} ({_short(run)})")
        for i, r in d.iterrows():
            if r["status"] == "differ":
                ax.axhspan(i - 0.45, i + 0.45, color="#d62728", alpha=0.15, lw=0)
        ax.set_yticks(y, [("≠ " if s == "differ" else "") + lbl
                          for lbl, s in zip(labels, d["status"])], fontsize=7)
        for tick, s in zip(ax.get_yticklabels(), d["status"]):
            if s == "differ":
                tick.set_color("#d62728")
        ax.invert_yaxis()
        if m.log:
            ax.set_xscale("log")
        ax.set_title(m.label, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    n_diff = int((metrics["status"] == "differ").sum())
    fig.suptitle(
        f"Run A ({_short(a)}) against run B ({_short(b)}): means and 95 % intervals over seeds, "
        f"the study's setting\n≠ (red): differs beyond the seed spread (Welch, Holm-corrected, "
        f"{ALPHA:.0%}); over every variant {n_diff} of {len(metrics)} rows differ",
        fontsize=10)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(out_png, dpi=dpi, format="png")
    plt.close(fig)


def _short(run: Run) -> str:
    m = run.manifest
    return f"{', '.join(m.get('training_devices') or ['?'])}, {m.get('cpu')}"


def write(a_path, b_path, out: dict[str, str], dpi: int = 150, label_b: str | None = None):
    """Open both runs, compare them and write ``out`` (keys: those of
    :data:`actflow.layout.COMPARISON` without the ``comparison_`` prefix). Nothing is written unless both runs open and verify."""
    from . import io

    a = open_run(a_path, label="this run")
    try:
        b = open_run(b_path, label=label_b or str(b_path))
        try:
            result = compare(a, b)
            text = markdown(a, b, result)
            for key, name in (("parquet", "metrics"), ("claims", "claims"),
                              ("settings", "settings")):
                io.write_parquet(result[name], out[key])
            with io.atomic_path(out["markdown"]) as tmp:
                tmp.write_text(text)
            with io.atomic_path(out["html"]) as tmp:
                tmp.write_text(html_page(a, b, result))
            with io.atomic_path(out["png"]) as tmp:
                plot(result["metrics"], a, b, tmp, dpi=dpi)
        finally:
            b.close()
    finally:
        a.close()
    return result


def check(path) -> str:
    """Open and verify a run (at Snakefile parse time): the file the DAG should watch."""
    run = open_run(path)
    try:
        if run.source == "bundle":
            return str(path)
        return str(results_root(path) / _rel(layout.AUDIT["manifest"]))
    finally:
        run.close()



def html_page(a: Run, b: Run, result: dict[str, pd.DataFrame]) -> str:
    """The comparison for the HTML report: the same sections as the Markdown, as tables."""
    import numpy as np
    import html as _html

    met, cl, st = result["metrics"], result["claims"], result["settings"]
    esc = _html.escape
    changed = result_changing_differences(st)
    parts = [f"<p><b>A</b> (this run): {esc(describe(a))}<br><b>B</b>: {esc(describe(b))}</p>"]
    if len(changed):
        parts.append("<p style='color:#b00'><b>The configurations differ in settings that change "
                     "results:</b> " + esc("; ".join(f"{r.setting} {r.value_a} (A) vs "
                                                     f"{r.value_b} (B)"
                                                     for r in changed.itertuples()))
                     + ". Differences below may come from them, not from the machines.</p>")
    else:
        parts.append("<p>The configurations agree in every setting that changes results.</p>")
    if _seed_note(st):
        parts.append(f"<p>{esc(_seed_note(st))}</p>")
    counts = met["status"].value_counts()
    parts.append(f"<p>Claims: {int((cl['status'] == 'same').sum())} of {len(cl)} verdicts the "
                 f"same. Summary metrics: " + esc(", ".join(
                     f"{int(counts.get(s, 0))} {s}" for s in STATUSES if counts.get(s, 0)))
                 + f" (Welch's t-test on the seed values, Holm-corrected, family-wise "
                 f"{ALPHA:.0%}).</p>")

    def table(df, cols, title):
        body = df[cols].to_html(index=False, escape=True, na_rep="—", float_format=_fmt_num,
                                border=0)
        return f"<h2>{esc(title)}</h2>" + body

    parts.append(table(cl[cl["status"] != "same"], ["claim", "variant", "verdict_a", "verdict_b",
                                                    "measured_a", "ci_a", "measured_b", "ci_b"],
                       "Claims whose verdicts differ") if (cl["status"] != "same").any()
                 else "<h2>Claims whose verdicts differ</h2><p>None.</p>")
    bad = met[met["status"] == "differ"]
    parts.append(table(bad, ["metric", "variant", "activation", "detail", "mean_a", "ci_low_a",
                             "ci_high_a", "mean_b", "ci_low_b", "ci_high_b", "p_holm"],
                       "Metrics that differ beyond the seed spread") if len(bad)
                 else "<h2>Metrics that differ beyond the seed spread</h2><p>None.</p>")
    view = st[st["differs"] | (st["section"] == "machine")].assign(
        differs=lambda d: np.where(d["differs"], "≠", ""),
        changes_results=lambda d: np.where(d["changes_results"], "yes", ""))
    parts.append(table(view, ["differs", "section", "setting", "value_a", "value_b",
                              "changes_results"], "Settings and machines"))
    parts.append(table(cl, ["claim", "variant", "verdict_a", "verdict_b", "status"],
                       "Every claim"))
    return render.page("Comparison with another run", "".join(parts))
