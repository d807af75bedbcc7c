# The two commands: `make demo` and `make test`. Each creates .venv if missing and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# tinysoundfont declares pyaudio (playback only, needs portaudio headers); the renderer needs neither.
	$(BIN)/pip install -q --no-deps 'tinysoundfont>=0.3'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m latentmix.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -x tests

clean:
	rm -rf $(VENV) demo_out
