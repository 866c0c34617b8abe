"""Stacked-seed MLP training with gradient-flow recording (the only place torch trains).

All runs of one job (seeds, and optionally several targets) are one model whose
weights carry a leading *run* dimension: layer ``l`` has ``W_l`` of shape
``(runs, fan_in, fan_out)`` and every layer is one batched matrix product.  The
loss is the sum of the runs' own MSE losses, so each run's gradient is exactly
the gradient of its own loss, and Adam/SGD update every element independently:
run ``r`` follows the same trajectory as a separate ``nn.Sequential`` built after
``torch.manual_seed(seed_r)`` (the tests check this).

Per epoch, per run and per hidden layer the loop records ‖∂L/∂W_l‖_F and
‖∂L/∂z_l‖_F (z_l = pre-activation) and the loss, into tensors kept on the
device and copied to the host once at the end.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from . import activations

log = logging.getLogger("actflow.train")


HYPER_KEYS = ("hidden_layers", "width", "epochs", "optimizer", "learning_rate", "momentum")


@dataclass(frozen=True)
class Hyper:
    hidden_layers: int = 10  # number of hidden layers, each followed by the activation
    width: int = 64  # units per hidden layer
    epochs: int = 500  # full-batch optimisation steps
    optimizer: str = "adam"  # "adam" (the study's) or "sgd"
    learning_rate: float = 1e-3
    momentum: float = 0.0  # SGD only
    dtype: str = "float32"  # "float64" for the equivalence tests


@dataclass
class Result:
    loss: np.ndarray  # (epochs, runs): loss before the update of that epoch
    weight_grad: np.ndarray  # (epochs, hidden_layers, runs)
    preact_grad: np.ndarray  # (epochs, hidden_layers, runs)
    final_loss: np.ndarray  # (runs,): loss after the last update
    init_params: dict[str, torch.Tensor]
    final_params: dict[str, torch.Tensor]
    seconds: float
    device: str
    diverged_epoch: np.ndarray = field(init=False)  # (runs,), 0 where the run stayed finite
    last_finite_loss: np.ndarray = field(init=False)

    def __post_init__(self):
        bad = ~np.isfinite(self.loss) | ~np.isfinite(self.weight_grad).all(axis=1) | ~np.isfinite(
            self.preact_grad
        ).all(axis=1)
        epochs, runs = self.loss.shape
        first = np.where(bad.any(axis=0), bad.argmax(axis=0) + 1, 0)
        weights_bad = np.zeros(runs, dtype=bool)
        for t in self.final_params.values():
            weights_bad |= ~torch.isfinite(t.reshape(t.shape[0], -1)).all(dim=1).numpy()
        weights_bad |= ~np.isfinite(self.final_loss)
        first = np.where((first == 0) & weights_bad, epochs + 1, first)
        self.diverged_epoch = first
        last = np.full(runs, np.nan)
        for r in range(runs):
            finite = np.isfinite(self.loss[:, r])
            stop = first[r] - 1 if first[r] else epochs
            idx = np.flatnonzero(finite[:stop])
            if idx.size:
                last[r] = self.loss[idx[-1], r]
        self.last_finite_loss = last


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")
        raise RuntimeError(
            f"config asks for device: cuda but torch {torch.__version__} sees no CUDA device "
            f"(CUDA_VISIBLE_DEVICES={visible}); set device: auto or cpu, or run on a GPU node "
            "with a CUDA build of torch"
        )
    return torch.device(device)


def setup_torch(threads: int) -> None:
    """Intra-op threads = the job's threads."""
    torch.set_num_threads(max(1, int(threads)))


