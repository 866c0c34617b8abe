"""The baseline: what a user would write by hand, in one file, with a loop over seeds.

Runs the same experiments as the workflow's configuration (the study's three experiments and
every variant of config/config.yaml: same data, nets, optimizers, initialisations, same
recording of per-layer gradient norms every epoch), writes the loss and gradient tables to
Parquet and draws the loss curves. One process, one thread, no workflow, no caching. The
variants' settings are read from the config (through the workflow's resolver, so that both
train exactly the same runs); everything else is plain PyTorch.

    python bench/plain_baseline.py OUTDIR [--epochs N] [--seeds N] [--config FILE]
                                   [--flush-denormals]

``--flush-denormals`` runs it with subnormal floats flushed to zero
(``torch.set_flush_denormal(True)``), as the workflow's training epochs run on the CPU: the
benchmark reports the workflow against the plain script both ways.
"""

import argparse
import math
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ACTS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.01),
        "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU, "elu": nn.ELU, "softplus": nn.Softplus}
TARGETS = {"sin": np.sin, "abs": np.abs, "step": lambda x: np.heaviside(x, 1.0),
           "sin10": lambda x: np.sin(10 * x), "cubic": lambda x: x**3}
INITS = {"kaiming_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
         "kaiming_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
         "xavier_uniform": nn.init.xavier_uniform_, "xavier_normal": nn.init.xavier_normal_}


STUDY_DATA = {"seed": 2024, "n_samples": 200, "x_min": -math.pi, "x_max": math.pi,
              "noise_std": 0.1, "sampling": "linspace"}


def make_data(name, d=STUDY_DATA, draw=None):
    f = TARGETS[name]
    rng = np.random.default_rng([d["seed"], len(name)] + ([draw] if draw is not None else []))
    x = np.linspace(d["x_min"], d["x_max"], d["n_samples"])
    if d["sampling"] == "uniform":
        x = np.sort(rng.uniform(d["x_min"], d["x_max"], d["n_samples"]))
    y = f(x) + rng.normal(0, d["noise_std"], d["n_samples"])
    return torch.tensor(x, dtype=torch.float32)[:, None], torch.tensor(y, dtype=torch.float32)[:, None]


def train_one(x, y, act, seed, depth, width, epochs, lr, optimizer="adam", momentum=0.0,
              init="pytorch", bias_init="pytorch"):
    torch.manual_seed(seed)
    layers, d = [], 1
    for _ in range(depth):
        layers += [nn.Linear(d, width), ACTS[act]()]
        d = width
    model = nn.Sequential(*layers, nn.Linear(d, 1))
    for m in model:
        if isinstance(m, nn.Linear):
            if init != "pytorch":
                INITS[init](m.weight)
            if bias_init == "zero":
                nn.init.zeros_(m.bias)
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
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


def settings(config_file, epochs=None, seeds=None):
    """(name, kind, experiment settings, data settings, seeds) of the study's experiments and
    every variant of the config (a variant's own seeds where it has them), with the command
    line's epochs and seeds on top."""
    sys.path.insert(0, str(ROOT / "workflow" / "scripts"))
    from actflow.config import validate

    from actflow import variants

    cfg = yaml.safe_load(Path(config_file).read_text())
    if seeds is not None:
        cfg["seeds"] = list(range(seeds))
    for exp in ("exp1", "exp2", "exp3"):
        if epochs is not None:
            cfg.setdefault(exp, {})["epochs"] = epochs
    cfg = validate(cfg, ROOT / "workflow/schemas/config.schema.yaml")
    resolved = variants.resolve(cfg, variants.expand_entries(cfg["variants"]))
    return cfg, [(v.name, v.kind, v.settings, v.data, list(v.seeds)) for v in resolved]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--config", default=str(ROOT / "config/config.yaml"))
    ap.add_argument("--study-only", action="store_true", help="no variants")
    ap.add_argument("--flush-denormals", action="store_true",
                    help="subnormal floats flushed to zero (torch.set_flush_denormal)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(a.flush_denormals)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cfg, runs_of = settings(a.config, a.epochs, a.seeds)
    if a.study_only:
        runs_of = runs_of[:3]
    rows, grows, cap, n_runs = [], [], [], 0
    for name, kind, s, d, seeds in runs_of:
        hp = dict(depth=s["hidden_layers"], width=s["width"], epochs=s["epochs"],
                  lr=s["learning_rate"], optimizer=s["optimizer"], momentum=s["momentum"],
                  init=s["init"], bias_init=s["bias_init"])
        if kind == "sine":
            shared = make_data("sin", d)
            for act in cfg["activations"]:
                for seed in seeds:
                    x, y = make_data("sin", d, seed) if d["per_seed"] else shared
                    losses, grads, _ = train_one(x, y, act, seed, **hp)
                    n_runs += 1
                    rows += [(name, act, seed, e + 1, v) for e, v in enumerate(losses)]
                    grows += [(name, act, seed, e + 1, i + 1, g) for e, gs in enumerate(grads)
                              for i, g in enumerate(gs)]
            continue
        noise = d["noise_std"] if s["noise_std"] is None else s["noise_std"]
        grid = torch.linspace(d["x_min"], d["x_max"], s["n_test"])[:, None]
        for t in s["targets"]:
            f = TARGETS[t]
            shared = make_data(t, d | {"noise_std": noise})
            for act in cfg["activations"]:
                for seed in seeds:
                    x, y = make_data(t, d | {"noise_std": noise}, seed) if d["per_seed"] else shared
                    _, _, model = train_one(x, y, act, seed, **hp)
                    n_runs += 1
                    with torch.no_grad():
                        mse = ((model(grid)[:, 0].numpy() - f(grid[:, 0].numpy())) ** 2).mean()
                    cap.append((name, act, t, seed, float(mse)))
    loss = pd.DataFrame(rows, columns=["variant", "activation", "seed", "epoch", "loss"])
    loss.to_parquet(out / "loss.parquet")
    pd.DataFrame(grows, columns=["variant", "activation", "seed", "epoch", "layer",
                                 "weight_grad_norm"]).to_parquet(out / "gradient_flow.parquet")
    pd.DataFrame(cap, columns=["variant", "activation", "target", "seed", "test_mse"]).to_parquet(
        out / "capacity.parquet")
    fig, ax = plt.subplots()
    for act, g in loss[loss.variant == "exp1"].groupby("activation"):
        ax.plot(g.groupby("epoch")["loss"].mean(), label=act)
    ax.set_yscale("log")
    ax.legend()
    fig.savefig(out / "loss.png")
    print(f"plain baseline: {n_runs} runs in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
