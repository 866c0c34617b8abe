"""GPU readiness in one command, for a person with an NVIDIA GPU:

    .venv/bin/python bench/gpu.py [--out bench/results] [--skip-workflow] [--compare-with BUNDLE]

1. the CUDA tests (tests/test_gpu.py: training on CUDA equals the CPU to float tolerance; the
   stacked model's gradients equal autograd on CUDA; ``device: auto`` picks CUDA);
2. the benchmark's GPU part: stacked training throughput, each epoch launched op by op and
   replayed from a CUDA graph, side by side, against a plain per-seed ``nn.Sequential`` loop
   on the same GPU, at 5, 20 and 100 seeds and widths 64 and 256; and torch.profiler's count
   of kernels per epoch and of the GPU's busy share, op by op and from the graph;
3. the whole default workflow with ``device: cuda`` (unless --skip-workflow or Snakemake is
   not installed in this interpreter), timed, with its claim verdicts; with --compare-with, a
   CPU run's bundle (``snakemake bundle`` on a CPU machine), the comparison of the GPU run with
   it (the ``compare`` target: verdicts, and every summary metric within the seed spread).

Writes <out>/gpu_<GPU>.md and .json (and gpu_<GPU>_claims.csv, gpu_<GPU>_comparison.md and
.png), <GPU> named after the device (h200 for an NVIDIA H200; :func:`output_names`), so that
runs on different GPUs sit side by side. Exits 2 at once, naming the missing GPU, where torch
sees no CUDA device.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from actflow import data, layout, train  # noqa: E402


def require_gpu() -> None:
    if not torch.cuda.is_available():
        print(f"bench/gpu.py needs an NVIDIA GPU: torch {torch.__version__} (CUDA build: "
              f"{torch.version.cuda or 'none, a CPU-only build'}) sees no CUDA device "
              f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}). Run it on "
              "a machine with an NVIDIA GPU and a CUDA build of torch.", file=sys.stderr)
        sys.exit(2)


def output_names(device_name: str) -> dict[str, str]:
    """The files one run writes, named after its GPU: "NVIDIA H200" -> gpu_h200.md, …"""
    slug = re.sub(r"[^a-z0-9]+", "_", device_name.lower().replace("nvidia", "")).strip("_")
    stem = f"gpu_{slug or 'cuda'}"
    return {"markdown": f"{stem}.md", "json": f"{stem}.json", "claims": f"{stem}_claims.csv",
            "comparison_markdown": f"{stem}_comparison.md",
            "comparison_png": f"{stem}_comparison.png"}


def sync_time(fn, repeats=2):
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def plain_loop(x, y, seed, depth, width, epochs, lr=1e-3):
    """What a user writes: one nn.Sequential per seed on the GPU, autograd, torch.optim.Adam,
    reading the loss and the per-layer gradient norms every epoch like the workflow records."""
    torch.manual_seed(seed)
    layers, d = [], 1
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    net = nn.Sequential(*layers, nn.Linear(d, 1)).to(x.device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    lins = [m for m in net if isinstance(m, nn.Linear)][:-1]
    losses, norms = [], []
    for _ in range(epochs):
        opt.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        losses.append(loss.detach())
        norms.append(torch.stack([m.weight.grad.norm() for m in lins]))
        opt.step()
    return torch.stack(losses).cpu(), torch.stack(norms).cpu()


def sine_data():
    """The benchmark's training set, (200, 1) inputs and targets: the noisy sine wave."""
    d = data.make_train_set("sin", 200, -np.pi, np.pi, 0.1, 2024)
    return d["x"].to_numpy()[:, None], d["y"].to_numpy()[:, None]


