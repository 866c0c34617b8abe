"""What one job needs in memory, and what a training job costs, estimated from the settings
before anything runs.

The estimates are deliberately simple and generous: a fixed start-up (Python, torch, pandas)
plus a few bytes per number the job holds. They exist so that a configuration whose jobs cannot
fit (``epochs: 1000000000``, ``width: 1000000``) is refused, with the numbers, before any job
starts, instead of failing in an allocation after the previous results were deleted. Measured
on the default configuration (CPU): training jobs peak at about 0.5 GB, metric jobs at 0.55 GB.
"""

from __future__ import annotations

from dataclasses import dataclass

BASE_MB = 450  # Python with torch, numpy, pandas and pyarrow imported (measured RSS ~0.4 GB)
MB = 1024 * 1024


def _params(hidden_layers: int, width: int) -> int:
    """Parameters of one run's net (1 input, 1 output)."""
    return width + width + (hidden_layers - 1) * (width * width + width) + width + 1


def training_mb(runs: int, hidden_layers: int, width: int, n_samples: int, epochs: int) -> float:
    """One training job of ``runs`` stacked runs: weights with their gradients, optimizer state
    and initial copies (6 copies, float32), activations of the forward and backward pass, the
    per-epoch histories on the device and as host copies, and the long tables made from them
    (about 300 bytes per row of the gradient table, 250 per row of the loss table)."""
    params = runs * _params(hidden_layers, width)
    acts = runs * hidden_layers * n_samples * width
    rows = epochs * runs
    total = 24 * params + 24 * acts + 300 * rows * hidden_layers + 250 * rows
    return BASE_MB + total / MB


def weight_metrics_mb(runs: int, hidden_layers: int, width: int, n_samples: int,
                      shown_layers: int) -> float:
    """One weight-metrics job, per activation: forward passes of initial and trained weights
    (pre-activations, activations, derivatives, float32 and float64 copies) and the per-neuron
    tables, the largest of which has one row per run, shown layer, neuron and input."""
    acts = runs * hidden_layers * n_samples * width
    total = 2 * 48 * acts + 2 * 200 * runs * hidden_layers * width \
        + 120 * runs * shown_layers * width * n_samples
    return BASE_MB + total / MB


def capacity_mb(runs_per_target: int, targets: int, activations: int, n_test: int,
                hidden_layers: int, width: int) -> float:
    """The capacity job: predictions on the test grid of every run (about 100 bytes a row)."""
    rows = runs_per_target * targets * activations * n_test
    acts = runs_per_target * hidden_layers * n_test * width
    return BASE_MB + (100 * rows + 48 * acts) / MB


def training_gflop(runs: int, hidden_layers: int, width: int, n_samples: int, epochs: int) -> float:
    """Floating-point work of one training job, in GFLOP: per epoch and run, the forward pass
    and the two products of the backward pass of every layer (2 flops per multiply-add). The
    workflow starts the costliest training jobs first (the train rule's priority), so that the
    short ones fill the cores at the end instead of one long job running alone."""
    macs = _params(hidden_layers, width) * n_samples
    return 3 * 2 * macs * runs * epochs / 1e9


@dataclass(frozen=True)
class Priorities:
    """The Snakemake ``priority:`` of each kind of job, for one configuration's variants.

    Every job that is not training goes before every ready training job: the data, the metric
    tables, their unions and the claims audit (``tables``) first, then the figures
    (``figures``). Training jobs (``training``, by variant) come after them, the costliest
    first (their rank by :func:`training_gflop`, from 1), so that the short ones fill the cores
    at the end. A cheap job then never waits behind the training jobs, the chain that ends a
    run starts as soon as it can, and Snakemake's ready queue (whose every input file each of
    its scheduling passes checks) holds little besides training jobs; docs/performance.md
    gives the measurements."""

    training: dict  # variant name -> priority, 1 .. number of distinct costs
    figures: int
    tables: int


def priorities(variants) -> Priorities:
    """The priorities (:class:`Priorities`) of the jobs of ``variants`` (actflow.variants.Variant)."""
    cost = {v.name: training_cost(v) for v in variants}
    rank = {c: i for i, c in enumerate(sorted(set(cost.values())), start=1)}
    top = len(rank)
    return Priorities({n: rank[c] for n, c in cost.items()}, figures=top + 1, tables=top + 2)


def training_cost(variant) -> float:
    """One training job's GFLOP (:func:`training_gflop`) under a variant: its stacked runs
    (seeds, and targets of a capacity experiment), depth, width, samples and epochs."""
    c = variant.settings
    return training_gflop(variant.stacked_runs, c["hidden_layers"], c["width"],
                          variant.data["n_samples"], c["epochs"])
