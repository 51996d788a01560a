# One-command workflows. Each target creates the virtual environment it needs.
PY ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test lint bench clean lock

# Dependencies come from the lock file, hash-checked, with the venv's own pip (no upgrade:
# what works here works for a user's `python3 -m venv`); the package itself goes on top.
$(BIN)/newsfold: pyproject.toml requirements-dev.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
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

# After a change to pyproject's dependencies: re-resolve both lock files (any platform,
# Python ≥ 3.11). The runtime lock is constrained to the dev lock's versions, so the two agree.
lock: $(BIN)/newsfold
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	  --generate-hashes --quiet -o requirements-dev.lock
	grep -E '^[A-Za-z0-9._-]+==' requirements-dev.lock | sed 's/ *\\$$//' > $(VENV)/pins.txt
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	  --generate-hashes --quiet -c $(VENV)/pins.txt -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache newsfold-demo.db*
