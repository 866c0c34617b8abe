rule activation_curves:
    """Each activation and its analytic derivative on a grid (Figure 1, claims)."""
    input:
        code=code("activation_curves.py"),
    output:
        layout.curves_path(),
    log:
        layout.log("metrics/activation_curves"),
    benchmark:
        layout.benchmark("metrics/activation_curves")
    priority: PRIORITY.tables
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        activations=ACTIVATIONS,
    script:
        "../scripts/activation_curves.py"


rule history_metrics:
    """Tidy loss and gradient-flow tables of one variant, with summaries over seeds."""
    input:
        loss=variant_inputs("loss"),
        grads=variant_inputs("grads"),
        runs=variant_inputs("runs"),
        timing=variant_inputs("timing"),
        code=code("history_metrics.py"),
    output:
        **layout.job_outputs("history", "{variant}"),
    log:
        layout.log("metrics/{variant}_history"),
    benchmark:
        layout.benchmark("metrics/{variant}_history")
    wildcard_constraints:
        variant="|".join(map(re.escape, SINE)),
    priority: PRIORITY.tables
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        outcomes=config["outcomes"],
        ids=variant_keys,
        activations=ACTIVATIONS,
    script:
        "../scripts/history_metrics.py"


rule weight_metrics:
    """Dead neurons, sparsity and activation statistics from initial and trained weights."""
    input:
        weights=variant_inputs("weights"),
        runs=variant_inputs("runs"),
        units=variant_inputs("units"),
        data=variant_sine_data,
        code=code("weight_metrics.py"),
    output:
        **layout.job_outputs("weights", "{variant}"),
    log:
        layout.log("metrics/{variant}_weights"),
    benchmark:
        layout.benchmark("metrics/{variant}_weights")
    wildcard_constraints:
        variant="|".join(map(re.escape, SINE)),
    priority: PRIORITY.tables
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=config["train"]["mem_mb"],
    params:
        ids=variant_keys,
        activations=ACTIVATIONS,
        seeds=variant_seeds,
        hp=train_hyper,
        neurons=config["neurons"],
        outcomes={k: config["outcomes"][k] for k in ("collapse_rtol", "explode_factor")},
    script:
        "../scripts/weight_metrics.py"


rule capacity_metrics:
    """A capacity experiment: train/test MSE, test-grid predictions, winners with a paired test."""
    input:
        unpack(variant_target_data),
        weights=variant_inputs("weights"),
        runs=variant_inputs("runs"),
        code=code("capacity_metrics.py"),
    output:
        **layout.job_outputs("capacity", "{variant}"),
    log:
        layout.log("metrics/{variant}_capacity"),
    benchmark:
        layout.benchmark("metrics/{variant}_capacity")
    wildcard_constraints:
        variant="|".join(map(re.escape, CAPACITY)),
    priority: PRIORITY.tables
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=config["train"]["mem_mb"],
    params:
        ids=variant_keys,
        activations=ACTIVATIONS,
        targets=variant_targets,
        seeds=variant_seeds,
        hp=train_hyper,
        outcomes={k: config["outcomes"][k] for k in ("collapse_rtol", "explode_factor")},
    script:
        "../scripts/capacity_metrics.py"


# The tables over the study's experiments and every variant of a kind (sine, capacity), for
# users and the audit (figures read per experiment): rules union_sine and union_capacity. One
# job per kind, not per table: their one reader (the claims) reads them all, and a job's start
# (its imports) costs more than the joins.
for _kind in layout.KIND_JOBS:

    rule:
        name:
            f"union_{_kind}"
        input:
            **union_inputs(_kind),
            code=code("union_table.py"),
        output:
            **union_outputs(_kind),
        log:
            layout.log(f"metrics/union_{_kind}"),
        benchmark:
            layout.benchmark(f"metrics/union_{_kind}")
        priority: PRIORITY.tables
        conda:
            "../envs/plot.yaml"
        threads: 1
        resources:
            mem_mb=2000,
        script:
            "../scripts/union_table.py"
