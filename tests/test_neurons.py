"""Dead-neuron definitions on hand-built nets whose answer is known."""

import numpy as np
import pandas as pd
import pytest
import torch

from actflow import neurons

X = np.linspace(-np.pi, np.pi, 50)


def one_layer_net(bias_dead: float):
    """1 hidden layer of 2 neurons: neuron 1 has weight 1 and bias ``bias_dead``; neuron 2 is
    w=1, b=0 (alive for every activation). One run."""
    w = torch.tensor([[[1.0, 1.0]]], dtype=torch.float64)  # (runs, in=1, out=2)
    b = torch.tensor([[[bias_dead, 0.0]]], dtype=torch.float64)
    return {"hidden1.weight": w, "hidden1.bias": b,
            "output.weight": torch.ones(1, 2, 1, dtype=torch.float64),
            "output.bias": torch.zeros(1, 1, 1, dtype=torch.float64)}


def dead_flags(state, activation):
    t = neurons.weight_metrics(state, X, activation, 1, 1e-6, {"activation": activation}, [0])
    n = t["neurons"].set_index("neuron")
    return {d: [bool(n.loc[i, f"dead_{d}"]) for i in (1, 2)] for d in neurons.DEFINITIONS}, t


def test_large_negative_bias_kills_relu_under_every_definition():
    flags, t = dead_flags(one_layer_net(-100.0), "relu")
    assert flags == {"zero": [True, False], "nonpositive": [True, False], "no_gradient": [True, False]}
    dead = t["dead_neurons"].set_index("definition")["dead_fraction"]
    assert (dead == 0.5).all()


def test_leaky_relu_with_the_same_bias_is_not_dead_under_zero_or_no_gradient():
    flags, _ = dead_flags(one_layer_net(-100.0), "leaky_relu")
    assert flags == {"zero": [False, False], "nonpositive": [True, False], "no_gradient": [False, False]}


def test_saturated_sigmoid_is_dead_only_under_no_gradient():
    flags, _ = dead_flags(one_layer_net(-40.0), "sigmoid")
    assert flags == {"zero": [False, False], "nonpositive": [False, False], "no_gradient": [True, False]}


def test_sparsity_counts_exact_and_near_zeros():
    _, t = dead_flags(one_layer_net(-100.0), "relu")
    s = t["sparsity"].iloc[0]
    # neuron 1 is always 0, neuron 2 is 0 for x <= 0 (25 of 50 inputs)
    assert s["exact_zero_fraction"] == pytest.approx((50 + 25) / 100)
    assert s["near_zero_fraction"] >= s["exact_zero_fraction"]


def test_diverged_runs_get_no_verdict():
    state = one_layer_net(-100.0)
    state["hidden1.weight"][0, 0, 1] = float("nan")
    t = neurons.weight_metrics(state, X, "relu", 1, 1e-6, {"activation": "relu"}, [0])
    assert t["dead_neurons"]["diverged"].all() and t["dead_neurons"]["dead_fraction"].isna().all()
    assert t["sparsity"]["exact_zero_fraction"].isna().all()
    t = neurons.weight_metrics(one_layer_net(-1.0), X, "relu", 1, 1e-6, {"activation": "relu"}, [0],
                               diverged=[True])
    assert t["dead_neurons"]["dead_fraction"].isna().all()


def test_histogram_edges_are_shared_and_cover_the_values():
    state = one_layer_net(-1.0)
    edges = neurons.histogram_edges([neurons.layer_outputs(state, X, "relu", 1)], n_bins=8)
    t = neurons.weight_metrics(state, X, "relu", 1, 1e-6, {"activation": "relu"}, [0], bins=edges,
                               show_layers=[1])
    h = t["activation_hist"]
    assert len(h) == 8 and h["count"].sum() == 2 * len(X)
    np.testing.assert_allclose(h["bin_left"].to_numpy(), edges[:-1])
    hid = t["hidden_activations"]
    assert len(hid) == 2 * len(X)
    n2 = hid[hid["neuron"] == 2]
    assert n2["x"].is_monotonic_increasing
    np.testing.assert_allclose(n2["activation_value"], np.maximum(X, 0))


