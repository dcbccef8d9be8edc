"""Developer tools that are not part of a run (``python -m harness.tools.memory_probe``)."""
