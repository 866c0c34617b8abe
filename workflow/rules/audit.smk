# Reproducibility audit: the study's claims against the tables, provenance, re-execution.


rule audit_claims:
    """Evaluate every claim of the claims file on the study's setting and under every variant."""
    input:
        claims=CLAIMS_FILE,
        tables=[f"{layout.RESULTS}/{t}" for t in CLAIM_TABLES],
        runs=[layout.TABLES[t].union_path() for t in RUN_KINDS.values()],
        code=code("audit_claims.py"),
    output:
        claims_parquet=layout.AUDIT["claims_parquet"],
        claims_markdown=layout.AUDIT["claims_markdown"],
        claims_html=report(
            layout.AUDIT["claims_html"],
            caption="../report/claims.rst",
            category=layout.CATEGORIES["audit"],
            labels={layout.REPORT_LABEL["audit"]: "claims table"},
        ),
        sensitivity_parquet=layout.AUDIT["sensitivity_parquet"],
        sensitivity_markdown=layout.AUDIT["sensitivity_markdown"],
        sensitivity_html=report(
            layout.AUDIT["sensitivity_html"],
            caption="../report/sensitivity.rst",
            category=layout.CATEGORIES["sensitivity"],
            labels={layout.REPORT_LABEL["sensitivity"]: "sensitivity table"},
        ),
        readings_parquet=layout.AUDIT["readings_parquet"],
        readings_markdown=layout.AUDIT["readings_markdown"],
        readings_html=report(
            layout.AUDIT["readings_html"],
            caption="../report/readings.rst",
            category=layout.CATEGORIES["sensitivity"],
            labels={layout.REPORT_LABEL["sensitivity"]: "readings table"},
        ),
        explanations_parquet=layout.AUDIT["explanations_parquet"],
        explanations_markdown=layout.AUDIT["explanations_markdown"],
        explanations_html=report(
            layout.AUDIT["explanations_html"],
            caption="../report/explanations.rst",
            category=layout.CATEGORIES["audit"],
            labels={layout.REPORT_LABEL["audit"]: "why the failing numbers fail"},
        ),
    log:
        layout.log("audit/claims"),
    benchmark:
        layout.benchmark("audit/claims")
    priority: PRIORITY.tables
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        tables=CLAIM_TABLES,
        run_kinds=list(RUN_KINDS),
        variants=VARIANT_ROWS,
        caption=sensitivity_caption(),
        claims_name=lambda w: config["audit"]["claims"],
    script:
        "../scripts/audit_claims.py"


# The specification curves, drawn by a few jobs side by side (a figure takes about a second):
# one rule per share of the claims read in more than one way.
for _part, _claims in enumerate(READ_CLAIM_PARTS):

    rule:
        """The specification curves of a share of the claims read in more than one way: each
        claim's measured value and verdict under every reading, sorted, with its region.
        """
        name:
            f"reading_figures_{_part + 1}"
        input:
            readings=layout.AUDIT["readings_parquet"],
            claims=layout.AUDIT["claims_parquet"],
            code=code("reading_figures.py"),
        output:
            **{
                f"{c}_png": report(
                    layout.reading_figure_path(c),
                    caption="../report/reading_curve.rst",
                    category=layout.CATEGORIES["sensitivity"],
                    labels={layout.REPORT_LABEL["sensitivity"]: f"readings of {c}"},
                )
                for c in _claims
            },
        log:
            layout.log(f"figures/readings_{_part + 1}"),
        benchmark:
            layout.benchmark(f"figures/readings_{_part + 1}")
        priority: PRIORITY.figures
        localrule: True
        conda:
            "../envs/plot.yaml"
        threads: 1
        resources:
            mem_mb=1000,
        params:
            claims=_claims,
            dpi=config["figures"]["dpi"],
            context=config["figures"]["context"],
        script:
            "../scripts/reading_figures.py"


rule grid_figure:
    """One grid variant's figure: each claim whose verdict changes on the grid, its measured
    value and interval against the grid's values, the study's setting marked."""
    input:
        sensitivity=layout.AUDIT["sensitivity_parquet"],
        claims=layout.AUDIT["claims_parquet"],
        code=code("grid_figure.py"),
    output:
        png=report(
            layout.grid_figure_path("{grid}"),
            caption="../report/grid.rst",
            category=layout.CATEGORIES["sensitivity"],
            labels=grid_label,
        ),
    log:
        layout.log("figures/grid_{grid}"),
    benchmark:
        layout.benchmark("figures/grid_{grid}")
    wildcard_constraints:
        grid="|".join(map(re.escape, GRIDS)) or "(?!)",
    priority: PRIORITY.figures
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        grid=lambda w: GRIDS[w.grid],
        dpi=config["figures"]["dpi"],
        context=config["figures"]["context"],
    script:
        "../scripts/grid_figure.py"


# Every output of the DAG: what the manifest certifies (logs and benchmarks hold timestamps).
MANIFEST_FILES = sorted(
    set(
        data_files()
        + train_files()
        + [p for v in VARIANTS for p in variant_tables(v)]
        + [p for e in layout.EXPERIMENT_KINDS for p in experiment_target(e)]
        + [
            layout.AUDIT[k]
            for k in layout.AUDIT
            if k.startswith(("claims", "sensitivity", "readings", "explanations"))
        ]
        + figure_files(figreg.FIGURES)
        + reading_figure_files()
        + grid_figure_files()
    )
)


