"""A warm worker: the jobs of a local run skip Python's library imports (torch alone costs a job
1.4 s), without changing what any job computes or how Snakemake caches it.

When a local run starts (the Snakefile's ``onstart``), a server process imports the heavy
third-party libraries its jobs need once and listens on a Unix socket in ``.snakemake/``:
:data:`COMMON` always, and per conda environment of the rules whose jobs will run here
(:data:`BY_ENV`: torch for ``torch.yaml``, matplotlib and seaborn for ``plot.yaml``). A run of
fewer than :data:`MIN_JOBS` such jobs starts no server: importing everything first would cost
its one job more than it saves (a single figure job: 6.3 s warm against 4.2 s cold, measured).
Each job still runs as Snakemake starts it: its script calls a function of :mod:`actflow.jobs`,
which is wrapped by :func:`job`; the wrapper sends the call (JSON: function name, arguments,
working directory, environment, log file) to the server, which forks a child that already has
the libraries imported. The child imports this package fresh (so a code change is always seen,
and the job logs exactly the package modules it loaded), runs the function, appends to the
job's log and answers. The script waits for the answer and fails if the job failed. The server
kills a child whose script went away (Ctrl-C, a killed run), and exits when Snakemake does.

Nothing changes where the server is not running (SLURM jobs, ``--sdm conda``,
``ACTFLOW_WARM=0``, a run of one job, a failed start): the wrapper then runs the function in
the script's own process. Results are byte-identical either way (a test checks it). Snakemake's
benchmark files then measure the script's wall time, which is the job's, but the script's
memory, not the job's: each warm job logs its own peak memory.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

SOCKET_ENV = "ACTFLOW_WARM_SOCKET"  # set by the run for its jobs while a server runs
HOST_ENV = "ACTFLOW_WARM_HOST"  # the machine it runs on: jobs elsewhere (a cluster) never use it
DISABLE_ENV = "ACTFLOW_WARM"  # "0": never start a server
# What the server imports: COMMON for every run, and per conda environment (the file name in
# workflow/envs/) of the local jobs that will run; a test checks that each module's package is
# pinned in that environment.
COMMON = ("numpy", "pandas", "pyarrow", "pyarrow.parquet", "scipy.special", "yaml", "jsonschema")
BY_ENV = {
    "torch.yaml": ("torch", "torch.nn.functional", "safetensors.torch", "safetensors.numpy"),
    "plot.yaml": ("matplotlib", "matplotlib.pyplot", "seaborn"),
}
MIN_JOBS = 2  # local jobs of a run below which no server starts
IN_WORKER = False  # True inside a forked job process: the wrapper runs the function itself


# ------------------------------------------------------------------ the client side (a job)
def _log_file() -> str | None:
    import logging

    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler):
            return h.baseFilename
    return None


def job(fn):
    """Run ``fn`` in the warm worker when one serves this run, else here."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        path = os.environ.get(SOCKET_ENV)
        if IN_WORKER or not path or os.environ.get("SLURM_JOB_ID") \
                or os.environ.get(HOST_ENV) != socket.gethostname():
            return fn(*args, **kwargs)  # cold: no server, or a job the cluster placed
        try:
            request = json.dumps({"module": fn.__module__, "name": fn.__name__, "args": args,
                                  "kwargs": kwargs, "cwd": os.getcwd(), "env": dict(os.environ),
                                  "log": _log_file()})
        except TypeError:  # an argument JSON cannot carry: run here
            return fn(*args, **kwargs)
        try:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(path)
        except OSError:  # no server (it was stopped, or never started): run here
            return fn(*args, **kwargs)
        with conn:
            conn.sendall(request.encode() + b"\n")
            answer = conn.makefile("rb").readline()
        result = json.loads(answer) if answer else {"ok": False, "error": "the warm worker "
                                                    "closed the connection without an answer"}
        from . import io

        io._logged.append(1)  # the job process logged the modules it loaded
        if not result["ok"]:
            raise RuntimeError(f"the job failed in the warm worker: {result['error']} (the "
                               "traceback is in the job's log)")
        return None

    return run


def preload(envs) -> list[str]:
    """The modules to import, in order, for local jobs whose rules use the conda environments
    ``envs`` (one entry per job; None for a job without one): [] when no server is worth
    starting."""
    envs = [e for e in envs if e is not None]
    if len(envs) < MIN_JOBS:
        return []
    # the environment of most jobs first: the server loads one library at a time (see serve)
    order = sorted(set(envs), key=lambda e: (-envs.count(e), e))
    return list(COMMON) + [m for env in order for m in BY_ENV.get(env, ())]


