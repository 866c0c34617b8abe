"""One function per workflow rule: plain arguments in, files out.

The scripts in ``workflow/scripts`` only unpack Snakemake's object and call these, so each step
can be run and tested without Snakemake. Output names come from :mod:`actflow.layout`, and each
metrics job checks that the tables it made are exactly the outputs its rule declares.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from . import io  # everything else inside the functions: a job loads only what it runs


# ---------------------------------------------------------------- data
def make_train_data(out, target, n_samples, x_min, x_max, noise_std, seed, sampling, config=None):
    from .data import make_train_set

    df = make_train_set(target, n_samples, x_min, x_max, noise_std, seed, sampling)
    io.write_parquet(df, out, config)
    logging.getLogger("actflow.data").info("wrote %s: %d samples of %s", out, len(df), target)


def make_test_data(out, target, n_points, x_min, x_max, config=None):
    from .data import make_test_grid

    io.write_parquet(make_test_grid(target, n_points, x_min, x_max), out, config)


# ---------------------------------------------------------------- training
def weights_identity(keys: dict, seeds, hyper: dict) -> dict:
    """What a weights file says it is: the job's keys (experiment, activation, target), seeds
    and training settings. Readers pass the same dict as ``expect`` to io.load_weights."""
    return {**keys, "seeds": [int(s) for s in seeds], "hyper": dict(hyper)}


def train_job(data, out: dict, keys: dict, seeds, hp: dict, device, threads, log_every=50,
              config=None, compile=False):
    """Train every seed of one (experiment, activation[, target]) given by ``keys``."""
    from . import tables, train

    train.setup_torch(threads)
    df = io.read_parquet(data, ["x", "y"])
    x = df["x"].to_numpy()[:, None]
    y = df["y"].to_numpy()[:, None]
    hyper = train.Hyper(**hp)
    result = train.train(x, y, seeds, keys["activation"], hyper, device=device,
                         log_every=log_every, compile=compile)
    runs = pd.DataFrame({**keys, "seed": list(seeds)})
    noise = float(np.mean((df["y"] - df["y_clean"]) ** 2)) if "y_clean" in df else np.nan
    loss, grads, summary = tables.history_tables(result, runs, float(np.var(df["y"])), noise,
                                                 hyper.settings())
    io.write_parquet(loss, out["loss"], config)
    io.write_parquet(grads, out["grads"], config)
    io.write_parquet(summary, out["runs"], config)
    io.save_weights(out["weights"], result.init_params, result.final_params, {
        **weights_identity(keys, seeds, hp),
        "layout": "W as (runs, fan_in, fan_out), b as (runs, 1, fan_out)",
    })
    logging.getLogger("actflow.train").info(
        "done in %.2f s; %d of %d seeds diverged", result.seconds, int(summary["diverged"].sum()),
        len(seeds))


# ---------------------------------------------------------------- metrics
def activation_curves(out, names, config=None):
    from . import activations

    io.write_parquet(activations.curves(list(names)), out, config)


def history_metrics(loss_paths, grads_paths, runs_paths, out: dict, outcomes: dict, config=None):
    from . import tables

    loss = io.concat_parquet(loss_paths, ["experiment", "activation", "seed", "epoch", "loss"])
    grads = io.concat_parquet(grads_paths, ["experiment", "activation", "seed", "epoch", "layer"])
    runs = io.concat_parquet(runs_paths, ["experiment", "activation", "seed", "diverged"])
    runs["outcome"] = tables.outcomes(runs, **outcomes)
    ratio = tables.gradient_ratio(grads)
    frames = {"loss": loss, "gradient_flow": grads, "gradient_ratio": ratio, "runs": runs}
    frames |= tables.history_summaries(loss, grads, ratio)
    io.write_tables(frames, out, config)


def union(paths, out, config=None):
    io.write_parquet(io.concat_parquet(paths), out, config)


def weight_metrics(experiment, weights: dict, runs, data, out: dict, seeds, hyper: dict, grad_tol,
                   n_bins, show_layers, config=None):
    """Dead neurons, sparsity and activation statistics of one experiment, at initialisation
    and after training, for every activation. ``weights`` maps activation -> weights file; each
    file must hold that experiment's and activation's weights with these seeds and settings."""
    from . import neurons
    from .stats import summarize

    x = io.read_parquet(data, ["x"])["x"].to_numpy()
    status = io.concat_parquet(runs, ["activation", "seed", "diverged"])
    parts: dict[str, list] = {}
    L = hyper["hidden_layers"]
    for act, path in weights.items():
        keys = {"experiment": experiment, "activation": act}
        init, final, _ = io.load_weights(path, expect=weights_identity(keys, seeds, hyper))
        st = status[status["activation"] == act].set_index("seed").loc[list(seeds)]
        diverged = st["diverged"].to_numpy(dtype=bool)
        bins = neurons.histogram_edges([init, final], x, act, L, ok=~diverged, n_bins=n_bins)
        for stage, state, div in (("init", init, None), ("trained", final, diverged)):
            tables_ = neurons.weight_metrics(
                state, x, act, L, grad_tol, {"experiment": experiment, "stage": stage,
                                             "activation": act},
                seeds, diverged=div, bins=bins, show_layers=show_layers if stage == "trained" else ())
            for name, df in tables_.items():
                if df is not None:
                    parts.setdefault(name, []).append(df)
        logging.getLogger("actflow.neurons").info("%s %s: %d seeds, %d diverged", experiment, act,
                                                  len(seeds), int(diverged.sum()))
    frames = {name: pd.concat(dfs, ignore_index=True) for name, dfs in parts.items()}
    by = ["experiment", "stage", "activation"]
    net_dead = (frames["dead_neurons"].groupby(by + ["seed", "definition"], sort=False)
                .agg(diverged=("diverged", "first"), dead_fraction=("dead_fraction", "mean"))
                .reset_index())
    frames["dead_neurons_summary"] = summarize(net_dead, by + ["definition"], "dead_fraction")
    net_sparse = (frames["sparsity"].groupby(by + ["seed"], sort=False)
                  [["exact_zero_fraction", "near_zero_fraction"]].mean().reset_index())
    frames["sparsity_summary"] = pd.concat(
        [summarize(net_sparse, by, v) for v in ("exact_zero_fraction", "near_zero_fraction")],
        ignore_index=True)
    io.write_tables(frames, out, config)


def capacity_metrics(experiment, weights: dict, runs, train_data: dict, test_data: dict, out: dict,
                     seeds, hyper: dict, outcomes: dict, config=None):
    """Train and test MSE of every (activation, target, seed), predictions on the test grid,
    summaries over seeds and, per target, the winner with a paired comparison over seeds.
    ``weights`` maps (activation, target) -> weights file."""
    from . import model
    from .stats import summarize
    from .tables import capacity_winners, outcomes as outcome_of

    status = io.concat_parquet(runs, ["activation", "target", "seed", "diverged"])
    status["outcome"] = outcome_of(status, **outcomes)
    cap, preds = [], []
    L = hyper["hidden_layers"]
    for (act, target), path in weights.items():
        keys = {"experiment": experiment, "activation": act, "target": target}
        _, final, _ = io.load_weights(path, expect=weights_identity(keys, seeds, hyper))
        tr = io.read_parquet(train_data[target], ["x", "y"])
        te = io.read_parquet(test_data[target], ["x", "y"])
        p_tr = model.predict(final, tr["x"], act, L)
        p_te = model.predict(final, te["x"], act, L)
        st = status[(status["activation"] == act) & (status["target"] == target)].set_index("seed")
        cap.append(pd.DataFrame({
            "experiment": experiment, "activation": act, "target": target, "seed": list(seeds),
            "diverged": st.loc[list(seeds), "diverged"].to_numpy(dtype=bool),
            "train_mse": ((p_tr - tr["y"].to_numpy()) ** 2).mean(axis=1),
            "test_mse": ((p_te - te["y"].to_numpy()) ** 2).mean(axis=1),
        }))
        n = len(te)
        preds.append(pd.DataFrame({
            "experiment": experiment, "activation": act, "target": target,
            "seed": np.repeat(list(seeds), n), "x": np.tile(te["x"].to_numpy(), len(seeds)),
            "y_pred": p_te.reshape(-1), "y_true": np.tile(te["y"].to_numpy(), len(seeds)),
        }))
    cap = pd.concat(cap, ignore_index=True)
    by = ["experiment", "activation", "target"]
    frames = {
        "target_runs": status,
        "capacity": cap,
        "predictions": pd.concat(preds, ignore_index=True),
        "capacity_summary": pd.concat(
            [summarize(cap, by, v, log=True) for v in ("test_mse", "train_mse")], ignore_index=True),
        "capacity_winners": capacity_winners(cap),
    }
    io.write_tables(frames, out, config)


def audit_claims(claims_file, tables: dict, runs: dict, out: dict) -> None:
    """Evaluate every claim of ``claims_file`` into Parquet, Markdown and HTML; ``runs`` maps
    each kind of experiment to its union runs table (the outcomes each reason reports)."""
    from . import claims

    cl = claims.load(claims_file)
    df = claims.evaluate(cl, tables, claims_file, runs)
    io.write_parquet(df, out["parquet"], {"claims_file": str(claims_file)})
    for key, text in (("markdown", claims.markdown(df)), ("html", claims.html(df))):
        with io.atomic_path(out[key]) as tmp:
            tmp.write_text(text)
    logging.getLogger("actflow.claims").info(
        "%d claims: %s", len(df), df["verdict"].value_counts().to_dict())