def throughput(epochs: int) -> list[dict]:
    """Stacked training with every epoch launched op by op (``cuda_graph=False``, the code
    before CUDA graphs) and replayed from a CUDA graph (the default on CUDA), side by side,
    against the plain per-seed loop."""
    x, y = sine_data()
    xt = torch.tensor(x, dtype=torch.float32, device="cuda")
    yt = torch.tensor(y, dtype=torch.float32, device="cuda")
    rows = []
    for width in (64, 256):
        hp = train.Hyper(width=width, epochs=epochs)
        plain_loop(xt, yt, 0, hp.hidden_layers, width, 5)  # warm-up
        for graph in (False, True):
            train.train(x, y, [0], "relu", train.Hyper(width=width, epochs=10), device="cuda",
                        log_every=0, cuda_graph=graph)
        plain = sync_time(lambda: plain_loop(xt, yt, 0, hp.hidden_layers, width, epochs))
        for seeds in (5, 20, 100):
            row = {"width": width, "seeds": seeds, "epochs": epochs, "plain_seconds_per_run": plain}
            for key, graph in (("eager", False), ("graph", True)):
                try:
                    t = sync_time(lambda: train.train(x, y, list(range(seeds)), "relu", hp,
                                                      device="cuda", log_every=0, cuda_graph=graph))
                except Exception as exc:  # a failed capture still leaves the other numbers
                    row[f"{key}_error"] = f"{type(exc).__name__}: {exc}"[:500]
                    print(f"width {width}, {seeds} seeds, {key}: {row[f'{key}_error']}", flush=True)
                    continue
                row[f"{key}_seconds"] = t
                row[f"{key}_runs_per_second"] = seeds / t
                row[f"{key}_vs_plain_loop"] = plain / (t / seeds)
                print(f"width {width}, {seeds} seeds, {key}: {t:.2f} s, {seeds / t:.1f} runs/s, "
                      f"{plain / (t / seeds):.1f}x the plain loop ({plain:.2f} s/run)", flush=True)
            rows.append(row)
    return rows


def kernel_profile(seeds: int = 20, width: int = 64, epochs: int = 100) -> dict:
    """torch.profiler over one training job, op by op and from a CUDA graph: kernels per epoch
    and the share of the wall time the GPU spends in kernels (launch-bound when it is low)."""
    from torch.profiler import ProfilerActivity, profile

    x, y = sine_data()
    hp = train.Hyper(width=width, epochs=epochs)
    out = {"seeds": seeds, "width": width, "epochs": epochs}
    for key, graph in (("eager", False), ("graph", True)):
        try:
            train.train(x, y, list(range(seeds)), "relu", hp, device="cuda", log_every=0,
                        cuda_graph=graph)
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                train.train(x, y, list(range(seeds)), "relu", hp, device="cuda", log_every=0,
                            cuda_graph=graph)
                torch.cuda.synchronize()
                wall = time.perf_counter() - t0
            kernels = [e for e in prof.events()
                       if e.device_type == torch.autograd.DeviceType.CUDA]
            busy = sum(e.time_range.elapsed_us() for e in kernels) / 1e6
            out[key] = {"wall_seconds": wall, "kernels": len(kernels),
                        "kernels_per_epoch": len(kernels) / epochs, "kernel_seconds": busy,
                        "gpu_busy_share": busy / wall}
        except Exception as exc:
            out[key] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        print(f"profile {key}: {out[key]}", flush=True)
    return out


def _snakemake(tmp: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "all", *args],
                          cwd=tmp, capture_output=True, text=True)


