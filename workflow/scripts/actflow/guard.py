"""Guards around a run: nothing finished is lost to a failed rerun, nothing damaged is read.

The Snakefile calls these from its ``onstart``, ``onsuccess`` and ``onerror`` handlers (which
run in the main Snakemake process, once, before and after all jobs) and when it parses:

- :func:`check_output_dirs`: a path where the workflow needs a folder (``results``,
  ``results/logs/metrics``, ...) is a file: one line naming it, before any job.
- :func:`backup` / :func:`restore` / :func:`discard_backup`: before any job runs, every finished
  result under ``results/`` is hard-linked into ``.snakemake/actflow-backup/`` (no copy, no
  time), with Snakemake's metadata record of each. Snakemake deletes a job's old outputs before
  it reruns it; if the run fails, every result that is now missing is put back, byte-identical,
  with its old modification time and metadata, so the next run sees exactly the state before
  the failed one (and reruns what the config asks for again). Snakemake's own ``update()`` flag
  restores outputs too, but records the failed job's new settings as theirs, so a later run
  with the same failing settings would take the old results for new ones.
- :func:`tampered`: inputs of the jobs about to run whose size and modification time are what
  the manifest certified but whose content is not (a bit flipped, mtime kept): the run stops
  before any job reads them.
- :func:`running_snakemake`: Snakemake processes working in a folder (``make resume`` refuses
  to remove the lock while one runs).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from . import layout

BACKUP = Path(".snakemake") / "actflow-backup"


class GuardError(RuntimeError):
    pass


def check_output_dirs(paths) -> None:
    """Every folder that the outputs in ``paths`` need must be a folder if it exists (a path
    ending in ``/`` is itself such a folder)."""
    seen = set()
    for p in paths:
        parent = Path(p) if str(p).endswith("/") else Path(p).parent
        while str(parent) not in ("", ".") and parent not in seen:
            seen.add(parent)
            if parent.exists() and not parent.is_dir():
                raise GuardError(
                    f"{parent} is a file, but the workflow writes into a folder of that name: "
                    f"move or delete the file (mv {parent} {parent}.bak), then run again")
            parent = parent.parent


def certified_files(root: Path):
    """Files under results/ that are outputs of the DAG (not logs, benchmarks, the manifest)."""
    results = root / layout.RESULTS
    if not results.is_dir():
        return
    for p in sorted(results.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not p.is_symlink() and not rel.startswith(layout.UNCERTIFIED_DIRS) \
                and rel not in layout.UNCERTIFIED_FILES and "/." not in rel:
            yield rel


def _record(persistence, kind: str, rel: str) -> Path | None:
    """Where Snakemake's file persistence keeps the metadata record (kind ``metadata``) or the
    incomplete marker (``incomplete``) of an output; None for another persistence backend."""
    base = getattr(persistence, f"_{kind}_path", None)
    if base is None or not hasattr(persistence, "_record_path"):
        return None
    return Path(persistence._record_path(base, rel))


def backup(root=".", persistence=None) -> int:
    """Hard-link every finished result (and its metadata record) into the backup folder."""
    root = Path(root)
    dest = root / BACKUP
    shutil.rmtree(dest, ignore_errors=True)  # a left-over of a killed run: superseded
    index = {}
    # the manifest's own files too: a failed manifest job (it refuses a file that does not read
    # back) then leaves the previous manifest, not none
    own = [f for f in layout.MANIFEST_OUTPUTS if (root / f).is_file()]
    for rel in [*certified_files(Path(root)), *own]:
        target = dest / "files" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(root / rel, target)
        except OSError:  # another file system, or no hard links: a copy keeps the content
            shutil.copy2(root / rel, target)
        meta = _record(persistence, "metadata", rel)
        has_meta = meta is not None and meta.exists()
        if has_meta:
            shutil.copy2(meta, dest / "files" / (rel + ".snakemake-record"))
        index[rel] = has_meta
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "index.json").write_text(json.dumps(index))
    return len(index)


def restore(root=".", persistence=None) -> list[str]:
    """Put back every backed-up result that is missing now, with its metadata record; the
    results that jobs of this run rewrote stay as they are. Returns the restored paths."""
    root = Path(root)
    dest = root / BACKUP
    index_file = dest / "index.json"
    if not index_file.exists():
        return []
    restored = []
    for rel, has_meta in json.loads(index_file.read_text()).items():
        path = root / rel
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        os.link(dest / "files" / rel, path) if _same_fs(dest, path.parent) \
            else shutil.copy2(dest / "files" / rel, path)
        meta = _record(persistence, "metadata", rel)
        if meta is not None and has_meta:
            meta.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dest / "files" / (rel + ".snakemake-record"), meta)
        marker = _record(persistence, "incomplete", rel)
        if marker is not None and marker.exists():
            marker.unlink()
        restored.append(rel)
    return restored


def _same_fs(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def discard_backup(root=".") -> None:
    shutil.rmtree(Path(root) / BACKUP, ignore_errors=True)


def tampered(paths, manifest_path) -> list[str]:
    """Of ``paths``, those whose size and modification time are the manifest's but whose
    SHA-256 is not: changed by something other than a job (a job's write changes the time)."""
    from .io import sha256

    try:
        files = json.loads(Path(manifest_path).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return []
    bad = []
    for p in sorted(set(map(str, paths))):
        rec = files.get(p)
        if rec is None or "mtime_ns" not in rec or not os.path.exists(p):
            continue
        st = os.stat(p)
        if st.st_size == rec["bytes"] and st.st_mtime_ns == rec["mtime_ns"] \
                and sha256(p) != rec["sha256"]:
            bad.append(p)
    return bad


def running_snakemake(folder) -> list[int]:
    """PIDs of Snakemake processes whose working directory is ``folder`` (Linux /proc; an
    empty list where /proc is not available)."""
    folder = os.path.realpath(folder)
    me = os.getpid()
    pids = []
    proc = Path("/proc")
    if not proc.is_dir():
        return pids
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = os.path.realpath(entry / "cwd")
        except OSError:
            continue
        words = [os.path.basename(c.decode(errors="replace")) for c in cmd[:3]]
        if cwd == folder and any(w == "snakemake" or w.startswith("snakemake ") for w in words):
            pids.append(int(entry.name))
    return sorted(pids)


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Checks before `make resume`.")
    ap.add_argument("--no-running-snakemake", metavar="FOLDER",
                    help="fail, naming the PIDs, if a Snakemake process works in FOLDER")
    a = ap.parse_args(argv)
    if a.no_running_snakemake:
        pids = running_snakemake(a.no_running_snakemake)
        if pids:
            print(f"a Snakemake run is still active in {os.path.realpath(a.no_running_snakemake)} "
                  f"(PID {', '.join(map(str, pids))}): its lock is not stale. Wait for it to end "
                  f"(or stop it: kill {pids[0]}), then run make resume again.")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
