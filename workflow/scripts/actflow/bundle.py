"""A run packed for another person, and a run read back: the bundle.

- :func:`make_bundle` packs a run's files into one gzip tar archive: the tables a comparison
  reads, every summary table, the claim verdicts and the manifest (config, versions, device,
  CPU, commit), with ``actflow-bundle/bundle.json`` first (format, version, every member's
  SHA-256 and size) and a SHA-256 file beside the archive;
- :func:`open_run` reads a run back from a bundle or a results folder, refusing anything it
  cannot verify: a damaged or foreign archive, a member whose hash differs from the bundle's
  list, a file whose hash differs from the run's own manifest.

What is compared, and how, is :mod:`actflow.compare`; no Snakemake here (the rules ``bundle``
and ``comparison`` call these through :mod:`actflow.jobs`).
"""

from __future__ import annotations

import gzip
import io as _io
import json
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import layout
from .io import sha256

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "actflow-bundle"  # the format name in every bundle's bundle.json
VERSION = 1
ROOT = "actflow-bundle"  # the folder every member lives under inside the archive
INDEX = "bundle.json"


class BundleError(ValueError):
    """A bundle or results folder that cannot be compared with: names the problem and the fix."""


# ------------------------------------------------------------------ making a bundle
def under_results(path: str) -> str:
    """A path under results/ as the path inside a bundle or a results folder."""
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
        members[under_results(f)] = {"sha256": sha256(f), "bytes": Path(f).stat().st_size}
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
                    tar.addfile(info(under_results(f), members[under_results(f)]["bytes"]), fh)
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
        path = self.root / under_results(layout.TABLES[name].union_path())
        if not path.exists():
            return pd.DataFrame(columns=list(layout.TABLES[name].columns))
        return pd.read_parquet(path)

    def audit_table(self, key: str) -> pd.DataFrame:
        import pandas as pd
        return pd.read_parquet(self.root / under_results(layout.AUDIT[key]))

    def close(self):
        if self._tmp is not None:
            self._tmp.cleanup()


def results_root(path) -> Path | None:
    """The results folder of a run at ``path``: the folder itself or its ``results/``."""
    path = Path(path)
    for cand in (path, path / layout.RESULTS):
        if (cand / under_results(layout.AUDIT["manifest"])).is_file():
            return cand
    return None


def open_run(path, label: str | None = None, verify=()) -> Run:
    """A run from a bundle (a file) or a results folder, verified: a bundle against its own
    checksum file (if beside it) and member list, and both kinds against the run's manifest
    for each file of ``verify`` (paths under results/: what the caller will read). Raises
    :class:`BundleError` naming what is wrong."""
    path = Path(path)
    label = label or str(path)
    if not path.exists():
        raise BundleError(f"compare_with: {path} does not exist: give the path of another run's "
                          f"bundle (results/bundle.tar.gz, made there by `snakemake bundle`) or "
                          f"of its results folder")
    if path.is_dir():
        return _open_folder(path, label, verify)
    return _open_bundle(path, label, verify)


def _check_against_manifest(root: Path, manifest: dict, what: str, files) -> None:
    listed = manifest.get("files", {})
    for f in files:
        rel = under_results(f)
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


def _open_folder(path: Path, label: str, verify) -> Run:
    root = results_root(path)
    if root is None:
        raise BundleError(f"compare_with: {path} is a folder without "
                          f"{under_results(layout.AUDIT['manifest'])} (nor results/"
                          f"{under_results(layout.AUDIT['manifest'])}): not a finished run of this "
                          f"workflow; run it there to the end first, or give its bundle")
    manifest = _load_manifest(root / under_results(layout.AUDIT["manifest"]), f"compare_with: {path}")
    _check_against_manifest(root, manifest, f"compare_with: {path}", verify)
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


def _open_bundle(path: Path, label: str, verify) -> Run:
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
        manifest = _load_manifest(root / under_results(layout.AUDIT["manifest"]), what)
        _check_against_manifest(root, manifest, what, verify)
    except BaseException:
        tmp.cleanup()
        raise
    return Run(label=label, source="bundle", root=root, manifest=manifest,
               archive_sha256=digest, _tmp=tmp)
