"""Target functions and seeded datasets (numpy only).

:data:`TARGETS` is the target registry: one entry per target function, with the label the
figures show. The config schema's list of targets derives from it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np


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


def _rng(seed: int, target: str, draw: int | None = None) -> np.random.Generator:
    # The target's name enters the seed so that adding a target never changes another's data;
    # with one draw per training seed (data.per_seed), that seed enters it too.
    entropy = [int(seed), zlib.crc32(target.encode())]
    return np.random.default_rng(entropy if draw is None else entropy + [int(draw)])


def make_train_set(
    target: str, n_samples: int, x_min: float, x_max: float, noise_std: float, seed: int,
    sampling: str = "linspace", draw: int | None = None,
) -> pd.DataFrame:
    """y = f(x) + N(0, noise_std²) on [x_min, x_max]; columns x, y, y_clean (float64).
    ``draw`` (a training seed) makes an independent draw of the noise, and of x with uniform
    sampling, for that seed."""
    f = target_fn(target)
    rng = _rng(seed, target, draw)
    if sampling == "linspace":
        x = np.linspace(x_min, x_max, n_samples)
    elif sampling == "uniform":
        x = np.sort(rng.uniform(x_min, x_max, n_samples))
    else:
        raise ValueError(f"unknown sampling {sampling!r}; use 'linspace' or 'uniform'")
    y_clean = f(x).astype(np.float64)
    y = y_clean + rng.normal(0.0, noise_std, n_samples)
    import pandas as pd

    return pd.DataFrame({"x": x, "y": y, "y_clean": y_clean})


def make_test_grid(target: str, n_points: int, x_min: float, x_max: float) -> pd.DataFrame:
    """Dense, clean, evenly spaced grid; columns x, y."""
    import pandas as pd

    x = np.linspace(x_min, x_max, n_points)
    return pd.DataFrame({"x": x, "y": target_fn(target)(x).astype(np.float64)})


def make_dataset(targets, n_samples: int, x_min: float, x_max: float, noise_std: float,
                 seed: int, sampling: str = "linspace", per_seed: bool = False,
                 seeds=()) -> pd.DataFrame:
    """The training data of every target (columns ``target``, then ``seed`` with one draw per
    training seed if ``per_seed``, then x, y, y_clean). One shared draw per target otherwise:
    the study's setup, where the interval over seeds covers only the initial weights."""
    frames = []
    for target in targets:
        for draw in (seeds if per_seed else [None]):
            df = make_train_set(target, n_samples, x_min, x_max, noise_std, seed, sampling, draw)
            if per_seed:
                df.insert(0, "seed", int(draw))
            df.insert(0, "target", target)
            frames.append(df)
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def make_test_grids(targets, n_points: int, x_min: float, x_max: float) -> pd.DataFrame:
    """Clean, evenly spaced test grids of every target (columns target, x, y)."""
    import pandas as pd

    return pd.concat([make_test_grid(t, n_points, x_min, x_max).assign(target=t)[["target", "x", "y"]]
                      for t in targets], ignore_index=True)


def runs_data(df: pd.DataFrame, targets, seeds):
    """x and y of every stacked run, in run order (targets outer, seeds inner), as arrays of
    shape (runs, n, 1), with each run's y_clean; or (n, 1) arrays when every run shares one
    draw (the study's setup: no target or seed column). Returns (x, y, y_clean)."""
    shared = "seed" not in df.columns and ("target" not in df.columns or df["target"].nunique() == 1)
    if shared:
        return (df["x"].to_numpy()[:, None], df["y"].to_numpy()[:, None],
                df["y_clean"].to_numpy()[:, None] if "y_clean" in df else None)
    xs, ys, cs = [], [], []
    for target in (targets or [None]):
        part = df if target is None or "target" not in df else df[df["target"] == target]
        for s in seeds:
            rows = part[part["seed"] == s] if "seed" in part.columns else part
            if rows.empty:
                raise ValueError(f"the data has no rows for target {target!r}, seed {s}")
            xs.append(rows["x"].to_numpy())
            ys.append(rows["y"].to_numpy())
            cs.append(rows["y_clean"].to_numpy())
    return np.stack(xs)[..., None], np.stack(ys)[..., None], np.stack(cs)[..., None]
