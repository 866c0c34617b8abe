"""Stacked-seed training against plain per-seed PyTorch: autograd and torch.optim are the reference.

Every gradient tensor of every layer (weights and biases, output layer included) and every
parameter after every optimizer step must equal what ``torch.autograd`` and ``torch.optim``
give a plain ``nn.Sequential`` built after ``torch.manual_seed(seed)``, in float64, for every
registered activation, under Adam and under SGD with momentum.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from actflow import activations, data, devices, model, train
from conftest import ROOT

RTOL, ATOL = 1e-9, 1e-13  # float64; a ×1.01 error on any single tensor is 10⁷ times this


def _data(n=40):
    df = data.make_train_set("sin", n, -np.pi, np.pi, 0.1, seed=3)
    return df["x"].to_numpy()[:, None], df["y"].to_numpy()[:, None]


class _Act(nn.Module):
    def __init__(self, name):
        super().__init__()
        self.fn = activations.get(name).fn

    def forward(self, x):
        return self.fn(x)


def reference(seed, x, y, activation, hp):
    """What a user writes by hand: an nn.Sequential built after manual_seed, trained by
    torch.optim, one seed at a time. Per epoch: loss, the gradient of every parameter (in the
    stacked layout), the parameters after the step, ‖∂L/∂W_l‖ and ‖∂L/∂z_l‖ of hidden layers."""
    torch.manual_seed(seed)
    dims = [1] + [hp.width] * hp.hidden_layers + [1]
    linears = [nn.Linear(a, b).to(torch.float64) for a, b in zip(dims[:-1], dims[1:])]
    names = model.layer_names(hp.hidden_layers)
    params = [p for lin in linears for p in lin.parameters()]
    if hp.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=hp.learning_rate)
    else:
        opt = torch.optim.SGD(params, lr=hp.learning_rate, momentum=hp.momentum)
    act = _Act(activation)
    x, y = torch.tensor(x), torch.tensor(y)
    out = []
    for _ in range(hp.epochs):
        opt.zero_grad()
        h, zs = x, []
        for lin in linears[:-1]:
            z = lin(h)
            z.retain_grad()
            zs.append(z)
            h = act(z)
        loss = nn.functional.mse_loss(linears[-1](h), y)
        loss.backward()
        grads, after = {}, {}
        for name, lin in zip(names, linears):
            grads[f"{name}.weight"] = lin.weight.grad.T.clone()
            grads[f"{name}.bias"] = lin.bias.grad[None, :].clone()
        wnorm = [lin.weight.grad.norm().item() for lin in linears[:-1]]
        znorm = [z.grad.norm().item() for z in zs]
        opt.step()
        for name, lin in zip(names, linears):
            after[f"{name}.weight"] = lin.weight.detach().T.clone()
            after[f"{name}.bias"] = lin.bias.detach()[None, :].clone()
        out.append({"loss": loss.item(), "grads": grads, "params": after, "wnorm": wnorm,
                    "znorm": znorm})
    return out


def _traced(x, y, seeds, activation, hp, **kw):
    steps = []
    res = train.train(x, y, seeds, activation, hp, log_every=0,
                      trace=lambda e, g, p: steps.append((g, p)), **kw)
    return res, steps


HPS = {
    "adam": train.Hyper(hidden_layers=4, width=16, epochs=8, learning_rate=1e-2, dtype="float64"),
    "sgd_momentum": train.Hyper(hidden_layers=4, width=16, epochs=8, optimizer="sgd",
                                learning_rate=0.05, momentum=0.9, dtype="float64"),
}


def check_against_reference(activation, optimizer, modes=train.GRAD_MODES):
    hp, seeds = HPS[optimizer], [0, 5, 11]
    x, y = _data()
    refs = [reference(s, x, y, activation, hp) for s in seeds]
    for mode in modes:  # the hand-written pass, and autograd on the stacked model
        res, steps = _traced(x, y, seeds, activation, hp, grad_mode=mode)
        assert len(steps) == hp.epochs
        for r, ref in enumerate(refs):
            np.testing.assert_allclose(res.loss[:, r], [e["loss"] for e in ref], rtol=RTOL)
            np.testing.assert_allclose(res.weight_grad[:, :, r], [e["wnorm"] for e in ref], rtol=RTOL)
            np.testing.assert_allclose(res.preact_grad[:, :, r], [e["znorm"] for e in ref], rtol=RTOL)
            for epoch, ((grads, params), want) in enumerate(zip(steps, ref), start=1):
                assert set(grads) == set(want["grads"]) == set(model.param_keys(hp.hidden_layers))
                for key in grads:
                    torch.testing.assert_close(
                        grads[key][r], want["grads"][key], rtol=RTOL, atol=ATOL,
                        msg=lambda m: f"{mode}: gradient of {key}, epoch {epoch}, seed "
                                      f"{seeds[r]}: {m}")
                    torch.testing.assert_close(
                        params[key][r], want["params"][key], rtol=RTOL, atol=ATOL,
                        msg=lambda m: f"{mode}: {key} after step {epoch}, seed {seeds[r]}: {m}")


@pytest.mark.parametrize("optimizer", sorted(HPS))
@pytest.mark.parametrize("activation", list(activations.REGISTRY))
def test_every_gradient_and_every_step_equals_autograd_and_torch_optim(activation, optimizer):
    check_against_reference(activation, optimizer)


@pytest.mark.parametrize("key", model.param_keys(HPS["adam"].hidden_layers))
def test_a_one_percent_error_in_any_single_gradient_tensor_is_caught(monkeypatch, key):
    """Mutation check of the test above: the hand-written pass with one layer's weight or bias
    gradient scaled by 1.01 must fail it, under both optimizers."""
    make_step = train._make_step
    L = HPS["adam"].hidden_layers

    def mutated(act, layers, record, grads, *rest):
        step = make_step(act, layers, record, grads, *rest)

        def wrong(*args):
            loss, grads, z, w = step(*args)
            views = dict(zip(model.param_keys(L), train._layers(grads, L)))
            views[key].mul_(1.01)  # in place: a view into the packed gradient
            return loss, grads, z, w
        return wrong

    monkeypatch.setattr(train, "_make_step", mutated)
    for optimizer in HPS:
        with pytest.raises(AssertionError):
            check_against_reference("relu", optimizer, modes=["manual"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("units", [1, 3])
def test_the_output_layer_s_products_equal_the_general_batched_products(units, dtype):
    """The output layer's backward products, written for one output unit as gᵀh and a
    broadcast product, against torch.bmm's hᵀg and g W_outᵀ (and the general form for several
    units): the same numbers to rounding, on chaotic-scale values, with zeros where a ReLU's
    activations are 0."""
    gen = torch.Generator().manual_seed(7)
    runs, n, width = 4, 200, 64
    h = torch.relu(torch.randn(runs, n, width, generator=gen, dtype=dtype))
    g = torch.randn(runs, n, units, generator=gen, dtype=dtype) * 1e-3
    w_out = torch.randn(runs, width, units, generator=gen, dtype=dtype)
    grad_w_out = torch.full((runs, width, units), float("nan"), dtype=dtype)
    grad_h = train._output_products(g, h, w_out, grad_w_out)
    torch.testing.assert_close(grad_w_out, torch.bmm(h.transpose(1, 2), g))
    torch.testing.assert_close(grad_h, torch.bmm(g, w_out.transpose(1, 2)))
    assert grad_h.shape == (runs, n, width)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_one_input_layer_s_affine_map_equals_the_batched_product(dtype):
    """The first layer on the 1-D input, b + x·W as a broadcast product, against
    torch.baddbmm (and a wider input still through torch.baddbmm)."""
    gen = torch.Generator().manual_seed(8)
    for fan_in in (1, 5):
        x = torch.randn(3, 200, fan_in, generator=gen, dtype=dtype) * 3
        w = torch.randn(3, fan_in, 64, generator=gen, dtype=dtype)
        b = torch.randn(3, 1, 64, generator=gen, dtype=dtype)
        torch.testing.assert_close(model._affine(b, x, w), torch.baddbmm(b, x, w))


def test_a_single_hidden_layer_trains_like_the_reference():
    """No stacked hidden-to-hidden weights: the packing's edge case."""
    hp = train.Hyper(hidden_layers=1, width=8, epochs=6, dtype="float64")
    x, y = _data()
    res, steps = _traced(x, y, [3, 4], "relu", hp)
    for r, seed in enumerate([3, 4]):
        ref = reference(seed, x, y, "relu", hp)
        for (grads, params), want in zip(steps, ref):
            for key in want["grads"]:
                torch.testing.assert_close(grads[key][r], want["grads"][key], rtol=RTOL, atol=ATOL)
                torch.testing.assert_close(params[key][r], want["params"][key], rtol=RTOL, atol=ATOL)
    assert set(res.final_params) == {"hidden1.weight", "hidden1.bias", "output.weight", "output.bias"}


