"""actflow: the logic of the activation-function workflow.

Modules are imported on demand, so that figure jobs never import torch:

- ``layout``: where every output lives, the tables and their columns (the one source of names).
- ``figures``: the figure registry (number, title, tables, caption).
- ``activations``: the activation registry (label, function, derivative, optional fused
  backward); importing it does not import torch.
- ``data`` (numpy): the target registry and seeded datasets.
- ``model`` (torch): the stacked MLP: initialisation, forward pass, predictions.
- ``train`` (torch): training with gradient-flow recording (the only place torch trains).
- ``tables`` (pandas): tidy tables from training histories, summaries, winners.
- ``neurons`` (torch): dead neurons, sparsity, activation statistics from weights.
- ``stats`` (numpy/scipy): means and 95 % intervals over seeds.
- ``claims``: the study's claims checked against the tables.
- ``audit``: provenance manifest and re-execution of sampled training jobs.
- ``plotting`` (matplotlib/seaborn): every figure of the study, from Parquet.
- ``io`` (pyarrow, safetensors): atomic writes, provenance metadata, checked reads, weights.
- ``config``: validation of the workflow configuration.
- ``codedeps``: the package modules each rule's script imports (its code inputs).
- ``jobs``: one function per workflow rule.
"""