def workflow(out: Path, names: dict, compare_with: str | None) -> dict:
    """The whole default workflow with device: cuda in a scratch copy, timed; then, with
    ``compare_with`` (a CPU run's bundle), the comparison of the two runs (actflow.compare)."""
    if importlib.util.find_spec("snakemake") is None:
        return {"skipped": f"Snakemake is not installed in {sys.executable}"}
    tmp = Path(tempfile.mkdtemp(prefix="actflow-gpu-"))
    try:
        for part in layout.CLONE_PARTS:
            src = ROOT / part
            if src.exists():
                (shutil.copytree if src.is_dir() else shutil.copy2)(src, tmp / part)
        t0 = time.perf_counter()
        proc = _snakemake(tmp, "all", "--config", "device=cuda")
        wall = time.perf_counter() - t0
        res = {"seconds": wall, "returncode": proc.returncode}
        if proc.returncode:
            res["log_tail"] = (proc.stdout + proc.stderr)[-4000:]
            return res
        import pandas as pd

        claims = pd.read_parquet(tmp / layout.AUDIT["claims_parquet"])
        res["verdicts"] = claims["verdict"].value_counts().to_dict()
        claims[["claim", "verdict", "measured_mean", "ci_low", "ci_high"]].to_csv(
            out / names["claims"], index=False)
        runs = pd.read_parquet(tmp / layout.TABLES["runs"].union_path())
        res["training_devices"] = sorted(runs["device"].unique())
        if compare_with:
            # a copy beside the run, named by a relative path: the comparison names run B by
            # the path it is given, and a result to share should not carry this machine's paths
            shutil.copy2(compare_with, tmp / Path(compare_with).name)
            t0 = time.perf_counter()
            proc = _snakemake(tmp, "compare", "--config", "device=cuda",
                              f"compare_with={Path(compare_with).name}")
            res["compare_seconds"] = time.perf_counter() - t0
            res["compare_returncode"] = proc.returncode
            if proc.returncode:
                res["compare_log_tail"] = (proc.stdout + proc.stderr)[-4000:]
                return res
            met = pd.read_parquet(tmp / layout.COMPARISON["comparison_parquet"])
            cl = pd.read_parquet(tmp / layout.COMPARISON["comparison_claims"])
            res["metric_statuses"] = met["status"].value_counts().to_dict()
            res["claims_same"] = int((cl["status"] == "same").sum())
            res["claims_total"] = len(cl)
            res["claims_differing"] = cl.loc[cl["status"] != "same",
                                             ["claim", "variant", "verdict_a", "verdict_b"]
                                             ].to_dict("records")
            res["metrics_differing"] = met.loc[met["status"] == "differ",
                                               ["metric", "variant", "activation", "detail",
                                                "mean_a", "mean_b", "p_holm"]].to_dict("records")
            for key in ("comparison_markdown", "comparison_png"):
                shutil.copy2(tmp / layout.COMPARISON[key], out / names[key])
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "bench/results"))
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--skip-workflow", action="store_true")
    ap.add_argument("--compare-with", metavar="BUNDLE",
                    help="a CPU run's bundle (results/bundle.tar.gz of `snakemake bundle`): "
                         "the GPU run is compared with it")
    a = ap.parse_args()
    require_gpu()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "cuda": torch.version.cuda, "python": sys.version.split()[0]}
    names = output_names(res["device"])
    t0 = time.perf_counter()
    # -o addopts=: the project's pytest options name pytest-xdist's, which a GPU machine's
    # own Python may lack (or hold in another version); these tests need none of them
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p",
                            "no:cacheprovider", str(ROOT / "tests/test_gpu.py")], cwd=ROOT,
                           capture_output=True, text=True)
    res["tests"] = {"returncode": tests.returncode, "seconds": time.perf_counter() - t0,
                    "summary": tests.stdout.strip().splitlines()[-1] if tests.stdout.strip() else "",
                    "tail": (tests.stdout + tests.stderr)[-3000:] if tests.returncode else ""}
    print("tests:", res["tests"]["summary"], flush=True)
    res["throughput"] = throughput(a.epochs)
    res["profile"] = kernel_profile()

    def save():  # after every step: a run stopped later keeps what was measured
        res["total_seconds"] = time.perf_counter() - t_start
        (out / names["json"]).write_text(json.dumps(res, indent=1, default=str) + "\n")
        (out / names["markdown"]).write_text(report(res))

    res["workflow"] = {"skipped": "still running when the script stopped"}
    save()
    res["workflow"] = ({"skipped": "--skip-workflow"} if a.skip_workflow
                       else workflow(out, names, a.compare_with))
    print("workflow:", {k: v for k, v in res["workflow"].items() if "tail" not in k}, flush=True)
    save()
    print(report(res))
    sys.exit(1 if res["tests"]["returncode"] else 0)


