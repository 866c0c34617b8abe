"""Parquet and weight files: atomic writes, provenance metadata, checked reads.

Every table is written to a temporary name in the target folder and renamed
into place, so a final path never holds a half-written file.  The file's
key-value metadata carries the resolved config of the job and the versions of
the packages that wrote it (no timestamps: reruns are byte-identical).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

META_KEY = b"actflow"
_UMASK = os.umask(0)
os.umask(_UMASK)


class DamagedFileError(RuntimeError):
    pass


def package_versions() -> dict[str, str]:
    import numpy

    versions = {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
    }
    for mod in ("torch", "matplotlib", "seaborn", "scipy"):
        if mod in sys.modules:
            versions[mod] = sys.modules[mod].__version__
    return versions


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(df: pd.DataFrame, path, config: dict | None = None) -> None:
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
    try:
        df = pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException) as err:
        raise DamagedFileError(
            f"{path} is not a readable Parquet file ({err}). It was probably truncated or "
            f"corrupted: delete it and rerun the workflow; Snakemake rebuilds it."
        ) from err
    if columns is not None:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise DamagedFileError(
                f"{path} lacks the columns {missing}; it was written by another version of the "
                f"workflow or damaged: delete it and rerun the workflow."
            )
    return df


def read_metadata(path) -> dict:
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(META_KEY, b"{}"))


def concat_parquet(paths, columns=None) -> pd.DataFrame:
    return pd.concat([read_parquet(p, columns) for p in paths], ignore_index=True)


def setup_logging(path=None) -> None:
    """Log to the job's ``log:`` file (or stderr); an uncaught error is logged there too."""
    import logging

    handlers = [logging.FileHandler(path, mode="w")] if path else [logging.StreamHandler(sys.stderr)]
    logging.basicConfig(
        level=logging.INFO, handlers=handlers, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.captureWarnings(True)

    def log_uncaught(kind, value, tb):
        logging.getLogger("actflow").error("job failed", exc_info=(kind, value, tb))
        sys.__excepthook__(kind, value, tb)

    sys.excepthook = log_uncaught
