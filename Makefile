# Two commands: `make run` (venv + pinned deps + the default workflow) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= all
STAMP := $(VENV)/.installed

.PHONY: run test lint clean-results clean-cache

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
	@$(MAKE) --no-print-directory results/report.html
	@echo
	@echo "Done. Report (every figure with its caption): results/report.html"
	@echo "Figures: results/figures/fig03_g1.png ... fig11_pretraining.png, connectivity_*.png"
	@echo "Numbers: results/summary.json; tables: results/tables/*.parquet"
	@echo "Models: results/models/; logs: logs/; stage timings: benchmarks/"

# The report is rebuilt only when a figure or the summary changed (a no-op run stays fast).
results/report.html: results/summary.json $(wildcard results/figures/*.png)
	$(VENV)/bin/snakemake --report $@

lint: $(STAMP)
	$(VENV)/bin/ruff check src scripts tests bench
	$(VENV)/bin/ruff format --check src scripts tests bench
	$(VENV)/bin/snakefmt --check Snakefile workflow
	$(VENV)/bin/snakemake --lint

test: lint
	$(PY) -m pytest -q --durations=20

clean-results:
	rm -rf results logs benchmarks .snakemake

# The point cache (results/cache/points): every evaluated point, kept across config changes so
# that a grown grid or a resumed chunk re-evaluates only what is missing (docs/caching.md).
clean-cache:
	rm -rf results/cache
