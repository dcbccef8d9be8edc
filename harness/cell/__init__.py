"""The cell: one child process that builds data and model, trains, evaluates and saves.

``python -m harness.cell CELL.yaml --out DIR``. Everything here may import torch; nothing here is
imported by the runner or by reports (``tests/test_layout.py`` checks it). This package's
``__init__`` imports nothing, so that ``harness.cell.threads`` can set the thread environment
before torch loads.
"""
