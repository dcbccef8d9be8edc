"""The errors of ``benchmark``: user errors for the shared boundary (``harness.contracts.errors``),
and its own exit status 3."""

from __future__ import annotations

from harness.contracts.errors import EXIT_BAD_INPUT, EXIT_FAILED, UserError

EXIT_UNCHANGED = 3
"""The exit status when the "trained" model's logits equal the base's (unless
--allow_unchanged); the others are the shared ones of ``harness.contracts.errors``."""


class BenchmarkInputError(UserError):
    """Bad input to ``benchmark``: the message says what was wrong and how to fix it (exit 2)."""


class RunFailure(UserError):
    """The run could not finish (e.g. its output could not be written): exit 1."""

    exit_code = EXIT_FAILED


class ReportedError(UserError):
    """A user error another package raised (a data file, a model folder, a checkpoint), reported
    by ``benchmark`` as is: its message and its exit status (2 unless it names another)."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc).strip() or type(exc).__name__)
        self.exit_code = int(getattr(exc, "exit_code", EXIT_BAD_INPUT))
