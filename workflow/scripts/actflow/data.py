"""Target functions and seeded datasets (numpy only)."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

TARGETS = {
    "sin": np.sin,
    "abs": np.abs,
    "step": lambda x: np.heaviside(x, 1.0),  # Heaviside, 0 for x<0 and 1 for x>=0
    "sin10": lambda x: np.sin(10 * x),
    "cubic": lambda x: x**3,
}


class UnknownTargetError(KeyError):
    pass


def target_fn(name: str):
    try:
        return TARGETS[name]
    except KeyError:
        raise UnknownTargetError(
            f"unknown target {name!r}; known targets: {', '.join(sorted(TARGETS))}"
        ) from None


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
