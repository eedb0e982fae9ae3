# FlashSale: `make run` serves the demo shop, `make test` runs every test, `make bench` the benchmark.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench venv services browser migrate clean static

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

venv: $(VENV)/.installed

# the cut-down CSS, icon font and compressed copies under static/ (committed: run after editing templates or static/)
static: venv
	$(PY) scripts/build_static.py

services:
	@scripts/services.sh

browser:
	@scripts/browser.sh

migrate: venv services
	$(PY) run.py migrate

run: migrate
	$(PY) run.py seed-demo
	$(PY) run.py serve

test: venv services browser
	$(PY) -m pytest

bench: venv services
	$(PY) bench/run_bench.py

clean:
	rm -rf $(VENV) .pytest_cache
