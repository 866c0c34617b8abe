"""Benchmark: the workflow's training and the whole workflow against a plain PyTorch script.

    .venv/bin/python bench/run.py [--quick]

Writes bench/results/<machine>.json and .md. Timings are wall-clock seconds, best of
``--repeats`` where repeated, measured side by side in one run on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import plain_baseline  # noqa: E402
from actflow import activations, data, layout, model, train  # noqa: E402

BIN = Path(sys.executable).parent


def paired(fa, fb, repeats):
    """Best wall time of fa and of fb, run alternately."""
    ta, tb = [], []
    for _ in range(repeats):
        for f, ts in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
    return min(ta), min(tb)


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def flops_per_run(hp: train.Hyper, n: int) -> float:
    """Multiply-adds ×2 of one epoch's forward and backward pass, times epochs."""
    w, L = hp.width, hp.hidden_layers
    fwd = 2 * n * (w + (L - 1) * w * w + w)
    # backward: weight gradients (same as forward) and input gradients (all but the first layer)
    bwd = 2 * n * (w + (L - 1) * w * w + w) + 2 * n * ((L - 1) * w * w + w)
    return (fwd + bwd) * hp.epochs


def machine() -> dict:
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    dev = "cpu"
    if torch.cuda.is_available():
        dev = torch.cuda.get_device_name(0)
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "device": dev}


def matmul_peak(repeats: int) -> float:
    a, b = torch.randn(200, 64), torch.randn(64, 64)
    n = 3000

    def run():
        for _ in range(n):
            torch.mm(a, b)
    return 2 * 200 * 64 * 64 * n / best(run, repeats) / 1e9


# What both probes below start with: the package, one training set, a warm-up (first calls pay
# one-off allocation and dispatch costs); each probe sets torch up in between.
PROBE_HEAD = """
import json, resource, sys, threading, time
sys.path.insert(0, {scripts!r})
import numpy as np, torch
from actflow import data, train
"""
PROBE_DATA = """
d = data.make_train_set("sin", 200, -np.pi, np.pi, 0.1, 2024)
x, y = d["x"].to_numpy()[:, None], d["y"].to_numpy()[:, None]
train.train(x, y, [0], "relu", train.Hyper(epochs=5), log_every=0)
"""
MEMORY_PROBE = PROBE_HEAD + """
torch.set_num_threads(1)
applied = train.keep_freed_memory() if {keep} else False
""" + PROBE_DATA + """
f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
train.train(x, y, list(range(5)), "relu", train.Hyper(epochs={epochs}), log_every=0)
print(json.dumps({{"seconds": time.perf_counter() - t0, "applied": applied, "faults_per_epoch":
                  (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / {epochs}}}))
"""


def memory_reuse(args) -> dict:
    """Training (5 ReLU seeds) in fresh processes with and without train.keep_freed_memory
    (glibc's malloc keeping freed blocks; a process-wide setting, hence the processes),
    alternating: minor page faults per epoch and the best time of each."""
    runs = {"kept": [], "default": []}
    for _ in range(args.repeats):
        for name, keep in (("kept", True), ("default", False)):
            code = MEMORY_PROBE.format(scripts=str(ROOT / "workflow/scripts"), keep=keep,
                                       epochs=args.epochs)
            out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                 text=True).stdout
            runs[name].append(json.loads(out.splitlines()[-1]))
    return {name: {"seconds": min(r["seconds"] for r in rs),
                   "faults_per_epoch": min(r["faults_per_epoch"] for r in rs),
                   "applied": rs[0]["applied"]} for name, rs in runs.items()}


PARALLEL_PROBE = PROBE_HEAD + """
train.setup_torch(1)
""" + PROBE_DATA + """
hp = train.Hyper(epochs={epochs})
job = lambda: train.train(x, y, list(range(5)), "relu", hp, log_every=0)
if {threads} == 1:
    while time.time() < {start}:
        time.sleep(0.001)
    t0 = time.time()
    job()
else:
    workers = [threading.Thread(target=job) for _ in range({threads})]
    t0 = time.time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
print(json.dumps({{"start": t0, "end": time.time()}}))
"""


