# Two commands: `make run` (venv + pinned deps + the default workflow) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= all
STAMP := $(VENV)/.installed

.PHONY: run test lint clean-results

$(STAMP): pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, exactly pinned: 2.13.0 is the CPU wheel here (an unpinned torch pulls CUDA).
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

run: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES)
	@echo
	@echo "Done. Summary (numbers of every stage): results/summary.json"
	@echo "Models: results/models/ (theta0, theta_c4, theta_pos, theta_neg, judge_lm)"
	@echo "Per-candidate fine-tuning table: results/finetune/{pos,neg}/candidates.tsv"
	@echo "Logs: logs/  Stage timings: benchmarks/"

lint: $(STAMP)
	$(VENV)/bin/ruff check src scripts tests bench
	$(VENV)/bin/ruff format --check src scripts tests bench
	$(VENV)/bin/snakefmt --check Snakefile workflow
	$(VENV)/bin/snakemake --lint

test: lint
	$(PY) -m pytest -q

clean-results:
	rm -rf results logs benchmarks .snakemake