@pytest.mark.parametrize("bias_init", model.BIAS_INITS)
@pytest.mark.parametrize("init", model.INITS)
def test_each_init_scheme_equals_torch_nn_init_after_manual_seed(init, bias_init):
    """What a user writes: manual_seed, build the nn.Linear layers, then torch.nn.init on each
    weight (He: ReLU gain, fan-in; Glorot: gain 1) and zeros on each bias."""
    stacked = model.init_params([7, 8, 123], hidden_layers=3, width=5, dtype="float64",
                                init=init, bias_init=bias_init)
    for r, seed in enumerate([7, 8, 123]):
        torch.manual_seed(seed)
        layers = [nn.Linear(a, b) for a, b in zip([1, 5, 5, 5], [5, 5, 5, 1])]
        for lin in layers:
            if init == "kaiming_uniform":
                nn.init.kaiming_uniform_(lin.weight, mode="fan_in", nonlinearity="relu")
            elif init == "kaiming_normal":
                nn.init.kaiming_normal_(lin.weight, mode="fan_in", nonlinearity="relu")
            elif init == "xavier_uniform":
                nn.init.xavier_uniform_(lin.weight)
            elif init == "xavier_normal":
                nn.init.xavier_normal_(lin.weight)
            if bias_init == "zero":
                nn.init.zeros_(lin.bias)
        for name, lin in zip(model.layer_names(3), layers):
            assert torch.equal(stacked[f"{name}.weight"][r], lin.weight.detach().double().T)
            assert torch.equal(stacked[f"{name}.bias"][r], lin.bias.detach().double()[None, :])


