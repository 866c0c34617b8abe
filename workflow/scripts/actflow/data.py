"""Target functions and seeded datasets (numpy only).

:data:`TARGETS` is the target registry: one entry per target function, with the label the
figures show. The config schema's list of targets derives from it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Target:
    name: str  # as in the config and the tables
    label: str  # as the figures show it
    fn: Callable[[np.ndarray], np.ndarray]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target("sin", "sin(x)", np.sin),
        Target("abs", "|x|", np.abs),
        Target("step", "step (0/1)", lambda x: np.heaviside(x, 1.0)),  # 0 for x<0, 1 for x>=0
        Target("sin10", "sin(10x)", lambda x: np.sin(10 * x)),
        Target("cubic", "x³", lambda x: x**3),
    ]
}


class UnknownTargetError(KeyError):
    pass


def target_fn(name: str):
    try:
        return TARGETS[name].fn
    except KeyError:
        raise UnknownTargetError(
            f"unknown target {name!r}; known targets: {', '.join(TARGETS)}"
        ) from None


def target_label(name: str) -> str:
    return TARGETS[name].label if name in TARGETS else name


def ordered_targets(names) -> list[str]:
    order = list(TARGETS)
    return sorted(set(names), key=lambda t: (order.index(t) if t in order else len(order), t))


def _rng(seed: int, target: str) -> np.random.Generator:
    # The target's name enters the seed so that adding a target never changes another's data.
    return np.random.default_rng([int(seed), zlib.crc32(target.encode())])


def make_train_set(
    target: str, n_samples: int, x_min: float, x_max: float, noise_std: float, seed: int,
    sampling: str = "linspace",
) -> pd.DataFrame:
    """y = f(x) + N(0, noise_std²) on [x_min, x_max]; columns x, y, y_clean (float64)."""
    f = target_fn(target)
    rng = _rng(seed, target)
    if sampling == "linspace":
        x = np.linspace(x_min, x_max, n_samples)
    elif sampling == "uniform":
        x = np.sort(rng.uniform(x_min, x_max, n_samples))
    else:
        raise ValueError(f"unknown sampling {sampling!r}; use 'linspace' or 'uniform'")
    y_clean = f(x).astype(np.float64)
    y = y_clean + rng.normal(0.0, noise_std, n_samples)
    return pd.DataFrame({"x": x, "y": y, "y_clean": y_clean})


def make_test_grid(target: str, n_points: int, x_min: float, x_max: float) -> pd.DataFrame:
    """Dense, clean, evenly spaced grid; columns x, y."""
    x = np.linspace(x_min, x_max, n_points)
    return pd.DataFrame({"x": x, "y": target_fn(target)(x).astype(np.float64)})
