# For the next GPU session (not run: the first session's device time ran out): the committed tile rule
# (64x64 only below one 128x128 tile per SM and K <= 2048) against 128x128 always, in the training steps; then the GEMM tests with the rule.
# Run through tools/gpu-session.sh (sh=tools/gpu-exp8.sh bench=cuda-gemm:--quick:--types:f32).
tsx="node node_modules/tsx/dist/cli.mjs"
for t in 128 auto 128 auto; do for m in lm cnn; do TSM_SGEMM_TILE=$t $tsx tools/gpu-lm-steps.ts $m 20 5 | sed "s/^/tile=$t /"; done; done
timeout 60 node node_modules/vitest/vitest.mjs run test/cuda.test.ts -t "SGEMM|epilogues|strided batched" > "$LOGS/test-sgemm.log" 2>&1
echo "== cuda.test.ts SGEMM, default tile rule: rc=$?"; sed 's/\x1b\[[0-9;]*m//g' "$LOGS/test-sgemm.log" | grep -E "Tests |FAIL|Error" | head -5
