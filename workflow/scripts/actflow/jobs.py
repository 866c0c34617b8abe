"""One function per workflow rule: plain arguments in, files out.

The scripts in ``workflow/scripts`` only unpack Snakemake's object and call these, so each step
can be run and tested without Snakemake. Output names come from :mod:`actflow.layout`, and each
metrics job checks that the tables it made are exactly the outputs its rule declares.

Imports are inside the functions, so that a job loads only the libraries it runs (a table job
never imports torch, a figure job neither torch nor the training code): each job is a fresh
Python process that Snakemake starts, and its imports are most of a small job's time.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields

from . import devices, io, layout


# ---------------------------------------------------------------- data
def sine_data(out, data: dict, seeds, config=None):
    """The noisy sine data (the study's or a variant's): one draw, or one per training seed."""
    from .data import make_dataset

    df = make_dataset(["sin"], data["n_samples"], data["x_min"], data["x_max"], data["noise_std"],
                      data["seed"], data["sampling"], data["per_seed"], seeds).drop(columns="target")
    io.write_parquet(df, out, config)
    logging.getLogger("actflow.data").info("wrote %s: %d rows", out, len(df))


def target_train_data(out, targets, data: dict, seeds, config=None):
    """A capacity experiment's training sets: every target, one draw (or one per training
    seed), one table."""
    from .data import make_dataset

    train = make_dataset(targets, data["n_samples"], data["x_min"], data["x_max"],
                         data["noise_std"], data["seed"], data["sampling"], data["per_seed"], seeds)
    io.write_parquet(train, out, config)
    logging.getLogger("actflow.data").info("wrote %d targets: %d rows", len(targets), len(train))


def target_test_data(out, targets, n_test: int, x_min: float, x_max: float, config=None):
    """A capacity experiment's clean, evenly spaced test grids, every target in one table."""
    from .data import make_test_grids

    io.write_parquet(make_test_grids(targets, n_test, x_min, x_max), out, config)


# ---------------------------------------------------------------- training
def weights_identity(keys: dict, seeds, hyper: dict, data_sha256: str, targets=None) -> dict:
    """What a weights file says it is: the job's keys (experiment, variant, activation), seeds,
    targets (a capacity experiment), training settings and the SHA-256 of the training data
    file (io.sha256; it covers every data setting: its seed, size, noise, range). Readers pass
    the same dict, from their own data file, as ``expect`` to io.load_weights."""
    out = {**keys, "seeds": [int(s) for s in seeds], "hyper": dict(hyper),
           "data_sha256": data_sha256}
    if targets is not None:
        out["targets"] = list(targets)
    return out


@dataclass(frozen=True)
class TrainSpec:
    """What one training job does: every seed of one activation under one variant (``keys``:
    experiment, variant, activation), for a capacity experiment every target too (``targets``:
    runs ordered targets outer, seeds inner), on the training data file ``data``. The rule
    builds it from its params; the job writes it into its tables' metadata (``config``), and
    the re-execution audit rebuilds it from there (:meth:`of_outputs`): one definition of a
    training job for the rule, the job and its audit."""

    data: str
    keys: dict
    seeds: list
    hp: dict
    device: str
    log_every: int = 50
    unit_every: int = 10
    targets: list | None = None

    def as_config(self) -> dict:
        return asdict(self)

    @classmethod
    def of_outputs(cls, loss_table) -> "TrainSpec":
        """The spec a finished job recorded in its loss table's metadata."""
        meta = io.read_metadata(loss_table)["config"]
        return cls(**{f.name: meta[f.name] for f in fields(cls) if f.name in meta})


