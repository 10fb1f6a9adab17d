# Both targets set everything up from nothing: a fresh clone needs only python3 (3.10+).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# Pin torch to the CPU build that lies on local disk; an unpinned torch would pull a multi-GB CUDA wheel.
CONSTRAINTS := constraints.txt

.PHONY: demo test lint install clean field

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --constraint $(CONSTRAINTS) --editable '.[torch,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m hdrfix.demo

test: $(STAMP) lint
	$(PY) -m pytest

# The field suite: every phase, trial and validate on the real repository (a git dir of
# SDU-Gary/MobileExtra, e.g. one `fetch` brought), both branches.
field: $(STAMP)
	@test -n "$$HDRFIX_FIELD_GITDIR" || { echo "make field: set HDRFIX_FIELD_GITDIR to a git dir of SDU-Gary/MobileExtra"; exit 2; }
	$(PY) -m pip install --quiet --constraint $(CONSTRAINTS) --editable '.[torch,dev,field]'
	$(PY) -m pytest tests/field -s -p no:cacheprovider -n 0

lint: $(STAMP)
	$(VENV)/bin/ruff check hdrfix hdrfix_plugins tests benchmarks examples
	$(VENV)/bin/ruff format --check hdrfix hdrfix_plugins tests benchmarks examples
	$(VENV)/bin/mypy hdrfix hdrfix_plugins

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
