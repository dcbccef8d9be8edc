"""The torch-free contracts shared by the runner, the cell, reports, W&B code and ``benchmark``.

The run store's schema and file I/O, cell configs and their key table, YAML reading, outcomes,
checkpoint metadata, errors and the CLI boundary, provenance, labels and text metrics. Nothing
here imports torch or any other part of ``harness`` (``tests/test_layout.py`` checks it).
"""
