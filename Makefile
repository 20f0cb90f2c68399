# Flask-Lattice developer commands. `make demo` and `make test` need nothing but python3.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
#: axe-core for the browser tests' accessibility audit, installed from tests/browser/package.json.
AXE := tests/browser/node_modules/axe-core/axe.min.js

.PHONY: demo test lint docs coverage bench fuzz ordering clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)  ## Run the demo SaaS offline at http://127.0.0.1:5000
	$(BIN)/python -m demo_app

$(AXE): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund
	touch $(AXE)

test: $(STAMP) $(AXE) lint docs  ## Lint, build the docs, then run the whole suite
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check flask_lattice demo_app tests bench docs/conf.py
	$(BIN)/ruff format --check flask_lattice demo_app tests bench docs/conf.py
	$(BIN)/mypy
	$(BIN)/mypy tests/typing
	$(BIN)/lint-imports

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

coverage: $(STAMP)
	$(BIN)/coverage run -m pytest
	$(BIN)/coverage report

bench: $(STAMP)  ## Print the side-by-side benchmark ratios
	$(BIN)/python -m bench.webhook_ingest
	$(BIN)/python -m bench.gated_view
	$(BIN)/python -m bench.admin_console

fuzz: $(STAMP)  ## Post 100,000 fuzzed deliveries to the webhook route and print the answers by status
	LATTICE_FUZZ_EXAMPLES=100000 $(BIN)/python -m pytest tests/webhooks/test_fuzz.py -k sqlite -q --timeout=0

ORDERING_EXAMPLES ?= 1000
ORDERING_BACKEND ?= sqlite

ordering: $(STAMP)  ## Ordering property tests, ORDERING_EXAMPLES shuffled streams per lifecycle
	LATTICE_ORDERING_EXAMPLES=$(ORDERING_EXAMPLES) $(BIN)/python -m pytest -s -p no:cacheprovider --timeout=0 \
		tests/webhooks/test_ordering.py -k "$(ORDERING_BACKEND)" > .ordering.log 2>&1; \
		status=$$?; grep -E "shuffled examples run|passed|failed|Error" .ordering.log; exit $$status

clean:
	rm -rf $(VENV) docs/_build .pytest_cache .mypy_cache .ruff_cache tests/browser/node_modules
