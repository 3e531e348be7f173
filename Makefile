# physio-fusion: every target is self-sufficient on a fresh machine (the first one creates .venv).
PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed-$(shell cat setup.cfg setup.py | cksum | cut -d' ' -f1)
PROFILE     ?= quick
RESULTS     ?= results
JOBS        ?= 1
BACKEND     ?= tensorflow
DATA_ROOT   ?=
EXTRA       ?=
export PHYSIO_FUSION_CACHE ?= $(CURDIR)/data
export TF_CPP_MIN_LOG_LEVEL ?= 2

RUN = $(PY) -m experiments run --profile $(PROFILE) --results $(RESULTS) --jobs $(JOBS) --backend $(BACKEND) \
      $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(EXTRA)

.DEFAULT_GOAL := help
TORCH_VERSION ?= 2.13.0
.PHONY: help install test bench table1 table2 table3 attx-tables attx-search list clean distclean

help: ## list the targets
	@echo "make TARGET [PROFILE=smoke|quick|paper] [DATA_ROOT=/path] [JOBS=N] [BACKEND=tensorflow|jax|torch]"
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): setup.cfg setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP) ## create .venv and install the project (editable) with its test extras

test: $(STAMP) ## run the test suite
	$(PY) -m pytest -q

bench: $(STAMP) ## speed figures as ratios against baselines of the same run -> benchmarks/results/<date>-<host>.json
	@# PyTorch for the per-backend figures: the CPU build (plain `pip install torch` would pull a CUDA build of GBs)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "torch==$(TORCH_VERSION)" || echo "bench: torch not installed; its figures will say so"
	$(PY) benchmarks/bench.py $(EXTRA)

list: $(STAMP) ## registered experiments and their profiles
	$(PY) -m experiments list

table1: $(STAMP) ## AttX Table I: 22 fusion configurations, LOSO on WESAD -> results/table1.{md,csv,png}
	$(RUN) table1

table2: $(STAMP) ## AttX Table II: comparison with related work, our best configuration added
	$(RUN) table2

table3: $(STAMP) ## AttX Table III: ablations (unimodal, feature fusion, cross-connections w/o attention)
	$(RUN) table3

attx-tables: table1 table2 table3 ## all three AttX tables (rows shared between tables run once)

attx-search: $(STAMP) ## keras-tuner search over AttX direction x stages (validation subjects only)
	$(PY) -m attx_keras.tuning --profile $(PROFILE) $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) --directory $(RESULTS)/attx_search $(EXTRA)

clean: ## remove caches, synthetic data and results (keeps .venv)
	rm -rf $(RESULTS) data .pytest_cache
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean ## also remove .venv
	rm -rf $(VENV) *.egg-info
