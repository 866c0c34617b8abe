"""Guards around a run: nothing finished is lost to a failed rerun, nothing damaged is read.

The Snakefile calls these from its ``onstart``, ``onsuccess`` and ``onerror`` handlers (which
run in the main Snakemake process, once, before and after all jobs) and when it parses:

- :func:`check_output_dirs`: a path where the workflow needs a folder (``results``,
  ``results/logs/metrics``, ...) is a file: one line naming it, before any job.
- :func:`edited`: certified results changed after the job that wrote them (a hand edit): the
  run sets them aside (:func:`set_aside`) as it starts, so that their jobs rebuild them, and
  the manifest refuses to certify one.
- :func:`tampered`: certified results whose size and modification time are what the manifest
  recorded but whose content is not (a bit flipped, mtime kept): the run stops before any job
  reads them.
- :func:`stale_temporaries`: temporary files a killed job left in ``results/``, removed before
  the next run's first job.
- :func:`missing`: after a failed run, the certified results that are gone. Snakemake deletes a
  job's old outputs before it reruns it, and the workflow does not put them back behind
  Snakemake's back (that would need its private metadata store): what could fail is checked
  before any job (the config, the memory, damaged inputs), and the rest is named at the end of
  the failed run with the command that rebuilds it (``make repair``: the manifest's config).
- :func:`running_snakemake`: Snakemake processes working in a folder (``make resume`` refuses
  to remove the lock while one runs).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import layout

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


def recorded(root=".") -> dict[str, tuple[str, str]]:
    """What the jobs' logs record of the outputs they wrote (io.record_outputs): path ->
    (its SHA-256 as the job wrote it, the log that records it)."""
    from .io import recorded_outputs

    root = Path(root)
    logs = root / layout.RESULTS / "logs"
    records = {}
    for log in sorted(logs.rglob("*.log")) if logs.is_dir() else ():
        for path, digest in recorded_outputs(log).items():
            records[path] = (digest, log.relative_to(root).as_posix())
    return records


def edited(root=".", manifest_path=None) -> dict[str, str]:
    """Certified results changed since the job that wrote them (edited by hand, truncated,
    copied over): no longer the content that job's log records (io.record_outputs). A file
    with the size and modification time the manifest certified is not hashed (a change that
    kept them is :func:`tampered`'s). Path -> the log that records it."""
    from .io import sha256

    root = Path(root)
    records = recorded(root)
    try:
        certified = json.loads(Path(root / manifest_path).read_text())["files"] \
            if manifest_path else {}
    except (OSError, ValueError, KeyError):
        certified = {}
    out = {}
    for rel in certified_files(root):
        rec = records.get(rel)
        if rec is None:
            continue
        st, man = (root / rel).stat(), certified.get(rel, {})
        if st.st_size == man.get("bytes") and st.st_mtime_ns == man.get("mtime_ns"):
            continue
        if sha256(root / rel) != rec[0]:
            out[rel] = rec[1]
    return out


def set_aside(root, paths, folder) -> dict[str, str]:
    """Move ``paths`` (relative to ``root``) under ``folder``, keeping their relative paths
    (an earlier copy there is replaced): the run then rebuilds them. Path -> where it went."""
    root, moved = Path(root), {}
    for rel in paths:
        dest = Path(folder) / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(root / rel, dest)
        moved[rel] = dest.as_posix()
    return moved


def missing(root, manifest_path) -> list[str]:
    """Results the manifest certified that are not on disk now (after a failed run: the old
    outputs that Snakemake deleted before it reran their jobs)."""
    try:
        files = json.loads(Path(manifest_path).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return []
    root = Path(root)
    return sorted(f for f in files if not (root / f).exists())


def stale_temporaries(root=".") -> list[str]:
    """Temporary files that a killed job left beside its outputs (io.atomic_path names them
    ``.<name>.<random>.tmp``): a run removes them before its first job."""
    results = Path(root) / layout.RESULTS
    if not results.is_dir():
        return []
    return sorted(str(p) for p in results.rglob(".*.tmp") if p.is_file())


def tampered(paths, manifest_path) -> list[str]:
    """Of ``paths`` (default: every certified result), those whose size and modification time
    are the manifest's but whose SHA-256 is not: changed by something other than a job (a job's
    write changes the time)."""
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
