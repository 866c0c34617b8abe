rule train:
    """All seeds of one activation, trained as one stacked model; histories and weights."""
    input:
        data="results/data/sine.parquet",
        code=pkg("jobs", "train", "activations", "names", "tables", "stats"),
    output:
        loss="results/train/{experiment}/{activation}/loss.parquet",
        grads="results/train/{experiment}/{activation}/grads.parquet",
        runs="results/train/{experiment}/{activation}/runs.parquet",
        weights="results/train/{experiment}/{activation}/weights.safetensors",
    log:
        "results/logs/train/{experiment}/{activation}.log",
    benchmark:
        "results/benchmarks/train/{experiment}/{activation}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=2000,
        gpu=train_gpus(),
    params:
        seeds=config["seeds"],
        hp=train_hyper,
        device=config["device"],
        log_every=config["train"]["log_every"],
    script:
        "../scripts/train.py"