def train_job(spec: TrainSpec, out: dict, threads: int = 1):
    """Train ``spec`` (:class:`TrainSpec`) as one stacked model, on ``threads`` CPU threads; each
    run's data is its own where the data has a draw per seed (and per target)."""
    if spec.device == "cuda" and not devices.driver_present():
        # the refusal train.resolve_device gives, before torch's import (1.2 s of a job)
        raise RuntimeError(devices.refusal("this machine", ": it has no NVIDIA driver (no "
                                           "/dev/nvidiactl, no /proc/driver/nvidia, no libcuda)"))
    import numpy as np
    import pandas as pd

    from . import tables, train
    from .data import runs_data

    data, seeds, hp, targets = spec.data, spec.seeds, spec.hp, spec.targets
    # the tables' key columns in their one order (metadata round trips may sort a dict)
    keys = {k: spec.keys[k] for k in layout.KEYS if k in spec.keys}
    config = spec.as_config()
    train.setup_torch(threads)
    df = io.read_parquet(data, ["x", "y", "y_clean"])
    x, y, y_clean = runs_data(df, targets, seeds)
    per_run = [(t, s) for t in targets for s in seeds] if targets else [(None, s) for s in seeds]
    hyper = train.Hyper(**hp)
    result = train.train(x, y, [s for _, s in per_run], keys["activation"], hyper,
                         device=spec.device, log_every=spec.log_every, unit_every=spec.unit_every)
    runs = pd.DataFrame({**keys, **({"target": [t for t, _ in per_run]} if targets else {}),
                         "seed": [s for _, s in per_run]})
    axis = (1, 2) if y.ndim == 3 else None
    baseline = np.var(y, axis=axis)
    noise = np.mean((y - y_clean) ** 2, axis=axis)
    loss, grads, summary = tables.history_tables(result, runs, baseline, noise, hyper.settings())
    io.write_parquet(loss, out["loss"], config)
    io.write_parquet(grads, out["grads"], config)
    io.write_parquet(summary, out["runs"], config)
    io.write_parquet(tables.unit_state_table(result, runs), out["units"], config)
    shape = (len(per_run), x.shape[-2], hyper.width)
    cost = train.activation_cost(keys["activation"], shape, spec.device, dtype=hyper.dtype)
    io.write_parquet(tables.timing_table(cost, shape, result.device, io.machine(result.device)),
                     out["timing"], config)
    io.save_weights(out["weights"], result.init_params, result.final_params, {
        **weights_identity(keys, seeds, hp, io.sha256(data), targets),
        "layout": "W as (runs, fan_in, fan_out), b as (runs, 1, fan_out)",
    })
    logging.getLogger("actflow.train").info(
        "done in %.2f s; %d of %d seeds diverged", result.seconds, int(summary["diverged"].sum()),
        len(seeds))


# ---------------------------------------------------------------- metrics
def activation_curves(out, names, config=None):
    from . import activations

    io.write_parquet(activations.curves(list(names)), out, config)


def history_metrics(loss_paths, grads_paths, runs_paths, out: dict, outcomes: dict, config=None,
                    timing_paths=(), keys: dict | None = None, activations=()):
    """Loss, gradient-flow and outcome tables of one variant; ``timing_paths`` (one per
    activation, in ``activations`` order) give its activation-cost table."""
    import pandas as pd

    from . import tables

    loss = io.concat_parquet(loss_paths, ["experiment", "activation", "seed", "epoch", "loss"])
    grads = io.concat_parquet(grads_paths, ["experiment", "activation", "seed", "epoch", "layer"])
    runs = io.concat_parquet(runs_paths, ["experiment", "activation", "seed", "diverged"])
    runs["outcome"] = tables.outcomes(runs, outcomes["collapse_rtol"], outcomes["explode_factor"])
    ratio = tables.gradient_ratio(grads)
    frames = {"loss": loss, "gradient_flow": grads, "gradient_ratio": ratio, "runs": runs,
              "gradient_peaks": tables.gradient_peaks(grads),
              "convergence": tables.convergence(loss, outcomes["converged_below"]),
              "gradient_decay": tables.gradient_decay(grads),
              "gradient_consistency": tables.gradient_consistency(grads)}
    frames["activation_cost"] = pd.concat(
        [io.read_parquet(p).assign(**(keys or {}), activation=a).reindex(
            columns=layout.TABLES["activation_cost"].columns)
         for a, p in zip(activations, timing_paths)], ignore_index=True)
    frames |= tables.history_summaries(loss, grads, ratio)
    io.write_tables(frames, out, config)


def union(paths, out, config=None):
    io.write_parquet(io.concat_parquet(paths), out, config)


