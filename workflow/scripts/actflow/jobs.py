"""One function per workflow rule: plain arguments in, files out.

The scripts in ``workflow/scripts`` only unpack Snakemake's object and call
these, so each step can be run and tested without Snakemake.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from . import io, tables


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
def save_weights(path, result, meta: dict) -> None:
    from safetensors.torch import save_file

    tensors = {f"init.{k}": v for k, v in result.init_params.items()}
    tensors |= {f"final.{k}": v for k, v in result.final_params.items()}
    with io.atomic_path(path) as tmp:
        # One metadata entry: safetensors writes its metadata map in no fixed order, so several
        # keys would make reruns differ byte-wise.
        save_file(tensors, str(tmp), metadata={"actflow": json.dumps(meta, sort_keys=True)})


def load_weights(path) -> tuple[dict, dict, dict]:
    """(init, final, metadata) from a weights file; safetensors never unpickles."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("actflow", "{}"))
    except (SafetensorError, OSError, ValueError) as err:
        raise io.DamagedFileError(
            f"{path} is not a readable weights file ({err}): delete it and rerun the workflow; "
            f"Snakemake retrains that activation."
        ) from err
    init = {k[5:]: v for k, v in tensors.items() if k.startswith("init.")}
    final = {k[6:]: v for k, v in tensors.items() if k.startswith("final.")}
    return init, final, meta


def train_job(data, out: dict, keys: dict, seeds, hp: dict, device, threads, log_every=50,
              config=None, compile=False):
    """Train every seed of one (experiment, activation[, target]) given by ``keys``."""
    from . import train

    train.setup_torch(threads)
    activation = keys["activation"]
    df = io.read_parquet(data, ["x", "y"])
    x = df["x"].to_numpy()[:, None]
    y = df["y"].to_numpy()[:, None]
    hyper = train.Hyper(**hp)
    result = train.train(x, y, seeds, activation, hyper, device=device, log_every=log_every,
                         compile=compile)
    runs = pd.DataFrame({**keys, "seed": list(seeds)})
    loss, grads, summary = tables.history_tables(result, runs, float(np.var(df["y"])))
    noise = float(np.mean((df["y"] - df["y_clean"]) ** 2)) if "y_clean" in df else np.nan
    summary.insert(summary.columns.get_loc("baseline_mse") + 1, "noise_mse", noise)
    io.write_parquet(loss, out["loss"], config)
    io.write_parquet(grads, out["grads"], config)
    io.write_parquet(summary, out["runs"], config)
    save_weights(out["weights"], result, {
        **keys, "seeds": list(seeds), "hyper": hp,
        "layout": "W as (runs, fan_in, fan_out), b as (runs, 1, fan_out)",
    })
    n_div = int(summary["diverged"].sum())
    logging.getLogger("actflow.train").info(
        "done in %.2f s; %d of %d seeds diverged", result.seconds, n_div, len(seeds))


# ---------------------------------------------------------------- metrics
def activation_curves(out, names, config=None):
    from . import activations

    io.write_parquet(activations.curves(list(names)), out, config)


def history_metrics(loss_paths, grads_paths, runs_paths, out: dict, config=None):
    loss = io.concat_parquet(loss_paths, ["experiment", "activation", "seed", "epoch", "loss"])
    grads = io.concat_parquet(grads_paths, ["experiment", "activation", "seed", "epoch", "layer"])
    runs = io.concat_parquet(runs_paths, ["experiment", "activation", "seed", "diverged"])
    ratio = tables.gradient_ratio(grads)
    frames = {"loss": loss, "gradient_flow": grads, "gradient_ratio": ratio, "runs": runs}
    frames |= tables.history_summaries(loss, grads, ratio)
    for name, frame in frames.items():
        io.write_parquet(frame, out[name], config)


def union(paths, out, config=None):
    io.write_parquet(io.concat_parquet(paths), out, config)


