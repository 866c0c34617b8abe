rule data_sine:
    """The study's dataset, y = sin(x) + N(0, noise_std²), written once."""
    input:
        code=pkg("jobs", "data"),
    output:
        "results/data/sine.parquet",
    log:
        "results/logs/data/sine.log",
    benchmark:
        "results/benchmarks/data/sine.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        data=config["data"],
    script:
        "../scripts/data_sine.py"
