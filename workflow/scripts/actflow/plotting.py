"""Every figure of the study, drawn from Parquet tables only (no torch).

One style for all figures: matplotlib's bundled seaborn style sheets (the look of seaborn's
whitegrid theme without importing seaborn, which cost each figure job 1.5 s of its ~4 s), the
Okabe-Ito colour-blind palette with a fixed colour per activation, log scales where values span
decades, PNG + PDF output.
"""

from __future__ import annotations

import logging

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import CenteredNorm, LogNorm, Normalize  # noqa: E402

from . import io  # noqa: E402
from .claims import COLORS  # noqa: E402
from .layout import DEAD_DEFINITIONS, NOT_TRAINED  # noqa: E402
from .activations import ORDER, label, ordered  # noqa: E402  (the registry, without torch)
from .data import ordered_targets, target_label  # noqa: E402

log = logging.getLogger("actflow.plotting")
# Okabe & Ito's colour-blind-safe palette (its yellow, weak on white, replaced by black and an
# olive), in the activation registry's order: no two activations of the study look alike.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000",
             "#999933")
PALETTE = dict(zip(ORDER, OKABE_ITO))
# The z-order of a reference line that curves may sit on (var(y), a ratio of 1): over the
# curves' bands (1) and under the curves (2), so that a run that learns nothing, flat on
# var(y), is seen as a curve there and not hidden under the dashes.
UNDER_CURVES = 1.5


def color(name: str):
    return PALETTE.get(name, "0.3")


def style(context: str = "notebook") -> None:
    plt.style.use(["default", "seaborn-v0_8-whitegrid", f"seaborn-v0_8-{context}"])
    plt.rcParams.update({"axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
                         "figure.constrained_layout.use": True, "savefig.bbox": "tight",
                         "legend.frameon": False, "pdf.fonttype": 42})


def save(fig, outputs: dict, dpi: int) -> None:
    """Each format in turn, laid out once: the figure's layout engine (constrained layout)
    places the axes and the tight bounding box is measured, then every format is saved with
    that box and the layout fixed (computing both again per format was a third of a figure
    job). The engine runs by itself, not inside a whole drawing pass (which gave the same
    bytes in 5 % more time). Both run at the resolution the PNG is saved at: text measured at
    another resolution is not as wide (hinting rounds glyphs to pixels), and at a low ``dpi``
    the box clipped the longest labels."""
    fig.set_dpi(dpi)
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
    box = fig.get_tightbbox().padded(plt.rcParams["savefig.pad_inches"])
    fig.set_layout_engine("none")  # keep the positions the pass computed
    for fmt, path in outputs.items():
        meta = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
        with io.atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=meta, bbox_inches=box)
    plt.close(fig)


def _asinh_ticks(linear_width: float, lo: float, hi: float, min_gap: float = 0.12):
    """Decade ticks for an asinh axis from ``lo`` to ``hi``, 0 kept, none closer to another
    than ``min_gap`` of the axis (±10⁻¹ beside 0 would overlap it): larger magnitudes first."""
    ticks = matplotlib.ticker.AsinhLocator(linear_width, numticks=7, base=10).tick_values(lo, hi)

    def pos(t):  # where the axis draws t
        return np.arcsinh(t / linear_width)

    span = pos(hi) - pos(lo)
    kept: list[float] = []
    for t in sorted((t for t in ticks if lo <= t <= hi), key=lambda t: (t != 0, -abs(t))):
        if all(abs(pos(t) - pos(k)) >= min_gap * span for k in kept):
            kept.append(float(t))
    return matplotlib.ticker.FixedLocator(sorted(kept))


