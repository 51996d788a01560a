# One-command workflows. Each target creates the virtual environment it needs.
PY ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/newsfold: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/newsfold  ## install, then ingest the bundled sample feeds into SQLite and show the stories
	$(BIN)/newsfold demo

test: $(BIN)/newsfold  ## install, make sure PostgreSQL (and Chromium) are there, run the whole test suite
	bash scripts/ensure-postgres
	bash scripts/ensure-chromium
	$(BIN)/pytest

lint: $(BIN)/newsfold
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

bench: $(BIN)/newsfold
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache newsfold-demo.db*
