#!/usr/bin/env bash
# One call on the lent GPU machine: the CUDA test files (in parallel, one process each, each under
# its own time limit so a hung kernel costs one file, not the call), then benchmarks one after
# another. Logs go to $OUT/logs.tgz (the device tool brings back at most 8 files) and a summary is
# printed last, where the tool's output tail shows it.
#
# Here, first:   npx cmake-js build --out build && bash cuda/device-pack.sh
# Device call:   source .device/env.sh && bash tools/gpu-session.sh [tests[=FILE,...]] [bench=NAME[:ARGS]] ...
#   tests                 every GPU test file (list below)
#   tests=cuda,cuda-amp   the named files (test/NAME.test.ts)
#   bench=cuda-gemm       npm run bench -- cuda-gemm (recorded); bench=cuda-gemm:--quick passes flags
#   example=ARGS          node tsx examples/ARGS (e.g. example=mnist-cnn.ts:--device:cuda:--epochs:1)
#   sanitize=FILE:PATTERN compute-sanitizer memcheck on one test file filtered by -t PATTERN
#   sh=SCRIPT             bash SCRIPT (profiler runs, disassembly); its output is logged, its tail summarised
# Limits: TSM_TEST_LIMIT (s, per test file, default 300), TSM_BENCH_LIMIT (s, per bench, default 240).
set -u
OUT=${OUT:-/tmp/gpu-out}
logs=/tmp/gpu-logs
rm -rf "$logs"; mkdir -p "$logs" "$OUT"
vitest="node node_modules/vitest/vitest.mjs"
tsx="node node_modules/tsx/dist/cli.mjs"
all_tests="cuda cuda-tensor cuda-attention cuda-amp cuda-norm cuda-conv-bench cuda-train-bench"
summary="$logs/summary.txt"
: > "$summary"

{
  echo "== machine"
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())" 2>&1
  node -e "console.log(JSON.stringify(require('./build/Release/tensorsmith.node').buildInfo()))"
} 2>&1 | tee "$logs/machine.txt" >> "$summary"

run_tests() {
  local list=$1 lim=${TSM_TEST_LIMIT:-300} pids=()
  for f in ${list//,/ }; do
    ( start=$(date +%s)
      timeout -k 10 "$lim" $vitest run "test/$f.test.ts" --reporter=verbose > "$logs/test-$f.log" 2>&1
      rc=$?
      echo "rc=$rc seconds=$(( $(date +%s) - start ))" >> "$logs/test-$f.log" ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  for f in ${list//,/ }; do
    local l="$logs/test-$f.log"
    {
      echo "== test/$f.test.ts: $(tail -1 "$l")"
      grep -E "^\s+(Tests|Test Files)\s" "$l" | sed 's/\x1b\[[0-9;]*m//g'
      grep -E "^\s+(×|✗|FAIL)\s" "$l" | sed 's/\x1b\[[0-9;]*m//g' | head -30
      grep -E "skipped:" "$l" | head -3
    } >> "$summary"
  done
}

for step in "$@"; do
  case $step in
    tests) run_tests "$all_tests" ;;
    tests=*) run_tests "${step#tests=}" ;;
    bench=*)
      spec=${step#bench=}; name=${spec%%:*}; args=""
      [[ $spec == *:* ]] && args=${spec#*:} && args=${args//:/ }
      start=$(date +%s)
      timeout -k 10 "${TSM_BENCH_LIMIT:-240}" $tsx bench/run.ts "$name" $args > "$logs/bench-$name.log" 2>&1
      rc=$?
      { echo "== bench $name $args: rc=$rc seconds=$(( $(date +%s) - start ))"
        sed 's/\x1b\[[0-9;]*m//g' "$logs/bench-$name.log" | tail -40; } >> "$summary"
      for ext in json svg; do
        [[ -f bench/results/$name.$ext ]] && cp "bench/results/$name.$ext" "$logs/"
      done
      ;;
    example=*)
      args=${step#example=}; args=${args//:/ }
      start=$(date +%s)
      timeout -k 10 "${TSM_BENCH_LIMIT:-240}" $tsx examples/$args > "$logs/example-${args%% *}.log" 2>&1
      rc=$?
      { echo "== example $args: rc=$rc seconds=$(( $(date +%s) - start ))"
        tail -6 "$logs/example-${args%% *}.log"; } >> "$summary"
      ;;
    sanitize=*)
      spec=${step#sanitize=}; f=${spec%%:*}; pat=${spec#*:}
      timeout -k 10 "${TSM_TEST_LIMIT:-300}" compute-sanitizer --tool memcheck --target-processes all \
        $vitest run "test/$f.test.ts" -t "$pat" > "$logs/memcheck-$f.log" 2>&1
      rc=$?
      { echo "== memcheck $f -t '$pat': rc=$rc"; grep -E "ERROR SUMMARY|Invalid|Tests " "$logs/memcheck-$f.log" | head -20; } >> "$summary"
      ;;
    sh=*)
      f=${step#sh=}; start=$(date +%s)
      LOGS=$logs timeout -k 10 "${TSM_BENCH_LIMIT:-240}" bash "$f" > "$logs/sh-$(basename "$f" .sh).log" 2>&1
      rc=$?
      { echo "== sh $f: rc=$rc seconds=$(( $(date +%s) - start ))"; tail -${TSM_SH_TAIL:-30} "$logs/sh-$(basename "$f" .sh).log"; } >> "$summary"
      ;;
    *) echo "gpu-session: unknown step $step" >> "$summary" ;;
  esac
done

# Newest result files of every bench that ran are in $logs; everything travels as one archive.
tar -czf "$OUT/logs.tgz" -C /tmp gpu-logs
cp "$summary" "$OUT/summary.txt"
cat "$summary"