rule manifest:
    """Provenance: SHA-256 and size of every output, resolved config, versions, platform, git."""
    input:
        MANIFEST_FILES,
        code=code("manifest.py"),
    # update(): Snakemake keeps the previous manifest until this job has written the new one,
    # and puts it back if the job fails (it refuses a file that does not read back): a run
    # that fails here keeps the last certified state for make verify and make repair.
    output:
        json=update(layout.AUDIT["manifest"]),
        config=update(layout.AUDIT["config"]),
        json_html=report(
            update(layout.AUDIT["manifest_html"]),
            caption="../report/manifest.rst",
            category=layout.CATEGORIES["audit"],
            labels={layout.REPORT_LABEL["audit"]: "provenance manifest"},
        ),
        config_html=report(
            update(layout.AUDIT["config_html"]),
            caption="../report/config.rst",
            category=layout.CATEGORIES["audit"],
            labels={layout.REPORT_LABEL["audit"]: "resolved configuration"},
        ),
    log:
        layout.log("audit/manifest"),
    benchmark:
        layout.benchmark("audit/manifest")
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        config=RUN_CONFIG,
        files=MANIFEST_FILES,
    script:
        "../scripts/manifest.py"


rule summary:
    """The run's findings in a few lines (actflow.summary): results/summary.md, the report's
    front page and what a finished run prints."""
    input:
        claims=layout.AUDIT["claims_parquet"],
        sensitivity=layout.AUDIT["sensitivity_parquet"],
        manifest=layout.AUDIT["manifest"],
        # relative, as code(): a moved or copied project keeps its records
        description=os.path.relpath(
            os.path.join(WORKFLOW_DIR, "workflow", "report", "workflow.rst")
        ),
        code=code("summary.py"),
    output:
        markdown=layout.SUMMARY,
        front_page=layout.FRONT_PAGE,
    log:
        layout.log("audit/summary"),
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    script:
        "../scripts/summary.py"


rule reexecute:
    """Retrain a sample of training jobs in a scratch folder; compare with the manifest."""
    input:
        manifest=layout.AUDIT["manifest"],
        code=code("reexecute.py"),
    output:
        table=layout.AUDIT["reexecution_parquet"],
        markdown=layout.AUDIT["reexecution_markdown"],
    log:
        layout.log("audit/reexecution"),
    benchmark:
        layout.benchmark("audit/reexecution")
    conda:
        "../envs/torch.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=2000,
    params:
        sample=config["audit"]["sample_jobs"],
        seed=config["audit"]["sample_seed"],
        scratch=layout.SCRATCH,
    script:
        "../scripts/reexecute.py"


rule audit:
    """The re-execution audit's verdict: fails, naming the files, when any output or any
    retrained job differs from the manifest (results/audit/reexecution.md has the table).
    """
    input:
        table=layout.AUDIT["reexecution_parquet"],
        code=code("audit_verdict.py"),
    log:
        layout.log("audit/audit"),
    conda:
        "../envs/plot.yaml"
    threads: 1
    script:
        "../scripts/audit_verdict.py"


rule verify:
    """Every output against the manifest (missing, changed, unlisted files); rebuilds nothing."""
    log:
        layout.log("audit/verify"),
    conda:
        "../envs/torch.yaml"
    threads: 1
    params:
        manifest=layout.AUDIT["manifest"],
    script:
        "../scripts/verify.py"


rule bundle:
    """Pack this run for another person to compare with: every union and summary table, the
    claim verdicts, the manifest and config (the weights with bundle_weights: true)."""
    input:
        BUNDLE_FILES,
        code=code("bundle.py"),
    output:
        archive=layout.BUNDLE["archive"],
        checksum=layout.BUNDLE["checksum"],
    log:
        layout.log("audit/bundle"),
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        files=BUNDLE_FILES,
        weights=config["bundle_weights"],
    script:
        "../scripts/bundle.py"


rule comparison:
    """This run against another (config compare_with): verdicts, metrics within the seed
    spread, settings and machines; results/audit/comparison.*."""
    input:
        comparison_tables(),
        manifest=layout.AUDIT["manifest"],
        theirs=comparison_source,
        code=code("compare_runs.py"),
    output:
        parquet=layout.COMPARISON["comparison_parquet"],
        claims=layout.COMPARISON["comparison_claims"],
        settings=layout.COMPARISON["comparison_settings"],
        markdown=layout.COMPARISON["comparison_markdown"],
        html=report(
            layout.COMPARISON["comparison_html"],
            caption="../report/comparison_table.rst",
            category=layout.CATEGORIES["comparison"],
            labels={layout.REPORT_LABEL["comparison"]: "comparison table"},
        ),
        png=report(
            layout.COMPARISON["comparison_png"],
            caption="../report/comparison.rst",
            category=layout.CATEGORIES["comparison"],
            labels={layout.REPORT_LABEL["comparison"]: "comparison figure"},
        ),
        pdf=layout.COMPARISON["comparison_pdf"],
    log:
        layout.log("audit/comparison"),
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        ours=lambda w, input: os.path.dirname(os.path.dirname(input.manifest)),
        theirs=config["compare_with"],
        dpi=config["figures"]["dpi"],
    script:
        "../scripts/compare_runs.py"


rule compare:
    """Compare this run with another: snakemake compare --config compare_with=BUNDLE_OR_FOLDER."""
    input:
        rules.comparison.output,
