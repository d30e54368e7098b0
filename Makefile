# City Brain Lake — the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)
DEMO_ARGS ?=
# Dagster reads the dbt manifest at import: re-prepare it whenever the dbt project changes.
DBT_SOURCES := $(shell find dbt_project/models dbt_project/macros dbt_project/snapshots dbt_project/tests 2>/dev/null) dbt_project/dbt_project.yml
MANIFEST := dbt_project/target/manifest.json
# dbt and dagster-dbt look for the `dbt` executable on PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo test test-all test-scale scale-demo lint ui portal lock browser-check clean

# GX Data Docs load bootstrap, jQuery, font-awesome ... from CDNs: vendored from npm so they render offline.
DOCS_ASSETS := $(VENV)/share/citybrain/data_docs_assets/ready.json

setup: $(STAMP) $(MANIFEST) $(DOCS_ASSETS)

# --compile-bytecode: uv writes no .pyc files by default, and where PYTHONDONTWRITEBYTECODE is set no
# import writes them either, so every `dagster` command recompiled dagster, dbt-core and the rest
# (about 2.5 s of CPU of each definitions load, bench/definitions_load.py).
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==0.13.9
	$(BIN)/uv pip sync --quiet --compile-bytecode -p $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet -p $(BIN)/python --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@


$(DOCS_ASSETS): $(STAMP) citybrain/quality/data_docs_assets.yaml
	$(BIN)/python -m citybrain.quality.docs_assets
	@touch $@

$(MANIFEST): $(STAMP) $(DBT_SOURCES)
	$(BIN)/dagster-dbt project prepare-and-package --file assets/dbt_project.py
	@touch $@

## Generate the demo city and run the main job end to end on the embedded default.
demo: setup
	$(BIN)/citybrain demo $(DEMO_ARGS)

## Run the test suite (fast tests; RUN_SLOW=1 adds the slow ones) on TEST_WORKERS processes (pytest-xdist):
## a test file per worker, so its module fixtures (a generated city and its nightly runs) are built once;
## the files in the order tests/conftest.py gives (the expensive ones first). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: setup
	@./scripts/ensure_chromium.sh
	$(BIN)/python -m pytest $(if $(RUN_SLOW),,-m "not slow") \
		$(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder) $(PYTEST_ARGS)

test-all: setup
	RUN_SLOW=1 $(MAKE) test

## The scale-out parity test: the pool on Spark (local mode) equals the pool on DuckDB (slow; CI runs it).
test-scale: setup
	./scripts/ensure_java.sh
	RUN_SLOW=1 $(BIN)/python -m pytest tests/test_spark_parity.py $(PYTEST_ARGS)

## The demo city on a local Spark cluster (master, worker, Thrift Server) with Dagster on PostgreSQL,
## and a parity report against DuckDB in data/scale/parity.json (docs/SCALE.md).
scale-demo: setup
	./scripts/ensure_java.sh
	$(BIN)/python scripts/scale_demo.py $(SCALE_ARGS)

## Style, and the layers citybrain/ <- assets/ <- orchestration/ with no import cycles (import-linter,
## the contracts in pyproject.toml).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	@# the dbt models through dbt's templater (.sqlfluff); compiled against an in-memory DuckDB, not the lake
	CITYBRAIN_WAREHOUSE=:memory: $(BIN)/sqlfluff lint dbt_project/models dbt_project/snapshots

## Open the Dagster UI on http://127.0.0.1:3000
ui: setup
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## The sharing API and its web portal on http://127.0.0.1:$(PORTAL_PORT)/portal/ (docs/SHARING.md, Portal).
PORTAL_PORT ?= 8765
portal: setup
	$(BIN)/citybrain sharing init
	$(BIN)/citybrain sharing serve --host 127.0.0.1 --port $(PORTAL_PORT)

## Render the asset graph in headless Chromium (needs Debian's chromium).
browser-check: setup
	@./scripts/ensure_chromium.sh
	$(BIN)/python scripts/check_ui_in_browser.py

lock:
	uv pip compile -q -p 3.11 pyproject.toml --extra dev -o requirements.lock

clean:
	rm -rf $(VENV) data
