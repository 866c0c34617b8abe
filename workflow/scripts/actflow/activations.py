"""The activation registry: one entry per activation, the only place an activation is defined.

An entry holds the name used in the config and the tables, the label and formula the figures
show, the function σ, its analytic derivative σ′ and, optionally, a fused backward kernel. The
config schema's list of activations, the figures' labels and order, and training all derive
from :data:`REGISTRY` (tests check it). Adding an activation is one :class:`Activation` entry.

The functions are given as *factories* that receive ``torch`` and ``torch.nn.functional`` and
return the function, so that this module imports without torch: figure jobs read the names and
labels here and never import torch. A factory runs once, on first use.

``backward(grad, z, h)`` = grad · σ′(z) (h = σ(z)) is the step of the training's hand-written
backward pass. Without a ``backward`` factory it is computed generically as
``grad * derivative(z)``; with one, it is the ATen kernel autograd itself uses for that
function (one fused pass instead of building σ′(z) and multiplying: 5 to 12 times faster for
200×64 activations on a CPU core). The tests check both forms against autograd.

An entry may also give σ *in place* (``make_inplace``), where its fused backward gives the same
bits from h = σ(z) in place of z: ReLU and Leaky ReLU read only the sign of z, which h shares;
Sigmoid and tanh read only h. The training's forward pass then overwrites each z with h, one
tensor fewer per layer to write and read back (bench/run.py measures it). The tests check that
the in-place σ and the backward from h give the same bits as σ and the backward from z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

LEAKY_SLOPE = 0.01  # the study's Leaky ReLU slope, max(0.01x, x)

Factory = Callable[..., Callable]  # (torch, F) -> function of tensors


@dataclass(frozen=True)
class Activation:
    name: str  # as in the config and the tables
    label: str  # as the figures show it
    formula: str
    make_fn: Factory  # (torch, F) -> σ
    make_derivative: Factory  # (torch, F) -> σ′, analytic (checked against autograd)
    make_backward: Factory | None = None  # (torch, F) -> (grad, z, h) -> grad · σ′(z), fused
    # (torch, F) -> σ in place (z -> h, returned); only where backward(grad, h, h) is
    # backward(grad, z, h) bit for bit
    make_inplace: Factory | None = None

    def __post_init__(self):
        if self.make_inplace is not None and self.make_backward is None:
            raise ValueError(f"activation {self.name!r}: σ in place needs a fused backward "
                             "that reads h (the generic backward computes σ′ from z, which "
                             "σ in place overwrites)")

    @staticmethod
    def _torch():
        import torch
        import torch.nn.functional as F

        return torch, F

    @cached_property
    def fn(self) -> Callable:
        return self.make_fn(*self._torch())

    @cached_property
    def derivative(self) -> Callable:
        return self.make_derivative(*self._torch())

    @cached_property
    def backward(self) -> Callable:
        """grad · σ′(z): the fused kernel where the entry names one, else the generic product."""
        if self.make_backward is not None:
            return self.make_backward(*self._torch())
        derivative = self.derivative
        return lambda g, z, h: g * derivative(z)

    @cached_property
    def inplace(self) -> Callable | None:
        """σ in place (overwrites z with h and returns it), or None where the entry gives none."""
        return self.make_inplace(*self._torch()) if self.make_inplace is not None else None

    @property
    def has_fused_backward(self) -> bool:
        return self.make_backward is not None


def _sigmoid_d(torch, F):
    def d(x):
        s = torch.sigmoid(x)
        return s * (1 - s)
    return d


def _gelu_d(torch, F):
    def d(x):  # d/dx [x Φ(x)] = Φ(x) + x φ(x)
        cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
        pdf = torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return cdf + x * pdf
    return d


def _silu_d(torch, F):
    def d(x):
        s = torch.sigmoid(x)
        return s * (1 + x * (1 - s))
    return d


def _aten(op: str, *args):
    """A fused ATen backward kernel, called as op(grad, <z or h>, *args)."""
    def make(torch, F):
        kernel = getattr(torch.ops.aten, op)
        if op in ("sigmoid_backward", "tanh_backward"):  # these take the output h = σ(z)
            return lambda g, z, h: kernel(g, h, *args)
        return lambda g, z, h: kernel(g, z, *args)
    return make


REGISTRY: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation("sigmoid", "Sigmoid", "1/(1+e^-x)", lambda t, F: t.sigmoid, _sigmoid_d,
                   _aten("sigmoid_backward"), lambda t, F: lambda z: z.sigmoid_()),
        Activation("relu", "ReLU", "max(0, x)", lambda t, F: t.relu,
                   lambda t, F: lambda x: t.heaviside(x, x.new_zeros(())),
                   _aten("threshold_backward", 0.0), lambda t, F: F.relu_),
        Activation("leaky_relu", "Leaky ReLU", f"max({LEAKY_SLOPE}x, x)",
                   lambda t, F: lambda x: F.leaky_relu(x, LEAKY_SLOPE),
                   lambda t, F: lambda x: t.where(x > 0, t.ones_like(x), t.full_like(x, LEAKY_SLOPE)),
                   _aten("leaky_relu_backward", LEAKY_SLOPE, False),
                   lambda t, F: lambda x: F.leaky_relu_(x, LEAKY_SLOPE)),
        Activation("gelu", "GELU", "x·Φ(x)", lambda t, F: F.gelu, _gelu_d, _aten("gelu_backward")),
        Activation("tanh", "tanh", "tanh(x)", lambda t, F: t.tanh,
                   lambda t, F: lambda x: 1 - t.tanh(x) ** 2, _aten("tanh_backward"),
                   lambda t, F: lambda z: z.tanh_()),
        Activation("silu", "SiLU", "x·σ(x)", lambda t, F: F.silu, _silu_d, _aten("silu_backward")),
        Activation("elu", "ELU", "x if x>0 else e^x−1", lambda t, F: F.elu,
                   lambda t, F: lambda x: t.where(x > 0, t.ones_like(x), t.exp(x))),
        Activation("softplus", "Softplus", "ln(1+e^x)", lambda t, F: F.softplus,
                   lambda t, F: t.sigmoid),
    ]
}
ORDER = list(REGISTRY)  # the canonical order of tables and figures


class UnknownActivationError(KeyError):
    pass


def get(name: str) -> Activation:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownActivationError(
            f"unknown activation {name!r}; known activations: {', '.join(REGISTRY)}"
        ) from None


def label(name: str) -> str:
    return REGISTRY[name].label if name in REGISTRY else name


def ordered(names) -> list[str]:
    """Names in registry order (unknown names last, alphabetically)."""
    names = list(dict.fromkeys(names))
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def curves(names: list[str], x_min: float = -5.0, x_max: float = 5.0, n: int = 1001):
    """Values and analytic derivatives on a grid, as a tidy DataFrame (for Figure 1)."""
    import pandas as pd
    import torch

    x = torch.linspace(x_min, x_max, n, dtype=torch.float64)
    frames = []
    for name in names:
        act = get(name)
        frames.append(pd.DataFrame({
            "activation": name, "label": act.label, "formula": act.formula, "x": x.numpy(),
            "value": act.fn(x).numpy(), "derivative": act.derivative(x).numpy(),
        }))
    return pd.concat(frames, ignore_index=True)