def test_a_long_tail_gets_asinh_spaced_bins_and_a_bulk_gets_even_ones():
    rng = np.random.default_rng(0)
    bulk = rng.normal(0.0, 1.0, 20_000)
    even = neurons.edges_for(bulk, n_bins=20)
    np.testing.assert_allclose(np.diff(even), np.diff(even)[0])
    # Experiment 2's kind of sample: a bulk near 0 and exploded values up to 10⁵
    tail = np.concatenate([bulk, rng.uniform(0, 1e5, 200)])
    edges = neurons.edges_for(tail, n_bins=20)
    lo, hi = np.quantile(tail, [1e-3, 1 - 1e-3])
    assert edges[0] == lo and edges[-1] == hi and np.all(np.diff(edges) > 0)
    widths = np.diff(edges)
    assert widths.max() > 100 * widths.min()  # narrow near 0, wide in the tail
    # evenly spaced in asinh(v / IQR): the bulk is spread over several bins, not one
    counts = np.histogram(tail.clip(lo, hi), edges)[0]
    assert (counts > 0.01 * len(tail)).sum() >= 4
    assert counts.max() < 0.5 * len(tail)


def two_stage_nets():
    """One hidden layer of 2 ReLU neurons, at 'initialisation' and 'after training': neuron 1
    is dead at first (bias −100) and alive after (bias 0); neuron 2 alive, then dead."""
    init = one_layer_net(-100.0)
    init["hidden1.bias"] = torch.tensor([[[-100.0, 0.0]]], dtype=torch.float64)
    final = one_layer_net(0.0)
    final["hidden1.bias"] = torch.tensor([[[0.0, -100.0]]], dtype=torch.float64)
    return init, final


def test_revival_and_death_are_counted_per_layer_and_definition():
    init, final = two_stage_nets()
    keys = {"experiment": "exp2", "variant": "exp2"}
    tables = {stage: neurons.weight_metrics(state, X, "relu", 1, 1e-6,
                                            keys | {"stage": stage, "activation": "relu"}, [0])
              for stage, state in (("init", init), ("trained", final))}
    ch = neurons.neuron_changes(tables["init"]["neurons"], tables["trained"]["neurons"])
    row = ch[ch["definition"] == "zero"].iloc[0]
    assert (row["dead_at_init"], row["dead_after"], row["revived"], row["died"]) == (0.5, 0.5, 0.5, 0.5)
    assert row["revival_rate"] == 1.0
    # a layer where nothing is dead at first has no revival rate
    none_dead = tables["init"]["neurons"].assign(dead_zero=False)
    ch = neurons.neuron_changes(none_dead, tables["trained"]["neurons"])
    row = ch[ch["definition"] == "zero"].iloc[0]
    assert (row["dead_at_init"], row["revived"], row["died"]) == (0.0, 0.0, 0.5)
    assert np.isnan(row["revival_rate"])


def test_diverged_runs_get_no_revival_counts():
    init, final = two_stage_nets()
    keys = {"experiment": "exp2", "variant": "exp2"}
    tables = {stage: neurons.weight_metrics(state, X, "relu", 1, 1e-6,
                                            keys | {"stage": stage, "activation": "relu"}, [0],
                                            diverged=[True] if stage == "trained" else None)
              for stage, state in (("init", init), ("trained", final))}
    ch = neurons.neuron_changes(tables["init"]["neurons"], tables["trained"]["neurons"])
    assert ch["diverged"].all()
    assert ch[["dead_after", "revived", "died", "revival_rate"]].isna().all().all()
    assert ch["dead_at_init"].notna().all()  # the initial weights were finite


def _states(units):
    """A unit-state table from per-unit strings over checkpoints: a = alive (varies, output >
    0 somewhere), z = dead (output 0 everywhere), c = constant positive (no variation)."""
    rows = []
    code = {"a": (False, False, True), "z": (True, True, False), "c": (False, False, False)}
    for n, seq in enumerate(units, start=1):
        for e, ch in enumerate(seq):
            zero, nonpos, varies = code[ch]
            rows.append({"experiment": "exp2", "variant": "exp2", "activation": "relu", "seed": 0,
                         "epoch": 1 + 10 * e, "layer": 1, "neuron": n, "zero": zero,
                         "nonpositive": nonpos, "varies": varies})
    return pd.DataFrame(rows)


