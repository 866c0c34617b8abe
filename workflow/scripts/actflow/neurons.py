"""Dead neurons, sparsity and activation statistics of trained (and initial) weights.

Computed by a forward pass over the training inputs; nothing here trains.
Definitions, per hidden neuron, over every training input x:

- ``zero``: its output a = σ(z) is exactly 0 for every input;
- ``nonpositive``: a ≤ 0 for every input;
- ``no_gradient``: |σ′(z)| < ``grad_tol`` for every input (also catches saturated sigmoids).

A unit is **saturated** when |σ′(z)| < ``saturation_tol`` (default 0.01, far looser than
``grad_tol``) for every input: for a sigmoid, its output stays within about 1 % of 0 or 1.

The **effective rank** of a layer is exp(H(p)) with p the singular values of its centred
(inputs × units) activation matrix divided by their sum (Roy & Vetterli 2007): 1 for a layer
whose units all vary together, up to the width for independent units; how many distinct
directions the layer's representation of the inputs spans. Singular values below
``RANK_RTOL`` × the Frobenius norm of the (uncentred) activations are float rounding, not
variation, and are left out; a layer with none left does not vary and counts 1 (as low as a
layer can go, so that ratios of ranks stay finite).

**Fates during training** (:func:`neuron_fates`) read the unit states the training job
recorded at checkpoints (actflow.train.unit_states): a unit is *alive* at a checkpoint when its
output varies over the inputs and it is not dead under the definition; it *died during
training* when it was alive at one checkpoint and dead at a later one (not the last, which
leaves nothing to come back at); it *came back* when it
was alive again at any checkpoint after its death.

A run whose weights or activations are not finite (diverged) gets NaN metrics and
``diverged = True``: it is neither dead nor alive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from . import activations, layout, model, train

DEFINITIONS = list(layout.DEAD_DEFINITIONS)
# the definitions the training job records at checkpoints (actflow.train.unit_states)
FATE_DEFINITIONS = {"zero": train.UNIT_ZERO, "nonpositive": train.UNIT_NONPOSITIVE}
NEAR_ZERO = 1e-6  # |a| below this counts as near zero in the sparsity table
# Singular values below this share of the activations' Frobenius norm are rounding: float32
# values differ by ~6e-8 of their size, so 1e-5 keeps a 100-fold margin above that noise.
RANK_RTOL = 1e-5


def layer_outputs(state, x, activation, hidden_layers):
    """(pre-activations, activations, derivatives) per hidden layer, each (runs, n, width)."""
    zs = model.pre_activations(state, x, activation, hidden_layers)
    act = activations.get(activation)
    return [(z, act.fn(z), act.derivative(z)) for z in zs]


def effective_rank(a: torch.Tensor, rtol: float = RANK_RTOL) -> np.ndarray:
    """exp(entropy) of the normalised singular values of each run's centred (n, width)
    activation matrix; a: (runs, n, width). Singular values below ``rtol`` × ‖a‖_F (the
    activations' own scale) are dropped as rounding; 1 where none is left (no variation)."""
    a = a.double()
    c = a - a.mean(dim=1, keepdim=True)
    s = torch.linalg.svdvals(c)
    floor = rtol * torch.linalg.vector_norm(a, dim=(1, 2))[:, None]
    s = torch.where(s > floor, s, torch.zeros_like(s))
    total = s.sum(dim=1, keepdim=True)
    p = torch.where(total > 0, s / total.clamp_min(1e-300), torch.zeros_like(s))
    h = -(torch.where(p > 0, p * torch.log(p), torch.zeros_like(p))).sum(dim=1)
    return torch.where(total[:, 0] > 0, torch.exp(h), torch.ones_like(h)).numpy()


def weight_metrics(state, x, activation, hidden_layers, grad_tol, keys: dict, seeds,
                   diverged=None, show_layers=(), bins=None, saturation_tol=0.01, outputs=None):
    """Tables for one set of stacked weights: neurons, dead fractions, sparsity, histograms,
    hidden activations. ``keys`` holds the identifying columns (experiment, stage, ...),
    ``seeds`` the seed of each run and ``diverged`` the runs flagged during training;
    ``outputs``: the weights' :func:`layer_outputs` on ``x``, where the caller has them."""
    seeds = list(seeds)
    outs = layer_outputs(state, x, activation, hidden_layers) if outputs is None else outputs
    finite = torch.ones(len(seeds), dtype=torch.bool)
    if diverged is not None:
        finite &= ~torch.tensor(np.array(diverged, dtype=bool))
    for _, a, _ in outs:
        finite &= torch.isfinite(a).flatten(1).all(dim=1)
    for t in state.values():
        finite &= torch.isfinite(t).flatten(1).all(dim=1)
    ok = finite.numpy()
    neurons, sparsity, hists, hidden, reps = [], [], [], [], []
    xr = np.broadcast_to(np.asarray(x, dtype=np.float64), (len(seeds), np.shape(x)[-1]))
    order = np.argsort(xr, axis=1, kind="stable")  # each run's inputs, sorted
    for layer, (z, a, d) in enumerate(outs, start=1):
        width = a.shape[2]
        flags = {
            "zero": (a == 0).all(dim=1),
            "nonpositive": (a <= 0).all(dim=1),
            "no_gradient": (d.abs() < grad_tol).all(dim=1),
        }
        out_std = a.double().std(dim=1, correction=0)  # (runs, width)
        saturated = (d.abs() < saturation_tol).all(dim=1)
        unknown = np.repeat(~ok, width)  # a diverged run's flags are missing (NA)

        def flag(f):
            return pd.arrays.BooleanArray(f.reshape(-1).numpy() & ~unknown, unknown.copy())

        neurons.append(pd.DataFrame({
            "seed": np.repeat(seeds, width),
            "layer": layer,
            "neuron": np.tile(np.arange(1, width + 1), len(seeds)),
            "diverged": unknown,
            "min_output": a.amin(dim=1).reshape(-1).double().numpy(),
            "max_output": a.amax(dim=1).reshape(-1).double().numpy(),
            "max_abs_derivative": d.abs().amax(dim=1).reshape(-1).double().numpy(),
            "output_std": out_std.reshape(-1).numpy(),
            "saturated": flag(saturated),
            **{f"dead_{name}": flag(f) for name, f in flags.items()},
        }))
        exact = (a == 0).double().mean(dim=(1, 2)).numpy()
        near = (a.abs() < NEAR_ZERO).double().mean(dim=(1, 2)).numpy()
        sat = saturated.double().mean(dim=1).numpy()
        sparsity.append(pd.DataFrame({
            "seed": seeds, "layer": layer, "diverged": ~ok,
            "exact_zero_fraction": np.where(ok, exact, np.nan),
            "near_zero_fraction": np.where(ok, near, np.nan),
            "saturated_fraction": np.where(ok, sat, np.nan),
        }))
        rank = effective_rank(torch.nan_to_num(a)) if a.shape[1] > 1 else np.ones(len(seeds))
        reps.append(pd.DataFrame({
            "seed": seeds, "layer": layer, "diverged": ~ok,
            "effective_rank": np.where(ok, rank, np.nan),
            "mean_output_std": np.where(ok, out_std.mean(dim=1).numpy(), np.nan),
        }))
        if bins is not None:  # one frame per layer, the runs' rows one after the other
            nb = len(bins) - 1
            counts = np.zeros((len(seeds), nb), dtype=np.int64)
            for r in range(len(seeds)):
                if ok[r]:
                    counts[r] = np.histogram(a[r].double().numpy().clip(bins[0], bins[-1]),
                                             bins)[0]
            hists.append(pd.DataFrame({
                "seed": np.repeat(seeds, nb), "layer": layer, "diverged": np.repeat(~ok, nb),
                "bin_left": np.tile(bins[:-1], len(seeds)),
                "bin_right": np.tile(bins[1:], len(seeds)),
                "count": counts.reshape(-1), "fraction": counts.reshape(-1) / a[0].numel(),
            }))
        if layer in show_layers:
            n = a.shape[1]
            idx = torch.as_tensor(order)[:, :, None].expand(-1, -1, width)
            vals = torch.gather(a, 1, idx).permute(0, 2, 1).reshape(-1).double().numpy()
            xs = np.take_along_axis(xr, order, axis=1)  # (runs, n)
            hidden.append(pd.DataFrame({
                "seed": np.repeat(seeds, width * n),
                "layer": layer,
                "neuron": np.tile(np.repeat(np.arange(1, width + 1), n), len(seeds)),
                "x": np.repeat(xs, width, axis=0).reshape(-1),
                "activation_value": vals,
            }))

    def tag(frames):
        if not frames:
            return None
        df = pd.concat(frames, ignore_index=True)
        for i, (k, v) in enumerate(keys.items()):
            df.insert(i, k, v)
        return df

    neurons = tag(neurons)
    dead = (
        neurons.melt(id_vars=list(keys) + ["seed", "layer", "diverged"],
                     value_vars=[f"dead_{d}" for d in DEFINITIONS], var_name="definition",
                     value_name="dead")
        .assign(definition=lambda f: f["definition"].str.removeprefix("dead_"),
                dead=lambda f: f["dead"].astype("Float64"))
        .groupby(list(keys) + ["seed", "layer", "definition"], sort=False)
        .agg(diverged=("diverged", "first"), dead_fraction=("dead", "mean"))
        .reset_index()
    )
    dead["dead_fraction"] = dead["dead_fraction"].astype(float)
    return {"neurons": neurons, "dead_neurons": dead, "sparsity": tag(sparsity),
            "activation_hist": tag(hists), "hidden_activations": tag(hidden),
            "representations": tag(reps)}


def neuron_changes(init: pd.DataFrame, trained: pd.DataFrame) -> pd.DataFrame:
    """Per run, layer and definition: the share of the layer's neurons dead at initialisation
    and after training, revived (dead → alive) and died (alive → dead), and the revival rate
    (revived / dead at initialisation). From the two stages' ``neurons`` tables of one
    activation; a diverged run gets NaN (it is neither dead nor alive after training)."""
    on = ["experiment", "variant", "activation", "seed", "layer", "neuron"]
    both = init.merge(trained, on=on, suffixes=("_init", "_trained"))
    rows = []
    for d in DEFINITIONS:
        a = both[f"dead_{d}_init"].astype("boolean")
        b = both[f"dead_{d}_trained"].astype("boolean")
        frame = both[on[:-1]].assign(
            definition=d, diverged=both["diverged_trained"],
            dead_at_init=a.astype("Float64"), dead_after=b.astype("Float64"),
            revived=(a & ~b).astype("Float64"), died=(~a & b).astype("Float64"))
        rows.append(frame.groupby(on[:-1] + ["definition"], sort=False).agg(
            diverged=("diverged", "first"), dead_at_init=("dead_at_init", "mean"),
            dead_after=("dead_after", "mean"), revived=("revived", "mean"),
            died=("died", "mean")).reset_index())
    out = pd.concat(rows, ignore_index=True)
    bad = out["diverged"].astype(bool).to_numpy()
    for col in ("dead_at_init", "dead_after", "revived", "died"):
        out[col] = out[col].astype(float)
        if col != "dead_at_init":
            out.loc[bad, col] = np.nan
    out["revival_rate"] = np.where(out["dead_at_init"] > 0,
                                   out["revived"] / out["dead_at_init"].where(out["dead_at_init"] > 0),
                                   np.nan)
    return out


def weight_change(init: dict, final: dict, keys: dict, seeds, hidden_layers: int,
                  diverged=None) -> pd.DataFrame:
    """How far each hidden layer's weights moved over training, per run:
    ‖W_final − W_init‖_F / ‖W_init‖_F (``relative_change``), with both norms."""
    rows = []
    bad = np.zeros(len(seeds), dtype=bool) if diverged is None else np.asarray(diverged, bool)
    for layer in range(1, hidden_layers + 1):
        w0 = init[f"hidden{layer}.weight"].double()
        w1 = final[f"hidden{layer}.weight"].double()
        n0 = torch.linalg.vector_norm(w0, dim=(1, 2)).numpy()
        n1 = torch.linalg.vector_norm(w1, dim=(1, 2)).numpy()
        moved = torch.linalg.vector_norm(w1 - w0, dim=(1, 2)).numpy()
        rows.append(pd.DataFrame({
            "seed": list(seeds), "layer": layer, "diverged": bad,
            "init_norm": n0, "final_norm": np.where(bad, np.nan, n1),
            "relative_change": np.where(bad, np.nan, moved / n0)}))
    df = pd.concat(rows, ignore_index=True)
    for i, (k, v) in enumerate(keys.items()):
        df.insert(i, k, v)
    return df


def histogram_edges(outputs, ok=None, n_bins=60, tail=1e-3):
    """Bin edges shared by every seed, stage and layer of one activation, so counts pool;
    ``outputs``: each stage's :func:`layer_outputs` (its weights on the training inputs).

    The edges span the 0.1 %–99.9 % quantiles of the pooled finite activations of the
    runs that did not diverge; values beyond fall into the end bins. Evenly spaced, unless
    the range is a long tail (over 100 interquartile ranges wide, as after Experiment 2's
    explosions): then evenly spaced in asinh(v / IQR), linear near 0 and logarithmic beyond,
    so that the bulk of the values is not squashed into the first bin.
    """
    pooled = []
    for outs in outputs:
        for _, a, _ in outs:
            a = a if ok is None else a[torch.tensor(np.array(ok, dtype=bool))]
            pooled.append(a[torch.isfinite(a)].double().flatten())
    v = torch.cat(pooled) if pooled else torch.empty(0, dtype=torch.float64)
    if v.numel() == 0:
        return np.linspace(0.0, 1.0, n_bins + 1)
    if v.numel() > 2**24:  # a seeded sample of 2²⁴ values bounds the memory of larger configs
        v = v[torch.randperm(v.numel(), generator=torch.Generator().manual_seed(0))[: 2**24]]
    return edges_for(v.numpy(), n_bins, tail, overwrite=True)  # v: a copy of its own


def edges_for(values: np.ndarray, n_bins: int = 60, tail: float = 1e-3,
              overwrite: bool = False) -> np.ndarray:
    """The bin edges of histogram_edges for a sample of finite values (``overwrite``: the
    quantiles may reorder ``values`` in place instead of copying them first)."""
    # numpy's quantile selects (O(n)) where torch's sorts: the same values, 7x faster here
    lo, q1, q3, hi = np.quantile(values, [tail, 0.25, 0.75, 1 - tail],
                                 overwrite_input=overwrite).tolist()
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    scale = q3 - q1
    if scale > 0 and hi - lo > LONG_TAIL * scale:
        edges = scale * np.sinh(np.linspace(np.arcsinh(lo / scale), np.arcsinh(hi / scale),
                                            n_bins + 1))
        edges[0], edges[-1] = lo, hi  # exactly the quantiles, as the even edges
        return edges
    return np.linspace(lo, hi, n_bins + 1)


LONG_TAIL = 100  # a range wider than this many interquartile ranges gets asinh-spaced bins


def neuron_fates(states: pd.DataFrame, outcome: pd.DataFrame) -> pd.DataFrame:
    """Which units died during training, and which came back, per run, layer and definition
    (``FATE_DEFINITIONS``), from a training job's unit-state table (layout.UNIT_STATE_COLUMNS
    with the run keys) and each run's ``outcome`` and ``diverged`` (keyed like the states).

    Per unit, over the checkpoints in order: alive = varies and not dead under the
    definition. ``died``: alive at some checkpoint, dead at a later one that is not the last
    (a death at the last checkpoint, after training, could not be followed); ``came_back``: of
    those, alive at a checkpoint after its first death; ``alive_at_end``: of those, alive at
    the last checkpoint (after training). Rows per hidden layer and, as layer 0, all hidden
    layers pooled; counts are units, rates are shares: ``died_fraction`` = died / units,
    ``revival_rate`` = came_back / died, ``end_revival_rate`` = alive_at_end / died (NaN where
    none died, and every rate NaN for a diverged run).
    """
    runs = [c for c in states.columns if c not in
            ("epoch", "layer", "neuron", "zero", "nonpositive", "varies")]
    s = states.sort_values(runs + ["layer", "neuron", "epoch"], kind="stable")
    n_ck = s["epoch"].nunique()
    head = s.drop_duplicates(runs + ["layer", "neuron"])[runs + ["layer"]].reset_index(drop=True)
    varies = s["varies"].to_numpy(bool).reshape(-1, n_ck)
    frames = []
    for d in FATE_DEFINITIONS:
        dead = s[d].to_numpy(bool).reshape(-1, n_ck)
        alive = varies & ~dead
        # first checkpoint at which a unit that was alive before is dead
        was_alive = np.logical_or.accumulate(alive, axis=1)
        death = dead & np.concatenate([np.zeros((len(dead), 1), bool), was_alive[:, :-1]], axis=1)
        death[:, -1] = False  # a death at the last checkpoint had no chance to come back
        died = death.any(axis=1)
        first = np.where(died, death.argmax(axis=1), n_ck)
        later = np.arange(n_ck)[None, :] > first[:, None]
        frames.append(head.assign(
            definition=d, units=1, alive_at_init=alive[:, 0].astype(int), died=died.astype(int),
            came_back=(died & (alive & later).any(axis=1)).astype(int),
            alive_at_end=(died & alive[:, -1]).astype(int)))
    per_unit = pd.concat(frames, ignore_index=True)
    counts = ["units", "alive_at_init", "died", "came_back", "alive_at_end"]
    by_layer = per_unit.groupby(runs + ["layer", "definition"], sort=False)[counts].sum().reset_index()
    pooled = (per_unit.groupby(runs + ["definition"], sort=False)[counts].sum().reset_index()
              .assign(layer=0))
    out = pd.concat([pooled, by_layer], ignore_index=True)
    out = out.merge(outcome[runs + ["outcome", "diverged"]], on=runs, how="left")
    bad = out["diverged"].astype(bool).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["died_fraction"] = np.where(bad, np.nan, out["died"] / out["units"])
        some = (out["died"] > 0) & ~bad
        out["revival_rate"] = np.where(some, out["came_back"] / out["died"], np.nan)
        out["end_revival_rate"] = np.where(some, out["alive_at_end"] / out["died"], np.nan)
    for col in ("died", "came_back", "alive_at_end"):
        out[col] = out[col].astype(float).where(~bad)
    keys = [k for k in ("experiment", "variant", "activation", "seed") if k in out.columns]
    rest = [c for c in out.columns if c not in keys]
    order = ["outcome", "layer", "definition", "diverged", "units", "alive_at_init", "died",
             "came_back", "alive_at_end", "died_fraction", "revival_rate", "end_revival_rate"]
    out = out[keys + order + [c for c in rest if c not in order]]
    return out.sort_values(keys + ["definition", "layer"], kind="stable").reset_index(drop=True)


def layer_reset(init: dict, final: dict, x, y, activation: str, hidden_layers: int, keys: dict,
                seeds, baseline_mse, diverged=None) -> pd.DataFrame:
    """What each hidden layer learned, by function: the training loss of the trained net, and
    with that one layer's weights and bias put back to their initial values, the rest trained.
    ``reset_increase`` = (loss with the layer reset − trained loss) / var(y): near 0 for a
    layer whose training changed nothing the net relies on. x, y: (n,) shared or (runs, n)."""
    bad = np.zeros(len(seeds), dtype=bool) if diverged is None else np.asarray(diverged, bool)
    yr = np.broadcast_to(np.asarray(y, dtype=np.float64), (len(seeds), np.shape(x)[-1]))
    base = np.broadcast_to(np.asarray(baseline_mse, dtype=np.float64), (len(seeds),))
    trained = ((model.predict(final, x, activation, hidden_layers) - yr) ** 2).mean(axis=1)
    rows = []
    for layer in range(1, hidden_layers + 1):
        state = dict(final)
        for k in ("weight", "bias"):
            state[f"hidden{layer}.{k}"] = init[f"hidden{layer}.{k}"]
        reset = ((model.predict(state, x, activation, hidden_layers) - yr) ** 2).mean(axis=1)
        rows.append(pd.DataFrame({
            "seed": list(seeds), "layer": layer, "diverged": bad, "baseline_mse": base,
            "loss_trained": np.where(bad, np.nan, trained), "loss_reset": np.where(bad, np.nan, reset),
            "reset_increase": np.where(bad, np.nan, (reset - trained) / base)}))
    df = pd.concat(rows, ignore_index=True)
    for i, (k, v) in enumerate(keys.items()):
        df.insert(i, k, v)
    return df
