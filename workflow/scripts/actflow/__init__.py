"""actflow: the logic of the activation-function workflow.

Modules are imported on demand, so that figure and table jobs never import torch (each job is
a fresh Python process, and imports are most of a small job's time):

- ``layout``: where every output lives, the tables and their columns (the one source of names).
- ``figures``: the figure registry (number, title, tables, caption).
- ``activations``: the activation registry (label, function, derivative, optional fused
  backward); importing it does not import torch.
- ``data`` (numpy): the target registry and seeded datasets (one draw, or one per seed).
- ``variants``: the study's experiments and the variants of them (expansion of grids).
- ``config``: validation of the workflow configuration, variants included.
- ``budget``: the memory a job will need, estimated before it runs.
- ``model`` (torch): the stacked MLP: initialisation schemes, forward pass, predictions.
- ``train`` (torch): training with gradient-flow recording (the only place torch trains).
- ``devices``: where CUDA is, asked without torch, and the one refusal of ``device: cuda``.
- ``tables`` (pandas): tidy tables from training histories, run outcomes, summaries, winners.
- ``neurons`` (torch): dead neurons, sparsity, activation statistics from weights.
- ``stats`` (numpy/scipy): means and 95 % intervals over seeds.
- ``claims``: the study's claims checked against the tables, under every variant.
- ``audit``: provenance manifest, verification of the results against it, re-execution.
- ``guard``: a run's guards: output folders, results edited by hand or tampered with, what a
  failed run lost, stale temporary files, a Snakemake already running in the folder.
- ``readings``: every reading of a claim's words (windows, cutoffs, comparators).
- ``explain``: why a number that fails fails: the closest setting measured that makes it hold.
- ``summary``: the run's findings in a few lines (terminal, summary.md, the report's front page).
- ``bundle``: a run packed for another person, and a run read back (bundle or folder), verified.
- ``compare``: the statistical comparison of two runs, written once for Markdown and HTML.
- ``render``: the HTML pages of the audit's tables (one skeleton, filter and sort), and
  documents rendered both as Markdown and as HTML.
- ``show``: ``make show``, a run's key results and a comparison's findings as terminal tables.
- ``plotting`` (matplotlib): every figure of the study, from Parquet.
- ``io`` (pyarrow, safetensors): atomic writes, provenance metadata, checked reads, weights.
- ``codedeps``: the package modules each rule's script imports (its code inputs).
- ``jobs``: one function per workflow rule.
"""
