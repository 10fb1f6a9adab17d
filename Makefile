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

# The demo needs only hdrfix itself (apply, status, revert import no torch): a light venv of its
# own, so a fresh clone sees the tool work in seconds, not after a 1.3 GB install.
DEMO_VENV  := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed-stamp

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --editable .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/python -m hdrfix.demo

# Bytecode first: the suite starts hdrfix in hundreds of subprocesses, and where
# PYTHONDONTWRITEBYTECODE is set each would compile every module again (a wheel install has it).
test: $(STAMP) lint
	$(PY) -m compileall -q hdrfix hdrfix_plugins
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
	rm -rf $(VENV) $(DEMO_VENV) build *.egg-info .pytest_cache .hypothesis