# ------------------------------------------------------------------ the server
def _child(conn: socket.socket, request: dict) -> None:
    """In the forked job process: run the requested function, answer, exit."""
    code, answer = 0, {"ok": True}
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.pop(SOCKET_ENV, None)
        os.environ.pop(HOST_ENV, None)
        import importlib

        import actflow.warm  # the package's module (this file runs as __main__ in the server)

        actflow.warm.IN_WORKER = True
        from actflow import io

        if request["log"]:
            fd = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            io.setup_logging(request["log"], mode="a", log_modules=False)
        fn = getattr(importlib.import_module(request["module"]), request["name"])
        fn(*request["args"], **request["kwargs"])
    except BaseException as err:  # noqa: BLE001 - everything is reported to the job
        import logging
        import traceback

        logging.getLogger("actflow").error("job failed in the warm worker:\n%s",
                                           traceback.format_exc())
        code, answer = 1, {"ok": False, "error": f"{type(err).__name__}: {err}"}
    finally:
        try:
            import logging
            import resource

            from actflow import io

            io.log_modules()
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            logging.getLogger("actflow").info("ran in the warm worker; peak memory of the job "
                                              "process %.0f MB", peak)
            logging.shutdown()
        except Exception:  # noqa: BLE001
            pass
        try:
            conn.sendall(json.dumps(answer).encode() + b"\n")
        except OSError:
            pass
        os._exit(code)


def _die_with_parent() -> None:
    """Ask Linux to end this process when the process that started it ends (SIGKILL of the run
    included); elsewhere the loop's parent check does it within half a second."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve(path: str, parent: int, modules: list[str]) -> None:
    """Import :data:`COMMON`, open the socket, then import the other ``modules`` one at a time
    between requests: the run's first jobs (data, tables) are served while torch and matplotlib
    still load, and a job that arrives during an import waits for that one import only."""
    import importlib
    import selectors

    _die_with_parent()
    t0, loaded, pending = time.monotonic(), [], list(modules)

    def load_next() -> None:
        name = pending.pop(0)
        try:
            module = importlib.import_module(name)
            loaded.append(name)
            if name == "matplotlib":  # before pyplot: no display, as in every job
                module.use("Agg")
        except ImportError:  # the job imports it itself (and fails there, naming it)
            pass
        if not pending:
            print(f"preloaded {' '.join(loaded)} in {time.monotonic() - t0:.1f} s", flush=True)

    while pending and pending[0] in COMMON:
        load_next()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = f"{path}.{os.getpid()}"
    Path(tmp).unlink(missing_ok=True)
    old = os.umask(0o077)
    listener.bind(tmp)
    os.umask(old)
    listener.listen(64)
    os.replace(tmp, path)  # the socket appears complete: clients may connect
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    children: dict[int, socket.socket] = {}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        while not stop and os.getppid() == parent:
            for key, _ in sel.select(timeout=0 if pending else 0.5):
                if key.data is None:
                    conn, _ = listener.accept()
                    line = conn.makefile("rb").readline()
                    if not line:
                        conn.close()
                        continue
                    pid = os.fork()
                    if pid == 0:
                        listener.close()
                        _child(conn, json.loads(line))
                    children[pid] = conn
                    sel.register(conn, selectors.EVENT_READ, pid)
                else:  # the job's script closed its end: it was stopped, so stop its job
                    try:
                        gone = not key.fileobj.recv(1)
                    except OSError:
                        gone = True
                    if gone:
                        sel.unregister(key.fileobj)
                        try:
                            os.kill(key.data, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
            while children:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                conn = children.pop(pid)
                if os.WIFSIGNALED(status):
                    try:
                        conn.sendall(json.dumps({"ok": False, "error": "the job process was "
                                                 f"killed by signal {os.WTERMSIG(status)}"})
                                     .encode() + b"\n")
                    except OSError:
                        pass
                try:
                    sel.unregister(conn)
                except (KeyError, ValueError):
                    pass
                conn.close()
            if pending:  # nothing waiting: the next library
                load_next()
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        Path(path).unlink(missing_ok=True)


# ------------------------------------------------------------------ the run's side
def start(path, log_path, scripts_dir, envs, timeout: float = 30.0):
    """Start a server for this run's local jobs, whose rules use the conda environments
    ``envs`` (see :func:`preload`); returns the process, or None (the jobs then run cold)."""
    import subprocess

    modules = preload(envs)
    if os.environ.get(DISABLE_ENV, "1") == "0" or not modules:
        return None
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(scripts_dir)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    env.pop(SOCKET_ENV, None)
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "actflow.warm", "serve", str(path),
                                 str(os.getpid()), ",".join(modules)], env=env, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.exists():
            os.environ[SOCKET_ENV] = str(path)
            os.environ[HOST_ENV] = socket.gethostname()
            return proc
        if proc.poll() is not None:
            return None
        time.sleep(0.05)
    proc.kill()
    return None


def stop(proc) -> None:
    os.environ.pop(SOCKET_ENV, None)
    os.environ.pop(HOST_ENV, None)
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except Exception:  # noqa: BLE001
        proc.kill()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4].split(","))
    else:
        raise SystemExit("usage: python -m actflow.warm serve SOCKET PARENT_PID MODULE,...")
