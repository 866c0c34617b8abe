# Reproducibility audit: the study's claims against the tables, provenance, re-execution.
AUDIT_OUT = {
    "parquet": "results/audit/claims.parquet",
    "markdown": "results/audit/claims.md",
    "html": "results/audit/claims.html",
}


rule audit_claims:
    """Evaluate every claim of config/claims.yaml against the measured tables."""
    input:
        claims=config["audit"]["claims"],
        tables=[f"results/{t}" for t in CLAIM_TABLES],
        code=pkg("jobs", "claims", "stats", "tables"),
    output:
        parquet=AUDIT_OUT["parquet"],
        markdown=AUDIT_OUT["markdown"],
        html=report(
            AUDIT_OUT["html"],
            caption="../report/claims.rst",
            category="0. Audit",
            labels={"figure": "claims table"},
        ),
    log:
        "results/logs/audit/claims.log",
    benchmark:
        "results/benchmarks/audit/claims.tsv"
    conda:
        "../../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        tables=CLAIM_TABLES,
    script:
        "../scripts/audit_claims.py"


MANIFEST_FILES = sorted(
    set(
        list(map(str, [*rules.exp1.input, *rules.exp2.input, *rules.exp3.input]))
        + per_activation(EXPERIMENTS_ON_SINE, TRAIN_FILES)
        + per_target(TRAIN_FILES)
        + ["results/data/sine.parquet"]
        + expand("results/data/targets/{t}_{s}.parquet", t=TARGETS, s=["train", "test"])
        + list(AUDIT_OUT.values())
        + figure_files(*FIGURES)
    )
)


rule manifest:
    """Provenance: SHA-256 and size of every output, resolved config, versions, platform, git."""
    input:
        MANIFEST_FILES,
        code=pkg("audit"),
    output:
        json=report(
            "results/audit/manifest.json",
            caption="../report/manifest.rst",
            category="0. Audit",
            labels={"figure": "provenance manifest"},
        ),
        config=report(
            "results/audit/config.yaml",
            caption="../report/config.rst",
            category="0. Audit",
            labels={"figure": "resolved configuration"},
        ),
    log:
        "results/logs/audit/manifest.log",
    benchmark:
        "results/benchmarks/audit/manifest.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        config=config,
        files=MANIFEST_FILES,
    script:
        "../scripts/manifest.py"


rule audit:
    """Retrain a sample of training jobs in a scratch folder; compare with the manifest."""
    input:
        manifest="results/audit/manifest.json",
        code=pkg("audit", "jobs", "train", "activations", "names", "tables", "stats"),
    output:
        table="results/audit/reexecution.parquet",
        markdown="results/audit/reexecution.md",
    log:
        "results/logs/audit/reexecution.log",
    benchmark:
        "results/benchmarks/audit/reexecution.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=2000,
    params:
        sample=config["audit"]["sample_jobs"],
        seed=config["audit"]["sample_seed"],
        scratch="results/audit/scratch",
    script:
        "../scripts/reexecute.py"
