# The two commands: `make demo` and `make test`. Each creates .venv if missing and installs what it needs.
# torch is pinned here (constraints.txt: the CPU build the figures were measured with); pyproject.toml keeps a range.
# `make test` includes tests/test_packaging.py: it builds the wheel, installs it into a fresh venv and runs
# separate, codec and train --steps 2 from another folder.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv peers clean
PEERS_STAMP := $(VENV)/.peers

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(BIN)/pip install -q -c constraints.txt torch
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,text,web,browser]'
	# tinysoundfont declares pyaudio (playback only, needs portaudio headers); the renderer needs neither.
	$(BIN)/pip install -q --no-deps 'tinysoundfont>=0.3'
	touch $(STAMP)

venv: $(STAMP)

# Same-budget peers (benchmarks/peer_models/, run by benchmarks/peers.py): demucs and encodec declare torchaudio,
# which would replace the pinned CPU torch, so they go in with --no-deps next to the `[peers]` extra (the packages
# their model classes import).
$(PEERS_STAMP): $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,text,peers]'
	$(BIN)/pip install -q --no-deps demucs==4.1.0 encodec==0.1.1
	$(BIN)/python -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') else 'torch is ' + v + ', expected the pinned 2.13.0')"
	touch $(PEERS_STAMP)

peers: $(PEERS_STAMP)

demo: $(STAMP)
	$(BIN)/python -m latentmix.demo

test: $(STAMP) $(PEERS_STAMP)
	$(BIN)/python -m pytest -q -x tests

clean:
	rm -rf $(VENV) demo_out
