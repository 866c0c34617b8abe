"""Stacked-seed training against plain per-seed PyTorch, with autograd as the reference."""

import numpy as np
import pytest
import torch
from torch import nn

from actflow import activations, data, train

HP = train.Hyper(hidden_layers=4, width=16, epochs=30, dtype="float64")


def _data(n=40):
    df = data.make_train_set("sin", n, -np.pi, np.pi, 0.1, seed=3)
    return df["x"].to_numpy()[:, None], df["y"].to_numpy()[:, None]


def reference(seed, x, y, activation, hp):
    """What a user writes by hand: nn.Linear layers built after manual_seed, one seed at a time."""
    torch.manual_seed(seed)
    dims = [1] + [hp.width] * hp.hidden_layers + [1]
    layers = [nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])]
    dtype = getattr(torch, hp.dtype)
    for layer in layers:
        layer.to(dtype)
    params = [p for layer in layers for p in layer.parameters()]
    opt = torch.optim.Adam(params, lr=hp.learning_rate)
    fn = activations.get(activation).fn
    x, y = torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype)
    loss_h, wg_h, zg_h = [], [], []
    for _ in range(hp.epochs):
        opt.zero_grad()
        h, zs = x, []
        for layer in layers[:-1]:
            z = layer(h)
            z.retain_grad()
            zs.append(z)
            h = fn(z)
        loss = nn.functional.mse_loss(layers[-1](h), y)
        loss.backward()
        loss_h.append(loss.item())
        wg_h.append([layer.weight.grad.norm().item() for layer in layers[:-1]])
        zg_h.append([z.grad.norm().item() for z in zs])
        opt.step()
    return np.array(loss_h), np.array(wg_h), np.array(zg_h)


ONE_LAYER = train.Hyper(hidden_layers=1, width=8, epochs=15, dtype="float64")


@pytest.mark.parametrize("activation,hp,seeds", [
    ("sigmoid", HP, [0, 5, 11]), ("relu", HP, [0, 5, 11]), ("gelu", HP, [0, 5, 11]),
    ("relu", ONE_LAYER, [3, 4]),  # a single hidden layer: no stacked hidden-to-hidden weights
])
def test_recorded_gradients_equal_autograd_per_seed(activation, hp, seeds):
    x, y = _data()
    res = train.train(x, y, seeds, activation, hp, log_every=0)
    for r, seed in enumerate(seeds):
        loss, wg, zg = reference(seed, x, y, activation, hp)
        np.testing.assert_allclose(res.loss[:, r], loss, rtol=1e-9)
        np.testing.assert_allclose(res.weight_grad[:, :, r], wg, rtol=1e-8)
        np.testing.assert_allclose(res.preact_grad[:, :, r], zg, rtol=1e-8)


def test_compiled_step_equals_eager():
    """train.compile: true (torch.compile of the epoch step) records the same numbers, float64."""
    x, y = _data()
    hp = train.Hyper(hidden_layers=3, width=8, epochs=25, dtype="float64")
    eager = train.train(x, y, [0, 1], "gelu", hp, log_every=0)
    compiled = train.train(x, y, [0, 1], "gelu", hp, log_every=0, compile=True)
    np.testing.assert_allclose(compiled.loss, eager.loss, rtol=1e-9)
    np.testing.assert_allclose(compiled.weight_grad, eager.weight_grad, rtol=1e-8)
    np.testing.assert_allclose(compiled.preact_grad, eager.preact_grad, rtol=1e-8)
    for k in eager.final_params:
        torch.testing.assert_close(compiled.final_params[k], eager.final_params[k],
                                   rtol=1e-9, atol=1e-12)


def test_float32_stacked_equals_separate_at_first_epochs():
    x, y = _data()
    hp = train.Hyper(hidden_layers=10, width=64, epochs=3)
    res = train.train(x, y, [0, 1], "relu", hp, log_every=0)
    loss, wg, _ = reference(1, x, y, "relu", hp)
    np.testing.assert_allclose(res.loss[:, 1], loss, rtol=1e-5)
    np.testing.assert_allclose(res.weight_grad[:, :, 1], wg, rtol=1e-4)


def test_cpu_training_is_deterministic():
    x, y = _data()
    hp = train.Hyper(hidden_layers=3, width=8, epochs=20)
    a = train.train(x, y, [0, 1], "gelu", hp, log_every=0)
    b = train.train(x, y, [0, 1], "gelu", hp, log_every=0)
    assert np.array_equal(a.loss, b.loss) and np.array_equal(a.weight_grad, b.weight_grad)
    for k in a.final_params:
        assert torch.equal(a.final_params[k], b.final_params[k])


def test_a_diverging_run_is_flagged_not_raised():
    x, y = _data()
    hp = train.Hyper(hidden_layers=3, width=8, epochs=40, optimizer="sgd", learning_rate=1e4)
    res = train.train(x, y, [0, 1], "relu", hp, log_every=0)
    assert (res.diverged_epoch > 0).all()
    assert np.isfinite(res.last_finite_loss).all()
    ok = train.train(x, y, [0], "relu", train.Hyper(hidden_layers=3, width=8, epochs=5), log_every=0)
    assert (ok.diverged_epoch == 0).all()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_refused_with_the_fix():
    with pytest.raises(RuntimeError, match="no CUDA device.*device: auto or cpu"):
        train.resolve_device("cuda")
    assert train.resolve_device("auto").type == "cpu"
