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
        compile=config["train"]["compile"],
    script:
        "../scripts/train.py"


rule train_target:
    """Experiment 3: all seeds of one activation on one target, as one stacked model."""
    input:
        data="results/data/targets/{target}_train.parquet",
        code=pkg("jobs", "train", "activations", "names", "tables", "stats"),
    output:
        loss="results/train/exp3/{target}/{activation}/loss.parquet",
        grads="results/train/exp3/{target}/{activation}/grads.parquet",
        runs="results/train/exp3/{target}/{activation}/runs.parquet",
        weights="results/train/exp3/{target}/{activation}/weights.safetensors",
    log:
        "results/logs/train/exp3/{target}/{activation}.log",
    benchmark:
        "results/benchmarks/train/exp3/{target}/{activation}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=2000,
        gpu=train_gpus(),
    params:
        experiment="exp3",
        seeds=config["seeds"],
        hp=hyper("exp3"),
        device=config["device"],
        log_every=config["train"]["log_every"],
        compile=config["train"]["compile"],
    script:
        "../scripts/train.py"