def test_initial_weights_are_nn_linear_s_after_manual_seed():
    init = model.init_params([7, 8], hidden_layers=3, width=5, dtype="float64")
    for r, seed in enumerate([7, 8]):
        torch.manual_seed(seed)
        dims = [1, 5, 5, 5, 1]
        for name, (a, b) in zip(model.layer_names(3), zip(dims[:-1], dims[1:])):
            lin = nn.Linear(a, b)
            assert torch.equal(init[f"{name}.weight"][r], lin.weight.detach().double().T)
            assert torch.equal(init[f"{name}.bias"][r], lin.bias.detach().double()[None, :])


def test_float32_stacked_equals_separate_at_first_epochs():
    x, y = _data()
    hp = train.Hyper(hidden_layers=10, width=64, epochs=3)
    res = train.train(x, y, [0, 1], "relu", hp, log_every=0)
    ref = reference(1, x, y, "relu", train.Hyper(hidden_layers=10, width=64, epochs=3,
                                                 dtype="float64"))
    np.testing.assert_allclose(res.loss[:, 1], [e["loss"] for e in ref], rtol=1e-5)
    np.testing.assert_allclose(res.weight_grad[:, :, 1], [e["wnorm"] for e in ref], rtol=1e-4)


@pytest.mark.parametrize("on_device", [False, True], ids=["step", "steps_on_device"])
def test_adam_equals_torch_optim_bit_for_bit_in_float32_with_zero_and_tiny_gradients(on_device):
    """The Adam step adds the smallest normal number to v before its square root (torch's CPU
    square root is slow on zeros): in float32, over dead units (gradient exactly 0), tiny and
    ordinary gradients, every parameter after every step is torch.optim.Adam's to the bit. So
    is the step that reads its step count from the device (what a CUDA graph replays)."""
    g = torch.Generator().manual_seed(0)
    scales = torch.tensor([0.0, 1e-30, 1e-20, 1e-12, 1e-6, 1e-3, 1.0, 1e3])
    shapes = [(3, 8, 8), (3, 1, 8), (2, 3, 8, 8)]
    ours = [torch.randn(*s, generator=g) for s in shapes]
    theirs = [p.clone().requires_grad_(True) for p in ours]
    opt = train.Adam(ours, lr=1e-2, steps_on_device=30 if on_device else 0)
    ref = torch.optim.Adam(theirs, lr=1e-2, foreach=True)
    for step in range(30):
        grads = []
        for p in ours:
            pick = torch.randint(len(scales), p.shape, generator=g)
            grads.append(torch.randn(p.shape, generator=g) * scales[pick]
                         if step % 7 else torch.zeros(p.shape))  # some steps all zero
        opt.step(grads)
        for p, gr in zip(theirs, grads):
            p.grad = gr.clone()
        ref.step()
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b.detach()), f"step {step + 1}"


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_cuda_graph_s_epoch_gives_the_eager_loop_s_bits(optimizer, dtype):
    """The epoch that a CUDA graph captures (Adam's step count on the device, the epoch's
    numbers through one output slot), run without capture: every recorded number, unit state
    and final parameter equals the eager loop's to the bit, with and without recording.
    tests/test_gpu.py checks the captured graph itself on a GPU."""
    x, y = _data()
    hp = train.Hyper(hidden_layers=3, width=8, epochs=train.GRAPH_WARMUP + 20, dtype=dtype,
                     optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0,
                     learning_rate=1e-2)
    for record in (True, False):
        kw = dict(log_every=0, record=record, unit_every=6)
        a = train.train(x, y, [0, 1, 2], "gelu", hp, cuda_graph=False, **kw)
        b = train.train(x, y, [0, 1, 2], "gelu", hp, cuda_graph=True, **kw)
        for f in ("loss", "weight_grad", "preact_grad", "final_loss", "unit_states"):
            assert np.array_equal(getattr(a, f), getattr(b, f)), (f, record)
        for k in a.final_params:
            assert torch.equal(a.final_params[k], b.final_params[k]), (k, record)
    assert not np.isnan(b.loss).any()


