# One command per habit; CI calls the same targets (.ci/run -> make test).
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
# Bytecode compiled at install: a fresh machine's first run is not spent compiling
# (Great Expectations' first import was 13 of its 20 s).
export UV_COMPILE_BYTECODE := 1
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180
TEST_WORKERS ?= 4
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)

.PHONY: help bootstrap demo test test-fast lint fmt typecheck bench lock clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

bootstrap: ## Install uv if missing and sync the locked environment
	@command -v uv >/dev/null 2>&1 || [ -x "$(HOME)/.local/bin/uv" ] || python3 -m pip install --user --quiet uv
	@$(UV) sync --locked --quiet
	@command -v uv >/dev/null 2>&1 || echo 'uv is in $(HOME)/.local/bin, not on PATH: export PATH="$$HOME/.local/bin:$$PATH" (docs/operations.md, step 0)'

demo: bootstrap ## Run the main job end to end against the embedded simulator
	@$(UV) run --locked sodtrack-etl demo

test: bootstrap ## Lint, type-check and run the whole test suite
	@$(UV) run --locked ruff check .
	@$(UV) run --locked ruff format --check .
	@$(UV) run --locked mypy
	@$(UV) run --locked pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=15; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

test-fast: bootstrap ## Tests without lint and the slow end-to-end ones
	@$(UV) run --locked pytest -q -m "not slow"

lint: bootstrap ## ruff + mypy
	@$(UV) run --locked ruff check .
	@$(UV) run --locked ruff format --check .
	@$(UV) run --locked mypy

fmt: bootstrap ## Format and autofix
	@$(UV) run --locked ruff format .
	@$(UV) run --locked ruff check --fix .

bench: bootstrap ## Run the benchmarks (prints figures)
	@$(UV) sync --locked --quiet --group bench
	@for b in bench/bench_*.py; do echo "== $$b"; $(UV) run --locked --group bench python $$b || exit 1; done

lock: ## Re-resolve uv.lock
	@$(UV) lock

clean: ## Remove caches and local data
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache .prefect data/warehouse data/state
