"""Provenance manifest and re-execution of sampled training jobs (pandas/pyarrow; torch only
when re-training)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from . import io, layout

GPU_RTOL = 1e-3  # re-execution tolerance on a GPU (relative, on every number of the tables)


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _git(basedir) -> dict:
    def run(*args):
        return subprocess.run(["git", *args], cwd=basedir, capture_output=True, text=True,
                              timeout=30)
    try:
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None, "note": "not a git checkout"}
        status = run("status", "--porcelain", "--untracked-files=no")
        return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError) as err:
        return {"commit": None, "dirty": None, "note": f"git unavailable: {err}"}


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("snakemake", "torch", "numpy", "pandas", "pyarrow", "scipy", "matplotlib",
                "seaborn", "safetensors"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def manifest(files, config: dict, basedir, out_json, out_config) -> dict:
    """Hash every output file; record config, versions, device, platform, CPU and git state."""
    devices = set()
    for f in files:
        if Path(f).name == layout.TRAIN_FILES["runs"] and str(f).startswith(f"{layout.RESULTS}/train/"):
            devices |= set(io.read_parquet(f)["device"].unique())
    cuda = None
    if any(d.startswith("cuda") for d in devices):
        import torch

        cuda = {"version": torch.version.cuda,
                "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}
    cfg_text = json.dumps(config, sort_keys=True)
    doc = {
        "config": config,
        "config_sha256": hashlib.sha256(cfg_text.encode()).hexdigest(),
        "versions": _versions(),
        "training_devices": sorted(devices),
        "cuda": cuda,
        "platform": platform.platform(),
        "cpu": _cpu(),
        "cpu_count": os.cpu_count(),
        "git": _git(basedir),
        "files": {str(f): {"sha256": sha256(f), "bytes": os.path.getsize(f)} for f in sorted(files)},
    }
    with io.atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    with io.atomic_path(out_config) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=True))
    return doc


def training_jobs(manifest_doc) -> list[str]:
    """Folders of the training jobs listed in a manifest."""
    weights = layout.TRAIN_FILES["weights"]
    return sorted({str(Path(f).parent) for f in manifest_doc["files"]
                   if Path(f).name == weights})


def _compare(ref, new, exact: bool) -> str | None:
    """None if equal; otherwise what differs."""
    if exact and sha256(ref) == sha256(new):
        return None
    if str(ref).endswith(".parquet"):
        a, b = io.read_parquet(ref), io.read_parquet(new)
        if list(a.columns) != list(b.columns) or len(a) != len(b):
            return "columns or row count differ"
        for col in a.columns:
            if pd.api.types.is_float_dtype(a[col]):
                x, y = a[col].to_numpy(), b[col].to_numpy()
                if exact and not np.array_equal(x, y, equal_nan=True):
                    return f"column {col}: max abs difference {np.nanmax(np.abs(x - y)):.3g}"
                if not exact and not np.allclose(x, y, rtol=GPU_RTOL, atol=0, equal_nan=True):
                    return f"column {col}: beyond rtol {GPU_RTOL}"
            elif not a[col].equals(b[col]):
                return f"column {col} differs"
        return None if not exact else "same values, different bytes (metadata)"
    (i1, f1, _), (i2, f2, _) = io.load_weights(ref), io.load_weights(new)
    for key in f1:
        x, y = f1[key].double().numpy(), f2[key].double().numpy()
        ok = np.array_equal(x, y, equal_nan=True) if exact else np.allclose(
            x, y, rtol=GPU_RTOL, atol=1e-6, equal_nan=True)
        if not ok:
            return f"weights {key} differ"
    return None if not exact else "same weights, different bytes"


def reexecute(manifest_path, scratch, sample: int, seed: int, out_table, out_md, threads=1):
    """Retrain ``sample`` training jobs of the manifest in ``scratch`` and compare their files
    with the manifest's hashes (exact on the CPU, within GPU_RTOL on a GPU). Never writes
    under the original paths."""
    from . import jobs

    doc = json.loads(Path(manifest_path).read_text())
    folders = training_jobs(doc)
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(folders, size=min(sample, len(folders)), replace=False).tolist())
    scratch = Path(scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    rows = []
    for folder in chosen:
        files = {name: Path(folder) / f for name, f in layout.TRAIN_FILES.items()}
        meta = io.read_metadata(files["loss"])["config"]
        _, _, wmeta = io.load_weights(files["weights"])
        keys = {k: wmeta[k] for k in ("experiment", "activation", "target") if k in wmeta}
        dest = scratch / folder
        out = {name: str(dest / f) for name, f in layout.TRAIN_FILES.items()}
        jobs.train_job(meta["data"], out, keys, meta["seeds"], meta["hp"], meta["device"], threads,
                       log_every=meta["log_every"], config=meta, compile=meta.get("compile", False))
        runs = io.read_parquet(files["runs"])
        exact = not runs["device"].astype(str).str.startswith("cuda").any()
        for name, f in layout.TRAIN_FILES.items():
            ref = files[name]
            recorded = doc["files"].get(str(ref))
            new = Path(out[name])
            if recorded is None or not ref.exists() or sha256(ref) != recorded["sha256"]:
                verdict, detail = "mismatch", "the file in results/ no longer matches the manifest"
            else:
                diff = _compare(ref, new, exact)
                verdict, detail = ("match", "byte-identical" if exact else f"within rtol {GPU_RTOL}") \
                    if diff is None else ("mismatch", diff)
            rows.append({"job": folder, "file": f, "mode": "exact" if exact else "tolerance",
                         "verdict": verdict, "detail": detail})
    shutil.rmtree(scratch, ignore_errors=True)
    table = pd.DataFrame(rows, columns=["job", "file", "mode", "verdict", "detail"])
    io.write_parquet(table, out_table, {"sample": sample, "seed": seed})
    bad = table[table["verdict"] != "match"]
    lines = ["# Re-execution audit", "",
             f"{len(chosen)} of {len(folders)} training jobs retrained in a scratch folder and "
             f"compared with `results/audit/manifest.json`.", "",
             "| job | file | mode | verdict | detail |", "|---|---|---|---|---|"]
    lines += [f"| {r.job} | {r.file} | {r.mode} | **{r.verdict}** | {r.detail} |"
              for r in table.itertuples()]
    lines += ["", f"{len(bad)} mismatch(es)." if len(bad) else "Every file matches."]
    with io.atomic_path(out_md) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return table
