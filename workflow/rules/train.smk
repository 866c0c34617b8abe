rule train:
    """All seeds of one activation under one variant (for a capacity experiment, every target
    too), trained as one stacked model; histories and weights."""
    input:
        data=training_data,
        code=code("train.py"),
    output:
        **layout.train_outputs("{variant}", "{activation}"),
    log:
        layout.log("train/{variant}/{activation}"),
    benchmark:
        layout.benchmark("train/{variant}/{activation}")
    priority: train_priority
    conda:
        "../envs/torch.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=config["train"]["mem_mb"],
        gpu=train_gpus(),
    params:
        ids=variant_keys,
        targets=variant_targets,
        seeds=variant_seeds,
        hp=train_hyper,
        log_every=config["train"]["log_every"],
        unit_every=config["train"]["unit_every"],
    # The device (config["device"]) is not a param: where a job trains is not what it trains
    # (the runs record their device), so changing it reruns no finished training, as the
    # threads do not; --forcerun train retrains on the device now configured.
    script:
        "../scripts/train.py"
