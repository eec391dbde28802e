# `make demo` and `make test` work on a fresh machine with only Python and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
DEMO_HOME ?= .demo-home

.PHONY: demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is pinned to the CPU build; see pyproject.toml
$(INSTALLED): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(VENV)/bin/paperwire --home $(DEMO_HOME) demo

test: $(INSTALLED)
	@test -x /usr/bin/chromium || { echo "installing Debian chromium for the browser tests"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }
	$(PY) -m ruff check paperwire tests bench
	$(PY) -m pytest -q -n 2

bench: $(INSTALLED)
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache
