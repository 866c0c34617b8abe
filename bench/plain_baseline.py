"""The baseline: what a user would write by hand, in one file, with a loop over seeds.

Runs the same three experiments as the workflow's default configuration (same data, same
nets, same optimizer, same recording of per-layer gradient norms every epoch), writes the
loss and gradient tables to Parquet and draws the loss curves. One process, no workflow.

    python bench/plain_baseline.py OUTDIR [--epochs N] [--seeds N]
"""

import argparse
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

ACTS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.01),
        "gelu": nn.GELU}
TARGETS = {"sin": np.sin, "abs": np.abs, "step": lambda x: np.heaviside(x, 1.0),
           "sin10": lambda x: np.sin(10 * x), "cubic": lambda x: x**3}


def make_data(f, n=200, noise=0.1, seed=2024):
    rng = np.random.default_rng(seed)
    x = np.linspace(-math.pi, math.pi, n)
    y = f(x) + rng.normal(0, noise, n)
    return torch.tensor(x, dtype=torch.float32)[:, None], torch.tensor(y, dtype=torch.float32)[:, None]


def train_one(x, y, act, seed, depth, width, epochs, lr):
    torch.manual_seed(seed)
    layers, d = [], 1
    for _ in range(depth):
        layers += [nn.Linear(d, width), ACTS[act]()]
        d = width
    model = nn.Sequential(*layers, nn.Linear(d, 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    linears = [m for m in model if isinstance(m, nn.Linear)][:-1]
    losses, grads = [], []
    for _ in range(epochs):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        losses.append(loss.item())
        grads.append([m.weight.grad.norm().item() for m in linears])
        opt.step()
    return losses, grads, model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows, grows = [], []
    x, y = make_data(np.sin)
    for exp, lr in (("exp1", 1e-3), ("exp2", 0.1)):
        for act in ACTS:
            for seed in range(a.seeds):
                losses, grads, _ = train_one(x, y, act, seed, 10, 64, a.epochs, lr)
                rows += [(exp, act, seed, e + 1, v) for e, v in enumerate(losses)]
                grows += [(exp, act, seed, e + 1, i + 1, g) for e, gs in enumerate(grads)
                          for i, g in enumerate(gs)]
    cap = []
    grid = torch.linspace(-math.pi, math.pi, 1000)[:, None]
    for t, f in TARGETS.items():
        xt, yt = make_data(f)
        for act in ACTS:
            for seed in range(a.seeds):
                _, _, model = train_one(xt, yt, act, seed, 5, 64, a.epochs, 1e-3)
                with torch.no_grad():
                    mse = ((model(grid)[:, 0].numpy() - f(grid[:, 0].numpy())) ** 2).mean()
                cap.append((act, t, seed, float(mse)))
    loss = pd.DataFrame(rows, columns=["experiment", "activation", "seed", "epoch", "loss"])
    loss.to_parquet(out / "loss.parquet")
    pd.DataFrame(grows, columns=["experiment", "activation", "seed", "epoch", "layer",
                                 "weight_grad_norm"]).to_parquet(out / "gradient_flow.parquet")
    pd.DataFrame(cap, columns=["activation", "target", "seed", "test_mse"]).to_parquet(
        out / "capacity.parquet")
    fig, ax = plt.subplots()
    for act, g in loss[loss.experiment == "exp1"].groupby("activation"):
        ax.plot(g.groupby("epoch")["loss"].mean(), label=act)
    ax.set_yscale("log")
    ax.legend()
    fig.savefig(out / "loss.png")
    print(f"plain baseline: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
