"""`benchmark`: fetch a trained model (W&B artifact or local), evaluate it against its base, report.

The console script is ``benchmark`` (``harness.benchmark.cli:main``), also ``python -m
harness.benchmark``. ``benchmark score`` scores code completions generated elsewhere.
"""
