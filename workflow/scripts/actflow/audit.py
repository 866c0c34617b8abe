"""Provenance manifest and re-execution of sampled training jobs (pandas/pyarrow; torch only
when re-training)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from . import io, layout, render
from .io import sha256

GPU_RTOL = 1e-3  # re-execution tolerance on a GPU (relative, on every number of the tables)


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


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("snakemake", *io.VERSIONED):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def _png_problem(path) -> str | None:
    """A PNG decodes when its signature, every chunk's CRC and the compressed image data are
    intact (checked without an imaging library, which the torch environment lacks)."""
    import struct
    import zlib

    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "not a PNG image"
    pos, idat, ended = 8, [], False
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = data[pos + 8 + length:pos + 12 + length]
        if len(body) != length or len(crc) != 4 or zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            return f"PNG chunk {kind!r} is truncated or corrupted"
        if kind == b"IDAT":
            idat.append(body)
        ended = kind == b"IEND"
        pos += 12 + length
        if ended:
            break
    if not ended or not idat:
        return "PNG image is truncated (no image end)"
    try:
        zlib.decompress(b"".join(idat))
    except zlib.error as err:
        return f"PNG image data does not decompress ({err})"
    return None


def unreadable(path) -> str | None:
    """Why ``path`` cannot be read back as what its name says, or None if it can. A Parquet
    table must open and read, a PNG decode, a PDF be complete, a weights file load, a text file
    be non-empty UTF-8."""
    path = Path(path)
    if path.stat().st_size == 0:
        return "empty file"
    suffix = path.suffix
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.read_table(path)
        elif suffix == ".png":
            return _png_problem(path)
        elif suffix == ".pdf":
            data = path.read_bytes()
            if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-1024:]:
                return "not a complete PDF (no %PDF- header or %%EOF trailer)"
        elif suffix == ".safetensors":
            from safetensors.numpy import load_file

            load_file(str(path))
        elif suffix in (".md", ".html", ".yaml", ".json", ".tsv", ".txt"):
            path.read_text(encoding="utf-8")
    except Exception as err:  # noqa: BLE001 - any failure to read back is the answer
        return f"{type(err).__name__}: {err}"
    return None


class UncertifiableError(RuntimeError):
    pass


def manifest(files, config: dict, basedir, out_json, out_config) -> dict:
    """Hash every output file; record config, versions, device, platform, CPU and git state.
    A file that is not what its job wrote, or cannot be read back as what it is (see
    :func:`unreadable`), is not certified: the job fails naming it.

    A file with the SHA-256 its job's log records holds the bytes that job wrote, and is not
    decoded again (decoding every table was 9 of this job's 11 s in the default run); every
    other file is decoded."""
    from .guard import recorded

    files = [str(f) for f in files]
    digests = {f: sha256(f) for f in files}
    records = recorded(".")
    bad = {}
    for f in files:
        digest, log = records.get(f, (None, None))
        if digest == digests[f] and os.path.getsize(f):
            continue
        if why := unreadable(f):
            bad[f] = why
        elif log is not None:
            bad[f] = (f"changed since its job wrote it ({log} records another SHA-256): edited "
                      "by hand or copied over")
    if bad:
        raise UncertifiableError(
            "refusing to certify files that are not what their jobs wrote or do not read back: "
            + "; ".join(f"{f}: {why}" for f, why in sorted(bad.items()))
            + ". Delete them and run the workflow again (make repair).")
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
        "cpu": io.cpu_model(),
        "cpu_count": os.cpu_count(),
        "git": _git(basedir),
        "files": {f: {"sha256": digests[f], "bytes": os.path.getsize(f),
                           "mtime_ns": os.stat(f).st_mtime_ns} for f in sorted(files)},
    }
    with io.atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    with io.atomic_path(out_config) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=True))
    return doc


def manifest_html(doc: dict) -> str:
    """The manifest, readable: where and how the run ran, then every certified file."""
    import html

    esc = html.escape
    git = doc.get("git") or {}
    cuda = doc.get("cuda") or {}
    about = [("training devices", ", ".join(doc.get("training_devices") or [])),
             ("CUDA", f"{cuda.get('version')} on {', '.join(cuda.get('devices', []))}"
              if cuda else "—"),
             ("CPU", f"{doc.get('cpu')} × {doc.get('cpu_count')}"),
             ("platform", doc.get("platform")),
             ("git commit", f"{git.get('commit') or git.get('note', '—')}"
                            + (" (uncommitted changes)" if git.get("dirty") else "")),
             ("config SHA-256", doc.get("config_sha256"))]
    about += [(f"version of {k}", v) for k, v in sorted((doc.get("versions") or {}).items())]
    rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in about)
    files = doc.get("files", {})
    total = sum(r["bytes"] for r in files.values())
    frows = "".join(f"<tr><td>{esc(f)}</td><td>{r['bytes']:,}</td><td>{r['sha256']}</td></tr>"
                    for f, r in sorted(files.items()))
    body = (f"<table>{rows}</table><h2>{len(files)} certified files ({total / 1e6:,.1f} MB)</h2>"
            "<p>SHA-256 of every output of the workflow (logs and benchmarks, which hold "
            "timestamps, aside). <code>make verify</code> checks them.</p>"
            f"<table><tr><th>file</th><th>bytes</th><th>SHA-256</th></tr>{frows}</table>")
    return render.page("Provenance manifest", body)


def config_html(config: dict) -> str:
    """The resolved configuration as YAML, readable."""
    import html

    text = yaml.safe_dump(config, sort_keys=True)
    return render.page("Resolved configuration", f"<pre>{html.escape(text)}</pre>")


def _on_disk(root: Path) -> set[str]:
    from .guard import certified_files

    return set(certified_files(root))


def verify(manifest_path=layout.AUDIT["manifest"], root=".") -> dict:
    """Every output against the manifest: ``missing`` (listed, not on disk), ``changed`` (size
    or SHA-256 differs), ``unlisted`` (on disk under results/, not in the manifest; logs and benchmarks aside) and
    ``ok`` (their count). Like ``dvc status``: it rebuilds nothing."""
    root = Path(root)
    doc = _manifest(root, manifest_path)
    files = doc["files"]
    missing, changed, ok = [], [], 0
    for rel, rec in sorted(files.items()):
        path = root / rel
        if not path.exists():
            missing.append(rel)
        elif path.stat().st_size != rec["bytes"] or sha256(path) != rec["sha256"]:
            changed.append(rel)
        else:
            ok += 1
    unlisted = sorted(_on_disk(root) - set(files))
    gone = _gone_variants(doc.get("config", {}), unlisted)
    stale = [f for f in unlisted if _variant_folder(f) in gone]
    unlisted = [f for f in unlisted if f not in set(stale)]
    return {"missing": missing, "changed": changed, "unlisted": unlisted, "stale": stale,
            "stale_variants": sorted(gone), "ok": ok}


def _manifest(root: Path, manifest_path) -> dict:
    """The run's manifest; FileNotFoundError, in words, where there is no run or no manifest."""
    results = root / layout.RESULTS
    if results.exists() and not results.is_dir():
        raise FileNotFoundError(f"{layout.RESULTS} is a file, not the folder of a run: move it "
                                f"away (the workflow writes its results there), then run it")
    try:
        return json.loads((root / manifest_path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{manifest_path} does not exist: run the workflow first "
                                f"(make run) so that there is a manifest to verify against") from None


def _variant_folder(rel: str) -> str | None:
    """The variant (or experiment) folder of a per-variant output (results/<kind>/<name>/…)."""
    parts = Path(rel).parts
    return parts[2] if len(parts) > 3 and parts[1] in ("data", "train", "metrics") else None


def _gone_variants(config: dict, unlisted) -> set[str]:
    """Variant folders among ``unlisted`` files that name no variant of the manifest's config:
    outputs of variants removed from the config since (or of another config's run)."""
    from . import variants

    try:
        names = {v["name"] for v in variants.expand_entries(config.get("variants") or [])}
    except variants.VariantError:
        return set()
    names |= set(variants.STUDY) | {"study"}
    return {f for f in map(_variant_folder, unlisted) if f and f not in names}


def verify_report(result: dict) -> str:
    lines = [f"{result['ok']} file(s) match the manifest."]
    for key, what in (("missing", "listed in the manifest but missing"),
                      ("changed", "changed since the manifest certified them"),
                      ("unlisted", "not in the manifest (made by another run or copied in)"),
                      ("stale", "outputs of variants no longer in the config ("
                       + ", ".join(result.get("stale_variants", [])) + ")")):
        if result.get(key):
            lines.append(f"{len(result[key])} {what}:")
            lines += [f"  {key}: {f}" for f in result[key]]
    if result.get("stale"):
        lines.append("To delete the outputs of variants no longer in the config: make clean-stale")
    if result["missing"] or result["changed"]:
        lines.append("To rebuild the missing and changed files and what depends on them: make repair")
    return "\n".join(lines)


def clean_stale(manifest_path=layout.AUDIT["manifest"], root=".") -> list[str]:
    """Delete the outputs of variants no longer in the manifest's config (:func:`verify`'s
    ``stale``), with their emptied folders; returns what was deleted."""
    root = Path(root)
    doc = _manifest(root, manifest_path)
    unlisted = _on_disk(root) - set(doc["files"])  # no hashing: only what is not listed
    gone = _gone_variants(doc.get("config", {}), unlisted)
    stale = sorted(f for f in unlisted if _variant_folder(f) in gone)
    for rel in stale:
        (root / rel).unlink()
    for folder in sorted({(root / rel).parent for rel in stale}, key=lambda p: -len(p.parts)):
        while folder != root / layout.RESULTS and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    return stale


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
    (_, f1, _), (_, f2, _) = io.load_weights(ref), io.load_weights(new)
    for key in f1:
        x, y = f1[key].double().numpy(), f2[key].double().numpy()
        ok = np.array_equal(x, y, equal_nan=True) if exact else np.allclose(
            x, y, rtol=GPU_RTOL, atol=1e-6, equal_nan=True)
        if not ok:
            return f"weights {key} differ"
    return None if not exact else "same weights, different bytes"


def reexecute(manifest_path, scratch, sample: int, seed: int, out_table, out_md, retrain):
    """First verify every output against the manifest (:func:`verify`); then retrain ``sample``
    training jobs of the manifest in ``scratch`` (``retrain(files, out)``: the job whose outputs
    are ``files`` again, writing ``out``; actflow.jobs.reexecute passes it) and compare their
    files with the manifest's hashes (exact on the CPU, within GPU_RTOL on a GPU). Never writes
    under the original paths."""
    doc = json.loads(Path(manifest_path).read_text())
    checked = verify(manifest_path)
    rows = [{"job": "(every output)", "file": f, "mode": "hash", "verdict": kind, "detail": what}
            for kind, what in (("missing", "listed in the manifest, not on disk"),
                               ("changed", "differs from the manifest's SHA-256 or size"))
            for f in checked[kind]]
    folders = training_jobs(doc)
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(folders, size=min(sample, len(folders)), replace=False).tolist())
    scratch = Path(scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    for folder in chosen:
        files = {name: Path(folder) / f for name, f in layout.TRAIN_FILES.items()}
        dest = scratch / folder
        out = {name: str(dest / f) for name, f in layout.TRAIN_FILES.items()}
        retrain(files, out)
        runs = io.read_parquet(files["runs"])
        exact = not runs["device"].astype(str).str.startswith("cuda").any()
        for name, f in layout.TRAIN_FILES.items():
            ref = files[name]
            recorded = doc["files"].get(str(ref))
            new = Path(out[name])
            if recorded is None or not ref.exists() or sha256(ref) != recorded["sha256"]:
                verdict, detail = "mismatch", "the file in results/ no longer matches the manifest"
            elif layout.is_timed(ref):  # wall-clock times: never the same twice
                same = list(io.read_parquet(ref).columns) == list(io.read_parquet(new).columns)
                verdict, detail = ("match", "a time measurement: its columns compared, not its "
                                   "values") if same else ("mismatch", "columns differ")
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
             f"Every output checked against `results/audit/manifest.json`: {checked['ok']} match, "
             f"{len(checked['missing'])} missing, {len(checked['changed'])} changed"
             + (f", {len(checked['unlisted'])} unlisted (not certified: "
                f"{', '.join(checked['unlisted'])})" if checked["unlisted"] else "") + ".", "",
             f"{len(chosen)} of {len(folders)} training jobs retrained in a scratch folder and "
             f"compared with the manifest.", "",
             "| job | file | mode | verdict | detail |", "|---|---|---|---|---|"]
    lines += [f"| {r.job} | {r.file} | {r.mode} | **{r.verdict}** | {r.detail} |"
              for r in table.itertuples()]
    lines += ["", f"{len(bad)} mismatch(es)." if len(bad) else "Every file matches."]
    with io.atomic_path(out_md) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return table


def reexecution_verdict(table_path) -> str | None:
    """None when every row of the re-execution table (:func:`reexecute`) matches; else one
    line naming what differs, for the ``audit`` rule to fail with."""
    table = io.read_parquet(table_path)
    bad = table[table["verdict"] != "match"]
    if bad.empty:
        return None
    named = [f"{r.file} ({r.verdict})" if r.job == "(every output)"
             else f"{r.job}/{r.file} ({r.verdict} on retraining)" for r in bad.itertuples()]
    return (f"the re-execution audit failed: {len(bad)} file(s) differ from the manifest: "
            f"{'; '.join(named[:5])}{' …' if len(named) > 5 else ''}; the table: "
            f"{layout.AUDIT['reexecution_markdown']} (make verify, then make repair, restores "
            f"what changed)")


def repair(snakemake_bin: str, cores: str = "all", extra=()) -> int:
    """Delete the results that differ from the manifest, rebuild them and every missing one
    (as explicit targets: Snakemake does not rebuild a missing intermediate whose downstream
    files exist), then run the whole workflow, which reruns what depends on them."""
    import subprocess
    import tempfile

    import yaml

    try:
        result = verify()
    except FileNotFoundError as err:  # no manifest: what Snakemake itself finds to rebuild
        print(f"{err}; repairing without one: rebuilding what Snakemake finds missing or "
              f"incomplete")
        return subprocess.call([snakemake_bin, "--cores", cores, *extra])
    recorded = json.loads(Path(layout.AUDIT["manifest"]).read_text()).get("config")
    for rel in result["changed"]:
        Path(rel).unlink()
    targets = result["missing"] + result["changed"]
    print(verify_report(result))
    with tempfile.TemporaryDirectory() as tmp:
        options = ["--cores", cores, *extra]  # after the targets: --configfile takes several values
        if recorded:  # the run's own config, as the manifest recorded it, whatever was passed
            conf = Path(tmp) / "manifest-config.yaml"
            conf.write_text(yaml.safe_dump(recorded, sort_keys=False))
            options += ["--configfile", str(conf)]
            print("repairing with the config the manifest recorded (results/audit/config.yaml)")
        if targets:
            print(f"rebuilding {len(targets)} file(s), then everything that depends on them")
            code = subprocess.call([snakemake_bin, *targets, *options])
            if code:
                return code
        return subprocess.call([snakemake_bin, *options])


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m actflow.audit",
                                 description="Check results against the manifest, or repair them.")
    sub = ap.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="list missing, changed and unlisted results (make verify)")
    v.add_argument("--manifest", default=layout.AUDIT["manifest"])
    sub.add_parser("clean-stale", help="delete outputs of variants no longer in the config "
                                       "(make clean-stale)")
    r = sub.add_parser("repair", help="rebuild missing and changed results (make repair)")
    r.add_argument("--snakemake", default="snakemake")
    r.add_argument("--cores", default="all")
    r.add_argument("snakemake_args", nargs="*", help="after --: more arguments for Snakemake")
    a = ap.parse_args(argv)
    if a.command == "verify":
        try:
            result = verify(a.manifest)
        except FileNotFoundError as err:
            print(err)
            return 2
        print(verify_report(result))
        return 1 if (result["missing"] or result["changed"] or result["unlisted"]
                     or result["stale"]) else 0
    if a.command == "clean-stale":
        try:
            gone = clean_stale()
        except FileNotFoundError as err:
            print(err)
            return 2
        print(f"deleted {len(gone)} output(s) of variants no longer in the config"
              + "".join(f"\n  {f}" for f in gone))
        return 0
    return repair(a.snakemake, a.cores, a.snakemake_args)


if __name__ == "__main__":
    raise SystemExit(main())
