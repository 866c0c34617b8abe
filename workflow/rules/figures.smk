# Figure rules read Parquet only (never torch), so restyling a figure costs seconds.


rule figure:
    """Draw one figure of the study (PNG, and each other format of figures.formats) from its
    Parquet tables."""
    input:
        unpack(figure_inputs),
        code=code("figure.py"),
    output:
        **{f: layout.figure_path("{figure}", f) for f in FIGURE_FORMATS if f != "png"},
        png=report(
            layout.figure_path("{figure}", "png"),
            caption="../report/figure.rst",
            category=figure_category,
            labels=figure_label,
        ),
    log:
        layout.log("figures/{figure}"),
    benchmark:
        layout.benchmark("figures/{figure}")
    wildcard_constraints:
        figure="|".join(figreg.FIGURES),
    priority: PRIORITY.figures
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        style={k: v for k, v in config["figures"].items() if k != "formats"},
        caption=figure_caption,
        tables=figure_keywords,
        study=figure_study_values,
        settings=figure_variant_settings,
    script:
        "../scripts/figure.py"


rule exp1:
    """Experiment 1 (gradient flow): tables and its figures."""
    input:
        experiment_target("exp1"),


rule exp2:
    """Experiment 2 (dead neurons, high learning rate): tables and its figures."""
    input:
        experiment_target("exp2"),


rule exp3:
    """Experiment 3 (representational capacity): tables and its figures."""
    input:
        experiment_target("exp3"),


rule sensitivity:
    """Every variant's training and tables, the claims under every variant, Figures 12 and 13,
    the grid figures."""
    input:
        [p for v in VARIANTS if not VARIANTS[v].is_study for p in variant_tables(v)],
        [layout.AUDIT[k] for k in layout.AUDIT if k.startswith("sensitivity")],
        figure_files(figreg.by_experiment("sensitivity")),
        grid_figure_files(),