def _deterministic_cuda() -> None:
    """Deterministic kernels, on CUDA only: the CPU kernels used here are deterministic as they
    are, and the switch imports torch's compiler stack (1.8 s of every job's start-up)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    torch.use_deterministic_algorithms(True, warn_only=True)


def layer_names(hidden_layers: int) -> list[str]:
    return [f"hidden{i}" for i in range(1, hidden_layers + 1)] + ["output"]


def init_params(seeds, hp: Hyper, in_dim: int = 1, out_dim: int = 1) -> dict[str, torch.Tensor]:
    """PyTorch's nn.Linear default init, drawn per run from its own seed.

    For each run the draws happen in the order nn.Sequential(Linear, ..., Linear)
    makes them after ``torch.manual_seed(seed)``: weight (out, in) then bias,
    layer by layer, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).  Returned tensors are
    stacked over runs: ``W`` as (runs, in, out) and ``b`` as (runs, 1, out).
    """
    dims = [in_dim] + [hp.width] * hp.hidden_layers + [out_dim]
    names = layer_names(hp.hidden_layers)
    per_run = {f"{n}.{k}": [] for n in names for k in ("weight", "bias")}
    for seed in seeds:
        g = torch.Generator().manual_seed(int(seed))
        for name, fan_in, fan_out in zip(names, dims[:-1], dims[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            w = torch.empty(fan_out, fan_in).uniform_(-bound, bound, generator=g)
            b = torch.empty(fan_out).uniform_(-bound, bound, generator=g)
            per_run[f"{name}.weight"].append(w.T)
            per_run[f"{name}.bias"].append(b[None, :])
    dtype = getattr(torch, hp.dtype)
    return {k: torch.stack(v).to(dtype).contiguous() for k, v in per_run.items()}


def forward(params: list[torch.Tensor], x: torch.Tensor, fn, hidden_layers: int):
    """x: (runs, n, in); params: [W_1, b_1, …, W_out, b_out]. Returns the output
    (runs, n, out), the pre-activations z_l and the activations h_l of the hidden layers."""
    h, zs, hs = x, [], []
    for i in range(hidden_layers):
        zs.append(torch.baddbmm(params[2 * i + 1], h, params[2 * i]))
        h = fn(zs[-1])
        hs.append(h)
    return torch.baddbmm(params[-1], h, params[-2]), zs, hs


def hidden_activations(state: dict[str, torch.Tensor], x: torch.Tensor, activation: str,
                       hidden_layers: int) -> list[torch.Tensor]:
    """Pre-activations z_l of every hidden layer for inputs x (runs, n, in), no grad."""
    params = [state[k] for k in _ordered_keys(hidden_layers)]
    with torch.no_grad():
        return forward(params, x, activations.get(activation).fn, hidden_layers)[1]


def predict(state: dict[str, torch.Tensor], x, activation: str, hidden_layers: int) -> np.ndarray:
    """Outputs of every stacked run for the inputs x (n,), as float64 (runs, n)."""
    params = [state[k] for k in _ordered_keys(hidden_layers)]
    xt = torch.tensor(np.array(x, dtype=np.float64)[:, None], dtype=params[0].dtype)
    with torch.no_grad():
        out = forward(params, xt.expand(params[0].shape[0], *xt.shape),
                      activations.get(activation).fn, hidden_layers)[0]
    return out[..., 0].double().numpy()


def _ordered_keys(hidden_layers: int) -> list[str]:
    return [f"{n}.{k}" for n in layer_names(hidden_layers) for k in ("weight", "bias")]


def _make_optimizer(params, hp: Hyper):
    if hp.optimizer == "adam":
        # fused: one kernel per tensor for the whole update (measured faster on CPU and GPU)
        return torch.optim.Adam(params, lr=hp.learning_rate, fused=True)
    if hp.optimizer == "sgd":
        return torch.optim.SGD(params, lr=hp.learning_rate, momentum=hp.momentum, foreach=True)
    raise ValueError(f"unknown optimizer {hp.optimizer!r}; use 'adam' or 'sgd'")


def _pack(init: dict, L: int, dev) -> list[torch.Tensor]:
    """Parameters as few, large tensors: the hidden-to-hidden layers stacked as (L-1, runs, w, w)
    so that their gradient norms and the optimizer step are one operation each."""
    packed = [init["hidden1.weight"], init["hidden1.bias"]]
    if L > 1:
        packed += [torch.stack([init[f"hidden{i}.weight"] for i in range(2, L + 1)]),
                   torch.stack([init[f"hidden{i}.bias"] for i in range(2, L + 1)])]
    packed += [init["output.weight"], init["output.bias"]]
    return [t.to(dev).clone().contiguous() for t in packed]


def _layers(packed: list[torch.Tensor], L: int) -> list[torch.Tensor]:
    """The packed parameters as views in ``forward``'s order [W_1, b_1, …, W_out, b_out]."""
    out = packed[:2]
    for i in range(L - 1):
        out += [packed[2][i], packed[3][i]]
    return out + packed[-2:]


def _unpack(packed: list[torch.Tensor], L: int) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous()
            for k, v in zip(_ordered_keys(L), _layers(packed, L))}


def _make_step(act, L: int, record: bool):
    """One epoch's loss, gradients and gradient norms for the packed parameters, as a pure
    function (eager, or compiled whole by ``torch.compile``). The backward pass is written out
    by hand: an MLP needs three batched products per layer, and each activation's backward is
    one ATen kernel (``Activation.backward``)."""
    fn, back = act.fn, act.backward

    def step(*args):
        packed, x, y = list(args[:-2]), args[-2], args[-1]
        layers = _layers(packed, L)
        out, zs, hs = forward(layers, x, fn, L)
        resid = out - y
        loss = resid.pow(2).mean(dim=(1, 2))
        g = resid * (2.0 / resid[0].numel())  # dL/d(output) of each run's own mean loss
        g_wo = torch.bmm(hs[-1].transpose(1, 2), g)
        g_bo = g.sum(dim=1, keepdim=True)
        delta = back(torch.bmm(g, layers[-2].transpose(1, 2)), zs[-1], hs[-1])
        g_w, g_b, z_norm = [None] * L, [None] * L, [None] * L
        for i in range(L - 1, -1, -1):  # layer i+1, from the last hidden layer back
            if record:
                z_norm[i] = torch.linalg.vector_norm(delta, dim=(1, 2))
            g_w[i] = torch.bmm((hs[i - 1] if i > 0 else x).transpose(1, 2), delta)
            g_b[i] = delta.sum(dim=1, keepdim=True)
            if i > 0:
                delta = back(torch.bmm(delta, layers[2 * i].transpose(1, 2)), zs[i - 1], hs[i - 1])
        grads = [g_w[0], g_b[0]]
        if L > 1:
            grads += [torch.stack(g_w[1:]), torch.stack(g_b[1:])]
        grads += [g_wo, g_bo]
        if not record:
            return loss, grads, None, None
        w_norm = [torch.linalg.vector_norm(g_w[0], dim=(1, 2))[None]]
        if L > 1:
            w_norm.append(torch.linalg.vector_norm(grads[2], dim=(2, 3)))
        return loss, grads, torch.stack(z_norm), torch.cat(w_norm)

    return step