def weight_metrics(keys: dict, weights: dict, runs, data, out: dict, seeds, hyper: dict, grad_tol,
                   n_bins, show_layers, config=None, threads=1, saturation_tol=0.01,
                   units: dict | None = None, outcomes: dict | None = None):
    """Dead neurons, sparsity and activation statistics of one variant (``keys``: experiment,
    variant), at initialisation and after training, for every activation, on each run's own
    training inputs. ``weights`` maps activation -> weights file; each file must hold that
    variant's and activation's weights with these seeds and settings; ``units`` maps activation
    -> its training job's unit-state table (the fates of units during training), ``outcomes``
    the config's outcome thresholds."""
    import pandas as pd

    from . import neurons, tables, train
    from .data import runs_data
    from .stats import summarize

    train.setup_torch(threads)  # torch's own default, every core, oversubscribes a shared machine

    df = io.read_parquet(data, ["x", "y"])
    xs, ys, _ = runs_data(df.assign(y_clean=df["y"]), None, seeds)
    x, y = xs[..., 0], ys[..., 0]  # (n,) shared or (runs, n)
    status = io.concat_parquet(runs, ["activation", "seed", "diverged", "final_loss",
                                      "baseline_mse"])
    outcomes = outcomes or {"collapse_rtol": 0.02, "explode_factor": 10.0}
    status["outcome"] = tables.outcomes(status, outcomes["collapse_rtol"],
                                        outcomes["explode_factor"])
    parts: dict[str, list] = {}
    L = hyper["hidden_layers"]
    data_sha256 = io.sha256(data)
    for act, path in weights.items():
        ids = keys | {"activation": act}
        init, final, _ = io.load_weights(path, expect=weights_identity(ids, seeds, hyper,
                                                                       data_sha256))
        st = status[status["activation"] == act].set_index("seed").loc[list(seeds)]
        diverged = st["diverged"].to_numpy(dtype=bool)
        # one forward pass per stage, for the shared histogram edges and the stage's tables
        outputs = {"init": neurons.layer_outputs(init, x, act, L),
                   "trained": neurons.layer_outputs(final, x, act, L)}
        bins = neurons.histogram_edges(list(outputs.values()), ok=~diverged, n_bins=n_bins)
        per_stage = {}
        for stage, state, div in (("init", init, None), ("trained", final, diverged)):
            tables_ = neurons.weight_metrics(
                state, x, act, L, grad_tol, keys | {"stage": stage, "activation": act},
                seeds, diverged=div, bins=bins, show_layers=show_layers if stage == "trained" else (),
                saturation_tol=saturation_tol, outputs=outputs[stage])
            per_stage[stage] = tables_["neurons"]
            for name, frame in tables_.items():
                if frame is not None:
                    parts.setdefault(name, []).append(frame)
        parts.setdefault("neuron_changes", []).append(
            neurons.neuron_changes(per_stage["init"], per_stage["trained"]))
        parts.setdefault("weight_change", []).append(
            neurons.weight_change(init, final, ids, seeds, L, diverged))
        parts.setdefault("layer_reset", []).append(neurons.layer_reset(
            init, final, x, y, act, L, ids, seeds, st["baseline_mse"].to_numpy(float), diverged))
        if units is not None:
            states = io.read_parquet(units[act], list(layout.UNIT_STATE_COLUMNS))
            fate_of = st.reset_index()[["seed", "outcome", "diverged"]].assign(**ids)
            parts.setdefault("neuron_fates", []).append(neurons.neuron_fates(states, fate_of))
        del outputs  # before the next activation's
        logging.getLogger("actflow.neurons").info("%s %s: %d seeds, %d diverged", keys["variant"],
                                                  act, len(seeds), int(diverged.sum()))
    frames = {name: pd.concat(dfs, ignore_index=True) for name, dfs in parts.items()}
    by = ["experiment", "variant", "stage", "activation"]
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


