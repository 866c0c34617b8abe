"""Tidy tables from training histories (pandas/numpy only; no torch)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .layout import NOT_TRAINED, OUTCOMES, RUN_SETTINGS, TABLES
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
    for key in RUN_SETTINGS:
        summary[key] = settings[key]
    summary["device"] = result.device
    return loss, grads, summary


def unit_state_table(result, runs: pd.DataFrame) -> pd.DataFrame:
    """A training job's unit states at its checkpoints (``result.unit_states``, bit flags of
    actflow.train) as a long table: the run keys of ``runs`` (one row per stacked run), then
    layout.UNIT_STATE_COLUMNS; ordered run, layer, unit, checkpoint."""
    from . import train

    st = result.unit_states  # (C, L, R, W)
    C, L, R, W = st.shape
    flat = np.ascontiguousarray(st.transpose(2, 1, 3, 0)).reshape(-1)  # (R, L, W, C)
    out = runs.loc[np.repeat(np.arange(R), L * W * C)].reset_index(drop=True)
    out["epoch"] = np.tile(result.unit_epochs, R * L * W)
    out["layer"] = np.tile(np.repeat(np.arange(1, L + 1), W * C), R)
    out["neuron"] = np.tile(np.repeat(np.arange(1, W + 1), C), R * L)
    out["zero"] = (flat & train.UNIT_ZERO) > 0
    out["nonpositive"] = (flat & train.UNIT_NONPOSITIVE) > 0
    out["varies"] = (flat & train.UNIT_VARIES) > 0
    return out


def timing_table(seconds_per_element, shape, device: str, machine: str) -> pd.DataFrame:
    """One row per timing repeat of the activation's forward + backward (actflow.train.
    activation_cost) on a tensor of ``shape``, with the device and machine that ran it."""
    s = np.asarray(seconds_per_element, dtype=np.float64)
    return pd.DataFrame({"repeat": np.arange(1, len(s) + 1), "elements": int(np.prod(shape)),
                         "seconds_per_element": s, "ns_per_element": s * 1e9, "device": device,
                         "machine": machine})


def outcomes(runs: pd.DataFrame, collapse_rtol: float, explode_factor: float) -> pd.Series:
    """How each run ended (actflow.layout.OUTCOMES), from its final loss against var(y)
    (``baseline_mse``, the loss of the best constant predictor), r = final loss / var(y):

    - ``non-finite``: the loss, a gradient or a weight became non-finite (``diverged``);
    - ``exploded``: finite, but r > ``explode_factor``;
    - ``worse than constant``: 1 + ``collapse_rtol`` < r <= ``explode_factor``;
    - ``collapsed``: |r - 1| <= ``collapse_rtol``: the net predicts a constant;
    - ``trained``: r < 1 - ``collapse_rtol``: it beat the constant predictor.
    """
    ratio = runs["final_loss"] / runs["baseline_mse"]
    out = np.select(
        [runs["diverged"] | ~np.isfinite(ratio), ratio > explode_factor,
         ratio > 1 + collapse_rtol, ratio >= 1 - collapse_rtol],
        list(reversed(NOT_TRAINED)), "trained")
    assert set(np.unique(out)) <= set(OUTCOMES)
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


def gradient_decay(grads: pd.DataFrame) -> pd.DataFrame:
    """Per run and epoch, the shape of ‖∂L/∂W_l‖ across the hidden layers: a least-squares line
    of log10 ‖∂L/∂W_l‖ against the layer index l. ``slope_log10_per_layer``: orders of magnitude
    gained per layer towards the output (positive: the gradient decays on its way back to layer
    1); ``r_squared``: how well a straight line, an exponential decay, fits the profile (NaN
    where a norm is not finite and positive, or for fewer than 3 layers)."""
    keys = [c for c in grads.columns if c not in ("layer", "weight_grad_norm", "preact_grad_norm")]
    g = grads[keys + ["layer", "weight_grad_norm"]].sort_values(keys + ["layer"], kind="stable")
    n_layers = g["layer"].nunique()
    head = g.drop_duplicates(keys)[keys].reset_index(drop=True)
    v = g["weight_grad_norm"].to_numpy(dtype=float).reshape(len(head), n_layers)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(v > 0, np.log10(v), np.nan)
        x = np.sort(g["layer"].unique()).astype(float)
        xc = x - x.mean()
        yc = y - y.mean(axis=1, keepdims=True)
        slope = (yc * xc).sum(axis=1) / (xc**2).sum()
        resid = yc - slope[:, None] * xc
        ss_tot = (yc**2).sum(axis=1)
        r2 = np.where(ss_tot > 0, 1 - (resid**2).sum(axis=1) / ss_tot, np.nan)
    ok = np.isfinite(y).all(axis=1) & (n_layers >= 3)
    head["slope_log10_per_layer"] = np.where(ok, slope, np.nan)
    head["r_squared"] = np.where(ok, np.clip(r2, 0, 1), np.nan)
    return head


def gradient_consistency(grads: pd.DataFrame, windows: int = 10) -> pd.DataFrame:
    """Per run: how alike the layer-wise gradient pattern stays across training. The epochs
    are cut into ``windows`` equal slices; in each, the profile is the mean log10 ‖∂L/∂W_l‖ of
    every hidden layer; the Spearman rank correlation of every pair of slices' profiles is
    taken, and its mean and minimum reported (1: the layers keep their order of gradient
    magnitude throughout). NaN where a profile is not finite or has fewer than 3 layers."""
    keys = [c for c in grads.columns
            if c not in ("epoch", "layer", "weight_grad_norm", "preact_grad_norm")]
    g = grads[keys + ["epoch", "layer", "weight_grad_norm"]].copy()
    top = int(g["epoch"].max())
    g["window"] = np.minimum((g["epoch"] - 1) * windows // top, windows - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        g["log_norm"] = np.where(g["weight_grad_norm"] > 0, np.log10(g["weight_grad_norm"]), np.nan)
    prof = g.groupby(keys + ["window", "layer"], sort=True)["log_norm"].mean(numeric_only=True)
    rows = []
    for key, p in prof.groupby(level=list(range(len(keys))), sort=False):
        m = p.unstack("layer").to_numpy()  # (windows, layers)
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row["windows"] = m.shape[0]
        if m.shape[1] < 3 or not np.isfinite(m).all():
            rows.append(row | {"mean_rank_correlation": np.nan, "min_rank_correlation": np.nan})
            continue
        ranks = pd.DataFrame(m.T).rank(axis=0).to_numpy()  # each window's layers ranked
        c = np.corrcoef(ranks.T)  # Pearson on ranks: Spearman's rho
        iu = np.triu_indices(len(c), 1)
        pairs = np.nan_to_num(c[iu], nan=1.0)  # a flat profile ranks all layers alike
        rows.append(row | {"mean_rank_correlation": float(pairs.mean()),
                           "min_rank_correlation": float(pairs.min())})
    return pd.DataFrame(rows, columns=keys + ["windows", "mean_rank_correlation",
                                              "min_rank_correlation"])


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
    return pd.DataFrame(rows, columns=list(TABLES["capacity_winners"].columns))
