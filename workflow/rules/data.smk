rule data_sine:
    """The noisy sine data y = sin(x) + N(0, noise_std²) of the study or of a variant, written once."""
    input:
        code=code("data_sine.py"),
    output:
        layout.sine_data("{dataset}"),
    log:
        layout.log("data/{dataset}_sine"),
    benchmark:
        layout.benchmark("data/{dataset}_sine")
    wildcard_constraints:
        dataset="|".join(map(re.escape, datasets("sine"))),
    priority: PRIORITY.tables
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        data=sine_params,
    script:
        "../scripts/data_sine.py"


rule data_targets_train:
    """A capacity experiment's training data: every target's noisy training set, one table."""
    input:
        code=code("data_targets.py"),
    output:
        layout.target_data("{dataset}", "train"),
    log:
        layout.log("data/{dataset}_targets_train"),
    benchmark:
        layout.benchmark("data/{dataset}_targets_train")
    wildcard_constraints:
        dataset="|".join(map(re.escape, datasets("capacity"))),
    priority: PRIORITY.tables
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        data=target_train_params,
    script:
        "../scripts/data_targets.py"


rule data_targets_test:
    """A capacity experiment's test data: every target's clean, evenly spaced test grid."""
    input:
        code=code("data_targets.py"),
    output:
        layout.target_data("{dataset}", "test"),
    log:
        layout.log("data/{dataset}_targets_test"),
    benchmark:
        layout.benchmark("data/{dataset}_targets_test")
    wildcard_constraints:
        dataset="|".join(map(re.escape, datasets("capacity"))),
    priority: PRIORITY.tables
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        data=target_test_params,
    script:
        "../scripts/data_targets.py"