def test_trace_with_a_cuda_graph_is_refused():
    x, y = _data()
    with pytest.raises(ValueError, match="cuda_graph=False with trace"):
        train.train(x, y, [0], "relu", train.Hyper(hidden_layers=2, width=4, epochs=2),
                    log_every=0, cuda_graph=True, trace=lambda *a: None)


def test_cpu_training_is_deterministic():
    x, y = _data()
    hp = train.Hyper(hidden_layers=3, width=8, epochs=20)
    a = train.train(x, y, [0, 1], "gelu", hp, log_every=0)
    b = train.train(x, y, [0, 1], "gelu", hp, log_every=0)
    assert np.array_equal(a.loss, b.loss) and np.array_equal(a.weight_grad, b.weight_grad)
    for k in a.final_params:
        assert torch.equal(a.final_params[k], b.final_params[k])


@pytest.mark.parametrize("name", [n for n, a in activations.REGISTRY.items() if a.inplace])
def test_sigma_in_place_trains_to_the_bits_of_sigma_out_of_place(name):
    """Training computes σ in place where the registry allows it: every recorded number, the
    unit states and the trained weights are those of σ out of place, to the bit, in float32
    over enough epochs for a chaotic 10-layer run to show any difference, and in a run
    driven to non-finite values."""
    x, y = _data()
    for hp in (train.Hyper(hidden_layers=10, width=16, epochs=60),
               train.Hyper(hidden_layers=3, width=8, epochs=20, optimizer="sgd",
                           learning_rate=1.0e4)):
        a = train.train(x, y, [0, 1, 2], name, hp, log_every=0, unit_every=7)
        b = train.train(x, y, [0, 1, 2], name, hp, log_every=0, unit_every=7, in_place=False)
        for field in ("loss", "weight_grad", "preact_grad", "final_loss", "unit_states"):
            assert np.array_equal(getattr(a, field), getattr(b, field), equal_nan=True), field
        for k in a.final_params:
            assert torch.equal(a.final_params[k].view(torch.int32),
                               b.final_params[k].view(torch.int32)), k