def _compiled(step, first_args):
    """``torch.compile`` of the epoch step; a failure names the setting to change."""
    torch._dynamo.reset()  # one model at a time: no stale variants towards the recompile limit
    compiled = torch.compile(step, dynamic=False, fullgraph=True)
    try:
        with torch.no_grad():  # as in the loop: grad mode is part of what compiled code assumes
            compiled(*first_args)  # compiles now (tens of seconds), so that errors surface here
    except Exception as exc:  # noqa: BLE001 - inductor raises many kinds
        raise RuntimeError(
            f"train.compile: true, but torch.compile failed ({type(exc).__name__}: {exc}); "
            "set train.compile: false (eager training gives the same numbers to float "
            "tolerance), or install a C++ compiler (CPU) / Triton (GPU)"
        ) from exc
    return compiled


def train(
    x: torch.Tensor,
    y: torch.Tensor,
    seeds,
    activation: str,
    hp: Hyper,
    device: str = "cpu",
    log_every: int = 50,
    record: bool = True,
    compile: bool = False,
) -> Result:
    """Train ``len(seeds)`` runs as one stacked model.

    x, y: (n, 1) shared by all runs, or (runs, n, 1) per run (e.g. several targets).
    ``seeds[r]`` seeds the initial weights of run r. The tests check every recorded number
    against autograd on plain ``nn.Linear`` models. ``record=False`` skips the gradient
    norms (to measure what recording costs); ``compile=True`` runs the epoch step through
    ``torch.compile`` (fused elementwise kernels; pays off for long runs, see bench/).
    """
    dev = resolve_device(device)
    if dev.type == "cuda":
        _deterministic_cuda()
    dtype = getattr(torch, hp.dtype)
    act = activations.get(activation)
    runs, L = len(seeds), hp.hidden_layers
    x = torch.as_tensor(np.array(x), dtype=dtype, device=dev)
    y = torch.as_tensor(np.array(y), dtype=dtype, device=dev)
    if x.dim() == 2:
        x = x.expand(runs, *x.shape).contiguous()  # real copies: batched products would copy
    if y.dim() == 2:  # a stride-0 batch on every call
        y = y.expand(runs, *y.shape).contiguous()

    init = init_params(seeds, hp)
    params = _pack(init, L, dev)
    opt = _make_optimizer(params, hp)
    step = _make_step(act, L, record)
    if compile:
        t_c = time.perf_counter()
        step = _compiled(step, (*params, x, y))
        log.info("compiled the epoch step in %.1f s", time.perf_counter() - t_c)

    E = hp.epochs
    loss_h = torch.full((E, runs), float("nan"), dtype=dtype, device=dev)
    wg_h = torch.full((E, L, runs), float("nan"), dtype=dtype, device=dev)
    zg_h = torch.full((E, L, runs), float("nan"), dtype=dtype, device=dev)

    t0 = time.perf_counter()
    log.info("training %d runs of %s on %s: %s", runs, activation, dev, hp)
    with torch.no_grad():
        for epoch in range(E):
            loss, grads, z_norm, w_norm = step(*params, x, y)
            for p, g in zip(params, grads):
                p.grad = g
            loss_h[epoch] = loss
            if record:
                zg_h[epoch] = z_norm
                wg_h[epoch] = w_norm
            opt.step()
            if log_every and ((epoch + 1) % log_every == 0 or epoch == 0 or epoch + 1 == E):
                log.info("epoch %d/%d  mean loss %.6g  elapsed %.2f s", epoch + 1, E,
                         loss.nanmean().item(), time.perf_counter() - t0)
        out, _, _ = forward(_layers(params, L), x, act.fn, L)
        final_loss = (out - y).pow(2).mean(dim=(1, 2))
    seconds = time.perf_counter() - t0
    return Result(
        loss=loss_h.cpu().numpy(),
        weight_grad=wg_h.cpu().numpy() if record else np.ones((E, L, runs)),
        preact_grad=zg_h.cpu().numpy() if record else np.ones((E, L, runs)),
        final_loss=final_loss.cpu().numpy(),
        init_params=init,
        final_params=_unpack(params, L),
        seconds=seconds,
        device=str(dev),
    )
