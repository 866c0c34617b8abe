rule data_sine:
    """The study's dataset, y = sin(x) + N(0, noise_std²), written once."""
    input:
        code=code("data_sine.py"),
    output:
        layout.sine_data(),
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


rule data_target_train:
    """Experiment 3: one target's noisy training set (the sine data's noise model by default)."""
    input:
        code=code("data_target.py"),
    output:
        layout.target_data("{target}", "train"),
    log:
        "results/logs/data/{target}_train.log",
    benchmark:
        "results/benchmarks/data/{target}_train.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        data=TARGET_TRAIN_DATA,
    script:
        "../scripts/data_target.py"


rule data_target_test:
    """Experiment 3: one target's dense, clean, evenly spaced test grid."""
    input:
        code=code("data_target.py"),
    output:
        layout.target_data("{target}", "test"),
    log:
        "results/logs/data/{target}_test.log",
    benchmark:
        "results/benchmarks/data/{target}_test.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        data=TARGET_TEST_DATA,
    script:
        "../scripts/data_target.py"
