# Two commands for a new user: `make run` (install + start the app) and `make test`.
# `make test-fast` is the everyday unit tier (no browser, no slow tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DATA ?= ../shared/data/ravdess
#: The folder holding every corpus (ravdess/, ased/, speechocean/): leave one corpus out reads it.
CORPORA ?= ../shared/data

.PHONY: run test test-fast install install-dev install-batch browser train evaluate loco checks robustness lint bench load clean

# The pinned versions first, then this package itself (editable, its dependencies already there).
$(VENV)/.runtime: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime

install-dev: $(VENV)/.dev

# Ray for batch scoring (optional: `make run` and the app never need it).
$(VENV)/.batch: $(VENV)/.runtime requirements-batch.txt
	$(PY) -m pip install -q -r requirements-batch.txt
	touch $@

install-batch: $(VENV)/.batch

# Debian's Chromium for the end-to-end tests (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

run: install
	$(VENV)/bin/streamlit run app.py

# Everything: unit tests, doctests, import contracts, end-to-end tests in Chromium, the short load test.
test: install-dev install-batch browser
	$(PY) -m pytest -q

# The unit tier (about 2 minutes): no browser, nothing marked slow.
test-fast: install-dev
	$(PY) -m pytest -q -m "not slow and not e2e"

# Every file of the bundle and every result file in models/: the main model, the joint views (the second
# model, for voices unlike RAVDESS's actors), then the results and checks of both.
train: install
	$(PY) -m ser train --data $(DATA) --out models/
	$(PY) -m ser joint-views --data $(CORPORA) --out models/
	$(PY) -m ser evaluate --data $(DATA) --out models/ --baselines
	$(PY) -m ser loco --data $(CORPORA) --out models/
	$(MAKE) checks

# The checks of the trained bundle (~80 min here the first time; caches in .cache/). The detector first:
# the bundle's answers (hence the level check and the routing score) route on it. The routing score reads the
# out-of-fold answers ser joint-views keeps, and ser train's (or, for an older bundle, its fold members' answers).
# Then the card and README.
checks: install
	$(PY) -m ser familiarity --data $(CORPORA) --out models/
	$(PY) -m ser unfamiliarity --data $(CORPORA) --out models/
	$(PY) -m ser level-check --data $(DATA) --out models/
	$(PY) -m ser robustness --data $(DATA) --out models/
	$(PY) -m ser seed-check --data $(DATA) --out models/ --offset 100
	$(PY) -m ser corpus-check --data $(CORPORA) --out models/
	$(PY) -m ser profile-check --data $(CORPORA) --out models/
	$(PY) -m ser routing --data $(CORPORA) --out models/
	$(PY) -m ser.reporting.model_card models/ README.md

# Leave one corpus out (models/loco.json): about 15 min here once the functionals are cached.
loco: install
	$(PY) -m ser loco --data $(CORPORA) --out models/

evaluate: install
	$(PY) -m ser evaluate --data $(DATA) --out models/ --baselines

# Accuracy of the shipped model under noise, reverberation, a phone line, codecs (~15 min).
robustness: install
	$(PY) -m ser robustness --data $(DATA) --out models/

# Style, and the import contracts of pyproject.toml (serving apart from training and reporting).
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: install-dev install-batch
	$(PY) -m bench

load: install-dev browser
	$(PY) -m tests.load_app --sessions 8 --analyses 200

clean:
	rm -rf $(VENV) .cache .pytest_cache .import_linter_cache test-artifacts