def in_process(args, jobs: int = 2) -> dict:
    """Two training jobs' loops (5 ReLU seeds each, one torch thread each) at once: as two
    processes (how Snakemake runs ``script:`` jobs) and as two threads of one process (how it runs
    ``run:`` jobs under ``--force-use-threads``, the documented way to skip each job's imports),
    alternating, against one job alone; best of each. Threads share the interpreter's lock between
    torch's many small operations."""
    scripts = str(ROOT / "workflow/scripts")

    def probe(threads, start=0.0):
        code = PARALLEL_PROBE.format(scripts=scripts, epochs=args.epochs, threads=threads,
                                     start=start)
        return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)

    def span(procs):
        out = [json.loads(p.communicate()[0].splitlines()[-1]) for p in procs]
        return max(o["end"] for o in out) - min(o["start"] for o in out)

    alone, procs, threads = [], [], []
    for _ in range(args.repeats):
        alone.append(span([probe(1)]))
        start = time.time() + 6  # both processes have imported torch and warmed up by then
        procs.append(span([probe(1, start) for _ in range(jobs)]))
        threads.append(span([probe(jobs)]))
    one, p, t = min(alone), min(procs), min(threads)
    return {"jobs": jobs, "seconds_one_job": one, "seconds_processes": p, "seconds_threads": t,
            "speedup_processes": jobs * one / p, "speedup_threads": jobs * one / t}


