#!/usr/bin/env bash
# The one GPU check of lmlerp (docs/speed.md, "GPU check"): on any CUDA machine, no network,
#   bash bench/gpu_check.sh                 # ≈ 8 min on an H100/H200
#   bash bench/gpu_check.sh --device cpu    # the dry path: same entry points, tiny sizes (CI)
# It runs the `cuda` tests, `make paper-smoke DEVICE=cuda DTYPE=bfloat16` (skipped with a
# reason where the target or Snakemake is absent), and bench/generation.py's CUDA section, and
# writes $OUT/gpu_check.json and $OUT/gpu_check.log (OUT defaults to bench/results).
# Python: $PYTHON (default python3) must have torch and transformers; what it lacks (pytest,
# snakemake, …) comes from bench/wheels (`make gpu-wheels`, carried) into a venv that sees the
# system's site-packages, installed with --no-index.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
if [[ "${1:-}" == "--device" ]]; then DEVICE="${2:?--device needs cpu or cuda}"; fi
OUT="${OUT:-bench/results}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
STEPS="$OUT/gpu_check.steps.tsv"
: >"$LOG"
: >"$STEPS"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

log() { echo "[$(date -u +%T)] $*" | tee -a "$LOG"; }
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$STEPS"; }  # name rc seconds note

# step NAME TIMEOUT_S COMMAND...: run, log, record rc and seconds
step() {
  local name=$1 limit=$2
  shift 2
  log "== $name: $*"
  local start=$SECONDS
  timeout "$limit" "$@" >>"$LOG" 2>&1
  local rc=$?
  record "$name" "$rc" "$((SECONDS - start))" "$([[ $rc == 124 ]] && echo "timed out after ${limit}s")"
  log "== $name: rc $rc, $((SECONDS - start)) s"
}
skip() { log "== $1: skipped ($2)"; record "$1" "" 0 "skipped: $2"; }

# --- Python: the image's, plus carried wheels where it lacks something -----------------------
OWN_VENV=""
if ! "$PY" -c "import pytest, jsonschema, yaml, snakemake" 2>/dev/null && [[ -d bench/wheels ]]; then
  VENV="${TMPDIR:-/tmp}/lmlerp-gpu-venv"
  OWN_VENV="$VENV"
  log "== venv $VENV (system site-packages + bench/wheels, --no-index)"
  "$PY" -m venv --system-site-packages "$VENV" >>"$LOG" 2>&1
  "$VENV/bin/python" -m pip install --quiet --no-index --find-links bench/wheels \
    -r bench/wheels/requirements.txt >>"$LOG" 2>&1 || log "pip install from bench/wheels failed"
  PY="$VENV/bin/python"
  export PATH="$VENV/bin:$PATH"
fi
"$PY" - >>"$LOG" 2>&1 <<'PYEOF'
import platform, torch, transformers
print("python", platform.python_version(), "torch", torch.__version__,
      "transformers", transformers.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PYEOF
if [[ "$DEVICE" == cuda ]] && ! "$PY" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  log "no CUDA device visible to torch: run with --device cpu for the dry path"
  record "cuda_available" 1 0 "torch sees no CUDA device"
fi

# --- 1. the cuda tests (they skip without a GPU) --------------------------------------------
if "$PY" -c "import pytest" 2>/dev/null; then
  step cuda_tests 240 "$PY" -m pytest -q -p no:cacheprovider -m cuda -rs tests/test_cuda.py tests/test_generation.py
else
  skip cuda_tests "pytest is not installed and bench/wheels is absent (make gpu-wheels)"
fi

# --- 2. the paper-shaped run -----------------------------------------------------------------
if [[ "$DEVICE" != cuda ]]; then
  skip paper_smoke "dry path: the paper-shaped run needs a GPU"
elif ! make -n paper-smoke >/dev/null 2>&1; then
  skip paper_smoke "the Makefile has no paper-smoke target yet"
elif ! "$PY" -c "import snakemake" 2>/dev/null; then
  skip paper_smoke "snakemake is not installed and bench/wheels is absent (make gpu-wheels)"
elif ! VENV_DIR="$("$PY" -c 'import sys; assert sys.prefix != sys.base_prefix; print(sys.prefix)')"; then
  skip paper_smoke "$PY is not in a venv (the Makefile runs \$VENV/bin/snakemake)"
else
  # the Makefile's install stamp: our venv is complete as it is (its install would pull the
  # CPU torch pin over the image's CUDA build); a user's venv keeps its own stamp
  [[ -n "$OWN_VENV" ]] && touch "$OWN_VENV/.installed"
  step paper_smoke 300 make paper-smoke VENV="$VENV_DIR" DEVICE=cuda DTYPE=bfloat16 CORES=8
fi

# --- 3. the engine against generate, rebuild, scoring, the paper projection ------------------
if [[ "$DEVICE" == cuda ]]; then
  step bench 300 "$PY" bench/generation.py --device cuda --cuda-prompts 100 --samples 25 --out "$OUT/generation.json"
else
  step bench 120 "$PY" bench/generation.py --device cuda --smoke --repeats 1 --out "$OUT/generation.json"
fi

# --- summary ---------------------------------------------------------------------------------
"$PY" - "$OUT" "$DEVICE" <<'PYEOF' | tee -a "$LOG"
import json, sys
from pathlib import Path
out, device = Path(sys.argv[1]), sys.argv[2]
steps = {}
for line in (out / "gpu_check.steps.tsv").read_text().splitlines():
    name, rc, seconds, note = line.split("\t")
    steps[name] = {"rc": int(rc) if rc else None, "seconds": int(seconds), "note": note}
bench = out / "generation.json"
report = {
    "device": device,
    "steps": steps,
    "ok": all(s["rc"] in (0, None) for s in steps.values()),
    "generation": json.loads(bench.read_text()) if bench.exists() else None,
}
tmp = out / "gpu_check.json.tmp"
tmp.write_text(json.dumps(report, indent=2))
tmp.replace(out / "gpu_check.json")  # atomic: a reader never sees half a report
print(json.dumps({"ok": report["ok"], "steps": steps}, indent=1))
PYEOF
