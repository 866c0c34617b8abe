rule activation_curves:
    """Each activation and its analytic derivative on a grid (Figure 1, claims)."""
    input:
        code=code("activation_curves.py"),
    output:
        layout.curves_path(),
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
        activations=ACTIVATIONS,
    script:
        "../scripts/activation_curves.py"


rule history_metrics:
    """Tidy loss and gradient-flow tables of one experiment, with summaries over seeds."""
    input:
        loss=per_activation("{experiment}", "loss"),
        grads=per_activation("{experiment}", "grads"),
        runs=per_activation("{experiment}", "runs"),
        code=code("history_metrics.py"),
    output:
        **layout.job_outputs("history", "{experiment}"),
    log:
        "results/logs/metrics/{experiment}_history.log",
    benchmark:
        "results/benchmarks/metrics/{experiment}_history.tsv"
    wildcard_constraints:
        experiment="|".join(SINE_EXPERIMENTS),
    conda:
        "../../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        outcomes=config["outcomes"],
    script:
        "../scripts/history_metrics.py"


rule weight_metrics:
    """Dead neurons, sparsity and activation statistics from initial and trained weights."""
    input:
        weights=per_activation("{experiment}", "weights"),
        runs=per_activation("{experiment}", "runs"),
        data=layout.sine_data(),
        code=code("weight_metrics.py"),
    output:
        **layout.job_outputs("weights", "{experiment}"),
    log:
        "results/logs/metrics/{experiment}_weights.log",
    benchmark:
        "results/benchmarks/metrics/{experiment}_weights.tsv"
    wildcard_constraints:
        experiment="|".join(SINE_EXPERIMENTS),
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=config["train"]["mem_mb"],
    params:
        activations=ACTIVATIONS,
        seeds=config["seeds"],
        hp=train_hyper,
        neurons=config["neurons"],
    script:
        "../scripts/weight_metrics.py"


rule capacity_metrics:
    """Experiment 3: train/test MSE, test-grid predictions, winners with a paired test."""
    input:
        weights=per_target("{experiment}", "weights"),
        runs=per_target("{experiment}", "runs"),
        train=[layout.target_data(t, "train") for t in TARGETS],
        test=[layout.target_data(t, "test") for t in TARGETS],
        code=code("capacity_metrics.py"),
    output:
        **layout.job_outputs("capacity", "{experiment}"),
    log:
        "results/logs/metrics/{experiment}_capacity.log",
    benchmark:
        "results/benchmarks/metrics/{experiment}_capacity.tsv"
    wildcard_constraints:
        experiment="|".join(CAPACITY_EXPERIMENTS),
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=config["train"]["mem_mb"],
    params:
        activations=ACTIVATIONS,
        targets=TARGETS,
        seeds=config["seeds"],
        hp=train_hyper,
        outcomes=config["outcomes"],
    script:
        "../scripts/capacity_metrics.py"


rule union_table:
    """One table over every experiment of a kind (for users; figures read per experiment)."""
    input:
        tables=union_inputs,
        code=code("union_table.py"),
    output:
        "results/metrics/{table}.parquet",
    log:
        "results/logs/metrics/union_{table}.log",
    benchmark:
        "results/benchmarks/metrics/union_{table}.tsv"
    wildcard_constraints:
        table="|".join(t.name for t in layout.TABLES.values() if t.union),
    conda:
        "../../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    script:
        "../scripts/union_table.py"
