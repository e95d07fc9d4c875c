#!/usr/bin/env bash
# One device run of the GPU checks (benchmarks/gpu/README.md): the carried wheels, the device-parametrised tests on
# the GPU, then the GPU benchmarks at the released size. Every step has its own time limit and the run goes on
# past a failing step; the whole fits in about 8 minutes. Results land in $OUT (the device tool's folder that comes
# back): results.jsonl (the benchmark records, to append to benchmarks/results.jsonl), a log per step, summary.txt.
#
# On the device machine:   bash benchmarks/gpu/run.sh            (carry .whl: see benchmarks/gpu/wheels.sh)
# Tried on a CPU machine:  SAM3KIT_GPU_DEVICE=cpu SAM3KIT_GPU_CONFIG=tiny SAM3KIT_TEST_DEVICE=cpu \
#                          PYTHON=.venv/bin/python OUT=/tmp/gpu-out bash benchmarks/gpu/run.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/sam3kit-gpu-out}
PY=${PYTHON:-python3}
DEVICE=${SAM3KIT_GPU_DEVICE:-cuda}
CONFIG=${SAM3KIT_GPU_CONFIG:-released}
FRAMES=${SAM3KIT_GPU_FRAMES:-20}          # video frames after frame 0 (the concept rows need at least 15)
COMPILE=${SAM3KIT_GPU_COMPILE:-bf16}      # dtypes of the torch.compile rows ('' none)
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 SAM3KIT_TEST_DEVICE=${SAM3KIT_TEST_DEVICE:-$DEVICE}
START=$(date +%s)
: >"$OUT/summary.txt"
note() { echo "[$(( $(date +%s) - START )) s] $*" | tee -a "$OUT/summary.txt"; }

# step LIMIT_S NAME COMMAND...: run with a time limit, log to $OUT/NAME.log, record the exit status
step() {
  local limit=$1 name=$2; shift 2
  note "start $name (limit ${limit} s)"
  timeout -k 10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  note "end $name: exit $rc$([ $rc -eq 124 ] && echo ' (time limit)')"
  return 0
}

# 1. the wheels carried in .whl (transformers 5.23 and what the image lacks), ahead of the image's packages
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/sam3kit-site \
    .whl/*.whl >"$OUT/install.log" 2>&1 || note "wheel install failed (see install.log)"
  export PYTHONPATH=/tmp/sam3kit-site:$PWD/src
else
  export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
fi
"$PY" - >"$OUT/facts.txt" 2>&1 <<'PYEOF'
import platform, torch, transformers, sam3kit
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "transformers", transformers.__version__, "sam3kit", sam3kit.__file__)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", p.name, f"sm_{p.major}{p.minor}", p.multi_processor_count, "SMs", round(p.total_memory / 2**30, 1), "GiB")
PYEOF
command -v nvidia-smi >/dev/null && nvidia-smi >>"$OUT/facts.txt" 2>&1
note "$(head -2 "$OUT/facts.txt" | tr '\n' ' ')"

# 2. the device-parametrised tests, only their pass on the device under test (the CPU pass is CI's)
step 120 tests "$PY" -m pytest -q -p no:cacheprovider -m device_under_test --junitxml="$OUT/tests.xml" \
  tests/golden/test_official_golden.py tests/pipelines/video/test_official_golden_video.py \
  tests/golden/test_official_concepts_golden.py tests/speed/test_half.py tests/model/test_vit.py \
  tests/model/test_detector.py tests/model/tracker/test_tracker_parity.py
note "tests: $(tail -1 "$OUT/tests.log")"

# 3. the image rows, fp32 and bf16 (plain forms; the compiled ones are the last step); no row starts after 120 s
step 160 bench_gpu "$PY" benchmarks/bench_gpu.py --device "$DEVICE" --config "$CONFIG" --compile "" \
  --reps 10 --warmup 2 --deadline-s 120 --out "$OUT/results.jsonl"

# 4. video tracking per frame, 1 and 16 objects (bf16, then fp32), and detect-and-track per frame (bf16)
for dt in bf16 fp32; do
  step 40 "video_$dt" "$PY" benchmarks/bench_video.py --device "$DEVICE" --dtype "$dt" --config "$CONFIG" \
    --frames "$FRAMES" --objects 1,16 --selection-objects 1 --official-objects "" --max-load 1e9 \
    --out "$OUT/results.jsonl"
done
step 60 concepts_bf16 "$PY" benchmarks/bench_concepts.py --device "$DEVICE" --dtype bf16 --config "$CONFIG" \
  --frames "$FRAMES" --objects 1,16 --selection-objects "" --max-load 1e9 --out "$OUT/results.jsonl"

# 5. torch.compile'd encode and e2e (batch 1), both sides, in what is left of the 8 minutes (compiling is slow)
if [ -n "$COMPILE" ]; then
  left=$(( 440 - ($(date +%s) - START) ))
  if [ $left -gt 60 ]; then
    step $left bench_gpu_compile "$PY" benchmarks/bench_gpu.py --device "$DEVICE" --config "$CONFIG" \
      --dtypes "$COMPILE" --compile "$COMPILE" --compile-only --rows encode,e2e --reps 10 \
      --deadline-s $(( left - 50 )) --out "$OUT/results.jsonl"
  else
    note "no time left for the compile step"
  fi
fi

# 6. the table (the device tool returns the end of the output)
"$PY" benchmarks/gpu/summary.py "$OUT/results.jsonl" 2>&1 | tee -a "$OUT/summary.txt"
grep -h -E "passed|failed|error" "$OUT/tests.log" | tail -3
note "done"