def _epochs_of_interest(epochs) -> list[int]:
    e = np.sort(np.unique(epochs))
    return list(dict.fromkeys([int(e[0]), int(e[len(e) // 2]), int(e[-1])]))


def _band(ax, df, x, name, **kw):
    ax.plot(df[x], df["mean"], color=color(name), label=label(name), **kw)
    ax.fill_between(df[x], df["ci_low"], df["ci_high"], color=color(name), alpha=0.2, lw=0)


def _empty(ax, msg="every run diverged:\nnothing finite to draw"):
    ax.text(0.5, 0.5, msg, ha="center", va="center", transform=ax.transAxes, color="firebrick")


def _setting(runs: pd.DataFrame, column: str) -> str:
    """A training setting of the runs behind a figure, as text (several values joined)."""
    values = list(dict.fromkeys(runs[column].tolist()))
    fmt = {"optimizer": lambda v: {"adam": "Adam", "sgd": "SGD"}.get(v, v),
           "learning_rate": lambda v: f"{v:g}"}.get(column, str)
    return "/".join(fmt(v) for v in values)


def _outcomes(runs: pd.DataFrame, by="activation") -> dict:
    """'4 collapsed, 1 non-finite' per activation (or per ``by`` tuple) for the runs that did
    not end ``trained`` (runs.parquet, column outcome); absent where all trained."""
    out = {}
    if "outcome" not in runs:
        return out
    for key, g in runs.groupby(by, sort=False):
        counts = g["outcome"].value_counts()
        parts = [f"{counts[o]} {o}" for o in NOT_TRAINED if o in counts]
        if parts:
            out[key] = ", ".join(parts)
    return out


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
        neg = c[c["x"] < 0]
        small = float(neg["derivative"].abs().max()) if len(neg) else np.inf
        if small < 0.1 * dmax:  # a slope too small to see at this scale (Leaky ReLU's 0.01): zoom
            ins = bot.inset_axes([0.1, 0.3, 0.36, 0.35])  # left of the step at x = 0
            ins.plot(neg["x"], neg["derivative"], color=color(name), lw=2)
            ins.set_ylim(-0.25 * max(small, 0.02), 2.5 * max(small, 0.02))
            ins.tick_params(labelsize="x-small")
            ins.set_title(f"x < 0, zoomed: slope {float(neg['derivative'].mean()):.3g}",
                          fontsize="x-small")
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
    rels = {name: (lambda f: f / f.loc[L])(flow[flow["activation"] == name].set_index("layer")["mean"])
            for name in pair}
    smallest = min((v for r in rels.values() for v in r if v > 0), default=1e-6)
    # the colour scale spans the smallest relative gradient measured (down to its decade), so
    # that every layer's colour differs, however far the signal falls
    floor = 10.0 ** np.floor(np.log10(min(smallest, 0.1)))
    norm = LogNorm(floor, 1)
    cmap = plt.get_cmap("viridis")
    for row, name in enumerate(pair):
        rel = rels[name]
        yv = len(pair) - 1 - row
        top.plot([1, L], [yv, yv], color="0.8", lw=2, zorder=0)
        for layer, v in rel.items():
            top.scatter(layer, yv, s=900 * max(v, floor) ** 0.25 + 60,
                        color=cmap(norm(max(v, floor))), edgecolor="k", zorder=2)
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
    ax_g.set_xticks(ks)  # input side on the left, as in the chain above
    ax_g.legend(fontsize="small", loc="lower right")  # the corner the curves leave empty
    ax_f.legend(fontsize="small")
    fig.suptitle("Figure 2. ReLU vs Sigmoid gradient flow (Experiment 1, at initialisation)\n"
                 + _seeds_note(flow), fontsize="medium")
    return fig


def fig3_gradient_by_layer(flow: pd.DataFrame, runs: pd.DataFrame):
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
    fig.suptitle(f"Figure 3. Gradient magnitude across layers ({_setting(runs, 'hidden_layers')}"
                 f"-layer MLP, Experiment 1)\n" + _seeds_note(flow), fontsize="medium")
    return fig


def fig4_gradient_ratio(ratio: pd.DataFrame, runs: pd.DataFrame, study=()):
    ratio = ratio[ratio["metric"] == "weight_grad_ratio"]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    names = ordered(ratio["activation"].unique())
    for name in names:
        _band(ax, ratio[ratio["activation"] == name].sort_values("epoch"), "epoch", name)
    ax.axhline(1.0, color="k", ls="--", lw=1.2, label="ideal ratio 1.0", zorder=UNDER_CURVES)
    # the claims' checks on this figure (config/claims.yaml), on log10 of the ratio within a
    # window of epochs: a bracket over the window spanning the region the mean must lie in
    epochs = int(ratio["epoch"].max())
    drawn = False
    for s in study:
        ep, act = s["filter"].get("epoch"), s["filter"].get("activation")
        if s["column"] != "log10_weight_grad_ratio" or not isinstance(ep, dict) or act not in names:
            continue
        x0, x1 = ep.get("from_fraction", 0.0) * epochs, ep.get("to_fraction", 1.0) * epochs
        if s["op"] == "between":
            lo, hi = (10.0 ** v for v in s["range"])
        elif s["op"] in (">", ">="):
            lo, hi = 10.0 ** s["value"], None
        else:
            lo, hi = None, 10.0 ** s["value"]
        ax.axvspan(x0, x1, color="0.5", alpha=0.12, lw=0, zorder=0)
        xm = (x0 + x1) / 2
        for y, mark in ((lo, "^"), (hi, "v")):
            if y is not None:  # the region's border, the triangle pointing into the region
                ax.plot([x0, x1], [y, y], color=color(act), lw=2.5, zorder=6)
                ax.plot(xm, y, marker=mark, color=color(act), ms=7, zorder=6, mec="k", mew=0.6)
        drawn = True
    if drawn:
        ax.plot([], [], ls="", marker="^", color="0.5", mec="k", mew=0.6, ms=7,
                label="claims: the mean must lie beyond each\nmarked border (triangle points "
                      "into the region)\nwithin the shaded epochs")
    ax.set(yscale="log", xlabel="epoch",
           ylabel=f"‖∂L/∂W_{_setting(runs, 'hidden_layers')}‖ / ‖∂L/∂W_1‖ "
                  "(last hidden layer over first)")
    # a label on every decade, so that a ratio below 1 (Leaky ReLU's) can be read
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, numticks=30))
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
                          shading="nearest", rasterized=True)
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


def fig6_loss_curves(loss: pd.DataFrame, runs: pd.DataFrame, study=()):
    fig, ax = plt.subplots(figsize=(9, 6.2))
    for name in ordered(loss["activation"].unique()):
        _band(ax, loss[loss["activation"] == name].sort_values("epoch"), "epoch", name)
    base = runs["baseline_mse"].iloc[0]
    ax.axhline(base, color="k", ls="--", lw=1.2, label=f"constant predictor, var(y) = {base:.3f}",
               zorder=UNDER_CURVES)
    if "noise_mse" in runs:  # above the curves, so that it stays visible where they meet it
        noise = runs["noise_mse"].iloc[0]
        ax.axhline(noise, color="0.15", ls=(0, (1, 1.5)), lw=1.4, zorder=5,
                   label=f"noise floor, mean (y−sin x)² = {noise:.4f}")
    # the claims' checks on this figure (config/claims.yaml): loss / var(y) below a threshold
    # within a window of epochs, drawn as a box: a curve that passes it runs below the box's top
    epochs = int(loss["epoch"].max())
    checks = {}
    for s in study:
        ep = s["filter"].get("epoch")
        if s["column"] == "relative_loss" and s["op"] in ("<", "<=") and isinstance(ep, dict):
            lo, hi = ep.get("from_fraction", 0.0), ep.get("to_fraction", 1.0)
            checks.setdefault((lo, hi, s["value"]), []).append(s["filter"]["activation"])
    for (lo, hi, value), names in checks.items():
        x0, x1 = lo * epochs, hi * epochs
        ax.axvspan(x0, x1, color="firebrick", alpha=0.15, lw=0, zorder=0)
        ax.hlines(value * base, x0, x1, color="firebrick", lw=2.5, zorder=6)
        ax.plot((x0 + x1) / 2, value * base, marker="v", color="firebrick", ms=8, zorder=6,
                label=f"claims ({', '.join(map(label, ordered(names)))}): loss < {100 * value:g} "
                      f"% of var(y) at "
                      f"epochs {x0:g}–{x1:g} (shaded)", ls="")
    for name, what in _outcomes(runs).items():
        ax.plot([], [], " ", label=f"{label(name)}: {what} (non-finite left out)")
    ax.set(yscale="log", xlabel="epoch", ylabel="training MSE")
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    ax.set_title(f"Figure 6. Training loss (full-batch {_setting(runs, 'optimizer')}, learning rate "
                 f"{_setting(runs, 'learning_rate')})\n" + _seeds_note(loss), fontsize="medium")
    return fig


DEF_COLORS = dict(zip([*DEAD_DEFINITIONS, "exact_zero_fraction", "near_zero_fraction"],
                      plt.style.library["seaborn-v0_8-deep"]["axes.prop_cycle"].by_key()["color"]))


def _bars(ax, df, names, groups, group_col):
    width = 0.8 / len(groups)
    for j, g in enumerate(groups):
        d = df[df[group_col] == g].set_index("activation").reindex(names)
        xs = np.arange(len(names)) - 0.4 + width * (j + 0.5)
        err = np.vstack([d["mean"] - d["ci_low"], d["ci_high"] - d["mean"]])
        ax.bar(xs, d["mean"], width, color=DEF_COLORS[g], label=g.replace("_", " "),
               yerr=np.nan_to_num(err), capsize=2, error_kw={"lw": 1})
        for x, m in zip(xs, d["mean"]):  # a measured 0 is a result, not a missing bar
            if m == 0:
                ax.plot([x - width / 2, x + width / 2], [0, 0], color=DEF_COLORS[g], lw=3,
                        solid_capstyle="butt", clip_on=False, zorder=3)
                ax.text(x, 0.01, "0", ha="center", va="bottom", fontsize="x-small",
                        color=DEF_COLORS[g])
    ax.set_xticks(range(len(names)), [label(n) for n in names], rotation=20)
    ax.set_ylim(0, 1)  # fractions


def _stages(runs1, runs2):
    return [("init", "exp2", "at initialisation"),
            ("trained", "exp1", f"trained, Experiment 1 (lr {_setting(runs1, 'learning_rate')})"),
            ("trained", "exp2", f"trained, Experiment 2 (lr {_setting(runs2, 'learning_rate')})")]


def fig7_dead_neurons(dead1, sparse1, dead2, sparse2, runs1, runs2, study=()):
    dead = pd.concat([dead1, dead2])
    sparse = pd.concat([sparse1, sparse2])
    names = ordered(dead["activation"].unique())
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), sharey="row")
    for col, (stage, exp, title) in enumerate(_stages(runs1, runs2)):
        sel = (dead["stage"] == stage) & (dead["experiment"] == exp)
        _bars(axes[0, col], dead[sel], names, list(DEAD_DEFINITIONS), "definition")
        sel = (sparse["stage"] == stage) & (sparse["experiment"] == exp)
        _bars(axes[1, col], sparse[sel], names, ["exact_zero_fraction", "near_zero_fraction"],
              "metric")
        axes[0, col].set_title(title, pad=44)  # room for the outcome notes above the axes
        if stage == "trained" and exp == "exp2":
            n_runs = runs2.groupby("activation").size()
            for name, what in _outcomes(runs2).items():
                if name in names:
                    text = f"of {n_runs[name]} runs:\n" + what.replace(", ", "\n")
                    for ax in axes[:, col]:  # above the axes, below the panel's title
                        ax.text(names.index(name), 1.01, text, ha="center", va="bottom",
                                fontsize="x-small", color="firebrick",
                                transform=ax.get_xaxis_transform())
            # the study's numbers (config/claims.yaml), over all hidden layers, dead = output 0
            marks = {s["filter"]["activation"]: s["value"] for s in study
                     if s["op"] == "approx" and s["column"] == "dead_fraction" and "layer" not in s["filter"]
                     and s["filter"].get("definition") == "zero"
                     and s["filter"].get("experiment") == exp and s["filter"].get("activation")}
            for name, value in marks.items():
                if name in names:  # a line across the activation's bars, ends marked: seen at 0
                    i = names.index(name)
                    axes[0, col].plot([i - 0.42, i + 0.42], [value, value], color="k", lw=1.5,
                                      ls=":", marker="<", markevery=[1], ms=7, clip_on=False,
                                      zorder=4)
            if marks:
                axes[0, col].plot([], [], color="k", lw=1.5, ls=":", marker="<", ms=7,
                                  label="the study: " + ", ".join(
                                      f"{label(n)} {100 * v:.3g} %" for n, v in marks.items()))
    axes[0, 0].set_ylabel("dead-neuron fraction\n(all hidden neurons)")
    axes[1, 0].set_ylabel("activation sparsity\n(share of values, all layers)")
    axes[0, 2].legend(title="dead when, for every input,", fontsize="small", loc="upper left",
                      bbox_to_anchor=(1.01, 1))
    axes[1, 2].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle("Figure 7. Dead neurons and sparsity under stress (Experiment 2: learning rate "
                 f"{_setting(runs2, 'learning_rate')}) against Experiment 1 and initialisation\nbars: mean over seeds; whiskers: "
                 "95 % interval. zero: output exactly 0; nonpositive: output ≤ 0; no gradient: "
                 "|σ′(z)| below tolerance", fontsize="medium")
    return fig