def report(r) -> str:
    names = output_names(r["device"])
    lines = [f"# GPU check on {r['device']} (torch {r['torch']}, CUDA {r['cuda']}, Python {r['python']})",
             "", f"Total {r['total_seconds']:.0f} s.", "", "## CUDA tests (tests/test_gpu.py)", "",
             f"`{r['tests']['summary']}` in {r['tests']['seconds']:.0f} s."]
    if r["tests"]["tail"]:
        lines += ["", "```", r["tests"]["tail"], "```"]
    lines += ["", "## Stacked training against the plain per-seed loop, same GPU", "",
              "10 hidden layers, ReLU, Adam, 200 points; best of 2; the plain loop reads loss and "
              "per-layer gradient norms every epoch, as the workflow records them. *Op by op*: "
              "every epoch's kernels launched one by one (`cuda_graph=False`, the code before "
              "CUDA graphs); *graph*: each epoch after the first "
              f"{r.get('graph_warmup', train.GRAPH_WARMUP)} replayed from one CUDA graph (the "
              "default on CUDA). Both measured side by side in this run.", "",
              "| width | seeds | epochs | op by op, s | graph, s | op by op, runs/s | "
              "graph, runs/s | graph speed-up | plain loop, s/run | graph × plain loop |",
              "|---|---|---|---|---|---|---|---|---|---|"]

    def cell(x, key, fmt):
        return format(x[key], fmt) if key in x else x.get(key.split("_")[0] + "_error", "–")

    lines += [f"| {x['width']} | {x['seeds']} | {x['epochs']} | {cell(x, 'eager_seconds', '.2f')} "
              f"| {cell(x, 'graph_seconds', '.2f')} | {cell(x, 'eager_runs_per_second', '.1f')} | "
              f"{cell(x, 'graph_runs_per_second', '.1f')} | "
              + (f"{x['eager_seconds'] / x['graph_seconds']:.2f}×"
                 if "eager_seconds" in x and "graph_seconds" in x else "–")
              + f" | {x['plain_seconds_per_run']:.3f} | {cell(x, 'graph_vs_plain_loop', '.1f')} |"
              for x in r["throughput"]]
    prof = r.get("profile")
    if prof:
        lines += ["", f"## Where an epoch's time goes (torch.profiler, {prof['seeds']} seeds, "
                  f"width {prof['width']}, {prof['epochs']} epochs)", "",
                  "| | wall, s | kernels per epoch | time in kernels, s | GPU busy |",
                  "|---|---|---|---|---|"]
        for key, name in (("eager", "op by op"), ("graph", "graph")):
            p = prof.get(key, {})
            if "error" in p or not p:
                lines.append(f"| {name} | {p.get('error', 'not run')} | | | |")
            else:
                lines.append(f"| {name} | {p['wall_seconds']:.3f} | {p['kernels_per_epoch']:.0f} | "
                             f"{p['kernel_seconds']:.3f} | {100 * p['gpu_busy_share']:.0f} % |")
    w = r["workflow"]
    lines += ["", "## Default workflow with device: cuda", ""]
    if "skipped" in w:
        lines += [f"Not run: {w['skipped']}."]
    elif w["returncode"]:
        lines += [f"Failed (exit {w['returncode']}) after {w['seconds']:.0f} s:", "", "```",
                  w["log_tail"], "```"]
    else:
        lines += [f"{w['seconds']:.0f} s from clean (study and every variant, trained on "
                  f"{', '.join(w['training_devices'])}); verdicts {w['verdicts']} (per claim in "
                  f"{names['claims']})."]
        lines += ["", "## The GPU run against a CPU run's bundle (the `compare` target)", ""]
        if "compare_returncode" not in w:
            lines += ["Not run: no --compare-with bundle given."]
        elif w["compare_returncode"]:
            lines += [f"Failed (exit {w['compare_returncode']}):", "", "```",
                      w["compare_log_tail"], "```"]
        else:
            lines += [f"{w['compare_seconds']:.0f} s. Verdicts: {w['claims_same']} of "
                      f"{w['claims_total']} the same (the study's setting and every variant). "
                      f"Summary metrics: {w['metric_statuses']}. Full comparison: "
                      f"{names['comparison_markdown']} and {names['comparison_png']}.", ""]
            if w["claims_differing"]:
                lines += ["| claim | variant | verdict on the GPU | verdict on the CPU |",
                          "|---|---|---|---|"]
                lines += [f"| {c['claim']} | {c['variant']} | {c['verdict_a']} | "
                          f"{c['verdict_b']} |" for c in w["claims_differing"]]
            if w["metrics_differing"]:
                lines += ["", "Metrics that differ beyond the seed spread (GPU = A, CPU = B):", "",
                          "| metric | variant | activation | detail | GPU | CPU | p (Holm) |",
                          "|---|---|---|---|---|---|---|"]
                lines += [f"| {m['metric']} | {m['variant']} | {m['activation']} | {m['detail']} "
                          f"| {m['mean_a']:.4g} | {m['mean_b']:.4g} | {m['p_holm']:.3g} |"
                          for m in w["metrics_differing"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
