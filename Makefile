# The two commands a newcomer needs: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# A Python >= 3.12: the first of these that exists, unless PYTHON= is given.
PYTHON ?= $(shell for p in python3.13 python3.12 python3; do \
	  if command -v $$p >/dev/null 2>&1 && PYENV_VERSION=3.13.0:3.12.1 $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; \
	  then echo $$p; break; fi; done)
export PYENV_VERSION ?= 3.13.0:3.12.1
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)
DEV_STAMP := $(VENV)/.installed-dev-$(shell cat pyproject.toml | md5sum | cut -c1-8)

# Demo and local development run with DEBUG on and a throwaway key; production sets its own.
DEMO_ENV := DEBUG=1 SECRET_KEY=demo-not-secret

# The German and Swedish catalogues: .po files are in the repository, .mo files are
# compiled from them at install and again whenever a .po changes (not committed).
PO_FILES := $(wildcard locale/*/LC_MESSAGES/*.po)
MO_FILES := $(PO_FILES:.po=.mo)
MAKEMESSAGES := manage.py makemessages -l de -l sv --no-location --no-obsolete \
	--ignore=tests --ignore=bench --ignore=staticfiles --ignore=docs

.PHONY: help demo test cluster test-cluster lint format migrate worker bench bench-small clean messages

help:
	@echo "make demo         start the portal with demo data on http://127.0.0.1:8000"
	@echo "make test         run the whole test suite (DATABASE_URL=postgres://... for PostgreSQL)"
	@echo "make worker       run the background task worker"
	@echo "make cluster      HAProxy + two app servers + two workers: measure one vs two (PostgreSQL, Redis)"
	@echo "make test-cluster only the cluster tests (DATABASE_URL=postgres://...)"
	@echo "make lint         ruff check and format check"
	@echo "make messages     refresh locale/*/django.po after changing text (then translate)"
	@echo "make bench        benchmarks at 1,000,000 orders (PostgreSQL), writes docs/PERFORMANCE.md"
	@echo "make bench-small  the same at 10,000 orders"

$(VENV)/bin/python:
	@test -n "$(PYTHON)" || { echo "No Python >= 3.12 found; run: make PYTHON=/path/to/python3.12"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e .
	@touch $@

$(DEV_STAMP): $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@ $(STAMP)

# Compiled at install (the stamp) and when the .po is newer than its .mo. msgfmt
# comes with GNU gettext (Debian: apt-get install gettext; .ci/run does it).
$(MO_FILES): %.mo: %.po $(STAMP)
	@command -v msgfmt >/dev/null || { echo "msgfmt not found: install GNU gettext (Debian: apt-get install gettext)"; exit 1; }
	$(DEMO_ENV) $(PY) manage.py compilemessages --ignore=.venv --ignore=staticfiles

# After changing or adding text: new msgids appear untranslated in both .po files
# (tests/test_translations.py fails until they are translated).
messages: $(STAMP)
	$(DEMO_ENV) $(PY) $(MAKEMESSAGES)

# The demo runs the task worker and the periodic jobs beside the server, so emails
# (the customer's login code, refund notifications) reach the console.
demo: $(STAMP) $(MO_FILES)
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py seed_demo
	@$(DEMO_ENV) bash -c 'trap "kill \$$(jobs -p) 2>/dev/null" EXIT; \
	  $(PY) manage.py db_worker --no-startup-delay & \
	  $(PY) manage.py run_periodic_jobs --every 60 & \
	  $(PY) manage.py runserver 127.0.0.1:8000'

# Locally (no SECRET_KEY in the environment) the worker uses the demo settings.
worker: $(STAMP) $(MO_FILES)
	@$(if $(SECRET_KEY),,$(DEMO_ENV)) bash -c 'trap "kill \$$(jobs -p) 2>/dev/null" EXIT; \
	  $(PY) manage.py run_periodic_jobs --every 60 & \
	  $(PY) manage.py db_worker'

test: $(DEV_STAMP) $(MO_FILES)
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

# Two gunicorn servers behind HAProxy with two task workers, on PostgreSQL
# (DATABASE_URL) and Redis (127.0.0.1:6379): a bounded loopback load through one
# server and through two (see docs/DEPLOYMENT.md).
cluster: $(DEV_STAMP) $(MO_FILES)
	$(PY) -m tests.cluster.harness

test-cluster: $(DEV_STAMP) $(MO_FILES)
	$(PY) -m pytest tests/cluster $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(DEV_STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(DEV_STAMP)
	$(PY) bench/run.py --orders 1000000

bench-small: $(DEV_STAMP)
	$(PY) bench/run.py --orders 10000

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache $(MO_FILES)
