"""Dead-neuron definitions on hand-built nets whose answer is known."""

import numpy as np
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
    edges = neurons.histogram_edges([state], X, "relu", 1, n_bins=8)
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
