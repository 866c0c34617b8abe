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
from actflow import data, train  # noqa: E402

BIN = Path(sys.executable).parent


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


def training(args) -> dict:
    torch.set_num_threads(1)
    d = data.make_train_set("sin", 200, -np.pi, np.pi, 0.1, 2024)
    x, y = d["x"].to_numpy()[:, None], d["y"].to_numpy()[:, None]
    hp = train.Hyper(epochs=args.epochs)
    xt, yt = plain_baseline.make_data(np.sin)
    # warm both paths up (first calls pay one-off allocation and dispatch costs)
    plain_baseline.train_one(xt, yt, "relu", 0, hp.hidden_layers, hp.width, 5, 1e-3)
    train.train(x, y, [0], "relu", train.Hyper(epochs=5), log_every=0)
    plain_runs = 3
    plain = best(lambda: [plain_baseline.train_one(xt, yt, "relu", s, hp.hidden_layers, hp.width,
                                                   hp.epochs, 1e-3) for s in range(plain_runs)],
                 args.repeats) / plain_runs
    out = {"epochs": hp.epochs, "plain_seconds_per_run": plain, "throughput": []}
    for seeds in args.seeds:
        t = best(lambda: train.train(x, y, list(range(seeds)), "relu", hp, log_every=0),
                 args.repeats)
        out["throughput"].append({
            "seeds": seeds, "seconds": t, "runs_per_second": seeds / t,
            "gflops": flops_per_run(hp, 200) * seeds / t / 1e9,
            "speedup_vs_plain_loop": plain / (t / seeds)})
    rec = best(lambda: train.train(x, y, list(range(5)), "relu", hp, log_every=0), args.repeats)
    norec = best(lambda: train.train(x, y, list(range(5)), "relu", hp, log_every=0, record=False),
                 args.repeats)
    out["recording"] = {"seconds_with": rec, "seconds_without": norec,
                        "overhead": rec / norec - 1}
    scaling = []
    for depth, width in [(2, 64), (5, 64), (10, 64), (20, 64), (10, 16), (10, 32), (10, 128)]:
        h = train.Hyper(hidden_layers=depth, width=width, epochs=max(50, args.epochs // 5))
        t = best(lambda: train.train(x, y, list(range(5)), "relu", h, log_every=0), 1)
        scaling.append({"hidden_layers": depth, "width": width, "seeds": 5, "epochs": h.epochs,
                        "seconds": t, "gflops": flops_per_run(h, 200) * 5 / t / 1e9})
    out["scaling"] = scaling
    return out


def workflow(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="actflow-bench-"))
    try:
        wf = tmp / "wf"
        wf.mkdir()
        for part in ("Snakefile", "workflow", "config", "envs", "profiles"):
            src = ROOT / part
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, wf / part)
        extra = []
        if args.quick:
            cfg = tmp / "quick.yaml"
            ep = {"epochs": args.epochs}
            cfg.write_text(json.dumps({"seeds": list(range(args.workflow_seeds)), "exp1": ep,
                                       "exp2": ep, "exp3": ep}))
            extra = ["--configfile", str(cfg)]

        def smk(*a):
            t0 = time.perf_counter()
            subprocess.run([str(BIN / "snakemake"), "--cores", "all", "--quiet", "all", *a, *extra],
                           cwd=wf, check=True, capture_output=True)
            return time.perf_counter() - t0
        full = smk()
        noop = min(smk() for _ in range(3))
        fig = smk("--forcerun", "figure")
        t0 = time.perf_counter()
        cmd = [sys.executable, str(ROOT / "bench/plain_baseline.py"), str(tmp / "plain"),
               "--seeds", str(args.workflow_seeds)]
        if args.quick:
            cmd += ["--epochs", str(args.epochs)]
        subprocess.run(cmd, check=True, capture_output=True)
        plain = time.perf_counter() - t0
        return {"workflow_from_clean_seconds": full, "plain_script_seconds": plain,
                "ratio_workflow_over_plain": full / plain, "noop_rerun_seconds": noop,
                "figure_only_rerun_seconds": fig}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer epochs and seeds (a smoke run)")
    ap.add_argument("--out", default=str(ROOT / "bench/results"))
    a = ap.parse_args()
    a.repeats = 1 if a.quick else 2
    a.epochs = 50 if a.quick else 500
    a.seeds = [1, 5] if a.quick else [1, 5, 20, 64]
    a.workflow_seeds = 2 if a.quick else 5
    res = {"machine": machine(), "matmul_peak_gflops_1_thread": matmul_peak(a.repeats)}
    res["training"] = training(a)
    res["workflow"] = workflow(a)
    t5 = next(t for t in res["training"]["throughput"] if t["seeds"] == 5)
    res["targets"] = {
        "training_throughput_3x_plain_loop_5_seeds": t5["speedup_vs_plain_loop"] >= 3,
        "workflow_at_most_0.4x_plain_script": res["workflow"]["ratio_workflow_over_plain"] <= 0.4,
        "noop_rerun_under_3s": res["workflow"]["noop_rerun_seconds"] < 3,
        "recording_overhead_under_15pct": res["training"]["recording"]["overhead"] < 0.15,
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "quick" if a.quick else "cpu" if res["machine"]["device"] == "cpu" else "gpu"
    (out / f"{name}.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / f"{name}.md").write_text(report(res))
    print(report(res))


def report(r) -> str:
    m, t, w = r["machine"], r["training"], r["workflow"]
    lines = [f"# Benchmark on {m['cpu']} ({m['cores']} cores), device {m['device']}, torch {m['torch']}",
             "", f"Matrix-product peak, one thread (200×64 @ 64×64, float32): "
             f"{r['matmul_peak_gflops_1_thread']:.1f} GFLOP/s", "",
             f"## Training, one thread, 10×64 MLP, {t['epochs']} epochs, ReLU", "",
             f"Plain per-seed `nn.Sequential` loop: {t['plain_seconds_per_run']:.3f} s per run.", "",
             "| seeds | seconds | runs/s | GFLOP/s | × plain loop |", "|---|---|---|---|---|"]
    lines += [f"| {x['seeds']} | {x['seconds']:.2f} | {x['runs_per_second']:.2f} | {x['gflops']:.1f} | "
              f"{x['speedup_vs_plain_loop']:.2f} |" for x in t["throughput"]]
    rec = t["recording"]
    lines += ["", f"Recording gradient norms: {rec['seconds_with']:.2f} s with, "
              f"{rec['seconds_without']:.2f} s without: overhead {100 * rec['overhead']:.1f} %.", "",
              "## Cost against depth and width (5 seeds)", "",
              "| hidden layers | width | epochs | seconds | GFLOP/s |", "|---|---|---|---|---|"]
    lines += [f"| {x['hidden_layers']} | {x['width']} | {x['epochs']} | {x['seconds']:.2f} | "
              f"{x['gflops']:.1f} |" for x in t["scaling"]]
    lines += ["", "## Whole workflow (default config) against the plain script", "",
              f"- workflow from clean: {w['workflow_from_clean_seconds']:.1f} s",
              f"- plain single-file script, same experiments, per-seed loops: "
              f"{w['plain_script_seconds']:.1f} s",
              f"- ratio workflow / plain: {w['ratio_workflow_over_plain']:.2f}",
              f"- no-op rerun: {w['noop_rerun_seconds']:.2f} s",
              f"- rerun of every figure job: {w['figure_only_rerun_seconds']:.1f} s", "",
              "## Targets", ""]
    lines += [f"- {k}: {'met' if v else 'NOT met'}" for k, v in r["targets"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
