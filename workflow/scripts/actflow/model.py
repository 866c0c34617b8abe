"""The stacked MLP: initialisation, forward pass, predictions, per-layer pre-activations.

All runs of one job (seeds, and optionally several targets) are one model whose parameters
carry a leading *run* dimension: layer ``l`` has ``W_l`` of shape ``(runs, fan_in, fan_out)``
and ``b_l`` of shape ``(runs, 1, fan_out)``; every layer is one batched matrix product. Run
``r`` computes exactly what a separate ``nn.Sequential`` of ``nn.Linear`` layers built after
``torch.manual_seed(seed_r)`` computes (the tests check it). Nothing here trains.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import activations


def layer_names(hidden_layers: int) -> list[str]:
    """``hidden1`` … ``hiddenN`` and ``output``: the layer names of weights files and tables."""
    return [f"hidden{i}" for i in range(1, hidden_layers + 1)] + ["output"]


def param_keys(hidden_layers: int) -> list[str]:
    """Parameter names in forward order: hidden1.weight, hidden1.bias, …, output.bias."""
    return [f"{n}.{k}" for n in layer_names(hidden_layers) for k in ("weight", "bias")]


INITS = ("pytorch", "kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal")
BIAS_INITS = ("pytorch", "zero")


def _reinit(w: torch.Tensor, scheme: str, g: torch.Generator) -> None:
    """Redraw a weight (out, in) in place with torch.nn.init, as a user would after building
    the net: He with the ReLU gain and fan-in, Glorot with gain 1."""
    init = torch.nn.init
    if scheme == "kaiming_uniform":
        init.kaiming_uniform_(w, mode="fan_in", nonlinearity="relu", generator=g)
    elif scheme == "kaiming_normal":
        init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu", generator=g)
    elif scheme == "xavier_uniform":
        init.xavier_uniform_(w, generator=g)
    elif scheme == "xavier_normal":
        init.xavier_normal_(w, generator=g)
    else:
        raise ValueError(f"unknown init {scheme!r}; use one of {', '.join(INITS)}")


def init_params(seeds, hidden_layers: int, width: int, dtype: str = "float32", init="pytorch",
                bias_init="pytorch", in_dim: int = 1, out_dim: int = 1) -> dict[str, torch.Tensor]:
    """Initial weights of every run, drawn from its own seed, stacked over runs.

    For each run the draws happen as in ``torch.manual_seed(seed)`` followed by
    ``nn.Sequential(nn.Linear, ..., nn.Linear)``: weight (out, in) then bias, layer by layer,
    each from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (``init="pytorch"``). Any other ``init``
    then redraws every layer's weight, layer by layer, with that ``torch.nn.init`` scheme from
    the same generator, as a user would after building the net; ``bias_init="zero"`` sets the
    biases to 0. ``init`` and ``bias_init`` may be one scheme or one per run (a stacked grid).
    """
    seeds = list(seeds)
    inits = [init] * len(seeds) if isinstance(init, str) else list(init)
    biases = [bias_init] * len(seeds) if isinstance(bias_init, str) else list(bias_init)
    dims = [in_dim] + [width] * hidden_layers + [out_dim]
    names = layer_names(hidden_layers)
    per_run = {k: [] for k in param_keys(hidden_layers)}
    for seed, scheme, bias in zip(seeds, inits, biases):
        if bias not in BIAS_INITS:
            raise ValueError(f"unknown bias_init {bias!r}; use one of {', '.join(BIAS_INITS)}")
        g = torch.Generator().manual_seed(int(seed))
        ws, bs = [], []
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            ws.append(torch.empty(fan_out, fan_in).uniform_(-bound, bound, generator=g))
            bs.append(torch.empty(fan_out).uniform_(-bound, bound, generator=g))
        if scheme != "pytorch":
            for w in ws:
                _reinit(w, scheme, g)
        if bias == "zero":
            for b in bs:
                b.zero_()
        for name, w, b in zip(names, ws, bs):
            per_run[f"{name}.weight"].append(w.T)
            per_run[f"{name}.bias"].append(b[None, :])
    dt = getattr(torch, dtype)
    return {k: torch.stack(v).to(dt).contiguous() for k, v in per_run.items()}


def forward(params: list[torch.Tensor], x: torch.Tensor, fn, hidden_layers: int, inplace=None):
    """x: (runs, n, in); params: [W_1, b_1, …, W_out, b_out]. Returns the output (runs, n, out),
    the pre-activations z_l and the activations h_l = σ(z_l) of the hidden layers. With
    ``inplace`` (σ in place, ``Activation.inplace``) each z_l is overwritten by h_l: the z_l
    returned are then the h_l, for a backward pass that reads only h (the training's)."""
    h, zs, hs = x, [], []
    for i in range(hidden_layers):
        z = _affine(params[2 * i + 1], h, params[2 * i])
        h = fn(z) if inplace is None else inplace(z)
        zs.append(z)
        hs.append(h)
    return torch.baddbmm(params[-1], h, params[-2]), zs, hs


def _affine(b: torch.Tensor, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """b + h @ w, batched over runs. With one input (the first layer on a 1-D input) the product
    is an outer product, computed as ``b + h * w``: the same bits as ``torch.baddbmm`` (one
    product and one sum per element; the tests check) without a matrix product's set-up, which
    for these shapes costs 3 times the arithmetic."""
    if h.shape[-1] == 1:
        return b + h * w
    return torch.baddbmm(b, h, w)


def _inputs(state, x) -> torch.Tensor:
    """Inputs x as (runs, n, 1) in the dtype of the weights: x is (n,), shared by every run,
    or (runs, n), each run's own."""
    w = state["hidden1.weight"]
    xt = torch.tensor(np.array(x, dtype=np.float64)[..., None], dtype=w.dtype)
    return xt.expand(w.shape[0], *xt.shape) if xt.dim() == 2 else xt


def pre_activations(state: dict[str, torch.Tensor], x, activation: str,
                    hidden_layers: int) -> list[torch.Tensor]:
    """Pre-activations z_l (runs, n, width) of every hidden layer for inputs x, (n,) shared by
    every run or (runs, n), without gradients."""
    params = [state[k] for k in param_keys(hidden_layers)]
    with torch.no_grad():
        return forward(params, _inputs(state, x), activations.get(activation).fn, hidden_layers)[1]


def predict(state: dict[str, torch.Tensor], x, activation: str, hidden_layers: int) -> np.ndarray:
    """Outputs of every stacked run for the inputs x ((n,) shared or (runs, n)), as float64
    (runs, n)."""
    params = [state[k] for k in param_keys(hidden_layers)]
    with torch.no_grad():
        out = forward(params, _inputs(state, x), activations.get(activation).fn, hidden_layers)[0]
    return out[..., 0].double().numpy()