def fig8_activation_distributions(hist1, hist2, runs1, runs2):
    """The share of activation values per bin, one step line per hidden layer (colour = depth);
    the end bins (which also hold the values beyond the binned range) as circles, apart from
    the lines."""
    h = pd.concat([hist1, hist2])
    h = h[h["stage"] == "trained"]
    names = ordered(h["activation"].unique())
    exps = sorted(h["experiment"].unique())
    fig, axes = plt.subplots(len(exps), len(names), figsize=(3.8 * len(names), 3.4 * len(exps)),
                             squeeze=False)
    L = int(h["layer"].max())
    cmap = plt.get_cmap("viridis")
    for r, exp in enumerate(exps):
        for c, name in enumerate(names):
            ax = axes[r, c]
            d = h[(h["experiment"] == exp) & (h["activation"] == name)]
            n_div = d.loc[d["diverged"], "seed"].nunique()
            d = d[~d["diverged"]]
            ax.set(title=f"{label(name)} — {exp}", xlabel="activation value σ(z)")
            if n_div:
                ax.text(0.98, 0.98, f"{n_div} seed(s) diverged, left out", ha="right", va="top",
                        transform=ax.transAxes, fontsize="x-small", color="firebrick")
            if d.empty:
                _empty(ax)
                continue
            pooled = d.groupby(["layer", "bin_left", "bin_right"], as_index=False)["count"].sum()
            for layer, g in pooled.groupby("layer"):
                g = g.sort_values("bin_left")
                frac = (g["count"] / g["count"].sum()).where(lambda f: f > 0)
                mid = (g["bin_left"] + g["bin_right"]) / 2
                col = cmap((layer - 1) / max(L - 1, 1))
                ax.plot(mid.iloc[1:-1], frac.iloc[1:-1], color=col, lw=1.1, drawstyle="steps-mid")
                ax.plot(mid.iloc[[0, -1]], frac.iloc[[0, -1]], ls="", marker="o", mfc="none",
                        mec=col, ms=5, mew=1.1)
            ax.set_yscale("log")
            widths = (pooled["bin_right"] - pooled["bin_left"]).to_numpy()
            if widths.max() > 3 * widths.min():  # a long tail's asinh-spaced bins (neurons.
                # histogram_edges): an asinh axis, on which they are evenly spaced again
                lw = max(5 * float(widths.min()), 0.1)
                ax.set_xscale("asinh", linear_width=lw)
                lo, hi = float(pooled["bin_left"].min()), float(pooled["bin_right"].max())
                ax.set_xlim(lo, hi)
                ax.xaxis.set_major_locator(_asinh_ticks(lw, lo, hi))
                ax.tick_params(axis="x", labelrotation=30)
            else:
                ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    for ax in axes[:, 0]:
        ax.set_ylabel("share of values (pooled seeds)")
    fig.colorbar(plt.cm.ScalarMappable(plt.Normalize(1, L), cmap), ax=axes, label="hidden layer")
    fig.suptitle("Figure 8. Distribution of activation values across layers (trained nets; "
                 f"exp1: lr {_setting(runs1, 'learning_rate')}, exp2: lr "
                 f"{_setting(runs2, 'learning_rate')}; diverged runs left out)\nbin edges fixed per "
                 "activation over its 0.1–99.9 % range (asinh-spaced for a long tail, on an asinh "
                 "axis); circles: the two end bins, which also hold the values beyond it",
                 fontsize="medium")
    return fig


def fig9_hidden_activations(hidden: pd.DataFrame):
    seed = int(hidden["seed"].min())
    h = hidden[hidden["seed"] == seed]
    names = ordered(h["activation"].unique())
    layers = sorted(h["layer"].unique())
    fig, axes = plt.subplots(len(names), len(layers), figsize=(4.2 * len(layers) + 1, 2.6 * len(names)),
                             squeeze=False)
    for r, name in enumerate(names):
        d = h[h["activation"] == name]
        finite = d["activation_value"][np.isfinite(d["activation_value"])]
        lo, hi = np.percentile(finite, [1, 99]) if len(finite) else (0.0, 1.0)
        hi = max(hi, lo + 1e-9)
        # values of one sign (Sigmoid, ReLU): a sequential map from the lowest; of both signs
        # (tanh, Leaky ReLU, GELU): a diverging map centred on 0 with the same scale on both
        # sides, so that Leaky ReLU's small negative outputs look as small as they are
        if lo < 0 < hi:
            cmap, norm = "coolwarm", CenteredNorm(vcenter=0.0, halfrange=max(-lo, hi))
        else:
            cmap, norm = "viridis", Normalize(vmin=lo, vmax=hi)
        for c, layer in enumerate(layers):
            g = d[d["layer"] == layer].pivot(index="neuron", columns="x", values="activation_value")
            g = g.loc[g.mean(axis=1).sort_values().index]
            ax = axes[r, c]
            if not np.isfinite(g.to_numpy()).any():
                _empty(ax, "this run diverged:\nno finite activations")
            m = ax.pcolormesh(g.columns, np.arange(len(g)), g.to_numpy(), cmap=cmap, norm=norm,
                              shading="nearest", rasterized=True)
            ax.grid(False)
            ax.set_title(f"{label(name)}, layer {layer}", fontsize="small")
            if c == 0:
                ax.set_ylabel("neuron (sorted by mean)")
            if r == len(names) - 1:
                ax.set_xlabel("input x (sorted)")
        fig.colorbar(m, ax=axes[r, :].tolist(), label="σ(z)", pad=0.01)
    fig.suptitle(f"Figure 9. Activation of each neuron over the sorted inputs at layers "
                 f"{', '.join(map(str, layers))} (Experiment 1, trained, seed {seed})",
                 fontsize="medium")
    return fig


