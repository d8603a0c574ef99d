# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when absent
# and install what they need into it; nothing outside the repository is touched.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := demo-output
DEMO_ROWS ?= 400000
CONFIG ?= configs/train.yaml
# Test processes (pytest-xdist, one module per process at a time): one per core of these machines.
TEST_WORKERS ?= 2
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export NO_MKDOCS_2_WARNING := 1

.PHONY: demo test test-lower lint imports docs clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A stamp per extra, redone whenever pyproject.toml changes.
$(VENV)/.installed-runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,fuzz,docs]"
	touch $@ $(VENV)/.installed-runtime $(VENV)/.installed-docs

# The book the demo shows is the one configs/train.yaml trains on (same size, same seed).
demo: $(VENV)/.installed-runtime
	$(BIN)/crm-modes generate --rows $(DEMO_ROWS) --seed 42 --out $(DEMO_DIR)/book.parquet
	$(BIN)/crm-modes validate $(DEMO_DIR)/book.parquet --quarantine $(DEMO_DIR)/quarantine.csv
	$(BIN)/crm-modes train --config $(CONFIG)
	$(BIN)/crm-modes promote --config $(CONFIG)
	$(BIN)/crm-modes latest-month --input $(DEMO_DIR)/book.parquet --out $(DEMO_DIR)/latest.parquet
	$(BIN)/crm-modes score --model models:/crm-advisor@champion --input $(DEMO_DIR)/latest.parquet \
		--output $(DEMO_DIR)/scores.parquet --record --state sqlite:///$(DEMO_DIR)/crm_state.db
	$(BIN)/crm-modes alerts list --status open --limit 15 --state sqlite:///$(DEMO_DIR)/crm_state.db
	@# exit code 1 means an "act" threshold was crossed: a finding of the demo, not a failure;
	@# --scores reads what score just wrote instead of scoring the month again
	$(BIN)/crm-modes monitor --current $(DEMO_DIR)/latest.parquet --scores $(DEMO_DIR)/scores.parquet \
		--html $(DEMO_DIR)/monitoring.html --json $(DEMO_DIR)/monitoring.json; test $$? -le 1
	@echo "Monitoring report of the scored month against the training reference: $(DEMO_DIR)/monitoring.html"
	@echo "MLflow store: ./mlflow.db (runs, metrics, plots, model cards, registered models)."
	@echo "Look at it with: $(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db"
	@echo "State store (decisions, alerts): $(DEMO_DIR)/crm_state.db; e.g. $(BIN)/crm-modes history FACILITY_ID --state sqlite:///$(DEMO_DIR)/crm_state.db"
	@echo "Serve the champion over REST with: $(BIN)/crm-modes serve --state sqlite:///$(DEMO_DIR)/crm_state.db"

# The monitoring report's test opens it in headless Chromium (Debian's package); checked every time.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "the tests need Debian's chromium: run 'sudo apt-get install chromium', then make test again"; \
			exit 1; \
		fi; \
	fi

# --durations: every run lists its slowest tests, so a suite creeping towards CI's budget shows where.
test: $(VENV)/.installed-test browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tests/import_contracts.py
	$(BIN)/mkdocs build --strict --quiet
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

# The layers of the package and the other import contracts of pyproject.toml.
imports: $(VENV)/.installed-test
	$(BIN)/python tests/import_contracts.py

$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $@ $(VENV)/.installed-runtime

# The documentation site, into build/site; --strict: a broken link or reference fails the build.
docs: $(VENV)/.installed-docs
	$(BIN)/mkdocs build --strict
	@echo "Documentation: build/site/index.html"

# The oldest release of every dependency pyproject.toml allows (.ci/lower-bounds.txt), in a
# separate environment: the lower bounds are tested, not guessed. `make test` runs the newest.
LOWER_VENV := .venv-lower
$(LOWER_VENV)/.installed: pyproject.toml .ci/lower-bounds.txt
	$(PYTHON) -m venv $(LOWER_VENV)
	$(LOWER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOWER_VENV)/bin/python -m pip install --quiet -e ".[test,docs]" -c .ci/lower-bounds.txt
	touch $@

test-lower: $(LOWER_VENV)/.installed
	$(LOWER_VENV)/bin/python -m pytest -m "not integration" -n $(TEST_WORKERS) --dist loadfile

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tests/import_contracts.py

clean:
	rm -rf $(VENV) $(LOWER_VENV) $(DEMO_DIR) build .pytest_cache .ruff_cache .hypothesis mlflow.db mlruns
