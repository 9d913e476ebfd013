# Two commands: `make run` (venv + pinned deps + the default workflow) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= all
STAMP := $(VENV)/.installed

.PHONY: run test lint clean-results clean-cache paper-smoke

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

# The paper DAG on random-init paper architectures (GPT-2 Large θ0, GPT-2 XL judge, RoBERTa),
# tiny counts, in runs/paper-smoke/ (docs/paper-scale.md). On a GPU: DEVICE=cuda DTYPE=bfloat16.
SMOKE ?= runs/paper-smoke
DEVICE ?= cpu
DTYPE ?= float32
SMOKE_MEM_MB ?= 20000
paper-smoke: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) resources/vader resources/gensim
	$(PY) -m lmlerp standins --out $(SMOKE)/hub
	mkdir -p $(SMOKE)/resources && ln -sfn $(CURDIR)/resources/downloads $(SMOKE)/resources/downloads
	/usr/bin/time -v -o $(SMOKE)/time.txt $(VENV)/bin/snakemake --cores $(CORES) \
	  --directory $(SMOKE) --resources mem_mb=$(SMOKE_MEM_MB) gpu=1 \
	  --configfile configs/paper-smoke.yaml --config device=$(DEVICE) dtype=$(DTYPE)
	@grep -E "Elapsed|Maximum resident" $(SMOKE)/time.txt
	@echo "Figures: $(SMOKE)/results/figures/; numbers: $(SMOKE)/results/summary.json"
