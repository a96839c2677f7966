# The two commands of the README. Each sets itself up on a fresh machine (Python 3.11, Node 20).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
## test processes side by side (each test file stays in one); TEST_JOBS=0 runs in one process
TEST_JOBS ?= 2

.PHONY: demo test setup lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

tests/e2e/node_modules/.installed: tests/e2e/package.json tests/e2e/package-lock.json
	npm --prefix tests/e2e ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(STAMP)

## The offline demo of the main job on the embedded store (SQLite).
demo: $(STAMP)
	$(BIN)/pledgebot demo

## The whole test suite: lint, format check, unit, PostgreSQL (when running) and end-to-end.
test: $(STAMP) tests/e2e/node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_JOBS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/updates.py --members 2000

clean:
	rm -rf $(VENV) tests/e2e/node_modules pledgebot.db pledgebot.db-*
