# Two commands for a new user: `make run` (install + start the app) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DATA ?= ../shared/data/ravdess

.PHONY: run test install install-dev browser train evaluate robustness lint bench load e2e clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime

install-dev: $(VENV)/.dev

# Debian's Chromium for the end-to-end tests (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

run: install
	$(VENV)/bin/streamlit run app.py

test: install-dev browser
	$(PY) -m pytest -q

train: install
	$(PY) -m ser train --data $(DATA) --out models/
	$(PY) -m ser evaluate --data $(DATA) --out models/ --baselines

evaluate: install
	$(PY) -m ser evaluate --data $(DATA) --out models/ --baselines

# Accuracy of the shipped model under noise, reverberation, a phone line, codecs (~15 min).
robustness: install
	$(PY) -m experiments.robustness --data $(DATA)

lint: install-dev
	$(VENV)/bin/ruff check .

bench: install-dev
	$(PY) -m bench

load: install-dev browser
	$(PY) -m tests.load_app --sessions 8 --analyses 200

clean:
	rm -rf $(VENV) .cache .pytest_cache test-artifacts
