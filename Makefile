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

## libfaketime for the e2e tests that run the bot on a faked date: the system's if installed,
## else unpacked from Debian's package into tests/e2e/.faketime (no root needed); best effort:
## without it those tests skip and say so
tests/e2e/.faketime/.done:
	@mkdir -p tests/e2e/.faketime
	@ls /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 >/dev/null 2>&1 \
	  || (cd tests/e2e/.faketime && apt-get download libfaketime >/dev/null 2>&1 \
	      && dpkg-deb -x libfaketime_*.deb . && rm -f libfaketime_*.deb) \
	  || echo "libfaketime unavailable: the faked-date e2e tests will skip"
	@touch $@

setup: $(STAMP)

## The offline demo of the main job on the embedded store (SQLite).
demo: $(STAMP)
	$(BIN)/pledgebot demo

## The whole test suite: lint, format check, unit, PostgreSQL (when running) and end-to-end.
test: $(STAMP) tests/e2e/node_modules/.installed tests/e2e/.faketime/.done
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