def capacity_metrics(keys: dict, weights: dict, runs, train_data, test_data, out: dict, targets,
                     seeds, hyper: dict, outcomes: dict, config=None, threads=1):
    """Train and test MSE of every (activation, target, seed) of one capacity variant (``keys``:
    experiment, variant), predictions on the test grids, summaries over seeds and, per target,
    the winner with a paired comparison over seeds. ``weights`` maps activation -> weights file
    (every target stacked, targets outer, seeds inner)."""
    import numpy as np
    import pandas as pd

    from . import model, train
    from .data import runs_data
    from .stats import summarize
    from .tables import capacity_winners, outcomes as outcome_of

    train.setup_torch(threads)

    status = io.concat_parquet(runs, ["activation", "target", "seed", "diverged"])
    status["outcome"] = outcome_of(status, outcomes["collapse_rtol"], outcomes["explode_factor"])
    train = io.read_parquet(train_data, ["target", "x", "y", "y_clean"])
    test = io.read_parquet(test_data, ["target", "x", "y"])
    x_tr, y_tr, _ = runs_data(train, targets, seeds)
    per_run = [(t, s) for t in targets for s in seeds]
    L = hyper["hidden_layers"]
    cap, preds = [], []
    data_sha256 = io.sha256(train_data)
    for act, path in weights.items():
        ids = keys | {"activation": act}
        _, final, _ = io.load_weights(path, expect=weights_identity(ids, seeds, hyper, data_sha256,
                                                                     targets))
        st = status[status["activation"] == act].set_index(["target", "seed"])
        xr = x_tr[..., 0] if x_tr.ndim == 3 else np.broadcast_to(x_tr[:, 0], (len(per_run), len(x_tr)))
        yr = y_tr[..., 0] if y_tr.ndim == 3 else np.broadcast_to(y_tr[:, 0], xr.shape)
        p_tr = model.predict(final, xr, act, L)
        for i, target in enumerate(targets):
            rows = slice(i * len(seeds), (i + 1) * len(seeds))
            state = {k: v[rows] for k, v in final.items()}
            grid = test[test["target"] == target]
            p_te = model.predict(state, grid["x"].to_numpy(), act, L)
            y_te = grid["y"].to_numpy()
            cap.append(pd.DataFrame({
                **ids, "target": target, "seed": list(seeds),
                "diverged": st.loc[[(target, s) for s in seeds], "diverged"].to_numpy(dtype=bool),
                "train_mse": ((p_tr[rows] - yr[rows]) ** 2).mean(axis=1),
                "test_mse": ((p_te - y_te) ** 2).mean(axis=1),
            }))
            n = len(grid)
            preds.append(pd.DataFrame({
                **ids, "target": target, "seed": np.repeat(list(seeds), n),
                "x": np.tile(grid["x"].to_numpy(), len(seeds)), "y_pred": p_te.reshape(-1),
                "y_true": np.tile(y_te, len(seeds)),
            }))
    cap = pd.concat(cap, ignore_index=True)
    by = ["experiment", "variant", "activation", "target"]
    frames = {
        "target_runs": status,
        "capacity": cap,
        "predictions": pd.concat(preds, ignore_index=True),
        "capacity_summary": pd.concat(
            [summarize(cap, by, v, log=True) for v in ("test_mse", "train_mse")], ignore_index=True),
        "capacity_winners": capacity_winners(cap),
    }
    io.write_tables(frames, out, config)


def audit_claims(claims_file, tables: dict, runs: dict, variants, out: dict,
                 claims_name: str | None = None) -> None:
    """Evaluate every claim of ``claims_file`` under every reading of its words, on the study's
    setting and under every variant (``variants``: name, experiment, overrides text,
    question), into Parquet, Markdown and HTML: the claims (primary reading, study's setting),
    the sensitivity to the variants, every reading, and why the failing numbers fail.
    ``tables`` maps each table the claims read to its file; ``runs`` maps each kind of
    experiment to its union runs table (the outcomes each reason reports); ``claims_name``, the
    claims file as the config names it, is what the tables record."""
    from . import claims, explain

    cl = claims.load(claims_file)
    # the name the config gives (tables and messages do not depend on where the clone lies)
    claims_file = claims_name or claims_file
    rows = claims.evaluate_all(cl, variants, tables, claims_file, runs)
    sens = claims.sensitivity(cl, variants, tables, claims_file, runs, all_rows=rows)
    df = claims.evaluate(cl, tables, claims_file, runs, all_rows=rows)
    df["differs_under"] = df["claim"].map(claims.differing_variants(sens)).fillna("")
    why = explain.explain(rows, df)
    meta = {"claims_file": str(claims_file)}
    for key, frame in (("claims_parquet", df), ("sensitivity_parquet", sens),
                       ("readings_parquet", rows), ("explanations_parquet", why)):
        io.write_parquet(frame, out[key], meta)
    for key, text in (("claims_markdown", claims.markdown(df)), ("claims_html", claims.html(df)),
                      ("sensitivity_markdown", claims.sensitivity_markdown(sens, variants)),
                      ("sensitivity_html", claims.sensitivity_html(sens)),
                      ("readings_markdown", claims.readings_markdown(rows, df)),
                      ("readings_html", claims.readings_html(rows, df)),
                      ("explanations_markdown", explain.markdown(why)),
                      ("explanations_html", explain.html(why))):
        with io.atomic_path(out[key]) as tmp:
            tmp.write_text(text)
    log = logging.getLogger("actflow.claims")
    log.info("%d claims: %s", len(df), df["verdict"].value_counts().to_dict())
    log.info("over their readings: %s", df["readings_label"].value_counts().to_dict())
    log.info("%d verdicts under %d variants, %d differ from the study's; %d evaluations in all",
             len(sens), len(variants), int(sens["differs"].sum()), len(rows))


