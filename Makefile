# Two commands on a fresh machine:  `make demo` (install + the main job)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned in pyproject.toml and installed first, on its own: a CPU machine that has the
# CPU wheel (a local wheel directory, or TORCH_INDEX=https://download.pytorch.org/whl/cpu) never
# pulls the CUDA packages; a GPU machine gets the CUDA build of the same version from PyPI.
TORCH_INDEX ?=
TORCH_PIN := torch==2.13.0
# The demo needs the package alone; the tests also need the dev extras (Ray, lm-eval, Playwright,
# ...), installed on top the first time a test target runs.
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow test-gpu bench lint format clean

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX) --extra-index-url https://pypi.org/simple) "$(TORCH_PIN)"
	$(PY) -m pip install -q -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(RUN_STAMP)
	$(PY) run_matrix.py experiments/attention.yaml --report

test: $(STAMP)
	$(PY) -m pytest -q

# The tests marked slow (real multi-cell runs, W&B mirrors, Ray, kills); CI runs them after `test`.
# tests/benchmarks is measurements, run by `make bench`. pytest exits 5 when it selects no test:
# a pass here.
test-slow: $(STAMP)
	$(PY) -m pytest -q -m 'slow and not gpu' --ignore=tests/benchmarks || [ $$? -eq 5 ]

test-gpu: $(STAMP)
	$(PY) -m pytest -q -m gpu

bench: $(STAMP)
	$(PY) -m pytest tests/benchmarks -m "slow or not slow" --benchmark-only --benchmark-columns=min,median,max,rounds -q -s

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .benchmarks
