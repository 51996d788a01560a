# One-command workflows. Each target creates the virtual environment it needs.
PY ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test lint bench clean lock

# Dependencies come from the lock file, hash-checked. The venv's own pip is first replaced by
# the pinned, hash-checked pip of requirements-bootstrap.lock: whatever pip a fresh venv bundles
# (23.2 on Python 3.11 misreads a locked dependency's extra and takes the index's newest
# release), the lock is read by the pip it was tested with. The package itself goes on top.
$(BIN)/newsfold: pyproject.toml requirements-bootstrap.lock requirements-dev.lock
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-bootstrap.lock
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

# After a change to pyproject's dependencies: re-resolve the lock files (any platform,
# Python ≥ 3.11). The runtime lock is constrained to the dev lock's versions, so the two agree.
lock: $(BIN)/newsfold
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	  --generate-hashes --quiet -o requirements-dev.lock
	grep -E '^[A-Za-z0-9._-]+==' requirements-dev.lock | sed 's/ *\\$$//' > $(VENV)/pins.txt
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	  --generate-hashes --quiet -c $(VENV)/pins.txt -o requirements.lock
	$(BIN)/uv pip compile requirements-bootstrap.in --universal --python-version 3.11 \
	  --generate-hashes --quiet -o requirements-bootstrap.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache newsfold-demo.db*