def test_units_that_die_during_training_and_come_back_are_counted():
    units = ["aaaa",  # alive throughout
             "azzz",  # died, stayed dead
             "azaa",  # died, came back, alive at the end
             "azaz",  # died, came back, dead again at the end
             "zzzz",  # dead from the start: never died during training
             "zaaa",  # dead at init, woke up: not a death
             "aczc",  # alive, then constant (not alive, not dead), dead, constant: died, never back
             "aaaz"]  # dead only after the last update: no checkpoint to come back at, not counted
    fates = neurons.neuron_fates(_states(units), pd.DataFrame(
        {"experiment": ["exp2"], "variant": ["exp2"], "activation": ["relu"], "seed": [0],
         "outcome": ["trained"], "diverged": [False]}))
    row = fates[(fates["definition"] == "zero") & (fates["layer"] == 0)].iloc[0]
    assert (row["units"], row["alive_at_init"], row["died"], row["came_back"], row["alive_at_end"]) \
        == (8, 6, 4, 2, 1)
    assert row["revival_rate"] == pytest.approx(2 / 4) and row["end_revival_rate"] == pytest.approx(1 / 4)
    assert row["died_fraction"] == pytest.approx(4 / 8) and row["outcome"] == "trained"
    per_layer = fates[(fates["definition"] == "zero") & (fates["layer"] == 1)].iloc[0]
    assert per_layer["died"] == row["died"]


def test_unit_fates_of_a_real_run_match_a_unit_by_unit_count():
    """Real training (Adam at lr 0.1 kills ReLU units): the fates table agrees with a plain loop
    over every unit's recorded states."""
    from actflow import data, tables, train

    d = data.make_train_set("sin", 64, -np.pi, np.pi, 0.1, 2024)
    x, y = d["x"].to_numpy()[:, None], d["y"].to_numpy()[:, None]
    hp = train.Hyper(hidden_layers=4, width=16, epochs=60, learning_rate=0.1)
    r = train.train(x, y, [0, 1, 2], "relu", hp, log_every=0, unit_every=5)
    assert list(r.unit_epochs) == list(range(1, 61, 5)) + [61]
    runs = pd.DataFrame({"experiment": "exp2", "variant": "exp2", "activation": "relu",
                         "seed": [0, 1, 2]})
    states = tables.unit_state_table(r, runs)
    fates = neurons.neuron_fates(states, runs.assign(outcome="trained", diverged=False))
    died = came = 0
    for _, u in states.groupby(["seed", "layer", "neuron"]):
        alive = (u["varies"] & ~u["zero"]).to_numpy()
        dead = u["zero"].to_numpy()
        hit = [i for i in range(1, len(u) - 1) if dead[i] and alive[:i].any()]
        if hit:
            died += 1
            came += bool(alive[hit[0] + 1:].any())
    pooled = fates[(fates["definition"] == "zero") & (fates["layer"] == 0)]
    assert pooled["died"].sum() == died > 0
    assert pooled["came_back"].sum() == came


def test_weight_change_is_the_relative_distance_moved():
    init, final = two_stage_nets()
    final = {k: v.clone() for k, v in init.items()}
    final["hidden1.weight"] = init["hidden1.weight"] * 3  # moved twice its own norm
    df = neurons.weight_change(init, final, {"experiment": "exp1", "variant": "exp1",
                                             "activation": "relu"}, [0], 1)
    assert df["relative_change"].iloc[0] == pytest.approx(2.0)
    assert df["init_norm"].iloc[0] == pytest.approx(float(np.sqrt(2)))


def test_effective_rank_counts_independent_directions():
    rng = np.random.default_rng(0)
    same = np.repeat(rng.normal(size=(100, 1)), 4, axis=1)  # four copies of one direction
    independent = rng.normal(size=(100, 4))
    constant = np.ones((100, 4))
    r = neurons.effective_rank(torch.tensor(np.stack([same, independent, constant])))
    assert r[0] == pytest.approx(1.0, abs=1e-6) and 3.5 < r[1] <= 4 and r[2] == 1


def test_effective_rank_ignores_float_rounding_around_a_constant():
    """A collapsed Sigmoid layer: every unit at 0.5 with float32 rounding noise of ~1e-8 scores
    1 (no variation), not the rank of the noise; variation of a thousandth still counts."""
    rng = np.random.default_rng(1)
    flat = (0.5 + 1e-8 * rng.standard_normal((200, 64))).astype(np.float32)
    varied = (0.5 + 1e-3 * rng.standard_normal((200, 64))).astype(np.float32)
    r = neurons.effective_rank(torch.tensor(np.stack([flat, varied])))
    assert r[0] == 1.0 and r[1] > 20


def test_saturated_sigmoid_units_are_flagged_and_counted():
    t = neurons.weight_metrics(one_layer_net(-40.0), X, "sigmoid", 1, 1e-6,
                               {"activation": "sigmoid"}, [0], saturation_tol=0.01)
    assert list(t["neurons"]["saturated"]) == [True, False]
    assert t["sparsity"]["saturated_fraction"].iloc[0] == 0.5
