"""Every figure of the study, drawn from Parquet tables only (no torch).

One style for all figures: seaborn's colour-blind palette with a fixed colour
per activation, log scales where values span decades, PNG + PDF output.
"""

from __future__ import annotations

import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from . import io  # noqa: E402
from .names import ORDER, label, ordered  # noqa: E402

log = logging.getLogger("actflow.plotting")
PALETTE = dict(zip(ORDER, sns.color_palette("colorblind", len(ORDER))))


def color(name: str):
    return PALETTE.get(name, "0.3")


def style(context: str = "notebook") -> None:
    sns.set_theme(context=context, style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.constrained_layout.use": True, "savefig.bbox": "tight",
                         "legend.frameon": False, "pdf.fonttype": 42})


def save(fig, outputs: dict, dpi: int) -> None:
    for fmt, path in outputs.items():
        meta = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
        with io.atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=meta)
    plt.close(fig)


def _epochs_of_interest(epochs) -> list[int]:
    e = np.sort(np.unique(epochs))
    return list(dict.fromkeys([int(e[0]), int(e[len(e) // 2]), int(e[-1])]))


def _band(ax, df, x, name, **kw):
    ax.plot(df[x], df["mean"], color=color(name), label=label(name), **kw)
    ax.fill_between(df[x], df["ci_low"], df["ci_high"], color=color(name), alpha=0.2, lw=0)


def _seeds_note(df) -> str:
    n = df["n_seeds"]
    bad = int(df["n_nonfinite"].max()) if "n_nonfinite" in df else 0
    s = f"line: mean over {n.min()}" + (f"–{n.max()}" if n.max() != n.min() else "") + " seeds"
    s += ("" if "geometric" not in str(df["aggregate"].iloc[0]) else " (geometric)")
    s += "; band: 95% interval"
    if bad:
        s += f"; diverged runs left out (up to {bad} per point)"
    return s


# ----------------------------------------------------------------- figures
def fig1_activations(curves: pd.DataFrame):
    names = ordered(curves["activation"].unique())
    fig, axes = plt.subplots(2, len(names), figsize=(3.2 * len(names), 6), sharex=True, squeeze=False)
    for j, name in enumerate(names):
        c = curves[curves["activation"] == name]
        top, bot = axes[0, j], axes[1, j]
        top.plot(c["x"], c["value"], color=color(name), lw=2.5)
        top.set_title(f"{label(name)}\n{c['formula'].iloc[0]}")
        bot.plot(c["x"], c["derivative"], color=color(name), lw=2.5)
        k = int(c["derivative"].to_numpy().argmax())
        dmax = c["derivative"].iloc[k]
        bot.axhline(dmax, color="0.4", ls=":", lw=1)
        bot.annotate(f"max slope {dmax:.3g}", (c["x"].iloc[k], dmax), xytext=(0.03, 0.93),
                     textcoords="axes fraction", va="top", fontsize="small")
        bot.set_xlabel("input x")
        for ax in (top, bot):
            ax.axhline(0, color="0.6", lw=0.8)
            ax.axvline(0, color="0.6", lw=0.8)
    axes[0, 0].set_ylabel("activation σ(x)")
    axes[1, 0].set_ylabel("derivative σ′(x)")
    fig.suptitle("Figure 1. Activation functions (top) and their derivatives (bottom)")
    return fig


def fig2_telephone_game(curves: pd.DataFrame, flow: pd.DataFrame):
    pair = [n for n in ("sigmoid", "relu") if n in set(flow["activation"])]
    flow = flow[(flow["metric"] == "preact_grad_norm") & flow["activation"].isin(pair)]
    epoch = int(flow["epoch"].min())
    flow = flow[flow["epoch"] == epoch]
    L = int(flow["layer"].max())
    fig = plt.figure(figsize=(13, 8))
    gs = fig.add_gridspec(2, 3, height_ratios=[1, 1.3])
    top = fig.add_subplot(gs[0, :])
    norm = LogNorm(1e-6, 1)
    cmap = plt.get_cmap("viridis")
    for row, name in enumerate(pair):
        f = flow[flow["activation"] == name].set_index("layer")["mean"]
        rel = f / f.loc[L]
        yv = len(pair) - 1 - row
        top.plot([1, L], [yv, yv], color="0.8", lw=2, zorder=0)
        for layer, v in rel.items():
            top.scatter(layer, yv, s=900 * max(v, 1e-6) ** 0.25 + 60, color=cmap(norm(max(v, 1e-6))),
                        edgecolor="k", zorder=2)
            top.annotate(f"{v:.1e}" if v < 0.01 else f"{v:.2f}", (layer, yv - 0.33), ha="center",
                         fontsize="x-small")
        top.text(0.2, yv, label(name), ha="right", va="center", fontweight="bold", color=color(name))
    top.annotate("", xy=(1.2, len(pair) - 0.45), xytext=(L - 0.2, len(pair) - 0.45),
                 arrowprops=dict(arrowstyle="->", color="0.3"))
    top.text((L + 1) / 2, len(pair) - 0.35, "error signal travels back: output side → input side",
             ha="center", fontsize="small", color="0.3")
    top.set_xlim(-1.2, L + 0.8)
    top.set_ylim(-0.7, len(pair) - 0.2)
    top.set_xticks(range(1, L + 1), [f"layer {i}" for i in range(1, L + 1)], fontsize="small")
    top.set_yticks([])
    top.grid(False)
    top.set_title(f"The telephone game at epoch {epoch}: ‖∂L/∂z_l‖ relative to the last hidden "
                  f"layer (circle size and colour)")
    fig.colorbar(plt.cm.ScalarMappable(norm, cmap), ax=top, label="relative gradient", pad=0.01)

    ax_f, ax_d, ax_g = (fig.add_subplot(gs[1, i]) for i in range(3))
    for name in pair:
        c = curves[curves["activation"] == name]
        ax_f.plot(c["x"], c["value"], color=color(name), lw=2, label=label(name))
        ax_d.plot(c["x"], c["derivative"], color=color(name), lw=2, label=label(name))
        f = flow[flow["activation"] == name].sort_values("layer", ascending=False)
        last = f["mean"].iloc[0]
        ax_g.plot(f["layer"], f["mean"] / last, "o-", color=color(name), label=label(name))
        ax_g.fill_between(f["layer"], f["ci_low"] / last, f["ci_high"] / last, color=color(name),
                          alpha=0.2, lw=0)
    ks = np.arange(1, L + 1)
    ax_g.plot(ks, 0.25 ** (L - ks), ls="--", color="0.4", label="×0.25 per layer (the study's argument)")
    ax_f.set(title="function", xlabel="x", ylabel="σ(x)")
    ax_d.set(title="derivative", xlabel="x", ylabel="σ′(x)")
    ax_g.set(title="gradient decay over layers", xlabel="hidden layer (1 = input side)",
             ylabel="‖∂L/∂z_l‖ / ‖∂L/∂z_last‖", yscale="log")
    ax_g.invert_xaxis()
    ax_g.legend(fontsize="small")
    ax_f.legend(fontsize="small")
    fig.suptitle("Figure 2. ReLU vs Sigmoid gradient flow (Experiment 1, at initialisation)\n"
                 + _seeds_note(flow), fontsize="medium")
    return fig


def fig3_gradient_by_layer(flow: pd.DataFrame):
    flow = flow[flow["metric"] == "weight_grad_norm"]
    epochs = _epochs_of_interest(flow["epoch"])
    fig, axes = plt.subplots(1, len(epochs), figsize=(4.6 * len(epochs), 4.6), sharey=True,
                             squeeze=False)
    for ax, ep in zip(axes[0], epochs):
        for name in ordered(flow["activation"].unique()):
            d = flow[(flow["activation"] == name) & (flow["epoch"] == ep)].sort_values("layer")
            _band(ax, d, "layer", name, marker="o", ms=4)
        ax.set(title=f"epoch {ep}", xlabel="hidden layer (1 = input side)", yscale="log")
        ax.set_xticks(sorted(flow["layer"].unique()))
    axes[0, 0].set_ylabel("weight-gradient norm ‖∂L/∂W_l‖_F")
    axes[0, -1].legend(loc="best", fontsize="small")
    fig.suptitle("Figure 3. Gradient magnitude across layers (10-layer MLP, Experiment 1)\n"
                 + _seeds_note(flow), fontsize="medium")
    return fig


def fig4_gradient_ratio(ratio: pd.DataFrame):
    ratio = ratio[ratio["metric"] == "weight_grad_ratio"]
    fig, ax = plt.subplots(figsize=(8, 5))
    for name in ordered(ratio["activation"].unique()):
        _band(ax, ratio[ratio["activation"] == name].sort_values("epoch"), "epoch", name)
    ax.axhline(1.0, color="k", ls="--", lw=1.2, label="ideal ratio 1.0")
    ax.set(yscale="log", xlabel="epoch",
           ylabel="‖∂L/∂W_last‖ / ‖∂L/∂W_1‖ (last hidden layer over first)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title("Figure 4. Gradient ratio over training (>1: the gradient shrinks on its way to "
                 "layer 1)\n" + _seeds_note(ratio), fontsize="medium")
    return fig


def fig5_gradient_over_epochs(flow: pd.DataFrame):
    flow = flow[flow["metric"] == "weight_grad_norm"]
    names = ordered(flow["activation"].unique())
    vals = flow["mean"][flow["mean"] > 0]
    norm = LogNorm(vals.min(), vals.max())
    ncol = int(np.ceil(np.sqrt(len(names))))
    nrow = int(np.ceil(len(names) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 3.6 * nrow), squeeze=False,
                             sharex=True, sharey=True)
    for ax, name in zip(axes.flat, names):
        grid = flow[flow["activation"] == name].pivot(index="layer", columns="epoch", values="mean")
        m = ax.pcolormesh(grid.columns, grid.index, grid.to_numpy(), norm=norm, cmap="magma",
                          shading="nearest")
        ax.set(title=label(name), xlabel="epoch")
        ax.grid(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("hidden layer (1 = input side)")
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax in axes[:-1].flat:
        ax.set_xlabel("")
    fig.colorbar(m, ax=axes, label="‖∂L/∂W_l‖_F (geometric mean over seeds)")
    fig.suptitle("Figure 5. Gradient flow across epochs: weight-gradient norm per layer and epoch\n"
                 "(bright = large gradient, dark = starved of signal)", fontsize="medium")
    return fig


def fig6_loss_curves(loss: pd.DataFrame, runs: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(8, 5))
    for name in ordered(loss["activation"].unique()):
        _band(ax, loss[loss["activation"] == name].sort_values("epoch"), "epoch", name)
    base = runs["baseline_mse"].iloc[0]
    ax.axhline(base, color="k", ls="--", lw=1.2, label=f"constant predictor, var(y) = {base:.3f}")
    if "noise_mse" in runs:
        noise = runs["noise_mse"].iloc[0]
        ax.axhline(noise, color="0.5", ls=":", lw=1.2, label=f"noise floor, mean (y−sin x)² = {noise:.4f}")
    div = runs.groupby("activation")["diverged"].sum()
    for name, n in div[div > 0].items():
        ax.plot([], [], " ", label=f"{label(name)}: {n} seed(s) diverged, left out")
    ax.set(yscale="log", xlabel="epoch", ylabel="training MSE")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title("Figure 6. Training loss (full-batch Adam)\n" + _seeds_note(loss), fontsize="medium")
    return fig


FIGURES = {f.__name__: f for f in (fig1_activations, fig2_telephone_game, fig3_gradient_by_layer,
                                   fig4_gradient_ratio, fig5_gradient_over_epochs, fig6_loss_curves)}


def draw(name: str, tables: list[str], outputs: dict, dpi: int = 150, context: str = "notebook"):
    style(context)
    frames = [io.read_parquet(p) for p in tables]
    fig = FIGURES[name](*frames)
    save(fig, outputs, dpi)
    log.info("drew %s from %s", name, ", ".join(map(str, tables)))
