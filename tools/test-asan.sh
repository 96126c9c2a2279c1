#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ and runs the
# native-heavy tests against it (npm run test:asan). Node itself is not instrumented, so the ASan
# runtime is preloaded; leak checking is off because V8 keeps memory until exit by design.
set -euo pipefail
cd "$(dirname "$0")/.."
npx cmake-js build --out build-asan --CDTSM_SANITIZE=ON --CDTSM_CUDA=OFF
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
export LD_PRELOAD="$asan:$ubsan"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSM_ADDON="$PWD/build-asan/Release/tensorsmith.node"
node -e "const a=require(process.env.TSM_ADDON); if(!a.buildInfo) process.exit(1)"
npx vitest run test/native-pointwise.test.ts test/native-nn.test.ts test/native-conv.test.ts test/sgemm.test.ts \
  test/golden.test.ts test/gradcheck.test.ts test/op-table.test.ts test/lstm.test.ts test/attention.test.ts \
  test/fuzz.test.ts "$@"
