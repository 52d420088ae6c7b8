# Plaza: `make up` starts the local network, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint typecheck pytest bench clean lexicons docs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# PORT_BASE=N serves the directory on N, the two PDSs on N+1 and N+2, the relay on N+3
# and the archive on N+4.
PORT_BASE ?=
up: $(STAMP)
	$(BIN)/plaza up $(if $(PORT_BASE),--port-base $(PORT_BASE))

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy src/plaza

pytest: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/plaza bench repo

# Regenerate docs/cli.md from the commands' --help texts (a test checks it is current).
docs: $(STAMP)
	$(BIN)/python scripts/gen_cli_docs.py

# Regenerate src/plaza/atproto/lexicons/ from the pinned npm package (needs npm).
lexicons: $(STAMP)
	$(BIN)/python scripts/update_lexicons.py

clean:
	rm -rf $(VENV) .plaza .pytest_cache .mypy_cache .ruff_cache