def fig10_capacity_heatmap(summary: pd.DataFrame, winners: pd.DataFrame, runs: pd.DataFrame):
    s = summary[summary["metric"] == "test_mse"]
    names = ordered(s["activation"].unique())
    targets = ordered_targets(s["target"].unique())
    grid = s.pivot(index="activation", columns="target", values="mean").reindex(index=names,
                                                                                 columns=targets)
    lows = s.pivot(index="activation", columns="target", values="ci_low").reindex(
        index=names, columns=targets).to_numpy()
    highs = s.pivot(index="activation", columns="target", values="ci_high").reindex(
        index=names, columns=targets).to_numpy()
    fig, ax = plt.subplots(figsize=(2.1 * len(targets) + 3, 1.0 * len(names) + 2.2))
    vals = grid.to_numpy()
    # colour: how far each activation lies above the best one on the same target (log10 of the
    # ratio), so that every target's ranking reads on one scale, whatever its own MSE level
    with np.errstate(divide="ignore", invalid="ignore"):
        logv = np.where(np.isfinite(vals) & (vals > 0), np.log10(vals), np.nan)
        rel = logv - np.nanmin(np.where(np.isnan(logv), np.inf, logv), axis=0, keepdims=True)
    # capped at one order of magnitude: the differences between close competitors stay visible;
    # a cell 10× or more above the best is dark, its number says how far
    norm = Normalize(0, 1.0, clip=True)
    m = ax.imshow(rel, cmap="viridis_r", norm=norm, aspect="auto")
    notes = _outcomes(runs, ["activation", "target"])
    for i, name in enumerate(names):
        for j, target in enumerate(targets):
            v = vals[i, j]
            txt = "diverged" if not np.isfinite(v) else (
                f"{v:.3g}\n[{lows[i, j]:.2g}, {highs[i, j]:.2g}]"
                if np.isfinite(lows[i, j]) and np.isfinite(highs[i, j]) else f"{v:.3g}")
            if (name, target) in notes:
                txt += "\n" + notes[(name, target)]
            dark = np.isfinite(rel[i, j]) and norm(rel[i, j]) > 0.45
            ax.text(j, i, txt, ha="center", va="center", fontsize="small",
                    color="w" if dark else "k")
    for _, w in winners.iterrows():
        if w["target"] in targets and w["best"] in names:
            i, j = names.index(w["best"]), targets.index(w["target"])
            holds = bool(w["lead_holds"])
            ax.add_patch(plt.Rectangle((j - 0.48, i - 0.48), 0.96, 0.96, fill=False,
                                       ec="red" if holds else "0.6", lw=3 if holds else 1.2,
                                       ls="-" if holds else "--"))
    ax.set_xticks(range(len(targets)), [target_label(t) for t in targets])
    ax.set_yticks(range(len(names)), [label(n) for n in names])
    ax.grid(False)
    fig.colorbar(m, ax=ax, extend="max", label="orders of magnitude above the target's best\n"
                 "(log₁₀ of the ratio of geometric means; lighter = better)")
    ax.set_title(f"Figure 10. Test MSE per activation × target ({_setting(runs, 'hidden_layers')} "
                 "hidden layers, clean test grid)\ncell: geometric mean over seeds [95 % "
                 "interval]; colour: distance from the best on that target\n"
                 "red box: best activation whose lead over the runner-up holds across seeds "
                 "(paired 95 % interval above 0);\ngrey dashed box: lowest mean, lead not "
                 "established", fontsize="medium")
    return fig


def fig11_predictions(pred: pd.DataFrame):
    """Per target (rows) and activation (columns): the prediction, mean over seeds with its
    95 % interval, under the clean target drawn on top; below each, the residual."""
    from .stats import t_halfwidth

    names = ordered(pred["activation"].unique())
    targets = ordered_targets(pred["target"].unique())
    fig = plt.figure(figsize=(3.4 * len(names), 3.3 * len(targets)))
    gs = fig.add_gridspec(2 * len(targets), len(names), height_ratios=[1, 0.4] * len(targets),
                          hspace=0.08)
    share = None
    for r, target in enumerate(targets):
        truth = pred[pred["target"] == target].drop_duplicates("x").sort_values("x")
        lo, hi = truth["y_true"].min(), truth["y_true"].max()
        pad = 0.25 * (hi - lo)
        res_lim = 0.0
        res_axes = []
        for c, name in enumerate(names):
            ax = fig.add_subplot(gs[2 * r, c], sharex=share)
            share = share or ax
            rax = fig.add_subplot(gs[2 * r + 1, c], sharex=share)
            d = pred[(pred["target"] == target) & (pred["activation"] == name)]
            g = d.groupby("x")["y_pred"]
            mean, sd, n = g.mean(), g.std(ddof=1), g.count()
            half = pd.Series(t_halfwidth(sd.to_numpy(), n.to_numpy()), index=mean.index)
            ax.fill_between(mean.index, mean - half, mean + half, color=color(name), alpha=0.3,
                            lw=0)
            ax.plot(mean.index, mean, color=color(name), lw=1.8)
            # the truth above the fit: white under black dashes, visible where they coincide
            ax.plot(truth["x"], truth["y_true"], color="w", lw=2.4, zorder=3)
            ax.plot(truth["x"], truth["y_true"], "k--", lw=1.1, zorder=4)
            ax.set_ylim(lo - pad, hi + pad)
            resid = mean - truth.set_index("x")["y_true"].reindex(mean.index)
            rax.fill_between(mean.index, resid - half, resid + half, color=color(name),
                             alpha=0.3, lw=0)
            rax.plot(mean.index, resid, color=color(name), lw=1.2)
            rax.axhline(0, color="k", lw=0.8, ls="--")
            res_lim = max(res_lim, float(np.nanmax(np.abs(resid + half.fillna(0)))),
                          float(np.nanmax(np.abs(resid - half.fillna(0)))))
            res_axes.append(rax)
            ax.tick_params(labelbottom=False)
            if r < len(targets) - 1:
                rax.tick_params(labelbottom=False)
            else:
                rax.set_xlabel("x")
            if r == 0:
                ax.set_title(label(name))
            if c == 0:
                ax.set_ylabel(target_label(target))
                rax.set_ylabel("residual", fontsize="x-small")
        for rax in res_axes:  # one residual scale per target: the activations compare at a glance
            rax.set_ylim(-1.1 * res_lim or -1, 1.1 * res_lim or 1)
            rax.tick_params(labelsize="x-small")
    fig.suptitle("Figure 11. Learned functions (colour: mean over seeds, band: 95 % interval) "
                 "against the ground truth (black dashed, on top);\nbelow each: the residual, "
                 "prediction − truth, on one scale per target", fontsize="medium")
    return fig


