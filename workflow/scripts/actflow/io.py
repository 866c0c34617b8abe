"""Parquet tables and weights files: atomic writes, provenance metadata, checked reads.

Every file is written to a temporary name in the target folder and renamed into place, so a
final path never holds a half-written file. A table's key-value metadata carries the resolved
settings of the job and the versions of the packages that wrote it (no timestamps: reruns are
byte-identical). A weights file (safetensors: loading never runs code) carries what it is:
experiment, activation, target, seeds and training settings; a reader states what it expects
and a file that is something else is refused.
"""

from __future__ import annotations

import atexit
import errno
import functools
import json
import os
import platform
import sys
import secrets
from contextlib import contextmanager
from pathlib import Path

# pandas and pyarrow are imported inside the functions: every job's script imports this module,
# and a job that writes no table should not pay for them.

META_KEY = b"actflow"


class DamagedFileError(RuntimeError):
    pass


# What to do about a damaged or foreign result (make repair: actflow.audit.repair).
REPAIR = ("Run `make repair`: it deletes every result that differs from the manifest and "
          "rebuilds it and what depends on it (without make: delete the file, then run snakemake "
          "with the file as a target, then snakemake).")


VERSIONED = ("numpy", "pandas", "pyarrow", "scipy", "torch", "matplotlib", "safetensors")


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Python and the installed versions of the packages the jobs use: the same list for every
    table, whether a job imported them or not (so that a file does not depend on what else the
    process had loaded)."""
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for pkg in VERSIONED:
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return versions


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str = "cpu") -> str:
    """What ran a job, for the tables that report a time: the GPU's name on a CUDA device,
    else the CPU model and its core count."""
    if str(device).startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return f"{cpu_model()} ({os.cpu_count()} cores)"


def sha256(path) -> str:
    """SHA-256 of a file, read in 1 MB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # a new name: O_EXCL, and the usual mode (0666 less the umask)
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(df: pd.DataFrame, path, config: dict | None = None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[META_KEY] = json.dumps(
        {"config": config or {}, "versions": package_versions()}, sort_keys=True, default=str
    ).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_parquet(path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a table, failing with a message naming the file and the fix if it is damaged."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        df = pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException) as err:
        raise DamagedFileError(
            f"{path} is not a readable Parquet file ({err}). It was probably truncated or "
            f"corrupted. {REPAIR}"
        ) from err
    if columns is not None:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise DamagedFileError(
                f"{path} lacks the columns {missing}; it was written by another version of the "
                f"workflow or damaged. {REPAIR}"
            )
    return df


def read_metadata(path) -> dict:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(META_KEY, b"{}"))


def concat_parquet(paths, columns=None) -> pd.DataFrame:
    import pandas as pd

    return pd.concat([read_parquet(p, columns) for p in paths], ignore_index=True)


class OutputMismatchError(RuntimeError):
    pass


def write_tables(frames: dict[str, pd.DataFrame], out: dict, config: dict | None = None) -> None:
    """Write each named table to its declared output path. The names a job produces must be
    exactly the outputs its rule declares (both derive from actflow.layout): a table without a
    path, or a path without a table, is an error in the code, named here before anything is
    written."""
    made, declared = set(frames), set(out)
    if made != declared:
        raise OutputMismatchError(
            f"the job made the tables {sorted(made)} but its rule declares {sorted(declared)}: "
            f"not declared: {sorted(made - declared)}, not made: {sorted(declared - made)}")
    for name, frame in frames.items():
        write_parquet(frame, out[name], config)


# ------------------------------------------------------------------ weights
WEIGHTS_META_KEY = "actflow"


def save_weights(path, init: dict, final: dict, meta: dict) -> None:
    """Initial and final stacked weights of one training job, with what they are in the
    metadata (one JSON entry: safetensors writes its metadata map in no fixed order, so several
    keys would make reruns differ byte-wise)."""
    from safetensors.torch import save

    tensors = {f"init.{k}": v for k, v in init.items()}
    tensors |= {f"final.{k}": v for k, v in final.items()}
    # the bytes save_file would write, into the file atomic_path made with the usual mode:
    # save_file makes its own file, readable by its owner only (0600), which a collaborator
    # or another account reading the run on a shared machine could not open
    data = save(tensors, metadata={WEIGHTS_META_KEY: json.dumps(meta, sort_keys=True)})
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def _mismatches(meta: dict, expect: dict, prefix: str = "") -> list[str]:
    out = []
    for key, want in expect.items():
        have = meta.get(key, "<absent>")
        if isinstance(want, dict) and isinstance(have, dict):
            out += _mismatches(have, want, f"{prefix}{key}.")
        elif have != want:
            out.append(f"{prefix}{key}: the file holds {have!r}, the job expects {want!r}")
    return out


def load_weights(path, expect: dict | None = None) -> tuple[dict, dict, dict]:
    """(init, final, metadata) from a weights file; safetensors never unpickles. ``expect``
    maps metadata keys (nested for ``hyper``) to the values the reading job needs; a file that
    holds anything else (weights of another experiment, activation, depth or seed list copied
    over this path) is refused, naming both."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(WEIGHTS_META_KEY, "{}"))
    except (SafetensorError, OSError, ValueError) as err:
        raise DamagedFileError(
            f"{path} is not a readable weights file ({err}). {REPAIR}"
        ) from err
    wrong = _mismatches(meta, expect or {})
    if wrong:
        raise DamagedFileError(
            f"{path} holds weights of another job ({'; '.join(wrong)}): it was copied or left "
            f"over from another configuration. {REPAIR}")
    init = {k[5:]: v for k, v in tensors.items() if k.startswith("init.")}
    final = {k[6:]: v for k, v in tensors.items() if k.startswith("final.")}
    return init, final, meta


def setup_logging(path=None, mode="w", log_modules=True, outputs=()) -> None:
    """Log to the job's ``log:`` file (or stderr); an uncaught error is logged there too, and,
    at the job's end, the package modules it loaded (``log_modules``) and, if it succeeded,
    the SHA-256 of each of its ``outputs`` as it wrote them (:data:`OUTPUT_LINE`: what the
    manifest and the next run compare a result with, to find one edited by hand since).

    As the job's process exits, the garbage collector's objects are frozen (``gc.freeze``,
    after the handlers below, before logging's own, which flushes and closes the log): the
    interpreter's teardown then skips the collections that would walk the millions of objects
    torch and matplotlib built (on a 2-core AMD EPYC, 0.4 s of a torch job's 1.5 s of start
    and exit, 0.2 s of a figure job's 0.9 s; bench/run.py measures it). Only the exit
    changes: the job's results and log are complete by then, and a failed job exits with its
    status as before.

    While the job works, the cyclic garbage collector is off (``gc.disable``); reference
    counting still frees every object that is not part of a reference cycle. A job is one
    short process, and the collector's passes over the objects that torch's, pandas' and
    matplotlib's imports build (each pass walks all of them again) cost 0.15–0.5 s of every
    job (bench/run.py measures the start both ways). Training makes no cyclic garbage at all
    (tests/test_train.py), and over the whole default run the jobs' peak memory in their
    benchmark files moved by under ±90 MB either way with the collector off (median 0 %).
    Call this first in a job, before the imports of its work."""
    import gc
    import logging

    gc.disable()
    atexit.register(gc.freeze)  # first registered, so it runs after the handlers below

    if path and mode == "w":
        open(path, "w").close()  # truncate, then append
    handlers = [logging.FileHandler(path, mode="a")] if path else [logging.StreamHandler(sys.stderr)]
    logging.basicConfig(
        level=logging.INFO, handlers=handlers, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.captureWarnings(True)
    # matplotlib's PDF backend subsets fonts with fontTools, which logs ~100 INFO lines per
    # figure: only its warnings belong in a job's log
    logging.getLogger("fontTools").setLevel(logging.WARNING)

    def log_uncaught(kind, value, tb):
        _failed.append(kind)
        logging.getLogger("actflow").error("job failed", exc_info=(kind, value, tb))
        if isinstance(value, OSError) and value.errno == errno.ENOSPC:
            print(disk_full_message(value), file=sys.stderr)  # one line, not a traceback
            return
        sys.__excepthook__(kind, value, tb)

    sys.excepthook = log_uncaught
    if log_modules:
        _START_MODULES.update(sys.modules)
        atexit.register(log_modules_once)
    if outputs:
        atexit.register(record_outputs, [str(o) for o in outputs])


OUTPUT_LINE = "output written:"  # then "<path> sha256=<hex>", one line per output of a job
_failed: list = []  # an uncaught error in this job (setup_logging's hook)


def record_outputs(paths) -> None:
    """At a successful job's end: the SHA-256 of each output it wrote, in its log."""
    import logging

    if _failed:
        return
    for p in paths:
        if os.path.isfile(p):
            logging.getLogger("actflow").info("%s %s sha256=%s", OUTPUT_LINE, p, sha256(p))


def recorded_outputs(log_path) -> dict[str, str]:
    """The outputs a job's log records (:func:`record_outputs`): path -> SHA-256."""
    out = {}
    with open(log_path, errors="replace") as fh:
        for line in fh:
            if OUTPUT_LINE in line:
                path, _, digest = line.split(OUTPUT_LINE, 1)[1].strip().rpartition(" sha256=")
                out[path] = digest
    return out


def disk_full_message(err: OSError) -> str:
    """What a job says when the disk is full: io.atomic_path left no file at a final path."""
    where = err.filename or "its output"
    return (f"No space left on the device while writing {where}: this job's outputs are not "
            f"written (no partial file is left at a final path). Free space (df -h "
            f"{os.path.dirname(os.path.abspath(str(where))) if err.filename else '.'}), then "
            "run again; make verify lists what is missing, make repair rebuilds it.")


MODULES_LINE = "package modules this job loaded:"
PACKAGES_LINE = "third-party modules this job imported:"  # top-level names; third_party() maps them
_logged = []
_START_MODULES: set[str] = set()  # what the job's process had loaded when its script began


def log_modules_once():
    if not _logged:
        log_modules()


def log_modules():
    """At the job's end: which of the package's modules it loaded (a test compares them with the
    code inputs its rule declares)."""
    import logging

    loaded = sorted(m.split(".", 1)[1] for m in sys.modules if m.startswith("actflow."))
    logging.getLogger("actflow").info("%s %s", MODULES_LINE, " ".join(loaded))
    if _START_MODULES:  # a job's own process (not a test calling a job function)
        # module names, not distributions: mapping them (importlib.metadata) costs a job 0.5 s
        tops = {m.split(".", 1)[0] for m in set(sys.modules) - _START_MODULES}
        logging.getLogger("actflow").info("%s %s", PACKAGES_LINE, " ".join(sorted(
            t for t in tops - set(sys.stdlib_module_names) - {"actflow"}
            if not t.startswith("_"))))
    _logged.append(1)


def third_party(modules) -> list[str]:
    """The distributions (pip names, lower case) that provide ``modules``, the standard library
    and this package left out: what a job needs in its conda environment."""
    import importlib.metadata as md

    owners = md.packages_distributions()
    tops = {m.split(".", 1)[0] for m in modules} - set(sys.stdlib_module_names) - {"actflow"}
    return sorted({d.lower() for t in tops for d in owners.get(t, []) if not t.startswith("_")})
