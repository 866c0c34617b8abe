"""actflow: the logic of the activation-function workflow.

Modules are imported on demand so that figure rules never import torch:

- ``activations`` (torch): the activation registry and analytic derivatives.
- ``data`` (numpy): target functions and seeded datasets.
- ``train`` (torch): stacked-seed MLP training with gradient-flow recording.
- ``tables`` (pandas): tidy Parquet tables and summaries over seeds.
- ``stats`` (numpy/scipy): means and 95 % intervals over seeds.
- ``plotting`` (matplotlib/seaborn): every figure of the study, from Parquet.
- ``io`` (pyarrow): atomic Parquet writes with provenance metadata.
- ``config``: validation of the workflow configuration.
"""