# ----------------------------------------------------------------- the variants' figures
def _settings_of(frame: pd.DataFrame, experiment: str, settings: dict) -> list[str]:
    """The settings of one experiment present in a union table, the study's first, then its
    variants in the config's order (``settings``: name -> what it changes)."""
    names = list(dict.fromkeys(frame.loc[frame["experiment"] == experiment, "variant"]))
    order = {v: i for i, v in enumerate(settings)}
    return sorted(names, key=lambda v: (v != experiment, order.get(v, len(order))))


def _setting_title(variant: str, experiment: str, settings: dict) -> str:
    if variant == experiment:
        return "the study's setting"
    return _setting_lines(str(settings.get(variant, variant)), width=22)


def fig13_variants_sine(loss: pd.DataFrame, dead: pd.DataFrame, runs: pd.DataFrame,
                        experiment: str, settings=None):
    """Small multiples, one column per setting of a sine experiment (the study's and each
    variant): the training loss (geometric mean over seeds, 95 % band) and the dead fraction
    after training (zero definition, mean over layers, 95 % interval), per activation."""
    from .stats import t_halfwidth

    settings = settings or {}
    names = _settings_of(loss, experiment, settings)
    acts = ordered(loss.loc[loss["experiment"] == experiment, "activation"].unique())
    nrow = -(-max(len(names), 1) // 5)  # at most five settings a row, rows filled evenly;
    ncol = -(-max(len(names), 1) // nrow)  # each setting a loss panel over a bar panel
    fig, grid = plt.subplots(2 * nrow, ncol, figsize=(3.4 * ncol + 1.2, 5.6 * nrow),
                             squeeze=False, height_ratios=[1.2, 1] * nrow)
    axes = np.array([[grid[2 * (j // ncol), j % ncol] for j in range(len(names))],
                     [grid[2 * (j // ncol) + 1, j % ncol] for j in range(len(names))]])
    used = {id(ax) for ax in axes.flat}
    for ax in grid.flat:  # the last row's empty places
        ax.set_visible(id(ax) in used)
    lows, highs, bases = [], [], []
    for j, v in enumerate(names):
        top, bot = axes[0, j], axes[1, j]
        lv = loss[(loss["experiment"] == experiment) & (loss["variant"] == v)]
        for a in acts:
            d = lv[lv["activation"] == a]
            logl = np.log10(d["loss"].where(d["loss"] > 0))
            g = logl.groupby(d["epoch"])
            m, sd, n = g.mean(), g.std(ddof=1), g.count()
            h = t_halfwidth(sd.to_numpy(), n.to_numpy())
            top.plot(m.index, 10 ** m, color=color(a), lw=1.4, label=label(a))
            top.fill_between(m.index, 10 ** (m - h), 10 ** (m + h), color=color(a), alpha=0.2,
                             lw=0)
            if m.notna().any():
                lows.append(float(m.min()))
                highs.append(float(m.max()))
        base = runs.loc[(runs["experiment"] == experiment) & (runs["variant"] == v),
                        "baseline_mse"]
        if len(base):
            top.axhline(float(base.iloc[0]), color="k", ls="--", lw=1, zorder=UNDER_CURVES)
            bases.append(float(base.iloc[0]))
        top.set(yscale="log", xlabel="epoch", title=_setting_title(v, experiment, settings))
        # the runs that did not end trained, named in their activation's colour under the
        # panel (not over its curves): curves that lie on one another (every run collapsed
        # onto var(y)) show as one line
        notes = _outcomes(runs[(runs["experiment"] == experiment) & (runs["variant"] == v)])
        for k, a in enumerate(a for a in acts if a in notes):
            top.annotate(f"{label(a)}: {notes[a]}", (0, 0), xycoords="axes fraction",
                         xytext=(0, -36 - 8 * k), textcoords="offset points", color=color(a),
                         fontsize="x-small", ha="left", va="top")
        dv = dead[(dead["experiment"] == experiment) & (dead["variant"] == v)
                  & (dead["stage"] == "trained") & (dead["definition"] == DEAD_DEFINITIONS[0])
                  & ~dead["diverged"].astype(bool)]
        per_seed = dv.groupby(["activation", "seed"])["dead_fraction"].mean()
        for i, a in enumerate(acts):
            vals = per_seed.loc[a].to_numpy() if a in per_seed.index.get_level_values(0) else []
            if len(vals) == 0:
                bot.text(i, 0.02, "no finite run", rotation=90, ha="center", fontsize="x-small")
                continue
            m = float(np.mean(vals))
            h = float(t_halfwidth(np.std(vals, ddof=1), len(vals))) if len(vals) > 1 else 0.0
            bot.bar(i, m, 0.7, color=color(a), yerr=[[min(h, m)], [min(h, 1 - m)]], capsize=3)
            if m == 0:
                bot.plot([i - 0.35, i + 0.35], [0, 0], color=color(a), lw=3, clip_on=False)
                bot.text(i, 0.01, "0", ha="center", va="bottom", fontsize="x-small")
        bot.set_xticks(range(len(acts)), [label(a) for a in acts], rotation=30)
        bot.set_ylim(0, 1)
        if v == experiment:
            for ax in (top, bot):
                for side in ax.spines.values():
                    side.set_linewidth(2)
                    side.set_edgecolor("k")
    if lows:  # one loss scale for every panel: the means' range, an explosion capped at
        # 10⁴ × var(y) (its band leaves the panel)
        cap = 1e4 * max(bases) if bases else 10 ** max(highs) * 2
        for ax in axes[0]:
            ax.set_ylim(10 ** min(lows) / 2, min(10 ** max(highs) * 2, cap))
    for ax in grid[::2, 0]:
        ax.set_ylabel("training MSE")
    for ax in grid[1::2, 0]:
        ax.set_ylabel(f"dead fraction after training\n({DEAD_DEFINITIONS[0]}, mean over layers)")
    grid[0, -1].legend(handles=axes[0, 0].get_legend_handles_labels()[0], fontsize="small",
                       loc="upper left", bbox_to_anchor=(1.02, 1))
    from .layout import EXPERIMENT_TITLES

    fig.suptitle(_wrap(f"{EXPERIMENT_TITLES.get(experiment, experiment)} under every variant "
                       "(framed: the study's setting). Top: training loss, geometric mean over "
                       "seeds, 95 % band, var(y) dashed; bottom: dead fraction after training, "
                       "mean over seeds with its 95 % interval (diverged runs left out)",
                       28 * ncol + 20), fontsize="medium")
    return fig


def fig13_variants_capacity(capacity: pd.DataFrame, experiment: str, settings=None):
    """Small multiples, one panel per setting of a capacity experiment: test MSE per
    activation × target (geometric mean over seeds), coloured by its distance from the best
    activation on that target, as in Figure 10."""
    settings = settings or {}
    c = capacity[capacity["experiment"] == experiment]
    names = _settings_of(c, experiment, settings)
    acts = ordered(c["activation"].unique())
    targets = ordered_targets(c["target"].unique())
    ncol = min(max(len(names), 1), 2)
    nrow = -(-max(len(names), 1) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(1.25 * len(targets) * ncol + 2.8,
                                                  (0.55 * len(acts) + 2.2) * nrow),
                             squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    norm = Normalize(0, 1.0, clip=True)
    m = None
    for j, v in enumerate(names):
        ax = axes.flat[j]
        d = c[(c["variant"] == v) & ~c["diverged"].astype(bool) & (c["test_mse"] > 0)]
        geo = np.log10(d["test_mse"]).groupby([d["activation"], d["target"]]).mean().unstack()
        geo = geo.reindex(index=acts, columns=targets)
        rel = geo - geo.min(axis=0)
        m = ax.imshow(rel.to_numpy(), cmap="viridis_r", norm=norm, aspect="auto")
        for i in range(len(acts)):
            for k in range(len(targets)):
                val = geo.iloc[i, k]
                txt = "—" if not np.isfinite(val) else f"{10 ** val:.2g}"
                dark = np.isfinite(rel.iloc[i, k]) and norm(rel.iloc[i, k]) > 0.45
                ax.text(k, i, txt, ha="center", va="center", fontsize="x-small",
                        color="w" if dark else "k")
        ax.set_xticks(range(len(targets)), [target_label(t) for t in targets], rotation=45)
        ax.set_yticks(range(len(acts)), [label(a) for a in acts])
        ax.grid(False)
        ax.set_title(_setting_title(v, experiment, settings), fontsize="small")
        if v == experiment:
            for side in ax.spines.values():
                side.set_linewidth(2.5)
                side.set_edgecolor("k")
    if m is not None:
        fig.colorbar(m, ax=axes, extend="max", shrink=0.6,
                     label="orders of magnitude above\nthe target's best (lighter = better)")
    from .layout import EXPERIMENT_TITLES

    fig.suptitle(_wrap(f"{EXPERIMENT_TITLES.get(experiment, experiment)} under every variant "
                       "(framed: the study's setting): test MSE, geometric mean over seeds",
                       40 * ncol + 20), fontsize="medium")
    return fig


def grid_figure(sensitivity: pd.DataFrame, claims: pd.DataFrame, name: str, grid: dict):
    """One grid variant (actflow.variants.grids): each claim of its experiment whose verdict
    changes somewhere on the grid, its measured mean and 95 % interval at every grid value
    (marker coloured by the verdict there), the region the claim asks for shaded, and the
    study's setting: a point of the curve where the grid changes nothing else, else a dashed
    line."""
    exp, keys = grid["experiment"], grid["keys"]
    key = keys[0]  # the x axis; a second key of the grid gives one series per value
    points = [(v, vals) for v, vals in grid["points"]]
    names = [v for v, _ in points]
    s = sensitivity[sensitivity["experiment"] == exp]
    moved = s[s["variant"].isin(names)]
    changed = list(dict.fromkeys(moved.loc[moved["differs"], "claim"]))
    xs = [vals[key] for _, vals in points] + ([grid["study"][key]] if grid.get("study") else [])
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
    logx = numeric and min(xs) > 0 and max(xs) / min(xs) >= 10
    cats = list(dict.fromkeys(map(str, xs)))

    def xpos(value):
        return value if numeric else cats.index(str(value))

    n = max(len(changed), 1)
    ncol = min(n, 4)
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol + 0.6, 3.0 * nrow + 1.2),
                             squeeze=False)
    for ax in axes.flat[len(changed):]:
        ax.set_visible(False)
    if not changed:
        axes[0, 0].set_visible(True)
        axes[0, 0].axis("off")
        axes[0, 0].text(0.5, 0.5, f"no claim of {exp} changes its verdict\nanywhere on this grid",
                        ha="center", va="center", transform=axes[0, 0].transAxes)
    facts = claims.set_index("claim") if len(claims) else None
    series = sorted({tuple((k, vals[k]) for k in keys[1:]) for _, vals in points})
    shapes = dict(zip(series, "osD^v<>"))
    for ax, claim in zip(axes.flat, changed):
        rows = s[s["claim"] == claim].set_index("variant")
        for ser in series:
            pts = [(xpos(vals[key]), rows.loc[v]) for v, vals in points
                   if v in rows.index and tuple((k, vals[k]) for k in keys[1:]) == ser]
            pts.sort(key=lambda p: p[0])
            xv = [p[0] for p in pts]
            ax.plot(xv, [p[1]["measured_mean"] for p in pts], color="0.6", lw=1, zorder=1)
            for x, r in pts:
                lo, hi = r["ci_low"], r["ci_high"]
                if lo == lo and hi == hi:
                    ax.plot([x, x], [lo, hi], color="0.3", lw=1.2, zorder=2)
                ax.plot(x, r["measured_mean"], shapes[ser], color=VERDICT_COLORS[r["verdict"]],
                        mec="k", mew=0.6, ms=8, zorder=3,
                        label=", ".join(f"{k}={v}" for k, v in ser) or None)
        if exp in rows.index:
            r = rows.loc[exp]
            if grid.get("study"):  # the study's setting lies on this curve
                x = xpos(grid["study"][key])
                ax.plot([x, x], [r["ci_low"], r["ci_high"]], color="0.3", lw=1.2, zorder=2)
                ax.plot(x, r["measured_mean"], "*", color=VERDICT_COLORS[r["verdict"]], mec="k",
                        mew=0.6, ms=13, zorder=3)
            else:
                ax.axhline(r["measured_mean"], color="k", ls="--", lw=1)
        if facts is not None and claim in facts.index:
            f = facts.loc[claim]
            lo, hi = f.get("region_low"), f.get("region_high")
            lo = lo if lo == lo and np.isfinite(lo) else None
            hi = hi if hi == hi and np.isfinite(hi) else None
            if lo is not None or hi is not None:
                ax.axhspan(lo if lo is not None else ax.get_ylim()[0],
                           hi if hi is not None else ax.get_ylim()[1], color="#5aae61",
                           alpha=0.15, lw=0, zorder=0)
        if logx:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(cats)), cats, rotation=15)
        unit = str(rows["unit"].iloc[0]) if "unit" in rows and len(rows) else ""
        ax.set(title=claim, xlabel=key, ylabel=unit)
        ax.title.set_fontsize("small")
    handles = [plt.Line2D([], [], ls="", marker="o", color=c, mec="k", ms=7, label=v)
               for v, c in VERDICT_COLORS.items()]
    handles.append(plt.Rectangle((0, 0), 1, 1, color="#5aae61", alpha=0.15,
                                 label="the region the claim asks for"))
    handles.append(plt.Line2D([], [], ls="", marker="*", color="0.5", mec="k", ms=11,
                              label="the study's setting") if grid.get("study") else
                   plt.Line2D([], [], color="k", ls="--", label="the study's setting"))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=min(len(handles), 4), fontsize="small", frameon=False)
    from .layout import EXPERIMENT_TITLES

    fig.suptitle(f"The grid {name} ({EXPERIMENT_TITLES.get(exp, exp)}): the claims whose verdict "
                 f"changes on it, against {key}\n{grid.get('question', '')}\nmean over seeds "
                 "with its 95 % interval; colour: the verdict there", fontsize="medium")
    return fig


VERDICT_COLORS = COLORS  # one palette for the verdicts, in the HTML tables and the figures


def _setting_lines(text: str, width: int = 14) -> str:
    """A variant's settings ('learning_rate=0.01, optimizer=sgd') as a short column label: one
    setting per line, a long one broken after its '=' (and before a parenthesis)."""
    lines = []
    for part in text.split(", "):
        if len(part) > width and "=" in part:
            key, value = part.split("=", 1)
            lines += [key + "=", *value.replace(" (", "\n(").split("\n")]
        else:
            lines.append(part)
    return "\n".join(lines)


def fig12_sensitivity(sensitivity: pd.DataFrame, experiment: str):
    """One experiment's claims (rows, with the unit of each value) × its settings (columns: the
    study's first, then its variants, labelled by what they change); cells coloured by verdict
    and labelled with the measured mean."""
    from .layout import EXPERIMENT_TITLES

    s = sensitivity[sensitivity["experiment"] == experiment]
    names = list(dict.fromkeys(s["variant"]))
    names.sort(key=lambda v: v != experiment)  # the study's setting first
    overrides = dict(zip(s["variant"], s["overrides"]))
    claims = list(dict.fromkeys(s["claim"]))
    units = {r.claim: r.unit for r in s.itertuples() if getattr(r, "unit", "")}
    cell = {(r.claim, r.variant): r for r in s.itertuples()}
    # the legend in 4 columns below the cells needs about 8 inches: with few settings it goes
    # in 2 (else constrained layout, making room for it, squeezes the cells to nothing)
    legend_columns = 4 if len(names) >= 4 else 2
    fig, ax = plt.subplots(figsize=(4.2 + 1.25 * max(len(names), 2),
                                    1.9 + 0.34 * len(claims) + 0.25 * (4 - legend_columns)))
    for i, claim in enumerate(claims):
        for j, variant in enumerate(names):
            r = cell.get((claim, variant))
            if r is None:
                continue
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color=VERDICT_COLORS[r.verdict],
                                       ec="white", lw=1.5))
            label = "" if pd.isna(r.measured_mean) else f"{r.measured_mean:.3g}"
            ax.text(j, i, label, ha="center", va="center", fontsize="small")
            if r.differs:
                ax.plot(j + 0.38, i - 0.28, "o", color="k", ms=3.5)
            if getattr(r, "readings_label", "") == "depends on reading":
                ax.plot(j - 0.38, i - 0.28, "D", mfc="none", mec="k", ms=3.5, mew=0.9)
    if claims:
        ax.add_patch(plt.Rectangle((-0.5, -0.5), 1, len(claims), fill=False, ec="k", lw=1.8,
                                   zorder=3))
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylim(len(claims) - 0.5, -0.5)
    ax.xaxis.tick_top()
    ax.set_xticks(range(len(names)), [
        "the study's\nsetting" if v == experiment
        else _setting_lines(str(overrides[v])) for v in names],
        fontsize="small")
    ax.set_yticks(range(len(claims)), [
        f"{c} [{units[c]}]" if c in units else c for c in claims], fontsize="small")
    ax.tick_params(length=0)
    ax.grid(False)
    for side in ax.spines.values():
        side.set_visible(False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in VERDICT_COLORS.values()]
    handles.append(plt.Line2D([], [], ls="", marker="o", color="k", ms=4))
    handles.append(plt.Line2D([], [], ls="", marker="D", color="k", mfc="none", mec="k", ms=5,
                              mew=1))
    ax.legend(handles, list(VERDICT_COLORS) + ["differs from the study's setting",
                                               "another reading of the words\nflips it "
                                               "(same runs)"],
              loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=legend_columns,
              fontsize="small", frameon=False)
    title = EXPERIMENT_TITLES.get(experiment, experiment)
    ax.set_title(f"{title}: the claims under the study's setting (framed) and each variant\n"
                 f"cell: verdict (colour) and measured mean over seeds; row: claim [unit]",
                 fontsize="medium", pad=12)
    return fig


def draw(name: str, tables: dict, outputs: dict, dpi: int = 150, context: str = "notebook",
         study=(), settings=None):
    """Draw figure ``name`` (an entry of actflow.figures.FIGURES, drawn by its plotting function
    here, with the entry's options) from its tables, given by the keywords of that function; a
    function with a ``study`` keyword also gets the study's own numbers and the claims'
    thresholds (actflow.claims.study_values), one with a ``settings`` keyword what each
    variant changes (variant name -> actflow.variants.describe)."""
    import inspect

    from .figures import FIGURES

    style(context)
    entry = FIGURES[name]
    fn = globals()[entry.plotter]
    takes = inspect.signature(fn).parameters
    extra = {"study": list(study)} if "study" in takes else {}
    if "settings" in takes:
        extra["settings"] = dict(settings or {})
    fig = fn(**{kw: io.read_parquet(p) for kw, p in tables.items()}, **entry.options, **extra)
    save(fig, outputs, dpi)
    log.info("drew %s from %s", name, ", ".join(map(str, tables.values())))


# ----------------------------------------------------------------- specification curves
def reading_curve(rows: pd.DataFrame, facts: pd.Series):
    """One claim's specification curve: every reading's measured value and 95 % interval,
    sorted, coloured by verdict, over the region the claim asks for (shaded per reading); the
    primary reading ringed; below, which value of each open choice each reading takes.

    Laid out by hand (fixed margins from the labels' lengths), not by constrained layout: the
    audit draws dozens of these, and the layout pass was half of each figure's time."""
    import json

    missing = int(rows["measured_mean"].isna().sum())  # readings with nothing to measure
    g = rows[rows["measured_mean"].notna()].sort_values(
        ["measured_mean", "reading_index"], kind="stable").reset_index(drop=True)
    choices = [json.loads(c) for c in g["choices"]]
    declared = [json.loads(c) for c in rows.sort_values("reading_index")["choices"]]
    families = list(dict.fromkeys(k for c in declared for k in c))
    levels = [(f, v) for f in families for v in dict.fromkeys(c.get(f) for c in declared)]
    names = [f"{f}: {v}" for f, v in levels]
    n = len(g)
    title = (f"{facts.name}: {facts['readings_label']} ({facts['readings_verdicts']} of "
             f"{int(facts['n_readings'])} readings"
             + (f"; {missing} without a value in this run, not drawn" if missing else "") + ")")
    # inches: label column from the longest indicator label, heading and legend rows on top
    left_in = 0.9 + 0.062 * max([len(t) for t in names] + [12])
    width = min(18.0, left_in + 6.5 + 0.09 * n)
    wrap = int((width - left_in * 0.6) * 10)
    heading = _wrap(title, wrap) + "\n" + _wrap(str(facts["statement"]), wrap)
    entries = 2 + g["verdict"].nunique()  # the legend: primary, region, each verdict drawn
    ncol = max(2, min(6, int((width - left_in) / 2.2)))
    legend_rows = -(-entries // ncol)
    top_in = 0.45 + 0.2 * heading.count("\n") + 0.2 + 0.18 * legend_rows
    main_in, ind_in = 2.6, 0.25 + 0.2 * len(levels)
    height = top_in + main_in + 0.15 + ind_in + 0.45
    fig = plt.figure(figsize=(width, height), layout="none")
    x0, x1 = left_in / width, 1 - 0.25 / width
    ax = fig.add_axes((x0, (0.45 + ind_in + 0.15) / height, x1 - x0, main_in / height))
    ind = fig.add_axes((x0, 0.45 / height, x1 - x0, ind_in / height), sharex=ax)
    finite = np.isfinite(g["measured_mean"])
    # the values, and the region's borders, so that the reader sees where the claim asks for
    vals = pd.concat([g["ci_low"], g["ci_high"], g["measured_mean"], g["region_low"],
                      g["region_high"]]).replace([np.inf, -np.inf], np.nan)
    lo, hi = vals.min(), vals.max()
    pad = 0.15 * (hi - lo) if np.isfinite(hi - lo) and hi > lo else 1.0
    y0, y1 = (lo - pad, hi + pad) if np.isfinite(lo) else (-1, 1)
    for i, r in g.iterrows():  # the region each reading asks for
        if np.isnan(r["region_low"]) or np.isnan(r["region_high"]):
            continue
        a = max(r["region_low"], y0) if np.isfinite(r["region_low"]) else y0
        b = min(r["region_high"], y1) if np.isfinite(r["region_high"]) else y1
        if b > a:
            ax.add_patch(plt.Rectangle((i - 0.5, a), 1, b - a, color=COLORS["holds"], alpha=0.15, lw=0))
    for verdict, col in VERDICT_COLORS.items():
        sel = g[(g["verdict"] == verdict) & finite]
        if sel.empty:
            continue
        err = np.vstack([sel["measured_mean"] - sel["ci_low"], sel["ci_high"] - sel["measured_mean"]])
        err = np.where(np.isfinite(err), err, 0)
        ax.errorbar(sel.index, sel["measured_mean"], yerr=err, fmt="o", color=col, ms=4, lw=1.2,
                    capsize=0, label=verdict)
    prim = g[g["primary"]]
    ax.plot(prim.index, prim["measured_mean"], "o", ms=11, mfc="none", mec="k", mew=1.5,
            label="primary reading (the claim as written)")
    ax.add_patch(plt.Rectangle((0, 0), 0, 0, color=COLORS["holds"], alpha=0.3, lw=0,
                               label="the region the claim asks for"))
    ax.set_ylim(y0, y1)
    ax.set_xlim(-0.6, max(n, 1) - 0.4)
    quantities = {_quantity(str(c)) for c in g["condition"]}
    ax.set_ylabel(quantities.pop() if len(quantities) == 1 else "measured value\n(the quantity is "
                  "one of the choices)", fontsize="small")
    ax.tick_params(labelbottom=False)
    ax.grid(axis="x", visible=False)
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=ncol, fontsize="x-small",
              borderaxespad=0.2)
    fig.text(x0, 1 - 0.12 / height, heading, va="top", ha="left", fontsize="medium")
    for j, (fam, val) in enumerate(levels):
        on = [i for i, c in enumerate(choices) if c.get(fam) == val]
        ind.plot(on, [j] * len(on), "s", color="0.25", ms=3.5)
    ind.set_yticks(range(len(levels)), names, fontsize="x-small")
    ind.set_ylim(len(levels) - 0.5, -0.5)
    ind.set_xlabel("readings, sorted by measured value", fontsize="small")
    ind.tick_params(bottom=False, labelbottom=False)
    ind.grid(False)
    return fig


def _quantity(condition: str, width: int = 40) -> str:
    """What a claim measures per seed, from its condition ('…, per seed: mean of dead_fraction')."""
    import re

    m = re.search(r"per (?:seed|repeat|function): (.*)$", condition)
    text = m.group(1) if m else condition
    pair = re.match(r"(log10\()?(\w+) of (\w+) \[", text)  # a compare claim: left vs right
    if pair:
        text = (f"log10 ratio of {pair.group(2)} {pair.group(3)}" if pair.group(1)
                else f"difference of {pair.group(2)} {pair.group(3)}")
    return "\n".join(__import__("textwrap").wrap(text, width))


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def draw_reading_curves(readings: pd.DataFrame, claims: pd.DataFrame, outputs: dict,
                        dpi: int = 150, context: str = "notebook") -> None:
    """The specification curve of each claim in ``outputs`` (claim -> PNG path), on the study's
    setting. PNG only: diagnostic figures of the audit, dozens of them (a PDF would double the
    time of each)."""
    style(context)
    study = readings[readings["variant"] == readings["experiment"]]
    facts = claims.set_index("claim")
    for claim, path in outputs.items():
        fig = reading_curve(study[study["claim"] == claim], facts.loc[claim])
        # laid out by hand: the whole figure, without the tight box's second drawing pass
        with io.atomic_path(path) as tmp, plt.rc_context({"savefig.bbox": "standard"}):
            fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
        plt.close(fig)
    log.info("drew %d specification curves", len(outputs))


# ------------------------------------------------------------------ comparison of two runs
def comparison_figure(metrics: pd.DataFrame, labels: dict, side_a: tuple, side_b: tuple,
                      alpha: float):
    """Two runs side by side (actflow.compare's metrics table): per metric, the study setting's
    rows, both runs' means with 95 % intervals, rows that differ beyond the seed spread marked.
    ``labels``: metric name -> what it is; ``side_a``/``side_b``: (legend label, short
    description of the run); ``alpha``: the family-wise level of "differs"."""
    from .layout import EXPERIMENT_KINDS

    study = metrics[metrics["variant"].isin(list(EXPERIMENT_KINDS))]
    names = [m for m in labels if (study["metric"] == m).any()]
    ncols = 2
    nrows = max(1, -(-len(names) // ncols))
    heights = [max(3, max(int((study["metric"] == m).sum()) for m in names[i * ncols:(i + 1) * ncols]))
               if names else 3 for i in range(nrows)]
    fig, axes = plt.subplots(nrows, ncols, figsize=(14, 1.0 + 0.28 * sum(heights) + nrows),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    colours = {"a": OKABE_ITO[0], "b": OKABE_ITO[1]}
    differs = COLORS["does not hold"]
    for ax, name in zip(axes.flat, names):
        d = study[study["metric"] == name].reset_index(drop=True)
        rows = [f"{r.variant} · {label(r.activation)}" + (f" · {r.detail.split('=', 1)[1]}"
                                                         if r.detail else "")
                for r in d.itertuples()]
        y = np.arange(len(d))
        for side, off, (legend, desc) in (("a", -0.17, side_a), ("b", 0.17, side_b)):
            mean = d[f"mean_{side}"].to_numpy(float)
            lo, hi = d[f"ci_low_{side}"].to_numpy(float), d[f"ci_high_{side}"].to_numpy(float)
            err = np.vstack([np.where(np.isfinite(lo), mean - lo, 0),
                             np.where(np.isfinite(hi), hi - mean, 0)])
            ax.errorbar(mean, y + off, xerr=err, fmt="o", ms=4, capsize=2, lw=1,
                        color=colours[side], label=f"{legend} ({desc})")
        for i, status in enumerate(d["status"]):
            if status == "differ":
                ax.axhspan(i - 0.45, i + 0.45, color=differs, alpha=0.2, lw=0)
        ax.set_yticks(y, [("≠ " if s == "differ" else "") + r for r, s in zip(rows, d["status"])],
                      fontsize="x-small")
        for tick, status in zip(ax.get_yticklabels(), d["status"]):
            if status == "differ":
                tick.set_color(differs)
        ax.invert_yaxis()
        if (d["scale"] == "log10").any():
            ax.set_xscale("log")
        ax.set_title(labels[name], fontsize="small")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    n_diff = int((metrics["status"] == "differ").sum())
    fig.suptitle(
        f"Run A ({side_a[1]}) against run B ({side_b[1]}): means and 95 % intervals over seeds, "
        f"the study's setting\n≠ (red): differs beyond the seed spread (Welch, Holm-corrected, "
        f"{alpha:.0%}); over every variant {n_diff} of {len(metrics)} rows differ",
        fontsize="medium")
    handles, texts = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, texts, loc="outside lower center", ncols=2, fontsize="small")
    return fig