def weight_metrics(experiment, weights, runs, data, out: dict, grad_tol, n_bins, show_layers,
                   config=None):
    """Dead neurons, sparsity and activation statistics of one experiment, at initialisation
    and after training, for every activation."""
    from . import neurons
    from .stats import summarize

    x = io.read_parquet(data, ["x"])["x"].to_numpy()
    status = io.concat_parquet(runs, ["activation", "seed", "diverged"])
    parts: dict[str, list] = {}
    for path in weights:
        init, final, meta = load_weights(path)
        act, seeds, L = meta["activation"], meta["seeds"], meta["hyper"]["hidden_layers"]
        st = status[status["activation"] == act].set_index("seed").loc[seeds]
        diverged = st["diverged"].to_numpy(dtype=bool)
        bins = neurons.histogram_edges([init, final], x, act, L, ok=~diverged, n_bins=n_bins)
        for stage, state, div in (("init", init, None), ("trained", final, diverged)):
            keys = {"experiment": experiment, "stage": stage, "activation": act}
            tables_ = neurons.weight_metrics(
                state, x, act, L, grad_tol, keys, seeds, diverged=div, bins=bins,
                show_layers=[lay for lay in show_layers if lay <= L] if stage == "trained" else ())
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
    for name, frame in frames.items():
        io.write_parquet(frame, out[name], config)


def capacity_metrics(weights, runs, train_data: dict, test_data: dict, out: dict, config=None):
    """Train and test MSE of every (activation, target, seed), predictions on the test grid,
    summaries over seeds and, per target, the winner with a paired comparison over seeds."""
    from . import train
    from .stats import summarize
    from .tables import capacity_winners

    status = io.concat_parquet(runs, ["activation", "target", "seed", "diverged"])
    cap, preds = [], []
    for path in weights:
        _, final, meta = load_weights(path)
        act, target, seeds = meta["activation"], meta["target"], meta["seeds"]
        L = meta["hyper"]["hidden_layers"]
        tr = io.read_parquet(train_data[target], ["x", "y"])
        te = io.read_parquet(test_data[target], ["x", "y"])
        p_tr = train.predict(final, tr["x"], act, L)
        p_te = train.predict(final, te["x"], act, L)
        st = status[(status["activation"] == act) & (status["target"] == target)].set_index("seed")
        cap.append(pd.DataFrame({
            "activation": act, "target": target, "seed": seeds,
            "diverged": st.loc[seeds, "diverged"].to_numpy(dtype=bool),
            "train_mse": ((p_tr - tr["y"].to_numpy()) ** 2).mean(axis=1),
            "test_mse": ((p_te - te["y"].to_numpy()) ** 2).mean(axis=1),
        }))
        n = len(te)
        preds.append(pd.DataFrame({
            "activation": act, "target": target, "seed": np.repeat(seeds, n),
            "x": np.tile(te["x"].to_numpy(), len(seeds)), "y_pred": p_te.reshape(-1),
            "y_true": np.tile(te["y"].to_numpy(), len(seeds)),
        }))
    cap = pd.concat(cap, ignore_index=True)
    frames = {
        "capacity": cap,
        "predictions": pd.concat(preds, ignore_index=True),
        "capacity_summary": pd.concat(
            [summarize(cap, ["activation", "target"], v, log=True) for v in ("test_mse", "train_mse")],
            ignore_index=True),
        "capacity_winners": capacity_winners(cap),
    }
    for name, frame in frames.items():
        io.write_parquet(frame, out[name], config)


def audit_claims(claims_file, tables: dict, out: dict) -> None:
    """Evaluate every claim of ``claims_file`` into Parquet, Markdown and HTML."""
    from . import claims

    cl = claims.load(claims_file)
    df = claims.evaluate(cl, tables)
    io.write_parquet(df, out["parquet"], {"claims_file": str(claims_file)})
    for key, text in (("markdown", claims.markdown(df)), ("html", claims.html(df))):
        with io.atomic_path(out[key]) as tmp:
            tmp.write_text(text)
    logging.getLogger("actflow.claims").info(
        "%d claims: %s", len(df), df["verdict"].value_counts().to_dict())
