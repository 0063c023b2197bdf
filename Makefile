# The README's two commands: `make run` and `make test`. Both set up .venv on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
FLASK  := $(BIN)/flask --app wsgi
DEV_ENV := GEOLOGIN_ENV=development GEOLOGIN_ALLOW_INSECURE_HTTP=1

.PHONY: run test demo install install-test migrate clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

migrate: install
	$(DEV_ENV) $(FLASK) db upgrade

## Serve on http://127.0.0.1:$(PORT) with SQLite in instance/ (development settings).
run: migrate
	@$(DEV_ENV) $(FLASK) setup-link --if-needed --base-url http://127.0.0.1:$(PORT)
	$(DEV_ENV) GEOLOGIN_PUBLIC_URL=$${GEOLOGIN_PUBLIC_URL:-http://127.0.0.1:$(PORT)} $(FLASK) run --host 127.0.0.1 --port $(PORT)

## geologin with two fake DHIS2 servers (2.40 and 2.42) and seeded users; prints what to click.
demo: install
	$(BIN)/python scripts/demo.py

## Run the test suite on SQLite, then on PostgreSQL when GEOLOGIN_TEST_DATABASE_URL is set.
test: install-test
	@if [ -n "$$CI" ] && [ -z "$$GEOLOGIN_TEST_REDIS_URL" ]; then \
		echo "GEOLOGIN_TEST_REDIS_URL is not set: CI must run the Redis tests (see .ci/run)."; exit 1; fi
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@if [ -n "$$GEOLOGIN_TEST_DATABASE_URL" ]; then \
		echo "== The database tests again, on PostgreSQL ($$GEOLOGIN_TEST_DATABASE_URL)"; \
		GEOLOGIN_TEST_DB=postgresql $(BIN)/python -m pytest $(PYTEST_ARGS); \
	elif [ -n "$$CI" ]; then \
		echo "GEOLOGIN_TEST_DATABASE_URL is not set: CI must run the PostgreSQL tests (see .ci/run)."; exit 1; \
	else \
		echo "== PostgreSQL run skipped: GEOLOGIN_TEST_DATABASE_URL is not set (see README, 'Testing')."; \
	fi

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
