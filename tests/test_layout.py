"""The layout the README draws: a torch-free runner, no import cycles, small modules, no product
module that only tests use. Imports are read with ``ast`` (function-level imports count too)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "loaders", "reports")
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Project modules imported anywhere in ``path`` (``from pkg import mod`` resolves to the
    module when ``pkg.mod`` is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


def _parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_import_cycles():
    graph = _graph()
    # a package's __init__ importing its own submodules is how packages work, not a cycle
    edges = {m: {t for t in ts if t not in _parents(m)} for m, ts in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_product_file_over_400_lines():
    long = {
        str(p.relative_to(REPO)): n
        for p in _modules().values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_every_product_module_is_used_by_the_product():
    """Imported by another product module, or an entry point (``__main__``, a console script,
    ``python -m`` target, a package ``__init__``)."""
    graph = _graph()
    modules = _modules()
    used = {t for ts in graph.values() for t in ts}
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    used |= {m for m in modules if f'"{m}:' in pyproject}
    used |= {m for m, p in modules.items() if 'if __name__ == "__main__"' in p.read_text()}
    used |= {m for m, p in modules.items() if p.name in ("__init__.py", "__main__.py")}
    used |= _imports(REPO / "run_matrix.py", "run_matrix", set(modules))
    assert sorted(set(modules) - used) == []


def test_the_runner_imports_no_torch():
    """The parent process of a matrix run stays light: importing the runner, expanding a matrix
    and planning it against a store loads no torch, transformers or wandb."""
    code = (
        "import sys, tempfile\n"
        "import harness.runner as r, harness.runner.cli\n"
        "m = r.load_matrix('experiments/attention.yaml')\n"
        "plan = r.make_plan(m, m.cells, r.Store(tempfile.mkdtemp(), m.name), set())\n"
        "assert plan.count('run') == len(m.cells) > 1\n"
        "heavy = sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'transformers', 'wandb'))\n"
        "print(heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


# --- the boundary between the three parts, checked statically -------------------------------
# contracts: torch-free, no other part of harness; the runner: never the cell, never torch;
# reports: only the contracts of harness. Third-party imports are read from the same ast walk.

HEAVY = ("torch", "transformers", "peft", "safetensors", "wandb")
RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    # (importer prefix, forbidden project prefixes, forbidden third-party roots)
    ("harness.contracts", ("harness.", "loaders", "reports"), HEAVY),
    ("harness.runner", ("harness.cell", "harness.models", "harness.benchmark", "loaders"), HEAVY),
    ("reports", ("harness.", "loaders"), HEAVY),
)
ALLOWED = {"harness.contracts": ("harness.contracts",), "reports": ("harness.contracts",)}
"""Exceptions to the forbidden prefixes above: what each part may import of harness."""


def _third_party(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def boundary_violations(modules: dict[str, Path]) -> list[str]:
    """Every import that crosses a boundary in ``RULES``, as ``importer -> imported`` lines."""
    known = set(modules)
    bad: list[str] = []
    for name, path in sorted(modules.items()):
        for prefix, forbidden, heavy in RULES:
            if name != prefix and not name.startswith(prefix + "."):
                continue
            allowed = ALLOWED.get(prefix, ())
            for target in sorted(_imports(path, name, known)):
                if target.startswith(allowed) or not target.startswith(forbidden):
                    continue
                if target == prefix or target.startswith(prefix + "."):
                    continue  # a part may import itself
                bad.append(f"{name} -> {target}")
            bad += [f"{name} -> {root}" for root in sorted(_third_party(path) & set(heavy))]
    return bad


def test_the_three_parts_keep_their_boundaries():
    assert boundary_violations(_modules()) == []


def test_each_boundary_check_fails_on_an_injected_violation(tmp_path):
    """Inject one forbidden import per rule into a copy of the module table: each is reported."""
    cases = {
        "harness.contracts.schema": ("import torch\n", "harness.contracts.schema -> torch"),
        "harness.contracts.config": (
            "from harness.runner import matrix\n",
            "harness.contracts.config -> harness.runner",
        ),
        "harness.runner.loop": (
            "from harness.cell import train\n",
            "harness.runner.loop -> harness.cell.train",
        ),
        "harness.runner.plan": ("import transformers\n", "harness.runner.plan -> transformers"),
        "reports.tables": (
            "from harness.runner.store import Store\n",
            "reports.tables -> harness.runner.store",
        ),
    }
    for module, (line, expected) in cases.items():
        modules = _modules()
        injected = tmp_path / f"{module}.py"
        injected.write_text(line + modules[module].read_text(encoding="utf-8"), encoding="utf-8")
        modules[module] = injected
        assert expected in boundary_violations(modules), module
