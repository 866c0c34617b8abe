"""What one job needs in memory, and what a training job costs, estimated from the settings
before anything runs.

The estimates are deliberately simple and generous: a fixed start-up (Python, torch, pandas)
plus a few bytes per number the job holds. They exist so that a configuration whose jobs cannot
fit (``epochs: 1000000000``, ``width: 1000000``) is refused, with the numbers, before any job
starts, instead of failing in an allocation after the previous results were deleted. Measured
on the default configuration (CPU): training jobs peak at about 0.5 GB, metric jobs at 0.55 GB.
"""

from __future__ import annotations

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


# The scheduling priority of the metric tables' jobs and the claims audit: the chain that ends a
# run (the last variant's tables, their union, the audit, the figures that read the audit) goes
# before the figures that need none of it, which then fill the other cores while it runs.
TABLE_PRIORITY = 1


def train_priority(variant) -> int:
    """A training job's scheduling priority (an actflow.variants.Variant's): costlier jobs
    first, TABLE_PRIORITY + 1 + their GFLOP, so that any training job goes before the table
    jobs (TABLE_PRIORITY) and the figure jobs (priority 0) ready beside it."""
    c = variant.settings
    return TABLE_PRIORITY + 1 + int(training_gflop(variant.stacked_runs, c["hidden_layers"],
                                                   c["width"], variant.data["n_samples"],
                                                   c["epochs"]))
