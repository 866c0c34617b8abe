"""CUDA checks: skipped without an NVIDIA GPU (CI has none); bench/gpu.py runs them on one.

Training on CUDA must equal the CPU to float tolerance, the stacked model's hand-written
gradients must equal autograd on CUDA, and ``device: auto`` must pick CUDA when it is there.
"""

import numpy as np
import pytest
import torch

from actflow import activations, model, train

from test_train import HPS, _data, reference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _host(t):
    return t.detach().to("cpu")


@pytest.mark.parametrize("activation", list(activations.REGISTRY))
def test_stacked_gradients_on_cuda_equal_autograd(activation):
    """Every gradient tensor and parameter after every step, float64 on CUDA, against
    nn.Sequential + autograd + torch.optim on the CPU (both grad modes)."""
    hp, seeds = HPS["adam"], [0, 5]
    x, y = _data()
    refs = [reference(s, x, y, activation, hp) for s in seeds]
    for mode in train.GRAD_MODES:
        steps = []
        res = train.train(x, y, seeds, activation, hp, device="cuda", log_every=0, grad_mode=mode,
                          trace=lambda e, g, p: steps.append(({k: _host(v) for k, v in g.items()},
                                                              {k: _host(v) for k, v in p.items()})))
        assert res.device.startswith("cuda")
        for r, ref in enumerate(refs):
            np.testing.assert_allclose(res.loss[:, r], [e["loss"] for e in ref], rtol=1e-9)
            for epoch, ((grads, params), want) in enumerate(zip(steps, ref), start=1):
                for key in model.param_keys(hp.hidden_layers):
                    torch.testing.assert_close(grads[key][r], want["grads"][key], rtol=1e-9,
                                               atol=1e-12, msg=f"{mode} {key} grad epoch {epoch}")
                    torch.testing.assert_close(params[key][r], want["params"][key], rtol=1e-9,
                                               atol=1e-12, msg=f"{mode} {key} epoch {epoch}")


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "gelu"])
def test_float32_training_on_cuda_equals_the_cpu_to_float_tolerance(activation):
    hp = train.Hyper(hidden_layers=3, width=16, epochs=50, learning_rate=1e-3)
    x, y = _data(100)
    cpu = train.train(x, y, [0, 1, 2], activation, hp, device="cpu", log_every=0)
    gpu = train.train(x, y, [0, 1, 2], activation, hp, device="cuda", log_every=0)
    np.testing.assert_allclose(gpu.loss, cpu.loss, rtol=1e-4)
    np.testing.assert_allclose(gpu.final_loss, cpu.final_loss, rtol=1e-4)
    np.testing.assert_allclose(gpu.weight_grad, cpu.weight_grad, rtol=1e-3, atol=1e-7)
    for key, t in cpu.final_params.items():
        torch.testing.assert_close(_host(gpu.final_params[key]), _host(t), rtol=1e-4, atol=1e-5)


def test_device_auto_picks_cuda():
    assert train.resolve_device("auto").type == "cuda"
    x, y = _data(20)
    res = train.train(x, y, [0], "relu", train.Hyper(hidden_layers=2, width=8, epochs=2),
                      device="auto", log_every=0)
    assert res.device.startswith("cuda")
