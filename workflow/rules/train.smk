rule train:
    """All seeds of one activation, trained as one stacked model; histories and weights."""
    input:
        data=layout.sine_data(),
        code=code("train.py"),
    output:
        **layout.train_outputs("{experiment}", "{activation}"),
    log:
        "results/logs/train/{experiment}/{activation}.log",
    benchmark:
        "results/benchmarks/train/{experiment}/{activation}.tsv"
    wildcard_constraints:
        experiment="|".join(SINE_EXPERIMENTS),
    conda:
        "../../envs/torch.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=config["train"]["mem_mb"],
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
        data=layout.target_data("{target}", "train"),
        code=code("train.py"),
    output:
        **layout.train_outputs("{experiment}", "{activation}", "{target}"),
    log:
        "results/logs/train/{experiment}/{target}/{activation}.log",
    benchmark:
        "results/benchmarks/train/{experiment}/{target}/{activation}.tsv"
    wildcard_constraints:
        experiment="|".join(CAPACITY_EXPERIMENTS),
    conda:
        "../../envs/torch.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=config["train"]["mem_mb"],
        gpu=train_gpus(),
    params:
        seeds=config["seeds"],
        hp=train_hyper,
        device=config["device"],
        log_every=config["train"]["log_every"],
        compile=config["train"]["compile"],
    script:
        "../scripts/train.py"