def test_flushing_subnormals_changes_no_bit_of_training_and_ends_with_the_flush():
    """On the CPU each epoch runs with subnormals flushed to zero (a saturated 10-layer Sigmoid
    net trains several times faster on x86). A run that makes subnormal gradients, and
    gradients whose squares are subnormal (the norms keep those), gives every recorded number,
    unit state and weight of the same run without the flush, to the bit; after training,
    subnormals are kept again (torch's default)."""
    x, y = _data()
    hp = train.Hyper(hidden_layers=10, width=64, epochs=100, learning_rate=0.1)
    tiny = torch.finfo(torch.float32).tiny
    counts = {"subnormal": 0, "subnormal square": 0}

    def count(epoch, grads, params):
        for g in grads.values():
            a = g.abs()
            counts["subnormal"] += int(((a > 0) & (a < tiny)).sum())
            counts["subnormal square"] += int(((a > 0) & (a * a < tiny)).sum())

    kept = train.train(x, y, [0, 1, 2], "sigmoid", hp, log_every=0, unit_every=9,
                       flush_denormals=False, trace=count)
    assert counts["subnormal"] > 0 and counts["subnormal square"] > 0, counts  # the case arises
    flushed = train.train(x, y, [0, 1, 2], "sigmoid", hp, log_every=0, unit_every=9)
    for field in ("loss", "weight_grad", "preact_grad", "final_loss", "unit_states"):
        assert np.array_equal(getattr(kept, field), getattr(flushed, field), equal_nan=True), field
    for k in kept.final_params:
        assert torch.equal(kept.final_params[k].view(torch.int32),
                           flushed.final_params[k].view(torch.int32)), k
    assert (torch.tensor([tiny]) / 4).item() > 0  # no flush left behind
    with train.denormals_flushed():
        assert (torch.tensor([tiny]) / 4).item() == 0
    assert (torch.tensor([tiny]) / 4).item() > 0


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_training_leaves_no_cyclic_garbage(optimizer):
    """A job works with the cyclic garbage collector off (io.setup_logging), so that what
    training frees must be freed by reference counting alone: training (every activation, its
    progress logged, unit states recorded, one run diverging) leaves nothing for the
    collector. Were a training job to leave cycles behind per epoch, it would grow without
    bound with the collector off; this finds the first such cycle."""
    import gc

    x, y = _data()
    hp = train.Hyper(hidden_layers=3, width=8, epochs=30, optimizer=optimizer,
                     learning_rate=0.01 if optimizer == "adam" else 50.0, momentum=0.9)
    was = gc.isenabled()
    gc.disable()
    try:
        for name in activations.ORDER:
            gc.collect()
            res = train.train(x, y, [0, 1], name, hp, log_every=10, unit_every=5)
            del res
            assert gc.collect() == 0, name
    finally:
        if was:
            gc.enable()
    # the check finds a cycle where there is one
    cycle: list = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() > 0


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


@pytest.mark.skipif(devices.driver_present(), reason="needs a machine without an NVIDIA driver")
def test_a_cuda_job_without_a_driver_stops_before_torch_is_imported():
    """device: cuda where no NVIDIA driver exists: the training job refuses with the same fix
    as train.resolve_device, before the 1.2 s of importing torch (a fresh interpreter)."""
    code = ("import sys\n"
            "from actflow import jobs\n"
            "spec = jobs.TrainSpec(data='none.parquet', keys={}, seeds=[0], hp={}, device='cuda')\n"
            "try:\n"
            "    jobs.train_job(spec, {})\n"
            "except RuntimeError as err:\n"
            "    print(err)\n"
            "print('torch' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT / "workflow" / "scripts")))
    message, imported = proc.stdout.strip().rsplit("\n", 1)
    assert "sees no CUDA device" in message and "set device: auto or cpu" in message, proc
    assert imported == "False"