def training(args) -> dict:
    train.setup_torch(1)  # what a training job does: one thread, freed memory kept for reuse
    d = data.make_train_set("sin", 200, -np.pi, np.pi, 0.1, 2024)
    x, y = d["x"].to_numpy()[:, None], d["y"].to_numpy()[:, None]
    hp = train.Hyper(epochs=args.epochs)
    xt, yt = plain_baseline.make_data("sin")
    # warm both paths up (first calls pay one-off allocation and dispatch costs)
    plain_baseline.train_one(xt, yt, "relu", 0, hp.hidden_layers, hp.width, 5, 1e-3)
    train.train(x, y, [0], "relu", train.Hyper(epochs=5), log_every=0)
    def plain_run():
        plain_baseline.train_one(xt, yt, "relu", 0, hp.hidden_layers, hp.width, hp.epochs, 1e-3)

    # The plain loop and the stacked training alternate (ABAB...), best of each: this machine's
    # speed drifts by tens of percent over minutes, and a ratio must compare like with like.
    out = {"epochs": hp.epochs, "throughput": []}
    plains = []
    for seeds in args.seeds:
        plain, t = paired(plain_run, lambda: train.train(x, y, list(range(seeds)), "relu", hp,
                                                         log_every=0), args.repeats)
        plains.append(plain)
        out["throughput"].append({
            "seeds": seeds, "seconds": t, "runs_per_second": seeds / t,
            "gflops": flops_per_run(hp, 200) * seeds / t / 1e9,
            "plain_seconds_per_run": plain, "speedup_vs_plain_loop": plain / (t / seeds)})
    plain = min(plains)
    out["plain_seconds_per_run"] = plain
    out["products_only"] = products_only(hp, plain_run, args)
    manual, auto = paired(
        lambda: train.train(x, y, list(range(5)), "relu", hp, log_every=0),
        lambda: train.train(x, y, list(range(5)), "relu", hp, log_every=0, grad_mode="autograd"),
        args.repeats)
    out["autograd"] = {"seeds": 5, "seconds_hand_written": manual, "seconds_autograd": auto,
                       "speedup_of_hand_written": auto / manual}
    rec, norec = paired(
        lambda: train.train(x, y, list(range(5)), "relu", hp, log_every=0),
        lambda: train.train(x, y, list(range(5)), "relu", hp, log_every=0, record=False),
        args.repeats)
    out["recording"] = {"seconds_with": rec, "seconds_without": norec,
                        "overhead": rec / norec - 1}
    # σ in place (Activation.inplace) against out of place, each activation that allows it
    out["in_place"] = []
    for name in [n for n in activations.ORDER if activations.get(n).inplace]:
        on, off = paired(
            lambda n=name: train.train(x, y, list(range(5)), n, hp, log_every=0),
            lambda n=name: train.train(x, y, list(range(5)), n, hp, log_every=0, in_place=False),
            args.repeats)
        out["in_place"].append({"activation": name, "seeds": 5, "seconds_in_place": on,
                                "seconds_out_of_place": off, "speedup": off / on})
    out["subnormals"] = subnormals(x, y, xt, yt, args)
    scaling = []
    for depth, width in [(2, 64), (5, 64), (10, 64), (20, 64), (10, 16), (10, 32), (10, 128)]:
        h = train.Hyper(hidden_layers=depth, width=width, epochs=max(50, args.epochs // 5))
        t = best(lambda: train.train(x, y, list(range(5)), "relu", h, log_every=0), 1)
        scaling.append({"hidden_layers": depth, "width": width, "seeds": 5, "epochs": h.epochs,
                        "seconds": t, "gflops": flops_per_run(h, 200) * 5 / t / 1e9})
    out["scaling"] = scaling
    out["memory_reuse"] = memory_reuse(args)
    out["in_process"] = in_process(args)
    return out


def subnormals(x, y, xt, yt, args, seeds: int = 5) -> dict:
    """Subnormal floats flushed to zero (``train.denormals_flushed``, the training epochs'
    default on the CPU) against kept, in Experiment 2's setting (10 Sigmoid layers, Adam at a
    learning rate of 0.1), whose saturated layers make subnormal gradients and moments: the
    stacked model, and the plain loop with ``torch.set_flush_denormal`` on and off."""
    hp = train.Hyper(epochs=args.epochs, learning_rate=0.1)

    def plain(flush):  # the same seeds, one after the other
        with train.denormals_flushed(flush):
            for seed in range(seeds):
                plain_baseline.train_one(xt, yt, "sigmoid", seed, hp.hidden_layers, hp.width,
                                         hp.epochs, hp.learning_rate)

    kept, flushed = paired(
        lambda: train.train(x, y, list(range(seeds)), "sigmoid", hp, log_every=0,
                            flush_denormals=False),
        lambda: train.train(x, y, list(range(seeds)), "sigmoid", hp, log_every=0),
        args.repeats)
    plain_kept, plain_flushed = paired(lambda: plain(False), lambda: plain(True),
                                       min(args.repeats, 3))
    return {"activation": "sigmoid", "hidden_layers": hp.hidden_layers,
            "learning_rate": hp.learning_rate, "seeds": seeds, "seconds_kept": kept,
            "seconds_flushed": flushed, "plain_seconds_per_run_kept": plain_kept / seeds,
            "plain_seconds_per_run_flushed": plain_flushed / seeds}


def products_only(hp, plain_run, args, seeds: int = 5, n: int = 200) -> dict:
    """The batched matrix products of stacked training alone (same shapes and count per epoch:
    the forward products, the weight gradients and the back-propagated deltas), alternating with
    the plain loop: an upper bound on what any stacked training can gain over the plain loop
    here, with every elementwise operation, norm and optimizer step free."""
    w, L = hp.width, hp.hidden_layers
    g = torch.Generator().manual_seed(0)
    x = torch.randn(seeds, n, 1, generator=g)
    hs = [torch.randn(seeds, n, w, generator=g) for _ in range(L)]
    W1, b1 = torch.randn(seeds, 1, w, generator=g), torch.randn(seeds, 1, w, generator=g)
    Wh = [torch.randn(seeds, w, w, generator=g) for _ in range(L - 1)]
    bh = torch.randn(seeds, 1, w, generator=g)
    Wo, bo = torch.randn(seeds, w, 1, generator=g), torch.randn(seeds, 1, 1, generator=g)

    grad_wo = torch.empty(seeds, w, 1)

    def products():  # the first and the output layer's as training computes them
        for _ in range(hp.epochs):
            model._affine(b1, x, W1)
            for i in range(L - 1):
                torch.baddbmm(bh, hs[i], Wh[i])
            out = model._affine(bo, hs[-1], Wo)
            delta = train._output_products(out, hs[-1], Wo, grad_wo)
            for i in range(L - 1, 0, -1):
                torch.bmm(hs[i - 1].transpose(1, 2), delta)
                torch.bmm(delta, Wh[i - 1].transpose(1, 2))
            torch.bmm(x.transpose(1, 2), delta)

    plain, t = paired(plain_run, products, args.repeats)
    return {"seeds": seeds, "seconds": t, "gflops": flops_per_run(hp, n) * seeds / t / 1e9,
            "plain_seconds_per_run": plain, "bound_vs_plain_loop": plain * seeds / t}


def job_start_cost(args) -> dict:
    """What every job pays besides its work: a Python process that imports what the job uses
    and exits. Each kind twice, alternating: as a plain Python process (the cyclic garbage
    collector on, Python's default exit), and as a job starts and ends (``io.setup_logging``
    first: the collector off while the job imports and works, its objects frozen at exit, so
    that the interpreter's teardown does not walk them)."""
    cmds = {"training job (torch, pandas, pyarrow)": "import actflow.jobs, actflow.train",
            "table job (pandas, pyarrow)": "import actflow.jobs, pandas, pyarrow.parquet",
            "figure job (matplotlib)": "import actflow.plotting, actflow.jobs"}
    out = {}
    for name, code in cmds.items():
        path = f"import sys; sys.path.insert(0, {str(ROOT / 'workflow/scripts')!r})"
        plain = [sys.executable, "-c", f"{path}; {code}"]
        job = [sys.executable, "-c",
               f"{path}; from actflow import io; io.setup_logging(log_modules=False); {code}"]
        default, as_job = paired(lambda: subprocess.run(plain, check=True),
                                 lambda: subprocess.run(job, check=True, stderr=subprocess.DEVNULL),
                                 max(3, args.repeats))
        out[name] = {"python_default": default, "as_a_job": as_job}
    return out


def job_resources(bench_files, bench_dir) -> dict:
    """Per kind of job (the benchmark folder: train, metrics, figures, data, audit), from
    Snakemake's benchmark file of each job: the jobs, the largest max RSS (MB) and the longest
    wall time (s). Each job is its own process, so these are the job's own: the SLURM profile's
    memory and runtime requests are sized from them (profiles/slurm/profile.yaml)."""
    out = {}
    for f in bench_files:
        head, row = f.read_text().splitlines()[:2]
        rec = dict(zip(head.split("\t"), row.split("\t")))
        kind = f.relative_to(bench_dir).parts[0]
        k = out.setdefault(kind, {"jobs": 0, "max_rss_mb": 0.0, "max_seconds": 0.0})
        k["jobs"] += 1
        k["max_rss_mb"] = max(k["max_rss_mb"], float(rec["max_rss"]) if rec["max_rss"] != "-" else 0)
        k["max_seconds"] = max(k["max_seconds"], float(rec["s"]))
    return out


def workflow(args) -> dict:
    """The whole default workflow (the study and every variant) from clean, against the plain
    script training the same runs; the study alone from clean, then the variants added on top
    of it (what the variants cost by themselves); no-op and figure-only reruns."""
    if args.workdir:
        tmp = Path(args.workdir).resolve()
        tmp.mkdir(parents=True, exist_ok=False)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="actflow-bench-"))
    try:
        def fresh(name):
            wf = tmp / name
            wf.mkdir()
            for part in layout.CLONE_PARTS:
                src = ROOT / part
                (shutil.copytree if src.is_dir() else shutil.copy2)(src, wf / part)
            return wf

        extra = []
        if args.quick:
            cfg = tmp / "quick.yaml"
            ep = {"epochs": args.epochs}
            cfg.write_text(json.dumps({"seeds": list(range(args.workflow_seeds)), "exp1": ep,
                                       "exp2": ep, "exp3": ep}))
            extra = ["--configfile", str(cfg)]

        def plain_script(*flags):
            t0 = time.perf_counter()
            cmd = [sys.executable, str(ROOT / "bench/plain_baseline.py"), str(tmp / "plain"),
                   "--seeds", str(args.workflow_seeds), *flags]
            if args.quick:
                cmd += ["--epochs", str(args.epochs)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs = int(re.search(r"(\d+) runs in", out).group(1))
            return time.perf_counter() - t0, runs

        def smk(wf, *a, log=None):
            t0 = time.perf_counter()
            proc = subprocess.run([str(BIN / "snakemake"), "--cores", "all", "--quiet", "all", *a,
                                   *extra], cwd=wf, check=True, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            if log:  # what the user saw in the terminal
                (wf / log).write_text(proc.stdout + proc.stderr)
            return seconds

        plains = []
        if args.plain_repeats > 1:
            plain_before, runs = plain_script()
            plains.append(plain_before)
        wf = fresh("wf")
        full = smk(wf, log="terminal.log")
        bench_dir = wf / "results" / "benchmarks"
        bench_files = list(bench_dir.rglob("*.tsv"))
        jobs = len(bench_files)
        top = [f.relative_to(bench_dir).parts[0] for f in bench_files]  # train, figures, ...
        kinds = {"training": top.count("train"), "figure": top.count("figures")}
        kinds["other"] = jobs - kinds["training"] - kinds["figure"]
        job_seconds = sum(float((f.read_text().splitlines()[1]).split("\t")[0])
                          for f in bench_files)
        resources = job_resources(bench_files, bench_dir)
        noop = min(smk(wf) for _ in range(3))
        fig = smk(wf, "--forcerun", "figure")
        train_seconds = sum(float(m) for f in (wf / "results" / "logs" / "train").rglob("*.log")
                            for m in re.findall(r"done in ([0-9.]+) s", f.read_text()))
        plain_after, runs = plain_script()
        plains.append(plain_after)
        plain = min(plains)
        plain_flushed, _ = plain_script("--flush-denormals")
        study = {}
        if args.study_only:
            study_wf = fresh("study")
            study["study_only_from_clean_seconds"] = smk(study_wf, "--config", "variants=[]")
            # the variants (and the audit) on top of the study
            study["variants_added_seconds"] = smk(study_wf)
            study["plain_study_only_seconds"], study["study_only_runs"] = plain_script("--study-only")
        return {"workflow_from_clean_seconds": full, "plain_script_seconds": plain,
                "plain_script_seconds_around_the_workflow": plains,
                "runs_trained": runs, "workflow_seconds_per_run": full / runs,
                "plain_seconds_per_run": plain / runs,
                "ratio_workflow_over_plain": full / plain,
                "plain_script_flushed_seconds": plain_flushed,
                "ratio_workflow_over_plain_flushed": full / plain_flushed, **study,
                "jobs_with_benchmark_file": jobs, "jobs_by_kind": kinds,
                "sum_of_job_seconds": job_seconds,
                "sum_of_training_loop_seconds": train_seconds,
                "noop_rerun_seconds": noop, "figure_only_rerun_seconds": fig,
                "job_resources": resources}
    finally:
        if not args.workdir:
            shutil.rmtree(tmp, ignore_errors=True)


def targets(res) -> dict:
    out = {}
    if "training" in res:
        t5 = next(t for t in res["training"]["throughput"] if t["seeds"] == 5)
        out["training_throughput_2.5x_plain_loop_5_seeds"] = t5["speedup_vs_plain_loop"] >= 2.5
        out["training_throughput_3x_plain_loop_5_seeds"] = t5["speedup_vs_plain_loop"] >= 3
        out["recording_overhead_under_15pct"] = res["training"]["recording"]["overhead"] < 0.15
    if "workflow" in res:
        w = res["workflow"]
        out["workflow_per_run_at_most_0.4x_plain_script"] = w["ratio_workflow_over_plain"] <= 0.4
        out["default_run_with_variants_at_most_5_minutes"] = w["workflow_from_clean_seconds"] <= 300
        out["noop_rerun_under_3s"] = w["noop_rerun_seconds"] < 3
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer epochs and seeds (a smoke run)")
    ap.add_argument("--out", default=str(ROOT / "bench/results"))
    ap.add_argument("--part", choices=["all", "training", "workflow", "threads"], default="all",
                    help="measure one part only; its results replace that part in the results "
                         "file of this machine, the other part is kept (threads: two training "
                         "jobs as processes or as threads, written to <machine>_threads.md)")
    ap.add_argument("--plain-repeats", type=int, default=2,
                    help="runs of the plain script around the workflow (the best counts): 2 "
                         "brackets the workflow run; 1 saves the plain script's time once more")
    ap.add_argument("--no-study-only", dest="study_only", action="store_false",
                    help="skip the study alone from clean and its plain-script run")
    ap.add_argument("--workdir", help="a new folder for the workflow part's runs, kept "
                    "afterwards (wf/ is the default run from clean, wf/terminal.log its output)")
    a = ap.parse_args()
    a.repeats = 1 if a.quick else 5  # best of 5: this machine's speed drifts by tens of percent
    a.epochs = 50 if a.quick else 500
    a.seeds = [1, 5] if a.quick else [1, 5, 20, 64]
    a.workflow_seeds = 2 if a.quick else 5
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    # bench/gpu.py writes gpu.md: this script never does
    mach = machine()
    name = "quick" if a.quick else "cpu" if mach["device"] == "cpu" else "run_gpu"
    if a.part == "threads":  # its own file: the machine's other results stay as they are
        ip = {"machine": mach, "date": time.strftime("%Y-%m-%d"), "in_process": in_process(a)}
        (out / f"{name}_threads.json").write_text(json.dumps(ip, indent=1) + "\n")
        text = "\n".join([f"# Processes or threads on {mach['cpu']} ({mach['cores']} cores), "
                          f"torch {mach['torch']}", "", "Written by `bench/run.py --part threads` "
                          f"on {ip['date']}.", *report_threads(ip["in_process"])]) + "\n"
        (out / f"{name}_threads.md").write_text(text)
        print(text)
        return
    res = {}
    if a.part != "all" and (out / f"{name}.json").exists():
        res = json.loads((out / f"{name}.json").read_text())
        if res.get("machine", {}).get("cpu") != mach["cpu"]:
            res = {}  # another machine's numbers are not kept beside this one's
        res.pop("date_of_part", None)
    if a.part in ("training", "workflow") and not res:
        other = "workflow" if a.part == "training" else "training"
        print(f"note: {out / (name + '.json')} holds no earlier results of this machine (it is "
              f"not committed); {name}.md will have the {a.part} part only, the {other} part "
              "marked as not measured", file=sys.stderr)
    res["machine"] = mach
    res.setdefault("dates", {})
    today = time.strftime("%Y-%m-%d")
    if a.part in ("all", "training"):
        res["matmul_peak_gflops_1_thread"] = matmul_peak(a.repeats)
        res["training"] = training(a)
        res["matmul_peak_gflops_1_thread_after_training"] = matmul_peak(a.repeats)
        res["dates"]["training"] = today
    if a.part in ("all", "workflow"):
        res["job_start_seconds"] = job_start_cost(a)
        res["workflow"] = workflow(a)
        res["dates"]["workflow"] = today
    res["targets"] = targets(res)
    (out / f"{name}.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / f"{name}.md").write_text(report(res))
    print(report(res))


def report(r) -> str:
    m = r["machine"]
    dates = r.get("dates", {})
    lines = [f"# Benchmark on {m['cpu']} ({m['cores']} cores), device {m['device']}, torch {m['torch']}",
             "", "Written by `bench/run.py`; measured on "
             + ", ".join(f"{v} ({k})" for k, v in sorted(dates.items())) + "." if dates else ""]
    if "training" in r:
        lines += report_training(r)
    if "workflow" in r:
        lines += report_workflow(r)
    for part, title in (("training", "Training"), ("workflow", "Whole workflow")):
        if part not in r:  # e.g. --part of one in a clone without the (uncommitted) JSON
            lines += ["", f"## {title}", "", f"Not in this file: this machine's results JSON "
                      f"held no {part} part when it was written. Run `bench/run.py --part "
                      f"{part}` (or without --part) to measure it."]
    lines += ["", "## Targets", ""]
    lines += [f"- {k}: {'met' if v else 'NOT met'}" for k, v in r["targets"].items()]
    return "\n".join(lines) + "\n"


def report_training(r) -> list[str]:
    t = r["training"]
    lines = ["", f"Matrix-product peak, one thread (200×64 @ 64×64, float32): "
             f"{r['matmul_peak_gflops_1_thread']:.1f} GFLOP/s before the training benchmarks, "
             f"{r['matmul_peak_gflops_1_thread_after_training']:.1f} GFLOP/s after (the machine's "
             "speed drifts; every ratio below compares runs that alternated).", "",
             f"## Training, one thread, 10×64 MLP, {t['epochs']} epochs, ReLU", "",
             f"Plain per-seed `nn.Sequential` loop (autograd, `torch.optim.Adam`): best "
             f"{t['plain_seconds_per_run']:.3f} s per run; each row's ratio uses the plain runs "
             "that alternated with it.", "",
             "| seeds | seconds | runs/s | GFLOP/s | plain loop, s/run | × plain loop |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {x['seeds']} | {x['seconds']:.2f} | {x['runs_per_second']:.2f} | {x['gflops']:.1f} | "
              f"{x['plain_seconds_per_run']:.3f} | {x['speedup_vs_plain_loop']:.2f} |"
              for x in t["throughput"]]
    p = t["products_only"]
    t5 = next(x for x in t["throughput"] if x["seeds"] == 5)
    lines += ["", f"The batched matrix products alone, {p['seeds']} seeds, same shapes and count "
              f"({p['gflops']:.1f} GFLOP/s): {p['seconds']:.2f} s, against {t5['seconds']:.2f} s "
              f"for the whole stacked training: {100 * p['seconds'] / t5['seconds']:.0f} % of it. "
              "With every elementwise operation, gradient norm and optimizer step free, stacked "
              f"training could be at most {p['bound_vs_plain_loop']:.2f}× the plain loop here "
              f"(which alternated with it at {p['plain_seconds_per_run']:.3f} s per run)."]
    by_seeds = {x["seeds"]: x for x in t["throughput"]}
    if 20 in by_seeds and 5 in by_seeds:
        gain = by_seeds[20]["runs_per_second"] / by_seeds[5]["runs_per_second"] - 1
        lines += ["", "Stacking the four activations into one job would turn four 5-run models into "
                  "one 20-run model; what that can gain at most is the 20-seed against the 5-seed "
                  f"throughput of one activation: {100 * gain:+.0f} %. Not done: it would cost the "
                  "per-activation caching (adding an activation would retrain all)."]
    ag = t["autograd"]
    lines += ["", f"Gradients by the hand-written backward pass against `torch.autograd` on the "
              f"same stacked model (`grad_mode=\"autograd\"`), {ag['seeds']} seeds, alternating: "
              f"{ag['seconds_hand_written']:.2f} s against {ag['seconds_autograd']:.2f} s, "
              f"{ag['speedup_of_hand_written']:.2f}× for the hand-written pass (both are checked "
              "tensor by tensor against autograd on `nn.Sequential` in the tests)."]
    rec = t["recording"]
    lines += ["", f"Recording gradient norms: {rec['seconds_with']:.2f} s with, "
              f"{rec['seconds_without']:.2f} s without: overhead {100 * rec['overhead']:.1f} %."]
    if t.get("in_place"):
        lines += ["", "σ computed in place over z (`Activation.inplace`, the same bits) against "
                  "out of place (`train.train(..., in_place=False)`), 5 seeds, alternating:", "",
                  "| activation | in place, s | out of place, s | speed-up |", "|---|---|---|---|"]
        lines += [f"| {r['activation']} | {r['seconds_in_place']:.2f} | "
                  f"{r['seconds_out_of_place']:.2f} | {r['speedup']:.2f}× |" for r in t["in_place"]]
    sn = t.get("subnormals")
    if sn:
        lines += ["", "Subnormal floats flushed to zero (`train.denormals_flushed`, every training "
                  "epoch's default on the CPU; the same bits, tested) against kept, in Experiment "
                  f"2's setting ({sn['hidden_layers']} Sigmoid layers, Adam at "
                  f"{sn['learning_rate']:g}), whose saturated layers make subnormal gradients and "
                  "Adam moments, alternating:", "",
                  "| training | subnormals kept, s | flushed, s | speed-up |", "|---|---|---|---|",
                  f"| stacked, {sn['seeds']} seeds | {sn['seconds_kept']:.2f} | "
                  f"{sn['seconds_flushed']:.2f} | {sn['seconds_kept'] / sn['seconds_flushed']:.2f}× |",
                  f"| plain loop, the same seeds, per run (`torch.set_flush_denormal`) | "
                  f"{sn['plain_seconds_per_run_kept']:.2f} | {sn['plain_seconds_per_run_flushed']:.2f} | "
                  f"{sn['plain_seconds_per_run_kept'] / sn['plain_seconds_per_run_flushed']:.2f}× |"]
    lines += ["", "## Cost against depth and width (5 seeds)", "",
              "| hidden layers | width | epochs | seconds | GFLOP/s |", "|---|---|---|---|---|"]
    lines += [f"| {x['hidden_layers']} | {x['width']} | {x['epochs']} | {x['seconds']:.2f} | "
              f"{x['gflops']:.1f} |" for x in t["scaling"]]
    mem = t.get("memory_reuse")
    if mem:
        k, d = mem["kept"], mem["default"]
        lines += ["", "## Freed memory kept for reuse (5 seeds, fresh processes, alternating)", "",
                  "Training jobs ask glibc's malloc to keep the blocks an epoch frees "
                  "(`actflow.train.keep_freed_memory`, mallopt(3)); with its default, sliding "
                  "thresholds the blocks go back to the kernel and are faulted in again:", "",
                  "| malloc | minor page faults per epoch | seconds |", "|---|---|---|",
                  f"| freed memory kept{'' if k['applied'] else ' (not applied here)'} | "
                  f"{k['faults_per_epoch']:.0f} | {k['seconds']:.2f} |",
                  f"| glibc's default | {d['faults_per_epoch']:.0f} | {d['seconds']:.2f} |"]
    if t.get("in_process"):
        lines += report_threads(t["in_process"])
    return lines


def report_threads(ip) -> list[str]:
    return ["", f"## {ip['jobs']} training jobs at once: processes or threads", "",
            f"Each job trains 5 ReLU seeds on one torch thread; alone it takes "
            f"{ip['seconds_one_job']:.2f} s. {ip['jobs']} at once (alternating, best of each):",
            "", "| as | seconds | × one job's throughput |", "|---|---|---|",
            f"| processes (Snakemake's `script:` jobs) | {ip['seconds_processes']:.2f} | "
            f"{ip['speedup_processes']:.2f} |",
            f"| threads of one process (`run:` jobs under `--force-use-threads`) | "
            f"{ip['seconds_threads']:.2f} | {ip['speedup_threads']:.2f} |", "",
            "Threads would spare every job its imports (what each kind of job pays: the whole "
            "workflow's section of the full benchmark) and cost the training loops "
            f"{100 * (ip['speedup_processes'] / ip['speedup_threads'] - 1):.0f} % here (they "
            "share the interpreter's lock between torch's small operations). The workflow keeps "
            "processes all the same: in one process, a job's Snakemake benchmark file would "
            "measure the whole run's memory, not the job's (the SLURM profile's requests are "
            "sized from them), torch's thread setting and the logging would be shared between "
            "jobs, one crash would end every job, and `run:` jobs cannot have a `conda:` "
            "environment."]


def report_workflow(r) -> list[str]:
    m, w = r["machine"], r["workflow"]
    start = r["job_start_seconds"]
    cores = m["cores"]
    loop = w["sum_of_training_loop_seconds"]
    lines = ["", "## Whole workflow (default config: the study and every variant) against the "
              "plain script", "",
              f"- workflow from clean: {w['workflow_from_clean_seconds']:.1f} s for "
              f"{w['runs_trained']} trained runs ({w['workflow_seconds_per_run']:.3f} s per run)",
              f"- plain single-file script, the same runs, per-seed loops on one thread: "
              f"{w['plain_script_seconds']:.1f} s ({w['plain_seconds_per_run']:.3f} s per run; "
              + ("best of a run before and one after the workflow: " if len(
                  w["plain_script_seconds_around_the_workflow"]) > 1 else "one run, right after "
                 "the workflow's: ")
              + " s, ".join(f"{v:.1f}" for v in w["plain_script_seconds_around_the_workflow"])
              + " s)",
              f"- cost per trained run, workflow / plain: {w['ratio_workflow_over_plain']:.3f}"]
    if "plain_script_flushed_seconds" in w:
        lines += [f"- the plain script with subnormals flushed to zero (`--flush-denormals`, one "
                  "line of `torch.set_flush_denormal(True)`, as the workflow's training epochs "
                  f"run): {w['plain_script_flushed_seconds']:.1f} s; cost per trained run, "
                  f"workflow / that script: {w['ratio_workflow_over_plain_flushed']:.3f}"]
    if "study_only_runs" in w:
        lines += [f"- the study alone ({w['study_only_runs']} runs, no variants) from clean: "
                  f"{w['study_only_from_clean_seconds']:.1f} s (plain script "
                  f"{w['plain_study_only_seconds']:.1f} s); the variants added on top of it, "
                  f"with their audit: {w['variants_added_seconds']:.1f} s"]
    lines += [f"- no-op rerun: {w['noop_rerun_seconds']:.2f} s",
              f"- rerun of every figure job: {w['figure_only_rerun_seconds']:.1f} s", "",
              "Where the workflow's time goes: "
              f"{w['jobs_with_benchmark_file']} jobs whose own wall times add up to "
              f"{w['sum_of_job_seconds']:.0f} s on {cores} cores; of that, the training loops "
              f"themselves (epochs, as the jobs log them) take {loop:.0f} s. The other "
              f"{w['sum_of_job_seconds'] - loop:.0f} s are per-job work the plain script does "
              "once or not at all: reading inputs, writing Parquet tables with provenance, "
              "safetensors and logs, computing the metric tables, drawing each figure as PNG and "
              "PDF. Each job is a fresh Python process that Snakemake starts, and pays the "
              "imports of what it runs and its exit (measured here):",
              ""]
    lines += [f"- {k}: {v['as_a_job']:.2f} s ({v['python_default']:.2f} s as a plain Python "
              "process)" if isinstance(v, dict) and "as_a_job" in v else f"- {k}: {v}"
              for k, v in start.items()]
    lines += ["", "A job works with Python's cyclic garbage collector off and exits with its "
              "objects frozen (`io.setup_logging`): the collector would otherwise walk every "
              "object that torch's, pandas' and matplotlib's imports build, again and again as "
              "they grow, and once more at the interpreter's teardown (the figures in brackets, "
              "measured alternating with the others). Reference counting frees all else; "
              "training makes no cyclic garbage (tested)."]
    lines += ["", "Each job's own resources, from its Snakemake benchmark file (the SLURM "
              "profile's requests are sized from these):", "",
              "| jobs of | count | largest max RSS, MB | longest, s |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['jobs']} | {v['max_rss_mb']:.0f} | {v['max_seconds']:.1f} |"
              for k, v in sorted(w.get("job_resources", {}).items())]
    floor = w["sum_of_job_seconds"] / cores
    target = 0.4 * w["plain_script_seconds"]
    lines += ["", f"The 0.4× target needs the workflow under {target:.0f} s. Its training loops "
              f"alone, perfectly spread over {cores} cores, take {loop / cores:.0f} s, and the "
              f"rest of its jobs' time {(w['sum_of_job_seconds'] - loop) / cores:.0f} s more: a "
              f"floor of {floor:.0f} s ({floor / w['plain_script_seconds']:.2f}× the plain "
              "script) before Snakemake's own scheduling and the wait for the last jobs, "
              + ("above the target." if floor > target else "under the target.")]
    return lines


if __name__ == "__main__":
    main()
