# Figure rules read Parquet only (never torch), so restyling a figure costs seconds.


rule figure:
    """Draw one figure of the study (PNG and PDF) from its Parquet tables."""
    input:
        tables=figure_tables,
        code=pkg("plotting", "names"),
    output:
        png=report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category=figure_category,
            labels=figure_label,
        ),
        pdf="results/figures/{figure}.pdf",
    log:
        "results/logs/figures/{figure}.log",
    benchmark:
        "results/benchmarks/figures/{figure}.tsv"
    wildcard_constraints:
        figure="|".join(FIGURES),
    conda:
        "../../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        style=config["figures"],
    script:
        "../scripts/figure.py"


rule exp1:
    """Experiment 1 (gradient flow): tables and Figures 1-6."""
    input:
        expand(
            "results/metrics/{table}.parquet",
            table=[
                "loss",
                "gradient_flow",
                "gradient_ratio",
                "runs",
                "activation_curves",
            ],
        ),
        expand("results/metrics/exp1/{table}.parquet", table=HISTORY_TABLES),
        figure_files(*EXP1_FIGURES),


rule exp2:
    """Experiment 2 (dead neurons, lr 0.1): tables and Figures 7-9."""
    input:
        expand(
            "results/metrics/exp2/{table}.parquet",
            table=HISTORY_TABLES + WEIGHT_TABLES,
        ),
        expand(
            "results/metrics/{table}.parquet",
            table=[
                "neurons",
                "dead_neurons",
                "sparsity",
                "activation_hist",
                "hidden_activations",
            ],
        ),
        figure_files(*EXP2_FIGURES),


rule exp3:
    """Experiment 3 (representational capacity): tables and Figures 10-11."""
    input:
        CAPACITY_TABLES.values(),
        figure_files(*EXP3_FIGURES),