def reading_figures(readings_table, claims_table, outputs: dict, dpi: int = 150,
                    context: str = "notebook") -> None:
    """The specification curve of each claim with readings (``outputs``: claim -> PNG path),
    from the audit's readings and claims tables."""
    from . import plotting

    plotting.draw_reading_curves(io.read_parquet(readings_table), io.read_parquet(claims_table),
                                 outputs, dpi=dpi, context=context)


def grid_figure(sensitivity_table, claims_table, name: str, grid: dict, out_png,
                dpi: int = 150, context: str = "notebook") -> None:
    """The figure of one grid variant (actflow.variants.grids) from the claims under every
    variant."""
    from . import plotting

    plotting.style(context)
    fig = plotting.grid_figure(io.read_parquet(sensitivity_table), io.read_parquet(claims_table),
                               name, grid)
    plotting.save(fig, {"png": out_png}, dpi)


def draw_figure(name: str, tables: dict, outputs: dict, dpi: int = 150,
                context: str = "notebook", study=(), settings=None) -> None:
    """One figure of the study (actflow.figures), drawn from its tables by keyword; ``study``:
    the study's own numbers it shows (actflow.claims.study_values); ``settings``: what each
    variant changes, for a figure of the variants."""
    from . import plotting

    plotting.draw(name, tables, outputs, dpi=dpi, context=context, study=study,
                  settings=settings)


def readme_figure(out_png, config_file="config/config.yaml") -> None:
    """The README's figure (actflow.figures.README_FIGURE, analytic), drawn exactly as a run of
    ``config_file`` draws it: its activations, its figure settings, the registry's function."""
    import tempfile

    from . import config as cfg
    from . import figures

    conf = cfg.validate(cfg.load_yaml(config_file), cfg.SCHEMA_PATH)
    with tempfile.TemporaryDirectory() as tmp:
        curves = f"{tmp}/curves.parquet"
        activation_curves(curves, conf["activations"], conf)
        draw_figure(figures.README_FIGURE, {"curves": curves}, {"png": out_png},
                    dpi=conf["figures"]["dpi"], context=conf["figures"]["context"])


def manifest(files, config: dict, basedir, out_json, out_config, out_json_html=None,
             out_config_html=None) -> None:
    from . import audit

    doc = audit.manifest(files, config, basedir, out_json, out_config)
    if out_json_html:
        with io.atomic_path(out_json_html) as tmp:
            tmp.write_text(audit.manifest_html(doc))
    if out_config_html:
        with io.atomic_path(out_config_html) as tmp:
            tmp.write_text(audit.config_html(config))


def reexecute(manifest_path, scratch, sample: int, seed: int, out_table, out_md, threads=1):
    """The re-execution audit: each sampled training job retrained from the spec it recorded."""
    from . import audit

    def retrain(files: dict, out: dict) -> None:
        train_job(TrainSpec.of_outputs(files["loss"]), out, threads)

    audit.reexecute(manifest_path, scratch, sample, seed, out_table, out_md, retrain)


def bundle(files, out_archive, out_checksum, weights: bool = False) -> None:
    """Pack this run for another person to compare with (actflow.bundle.make_bundle)."""
    from . import bundle as bundles

    index = bundles.make_bundle(files, out_archive, out_checksum, weights=weights)
    logging.getLogger("actflow.bundle").info(
        "packed %d files (%s weights) into %s", len(index["files"]),
        "with" if weights else "without", out_archive)


def compare_runs(ours, theirs, out: dict, dpi: int = 150) -> None:
    """Compare this run (results folder ``ours``) with another run's bundle or results folder
    ``theirs`` (actflow.compare.write); ``out`` maps layout.COMPARISON's keys to files."""
    from . import compare

    result = compare.write(ours, theirs, {k.removeprefix("comparison_"): v for k, v in out.items()},
                           dpi=dpi)
    counts = result["metrics"]["status"].value_counts().to_dict()
    same = int((result["claims"]["status"] == "same").sum())
    logging.getLogger("actflow.compare").info(
        "compared with %s: %d of %d verdicts the same; metrics %s", theirs, same,
        len(result["claims"]), counts)


if __name__ == "__main__":  # make readme-figure
    import sys

    from . import figures

    readme_figure(sys.argv[1] if len(sys.argv) > 1 else figures.README_FIGURE_PATH)
