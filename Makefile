# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test bench synth templates installer screenshots local-cloud clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(PY) -m app

test: $(STAMP)
	$(PY) -m ruff format --check --quiet .
	$(PY) -m ruff check --quiet .
	# The Qt tests run on their own, so their 5 s waits never compete with the local-cloud tests for the CPU.
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -n 2 --dist loadgroup -q --ignore=tests/ui
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -n 2 --dist loadgroup -q tests/ui

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# dist/DiffusionDesk/ and this platform's installer (README: "Building the installer").
installer: $(STAMP)
	$(PY) build_installer.py

# Every stack into cdk.out/, in-process (no CDK CLI, no AWS); Lambda wheels come from PyPI via pip.
synth: $(STAMP)
	rm -rf cdk.out && $(PY) -m infra.app cdk.out

# Refresh the pre-synthesized templates that the app ships (source, pipeline, and the sandbox's endpoint stack).
templates: $(STAMP)
	$(PY) -m infra.templates

local-cloud: $(STAMP)
	$(PY) -m app local-cloud

# PNGs of the main window, viewer, settings and welcome (offscreen, local cloud) into docs/screenshots/.
screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m tools.screenshots --out docs/screenshots
	QT_QPA_PLATFORM=offscreen $(PY) -m tools.screenshots --out docs/screenshots --scheme dark
	QT_QPA_PLATFORM=offscreen $(PY) -m tools.sweep_screenshot --out docs/screenshots

clean:
	rm -rf $(VENV) build dist cdk.out
