UNION_TABLES = [
    "loss",
    "gradient_flow",
    "gradient_ratio",
    "runs",
    "neurons",
    "dead_neurons",
    "sparsity",
    "activation_hist",
    "hidden_activations",
]
HISTORY_TABLES = [
    "loss",
    "gradient_flow",
    "gradient_ratio",
    "runs",
    "loss_summary",
    "gradient_flow_summary",
    "gradient_ratio_summary",
]


rule activation_curves:
    """Each activation and its analytic derivative on a grid (Figure 1, claims)."""
    input:
        code=pkg("jobs", "activations", "names"),
    output:
        "results/metrics/activation_curves.parquet",
    log:
        "results/logs/metrics/activation_curves.log",
    benchmark:
        "results/benchmarks/metrics/activation_curves.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        activations=config["activations"],
    script:
        "../scripts/activation_curves.py"


rule history_metrics:
    """Tidy loss and gradient-flow tables of one experiment, with summaries over seeds."""
    input:
        loss=per_activation("{experiment}", "loss.parquet"),
        grads=per_activation("{experiment}", "grads.parquet"),
        runs=per_activation("{experiment}", "runs.parquet"),
        code=pkg("jobs", "tables", "stats"),
    output:
        **{t: f"results/metrics/{{experiment}}/{t}.parquet" for t in HISTORY_TABLES},
    log:
        "results/logs/metrics/{experiment}_history.log",
    benchmark:
        "results/benchmarks/metrics/{experiment}_history.tsv"
    conda:
        "../../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    script:
        "../scripts/history_metrics.py"


WEIGHT_TABLES = [
    "neurons",
    "dead_neurons",
    "sparsity",
    "activation_hist",
    "hidden_activations",
    "dead_neurons_summary",
    "sparsity_summary",
]


rule weight_metrics:
    """Dead neurons, sparsity and activation statistics from initial and trained weights."""
    input:
        weights=per_activation("{experiment}", "weights.safetensors"),
        runs=per_activation("{experiment}", "runs.parquet"),
        data="results/data/sine.parquet",
        code=pkg("jobs", "neurons", "train", "activations", "names", "tables", "stats"),
    output:
        **{t: f"results/metrics/{{experiment}}/{t}.parquet" for t in WEIGHT_TABLES},
    log:
        "results/logs/metrics/{experiment}_weights.log",
    benchmark:
        "results/benchmarks/metrics/{experiment}_weights.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        neurons=config["neurons"],
    script:
        "../scripts/weight_metrics.py"


rule union_table:
    """One table over every experiment trained on the sine data (for users; figures read per experiment)."""
    input:
        tables=expand(
            "results/metrics/{experiment}/{{table}}.parquet",
            experiment=EXPERIMENTS_ON_SINE,
        ),
        code=pkg("jobs"),
    output:
        "results/metrics/{table}.parquet",
    log:
        "results/logs/metrics/union_{table}.log",
    benchmark:
        "results/benchmarks/metrics/union_{table}.tsv"
    wildcard_constraints:
        table="|".join(UNION_TABLES),
    conda:
        "../../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    script:
        "../scripts/union_table.py"


CAPACITY_TABLES = {
    "capacity": "results/metrics/capacity.parquet",
    "predictions": "results/metrics/predictions.parquet",
    "capacity_summary": "results/metrics/exp3/capacity_summary.parquet",
    "capacity_winners": "results/metrics/exp3/capacity_winners.parquet",
}


rule capacity_metrics:
    """Experiment 3: train/test MSE, test-grid predictions, winners with a paired test."""
    input:
        weights=per_target("weights.safetensors"),
        runs=per_target("runs.parquet"),
        train=expand("results/data/targets/{target}_train.parquet", target=TARGETS),
        test=expand("results/data/targets/{target}_test.parquet", target=TARGETS),
        code=pkg("jobs", "train", "activations", "names", "tables", "stats"),
    output:
        **CAPACITY_TABLES,
    log:
        "results/logs/metrics/exp3_capacity.log",
    benchmark:
        "results/benchmarks/metrics/exp3_capacity.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        targets=TARGETS,
    script:
        "../scripts/capacity_metrics.py"
