# worldmodels: `make run` trains the whole pipeline, `make test` runs the tests.
# Overridable: PRESET (tiny|laptop|paper), ENV (carracing), WORKERS, SEED, DATA_DIR, PYTHON.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PRESET ?= laptop
ENV ?= carracing
SEED ?= 0
# The laptop preset (the default) uses data/<env>; other presets get their own directory.
DATA_DIR ?= data/$(ENV)$(if $(filter laptop,$(PRESET)),,-$(PRESET))
WORKERS ?=
ARGS := --env $(ENV) --preset $(PRESET) --seed $(SEED) --data-dir $(DATA_DIR) $(if $(WORKERS),--workers $(WORKERS),)
export SDL_VIDEODRIVER ?= dummy
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup run test test-fast lint bench demo clean-data results serve browser

setup: $(VENV)/.installed

# The exact pinned set (requirements*.txt), then the project itself, editable (pyproject.toml; its
# dependencies are ranges that the pinned set satisfies, so --no-deps installs nothing more).
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: setup
	$(PY) 01_generate_data.py $(ARGS)
	$(PY) 02_train_vae.py $(ARGS)
	$(PY) 03_generate_rnn_data.py $(ARGS)
	$(PY) 04_train_rnn.py $(ARGS)
	$(PY) 05_train_controller.py $(ARGS)

# Everything (CI). test-fast: the unit tests, no stage subprocesses, game engines or Ray (the edit loop).
test: setup browser
	$(PY) -m pytest -q tests

# Debian's Chromium for the browser test of `serve` (tests/test_serve.py); as root it installs the
# package when missing (CI), elsewhere that test skips and says why.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium not installed: the browser test will skip (apt-get install chromium)"; }

test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

lint: setup
	$(VENV)/bin/ruff check .

# A shipped agent (pretrained/), scored on 10 held-out tracks of the stock env and filmed; trains nothing.
demo: setup
	$(PY) -m worldmodels.evaluate --env carracing --data-dir pretrained/carracing-laptop --episodes 10 --out demo/carracing-eval.json
	$(PY) -m worldmodels.play --env carracing --data-dir pretrained/carracing-laptop --episodes 1 --video demo/carracing.mp4
	$(PY) -m worldmodels.evaluate --env doom --data-dir pretrained/doom-laptop --episodes 10 --out demo/doom-eval.json
	$(PY) -m worldmodels.play --env doom --data-dir pretrained/doom-laptop --episodes 1 --max-steps 2100 --video demo/doom.mp4

# Play a trained world model in the browser: its dream and the real game (http://127.0.0.1:8765/).
SERVE_ENV ?= doom
SERVE_DIR ?= pretrained/$(SERVE_ENV)-laptop
serve: setup
	$(PY) -m worldmodels.serve --env $(SERVE_ENV) --data-dir $(SERVE_DIR)

# docs/results.md from the results files in results/ (every published score).
results: setup
	$(PY) -m worldmodels.results

bench: setup
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b; done

clean-data:
	rm -rf $(DATA_DIR)
