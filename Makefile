# Two commands: `make run` (venv + pinned deps + the default workflow) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= all
STAMP := $(VENV)/.installed

.PHONY: run test lint clean-results clean-cache gpu-wheels paper-smoke smollm2

$(STAMP): pyproject.toml requirements.lock requirements-test.lock
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, exactly pinned: 2.13.0 is the CPU wheel here (an unpinned torch pulls CUDA).
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.lock
	# test-only (mergekit, the merge methods' reference): --no-deps, so no pin moves
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-test.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

run: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES)
	@$(MAKE) --no-print-directory results/report.html
	@echo
	@echo "Done. Report (every figure with its caption): results/report.html"
	@echo "Figures: results/figures/fig03_g1.png ... fig12_comparison.png, connectivity_*.png"
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

# Two pytest-xdist workers, a test module at a time (--dist loadscope): a module's fixtures (a
# killed run, a merged run) are built once; the session's reference runs (the tiny run, the
# resume reference) once for both workers, under a file lock (tests/conftest.py, built_once).
TEST_WORKERS ?= 2
test: lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope --durations=30

clean-results:
	rm -rf results logs benchmarks .snakemake

# The point cache (results/cache/points): every evaluated point, kept across config changes so
# that a grown grid or a resumed chunk re-evaluates only what is missing (docs/caching.md).
clean-cache:
	rm -rf results/cache

# Wheels for bench/gpu_check.sh on a GPU machine without network whose image has torch but not
# these (carry bench/wheels/): it installs them with --no-index into a venv that sees the image's
# site-packages. Pinned as requirements.lock pins them; transformers too, as the code needs 5.x.
GPU_WHEELS := snakemake==9.27.1 pytest==9.2.0 hypothesis==6.170.15 jsonschema==4.26.0 \
  PyYAML==6.0.3 Pygments==2.21.0 transformers==5.23.0 tokenizers==0.23.3 safetensors==0.8.0
gpu-wheels:  # no $(STAMP): only pip is needed, never a (re)install
	mkdir -p bench/wheels
	printf '%s\n' $(GPU_WHEELS) > bench/wheels/requirements.txt
	# wheels for this machine's Python and platform; sdists (connection_pool) built into wheels
	$(PY) -m pip wheel --quiet --wheel-dir bench/wheels -r bench/wheels/requirements.txt
	# the image's numpy serves (torch is built against it): 16 MB less to carry (limit 64 MiB)
	rm -f bench/wheels/numpy-*.whl
	@du -sh bench/wheels

# The paper DAG on random-init paper architectures (GPT-2 Large θ0, GPT-2 XL judge, RoBERTa),
# tiny counts, in runs/paper-smoke/ (docs/paper-scale.md). On a GPU: DEVICE=cuda DTYPE=bfloat16.
SMOKE ?= runs/paper-smoke
DEVICE ?= cpu
DTYPE ?= float32
SMOKE_MEM_MB ?= 23000
# θ+ ↔ θ−'s Bezier curve trains a GPT-2 Large φ (≈ 22 GB of fp32 state): on a GPU only
CPU_PAIRS := [seeds_full, seeds_lora]
GPU_PAIRS := [seeds_full, seeds_lora, theta_pos_neg]
SMOKE_PAIRS ?= $(if $(filter cuda,$(DEVICE)),$(GPU_PAIRS),$(CPU_PAIRS))
# GNU time gives a run's wall time and its largest job's peak RSS where it is installed
timed = $(if $(wildcard /usr/bin/time),/usr/bin/time -v -o $(1)/time.txt)
paper-smoke: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) resources/vader resources/gensim
	$(PY) -m lmlerp standins --out $(SMOKE)/hub --downloads resources/downloads \
	  --movie resources/vader/movie.tsv --corpus resources/gensim/lee_background.cor
	mkdir -p $(SMOKE)/resources && ln -sfn $(CURDIR)/resources/downloads $(SMOKE)/resources/downloads
	$(call timed,$(SMOKE)) $(VENV)/bin/snakemake --cores $(CORES) \
	  --directory $(SMOKE) --resources mem_mb=$(SMOKE_MEM_MB) gpu=1 \
	  --configfile configs/paper-smoke.yaml --config device=$(DEVICE) dtype=$(DTYPE) \
	  'evaluation={judge_lm_dtype: $(DTYPE)}' 'connectivity={curves: {pairs: $(SMOKE_PAIRS)}}'
	@grep -sE "Elapsed|Maximum resident" $(SMOKE)/time.txt || true
	@echo "Figures: $(SMOKE)/results/figures/; numbers: $(SMOKE)/results/summary.json"

# configs/smollm2.yaml: the paper's protocol on SmolLM2-135M with Gemma 3 270M as judge, offline,
# in runs/smollm2/ (docs/smollm2.md); ≈ the measured time there on 2 cores. GPU: DEVICE=cuda.
SMOL ?= runs/smollm2
SMOL_MEM_MB ?= 20000
smollm2: $(STAMP)
	mkdir -p $(SMOL)/resources && ln -sfn $(CURDIR)/resources/downloads $(SMOL)/resources/downloads
	$(call timed,$(SMOL)) $(VENV)/bin/snakemake --cores $(CORES) --directory $(SMOL) \
	  --resources mem_mb=$(SMOL_MEM_MB) gpu=1 --configfile configs/smollm2.yaml --config device=$(DEVICE)
	@grep -sE "Elapsed|Maximum resident" $(SMOL)/time.txt || true
	@echo "Figures: $(SMOL)/results/figures/; numbers: $(SMOL)/results/summary.json"
