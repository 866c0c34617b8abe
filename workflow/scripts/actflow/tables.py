"""Tidy tables from training histories (pandas/numpy only; no torch)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import summarize, t_halfwidth


def history_tables(result, runs: pd.DataFrame, baseline_mse, noise_mse, settings: dict):
    """Long tables of one training job.

    ``runs`` has one row per stacked run (columns such as experiment, activation, target,
    seed); ``result`` is an ``actflow.train.Result``; ``baseline_mse`` and ``noise_mse`` are the
    MSE of the best constant predictor and of the clean target (per run or shared);
    ``settings`` the training settings (``actflow.train.Hyper``), recorded with every run.
    Returns (loss, grads, runs) DataFrames.
    """
    epochs, L, R = result.weight_grad.shape
    ep = np.arange(1, epochs + 1)
    loss = runs.loc[np.tile(np.arange(R), epochs)].reset_index(drop=True)
    loss.insert(len(runs.columns), "epoch", np.repeat(ep, R))
    loss["loss"] = result.loss.reshape(-1).astype(np.float64)
    loss["relative_loss"] = loss["loss"] / np.tile(np.broadcast_to(baseline_mse, (R,)), epochs)

    # grads ordered (epoch, layer, run)
    idx = np.tile(np.arange(R), epochs * L)
    grads = runs.loc[idx].reset_index(drop=True)
    grads.insert(len(runs.columns), "epoch", np.repeat(ep, L * R))
    grads.insert(len(runs.columns) + 1, "layer", np.tile(np.repeat(np.arange(1, L + 1), R), epochs))
    grads["weight_grad_norm"] = result.weight_grad.reshape(-1).astype(np.float64)
    grads["preact_grad_norm"] = result.preact_grad.reshape(-1).astype(np.float64)
    sort = list(runs.columns) + ["epoch", "layer"]
    grads = grads.sort_values(sort, kind="stable").reset_index(drop=True)
    loss = loss.sort_values(list(runs.columns) + ["epoch"], kind="stable").reset_index(drop=True)

    summary = runs.copy()
    summary["diverged"] = result.diverged_epoch > 0
    summary["diverged_epoch"] = result.diverged_epoch.astype(np.int64)
    summary["last_finite_loss"] = result.last_finite_loss.astype(np.float64)
    summary["final_loss"] = result.final_loss.astype(np.float64)
    summary["baseline_mse"] = np.broadcast_to(np.asarray(baseline_mse, dtype=np.float64), (R,))
    summary["noise_mse"] = np.broadcast_to(np.asarray(noise_mse, dtype=np.float64), (R,))
    summary["epochs"] = epochs
    for key in ("hidden_layers", "width", "optimizer", "learning_rate", "momentum", "init",
                "bias_init"):
        summary[key] = settings[key]
    summary["device"] = result.device
    return loss, grads, summary


OUTCOMES = ("trained", "collapsed", "exploded", "non-finite")


def outcomes(runs: pd.DataFrame, collapse_rtol: float, explode_factor: float) -> pd.Series:
    """How each run ended, from its final loss against var(y) (``baseline_mse``, the loss of the
    best constant predictor):

    - ``non-finite``: the loss, a gradient or a weight became non-finite (``diverged``);
    - ``exploded``: finite, but the final loss is above ``explode_factor`` × var(y);
    - ``collapsed``: the final loss is within ``collapse_rtol`` (relative) of var(y): the net
      predicts a constant;
    - ``trained``: anything else.
    """
    ratio = runs["final_loss"] / runs["baseline_mse"]
    out = np.where(runs["diverged"] | ~np.isfinite(ratio), "non-finite",
                   np.where(ratio > explode_factor, "exploded",
                            np.where((ratio - 1).abs() <= collapse_rtol, "collapsed", "trained")))
    return pd.Series(out, index=runs.index, name="outcome")


def gradient_ratio(grads: pd.DataFrame) -> pd.DataFrame:
    """Ratio of the last hidden layer's gradient norm to the first's, per run and epoch."""
    keys = [c for c in grads.columns if c not in ("layer", "weight_grad_norm", "preact_grad_norm")]
    first = grads["layer"] == grads["layer"].min()
    last = grads["layer"] == grads["layer"].max()
    a = grads.loc[first].set_index(keys)
    b = grads.loc[last].set_index(keys)
    out = pd.DataFrame(
        {
            "weight_grad_ratio": b["weight_grad_norm"] / a["weight_grad_norm"],
            "preact_grad_ratio": b["preact_grad_norm"] / a["preact_grad_norm"],
        }
    ).reset_index()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["log10_weight_grad_ratio"] = np.log10(out["weight_grad_ratio"])
    return out


def gradient_peaks(grads: pd.DataFrame, late_fraction: float = 0.1) -> pd.DataFrame:
    """Per run and hidden layer, how ‖∂L/∂W_l‖ evolves over training (Figure 5): the epoch and
    value of its peak (and the peak epoch as a fraction of the epochs), its median over all epochs, its mean over the last ``late_fraction`` of
    the epochs, and late / peak (below 1: the gradient shrank as training converged)."""
    keys = [c for c in grads.columns if c not in ("epoch", "weight_grad_norm", "preact_grad_norm")]
    g = grads[keys + ["epoch", "weight_grad_norm"]].copy()
    g["weight_grad_norm"] = g["weight_grad_norm"].where(np.isfinite(g["weight_grad_norm"]))
    top = g["epoch"].max()
    late_from = top - max(1, int(round(late_fraction * top))) + 1
    out = g.groupby(keys, sort=False)["weight_grad_norm"].agg(
        peak_weight_grad_norm="max", median_weight_grad_norm="median").reset_index()
    index = pd.MultiIndex.from_frame(out[keys])
    peaks = (g.dropna(subset=["weight_grad_norm"])
             .sort_values("weight_grad_norm", ascending=False, kind="stable")
             .drop_duplicates(keys).set_index(keys)["epoch"])
    out.insert(len(keys), "peak_epoch",
               peaks.reindex(index).fillna(0).astype(np.int64).to_numpy())  # 0: no finite value
    out.insert(len(keys) + 1, "peak_fraction",
               (out["peak_epoch"] / top).where(out["peak_epoch"] > 0))
    late = g[g["epoch"] >= late_from].groupby(keys, sort=False)["weight_grad_norm"].mean()
    out["late_weight_grad_norm"] = late.reindex(index).to_numpy()
    out["late_over_peak"] = out["late_weight_grad_norm"] / out["peak_weight_grad_norm"]
    return out


def convergence(loss: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """Per run: the first epoch whose loss is below ``fraction`` × var(y) (``epoch_below``;
    epochs + 1, with ``reached`` false, when it never is): how quickly it converged."""
    keys = [c for c in loss.columns if c not in ("epoch", "loss", "relative_loss")]
    top = int(loss["epoch"].max())
    below = loss[loss["relative_loss"] < fraction].groupby(keys, sort=False)["epoch"].min()
    out = loss[keys].drop_duplicates().reset_index(drop=True)
    first = below.reindex(pd.MultiIndex.from_frame(out)).to_numpy()
    out["threshold_fraction"] = fraction
    out["reached"] = ~np.isnan(first)
    out["epoch_below"] = np.where(np.isnan(first), top + 1, first).astype(np.int64)
    return out


def history_summaries(loss, grads, ratio) -> dict[str, pd.DataFrame]:
    by = ["experiment", "variant", "activation"]
    return {
        "loss_summary": summarize(loss, by + ["epoch"], "loss", log=True),
        "gradient_flow_summary": pd.concat(
            [summarize(grads, by + ["epoch", "layer"], v, log=True)
             for v in ("weight_grad_norm", "preact_grad_norm")],
            ignore_index=True,
        ),
        "gradient_ratio_summary": pd.concat(
            [summarize(ratio, by + ["epoch"], v, log=True)
             for v in ("weight_grad_ratio", "preact_grad_ratio")],
            ignore_index=True,
        ),
    }


def capacity_winners(cap: pd.DataFrame) -> pd.DataFrame:
    """Per target: the activation with the lowest geometric-mean test MSE, the runner-up, and
    whether the lead holds across seeds (paired by seed: same initial weights, same data).

    The paired statistic is d_s = log10(test MSE of the runner-up) − log10(test MSE of the
    best) for each seed s; the lead holds when the 95 % t-interval of mean(d) is above 0.
    """
    rows = []
    ok = cap[np.isfinite(cap["test_mse"]) & (cap["test_mse"] > 0)].copy()
    ok["log10_test_mse"] = np.log10(ok["test_mse"])
    for (experiment, variant, target), g in ok.groupby(["experiment", "variant", "target"],
                                                       sort=False):
        geo = g.groupby("activation")["log10_test_mse"].mean().sort_values()
        row = {"experiment": experiment, "variant": variant, "target": target, "best": geo.index[0], "best_test_mse": 10 ** geo.iloc[0],
               "runner_up": None, "runner_up_test_mse": np.nan, "n_pairs": 0,
               "mean_log10_ratio": np.nan, "ci_low": np.nan, "ci_high": np.nan,
               "seeds_best_wins": 0, "lead_holds": False}
        if len(geo) > 1:
            best, second = geo.index[0], geo.index[1]
            a = g[g["activation"] == best].set_index("seed")["log10_test_mse"]
            b = g[g["activation"] == second].set_index("seed")["log10_test_mse"]
            d = (b - a).dropna()
            half = float(t_halfwidth(d.std(), len(d))) if len(d) > 1 else np.nan
            row |= {"runner_up": second, "runner_up_test_mse": 10 ** geo.iloc[1], "n_pairs": len(d),
                    "mean_log10_ratio": d.mean(), "ci_low": d.mean() - half,
                    "ci_high": d.mean() + half, "seeds_best_wins": int((d > 0).sum()),
                    "lead_holds": bool(len(d) > 1 and d.mean() - half > 0)}
        rows.append(row)
    columns = ["experiment", "variant", "target", "best", "best_test_mse", "runner_up", "runner_up_test_mse", "n_pairs",
               "mean_log10_ratio", "ci_low", "ci_high", "seeds_best_wins", "lead_holds"]
    return pd.DataFrame(rows, columns=columns)
