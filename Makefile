# The two README commands: `make run` (serve on SQLite with the custom model, trained on first run)
# and `make test`. Everything installs itself into .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED_BANKING77 := $(abspath ../shared/data/banking77)
ifeq ($(origin BANKING77_DIR), undefined)
ifneq ($(wildcard $(SHARED_BANKING77)/train.csv),)
export BANKING77_DIR := $(SHARED_BANKING77)
endif
endif

.PHONY: install run test lint bench test-vllm clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0  # the CPU wheel; install it first so nothing pulls a CUDA build
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/bankbot serve

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -ra

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/bankbot bench --sample 200
	$(BIN)/python benchmarks/pipeline_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
