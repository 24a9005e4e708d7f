# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test faults lint image-check mutants mutants-ci bench bench-smoke sandbox screenshots clean requirements

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Local development settings for manage.py in this checkout (never used in production).
.env:
	printf '# Local development only: written by make, ignored by git.\nDJANGO_DEBUG=true\n' > $@

run: $(VENV)/.installed .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo "Open http://127.0.0.1:$(PORT)/ and sign in with one of the users above."
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

# The fault suite (tests/faults): the portal under gunicorn while its neighbours fail, on a
# PostgreSQL and a Redis of its own (ports 8220-8229, FAULTS_PORT_BASE); not part of `make test`.
faults: $(VENV)/.installed
	$(PY) -m pytest -m faults tests/faults $(PYTEST_ARGS)

lint: $(VENV)/.installed .env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/hadolint Dockerfile .ci/stand-ins/*/Dockerfile

# Build the Dockerfile as it is on a Docker daemon of its own and run the image against this
# machine's PostgreSQL and Redis (as root; docs/deployment.md, "The image").
image-check: $(VENV)/.installed
	bash .ci/image-check

# Mutation testing (mutmut) of the modules that guard customers and the log, each with its
# own tests only (mutation/modules.toml); fails below 85 % or on a surviving mutant not
# explained in mutation/equivalent.toml. One module: make mutants MODULES=customers/ratelimit.py
mutants: $(VENV)/.installed
	$(PY) mutation/run.py $(MODULES)

# CI: only the modules whose code or tests changed since mutation/ratchet.json was written,
# failing below the ratchet (mutation/run.py --ci).
mutants-ci: $(VENV)/.installed
	$(PY) mutation/run.py --ci

# Benchmarks against the machine's PostgreSQL and Redis (BENCH_DATABASE_SERVER,
# BENCH_REDIS_URL); writes bench/RESULTS.md. wrk is Debian's package.
bench: $(VENV)/.installed
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) bench/run.py

bench-smoke: $(VENV)/.installed
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) bench/run.py --smoke --out test-artifacts/bench-smoke.md

# Re-take the README's screenshots (result page and run sheet at desktop, tablet and phone sizes).
screenshots: $(VENV)/.installed
	$(PY) -m pytest tests/browser/test_journeys.py -k history_behaves -q
	$(PY) -m pytest tests/browser/test_run_sheet.py -k builds_reorders -q
	mkdir -p docs/screenshots
	cp test-artifacts/screenshots/result-*.png test-artifacts/screenshots/run-sheet-*.png docs/screenshots/

# After editing requirements.in or requirements-dev.in: recompile both, every package pinned
# with its hashes. pip-tools lives in a virtualenv of its own, so its pins never mix with ours.
TOOLS := .venv-tools
COMPILE := $(TOOLS)/bin/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links
requirements:
	test -x $(TOOLS)/bin/pip-compile || ($(PYTHON) -m venv $(TOOLS) && $(TOOLS)/bin/pip install --quiet pip-tools==7.6.2)
	$(COMPILE) --output-file requirements.txt requirements.in
	$(COMPILE) --output-file requirements-dev.txt requirements-dev.in

sandbox: $(VENV)/.installed
	$(PY) manage.py run_sandbox --port 8001

clean:
	rm -rf $(VENV) $(TOOLS) .mutants db.sqlite3 staticfiles .pytest_cache .ruff_cache .hypothesis test-artifacts .test-db.sqlite3
