# Two commands do everything on a machine that has only Python >= 3.12:
#   make dev    run the product (PostgreSQL, Temporal dev server, worker, web server)
#   make test   run the test suite against real PostgreSQL and a real Temporal dev server
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: dev test lint format lock venv clean

venv:
	@sh devstack/bootstrap.sh

dev: venv
	@$(PY) -m devstack

test: lint
	@$(PY) -m pytest

lint: venv
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/lint-imports --no-cache

format: venv
	@$(VENV)/bin/ruff check --fix .
	@$(VENV)/bin/ruff format .

# Re-pin after changing dependencies in pyproject.toml.
lock: venv
	@$(PY) -m uv pip compile pyproject.toml --universal --python-version 3.12 -q -o requirements.lock
	@$(PY) -m uv pip compile pyproject.toml --extra dev --universal --python-version 3.12 -q -o requirements-dev.lock

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache
