# The README's two commands: `make run` and `make test`. Both set up .venv on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
FLASK  := $(BIN)/flask --app wsgi
DEV_ENV := GEOLOGIN_ENV=development GEOLOGIN_ALLOW_INSECURE_HTTP=1

.PHONY: run serve test demo install install-test migrate clean audit lock browser-deps real-op-deps rp-deps screenshots \
	bench translations i18n

$(VENV)/.installed: setup.cfg pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed translations
install-test: $(VENV)/.installed-test translations

## Compile every .po (core and plugins) whose .mo is missing or older: .mo files are never committed.
translations: | $(VENV)/.installed
	@$(BIN)/python geologin/i18n/catalogs.py

## Extract the messages (the core, then each plugin folder with a babel.cfg, into its own catalog) and
## update every language's .po from them. Idempotent; nothing turns fuzzy silently (--no-fuzzy-matching):
## a changed message becomes untranslated, and the catalog-completeness test says which.
## New language: see "How to add a language" in the README.
PYBABEL := $(abspath $(BIN))/pybabel
EXTRACT := extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output --omit-header -w 110
UPDATE  := update --no-fuzzy-matching --ignore-obsolete --ignore-pot-creation-date -w 110
i18n: install
	$(PYBABEL) -q $(EXTRACT) -o geologin/i18n/translations/messages.pot .
	$(PYBABEL) -q $(UPDATE) -i geologin/i18n/translations/messages.pot -d geologin/i18n/translations
	@set -e; for cfg in plugins/*/babel.cfg; do \
		dir=$$(dirname "$$cfg"); echo "== $$dir"; mkdir -p "$$dir/translations"; \
		(cd "$$dir" && $(PYBABEL) -q $(EXTRACT) -o translations/messages.pot .); \
		if ls "$$dir"/translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then \
			$(PYBABEL) -q $(UPDATE) -i "$$dir/translations/messages.pot" -d "$$dir/translations"; fi; \
	done
	@$(BIN)/python geologin/i18n/catalogs.py

migrate: install
	$(DEV_ENV) $(FLASK) db upgrade

## Serve on http://127.0.0.1:$(PORT) with SQLite in instance/ (development settings).
run: migrate
	@$(DEV_ENV) $(FLASK) setup-link --if-needed --base-url http://127.0.0.1:$(PORT)
	$(DEV_ENV) GEOLOGIN_PUBLIC_URL=$${GEOLOGIN_PUBLIC_URL:-http://127.0.0.1:$(PORT)} $(FLASK) run --host 127.0.0.1 --port $(PORT)

## Production-style serving: gunicorn with gunicorn.conf.py (configure through GEOLOGIN_* variables,
## e.g. GEOLOGIN_SECRET_KEY, GEOLOGIN_ENCRYPTION_KEY, DATABASE_URL, GEOLOGIN_PUBLIC_URL; see docs/deploy.md).
serve: install
	$(FLASK) db upgrade
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

## geologin with two fake DHIS2 servers (2.40 and 2.42) and seeded users, and a site behind nginx when nginx is
## installed (forward-auth); prints what to click.
demo: install real-op-deps
	$(BIN)/python scripts/demo.py

## The real OpenID provider the OpenID Connect tests run (tests/realop, pytest -m real_op): panva's
## oidc-provider from the npm registry, pinned by tests/realop/package-lock.json. npm ci runs only when
## node_modules is older than the lock file; without npm the real-OP tests skip and say why.
real-op-deps:
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "npm is missing: the real-OpenID-provider tests will be skipped (apt-get install nodejs npm)"; \
	elif [ ! tests/realop/node_modules/.package-lock.json -nt tests/realop/package-lock.json ]; then \
		echo "npm ci --prefix tests/realop --no-audit --no-fund --loglevel=error"; \
		npm ci --prefix tests/realop --no-audit --no-fund --loglevel=error; \
	fi

## The real relying party the end-to-end tests of geologin's OpenID provider drive (tests/rp/rp.mjs, pytest -m e2e):
## panva's certified openid-client from the npm registry, pinned by tests/rp/package-lock.json. The other one,
## Apache httpd with mod_auth_openidc, comes from Debian (apt-get install apache2 libapache2-mod-auth-openidc).
rp-deps:
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "npm is missing: the openid-client end-to-end tests will be skipped (apt-get install nodejs npm)"; \
	elif [ ! tests/rp/node_modules/.package-lock.json -nt tests/rp/package-lock.json ]; then \
		echo "npm ci --prefix tests/rp --no-audit --no-fund --loglevel=error"; \
		npm ci --prefix tests/rp --no-audit --no-fund --loglevel=error; \
	fi

## Run the test suite on SQLite, then on PostgreSQL when GEOLOGIN_TEST_DATABASE_URL is set.
test: install-test real-op-deps rp-deps
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
	rm -f geologin/i18n/translations/*/LC_MESSAGES/*.mo plugins/*/translations/*/LC_MESSAGES/*.mo

## Audit requirements.lock against PyPI's vulnerability data (the PyPA advisory database, also in OSV).
## Needs network access to pypi.org; fails, never passes silently, when a package cannot be checked.
## AUDIT_ARGS="--ignore-vuln ID" for a reviewed exception. docs/dependencies.md: when, and who acts.
audit: install
	$(BIN)/pip install --quiet -e '.[audit]'
	$(BIN)/pip-audit --strict --desc on --aliases on --progress-spinner off --disable-pip --no-deps \
		-r requirements.lock $(AUDIT_ARGS)

## Rewrite requirements.lock: geologin's runtime dependencies only (no test or audit tools), at the
## versions installed in $(VENV), as a clean install of geologin into a throwaway venv resolves them.
lock: install
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp" requirements.lock.new' EXIT; \
	$(BIN)/pip freeze --exclude-editable > "$$tmp/constraints.txt"; \
	mkdir "$$tmp/src"; cp -R setup.cfg setup.py pyproject.toml README.md geologin "$$tmp/src/"; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/pip" install --quiet -c "$$tmp/constraints.txt" "$$tmp/src"; \
	{ echo "# geologin's runtime dependencies, pinned: every package a plain 'pip install .' pulls in, at the"; \
	  echo "# versions of the development venv (.venv) the test suite ran against. Test and audit tools are not"; \
	  echo "# included. Generated by 'make lock' (a throwaway venv + pip freeze); do not edit by hand."; \
	  echo "# Refresh it with 'make lock' after changing install_requires in setup.cfg or upgrading .venv, then"; \
	  echo "# run 'make audit'. See docs/dependencies.md."; \
	  echo "# Python $$("$$tmp/venv/bin/python" -c 'import platform; print(platform.python_version())'), $$(date -u +%Y-%m-%d)."; \
	  "$$tmp/venv/bin/pip" freeze --exclude-editable | grep -v -i '^geologin[ =@]'; } > requirements.lock.new; \
	mv requirements.lock.new requirements.lock; \
	echo "requirements.lock: $$(grep -c '==' requirements.lock) pinned packages"

## What the real-browser tests (tests/browser, `pytest -m browser`) need besides Debian's chromium and
## chromium-driver packages and the test extras: axe-core from the npm registry, for the accessibility check.
browser-deps:
	@command -v npm >/dev/null || { echo "npm is missing: apt-get install nodejs npm"; exit 1; }
	npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

## Run the browser journeys and save one PNG per step to docs/screenshots/ (the README shows some of them).
screenshots: install-test
	GEOLOGIN_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -m browser -p no:cacheprovider $(PYTEST_ARGS)

## Benchmarks (issue 8): gunicorn + fake DHIS2 on loopback, wrk/loadgen load, a table and benchmarks/RESULTS.md
## (BENCH_ARGS=--quick or QUICK=1 for a short run that writes no file). See benchmarks/README.md.
bench: install
	$(BIN)/python benchmarks/run.py $(if $(QUICK),--quick) $(BENCH_ARGS)
