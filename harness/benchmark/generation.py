"""How ``benchmark`` generates completions: one frozen dataclass, checked on creation and recorded
in the results."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.flags import flag

SCORING = "generation and scoring"
"""Title of the help section of these flags (and the scoring ones of ``BenchmarkConfig``)."""

AUTO = "auto"
AUTO_START = 32
"""``--batch_size auto``'s first batch size."""


def parse_batch_size(value: int | str) -> int | str:
    """``auto`` or a positive int (from the flag's text or a config's value)."""
    if value == AUTO:
        return AUTO
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or str(value).strip() != str(n):
        raise BenchmarkInputError(f"--batch_size {value!r}: expected a positive integer or auto")
    return n


def first_size(value: int | str) -> int:
    """The first batch size ``value`` tries."""
    return AUTO_START if value == AUTO else int(value)


@dataclass(frozen=True)
class GenerationSettings:
    """How completions are generated; recorded in the results."""

    max_new_tokens: int = flag(20, "default: {task_defaults}", group=SCORING)
    """New tokens at most per completion (stops earlier at EOS or a stop sequence); without the
    flag, the task's default (``TaskSpec.max_new_tokens``)."""
    temperature: float = flag(0.0, "0 = greedy", group=SCORING)
    """0 = greedy decoding; > 0 samples with this temperature (and ``top_p``)."""
    top_p: float = flag(1.0, None, group=SCORING)
    """Nucleus sampling mass (sampling only)."""
    seed: int = flag(0, "sampling seed", group=SCORING)
    """Sampling seed: sample j of item i draws from its own ``torch.Generator`` seeded with
    ``seed + 1_000_003 * i + j`` (``textlm.RowSampler``), so a result does not depend on
    batching or order."""
    samples_per_task: int = flag(1, "k completions per problem (pass@k)", group=SCORING)
    """Completions per HumanEval problem (n of the unbiased pass@k estimator)."""
    stop: tuple[str, ...] = ()
    """Stop sequences: a completion is cut at the first one (the task's, ``TaskSpec.stop``)."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 0:
            raise BenchmarkInputError("--max_new_tokens must be >= 0")
        if self.temperature < 0:
            raise BenchmarkInputError("--temperature must be >= 0 (0 is greedy decoding)")
        if not 0 < self.top_p <= 1:
            raise BenchmarkInputError("--top_p must be in (0, 1]")
        if self.samples_per_task < 1:
            raise BenchmarkInputError("--samples_per_task must be >= 1")
        if self.samples_per_task > 1 and self.greedy:
            raise BenchmarkInputError(
                f"--samples_per_task {self.samples_per_task} with greedy decoding gives "
                f"{self.samples_per_task} identical completions; pass --temperature > 0 "
                "(e.g. --temperature 0.2 --top_p 0.95, as the seed's benchmark)"
            )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def item_seed(self, item: int, sample: int) -> int:
        """The torch seed of sample ``sample`` of item ``item``."""
        return self.seed + 1_000_003 * item + sample

    def describe(self) -> str:
        """One line for the report."""
        how = (
            "greedy"
            if self.greedy
            else f"sampling, temperature {self.temperature:g}, top_p {self.top_p:g}, seed {self.seed}"
        )
        text = f"{how}, at most {self.max_new_tokens} new tokens"
        if self.samples_per_task > 1:
            text += f", {self.samples_per_task} samples per problem"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stop": list(self.stop), "greedy": self.greedy}
