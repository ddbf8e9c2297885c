# backup-readiness: developer and CI entry points. Works on a fresh Debian machine as root:
# every target installs what it needs (python3-venv, docker.io, the base image).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
IMAGE  ?= backup-readiness:dev
BASE_IMAGE ?= python:3.11-slim-bookworm

# The test command; override on the command line, e.g.
#   make test PYTEST_ARGS="-q -x test/test_container.py"
PYTEST_ARGS ?= -q -n 2 --junitxml=test-reports/junit.xml test

.PHONY: help venv docker image lint test demo audit bench requirements clean

help:
	@echo "make demo   main job: simulator + pipe image, expected 'not ready' (exit 1)"
	@echo "make test   all tests (JUnit XML in test-reports/)"
	@echo "other: venv docker image lint audit bench requirements clean"

venv: $(STAMP)

# python3 -m venv needs ensurepip, which Debian ships in python3-venv: when creating the
# venv fails (or python3 is missing), install python3 + python3-venv with apt and retry.
$(STAMP): requirements.txt requirements-build.txt requirements-dev.txt
	@if ! $(PYTHON) -m venv $(VENV) 2>/tmp/backup-readiness-venv.err; then \
	  cat /tmp/backup-readiness-venv.err >&2; rm -rf $(VENV); \
	  echo "[venv] $(PYTHON) -m venv failed: installing python3 python3-venv with apt" >&2; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	# Same order as the image: hashed setuptools 75, then the hashed runtime set with the
	# toolkit sdist built without build isolation, then the pinned dev tools.
	$(VENV)/bin/pip install -q --require-hashes --no-deps -r requirements-build.txt
	$(VENV)/bin/pip install -q --require-hashes --no-deps --no-build-isolation -r requirements.txt
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

docker:
	bash scripts/docker-setup.sh

image: docker
	docker build --build-arg BASE_IMAGE=$(BASE_IMAGE) -t $(IMAGE) .

lint: venv
	$(VENV)/bin/ruff check pipe test bench
	$(VENV)/bin/ruff format --check pipe test bench
	$(VENV)/bin/hadolint Dockerfile

test: venv docker
	mkdir -p test-reports
	$(PY) -m pytest $(PYTEST_ARGS)

demo: venv docker image
	IMAGE=$(IMAGE) bash scripts/demo.sh

# pip-audit asks PyPI's per-release JSON API (/pypi/NAME/VERSION/json) for known
# vulnerabilities. The requirements are fully pinned and hashed, so no resolution (and no
# sdist build) is needed. --strict: a package that could not be looked up fails the audit
# instead of being skipped silently (behind a proxy that does not serve that API, every
# package is "not found" and a plain run would report "no known vulnerabilities").
# AUDIT_ARGS="-s osv" switches to the OSV service where api.osv.dev is reachable.
AUDIT_ARGS ?=
audit: venv
	$(VENV)/bin/pip-audit --strict $(AUDIT_ARGS) --require-hashes --disable-pip -r requirements.txt
	$(VENV)/bin/pip-audit --strict $(AUDIT_ARGS) --no-deps --disable-pip -r requirements-dev.txt

bench: venv
	$(PY) bench/run.py

# Re-pin after editing a requirements*.in file. Only PyPI is consulted (machine-local
# pip config such as find-links or extra indexes is ignored) so the hashes are PyPI's.
PIP_COMPILE := env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null \
	$(VENV)/bin/pip-compile -q --strip-extras --no-header
requirements: venv
	$(PIP_COMPILE) --generate-hashes --output-file requirements.txt requirements.in
	$(PIP_COMPILE) --generate-hashes --allow-unsafe --output-file requirements-build.txt requirements-build.in
	$(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in

clean:
	rm -rf $(VENV) test-reports .pytest_cache .ruff_cache
