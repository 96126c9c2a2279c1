# Call 7 of the first GPU session: the 64x64 SIMT SGEMM tile (chosen when 128x128 tiles would give
# fewer than two blocks per SM): the GEMM tests with it forced, then A/B against 128x128 only.
tsx="node node_modules/tsx/dist/cli.mjs"
TSM_SGEMM_TILE=64 timeout 100 node node_modules/vitest/vitest.mjs run test/cuda.test.ts -t "SGEMM|epilogues|strided batched" > "$LOGS/test-tile64.log" 2>&1
echo "== cuda.test.ts SGEMM with 64x64 tiles forced: rc=$?"; sed 's/\x1b\[[0-9;]*m//g' "$LOGS/test-tile64.log" | grep -E "Tests |FAIL|Error" | head -5
for shape in "4096 256 256" "128 2048 256" "64 512 1600" "256 256 4096" "4096 1024 256" "1024 1024 1024"; do
  for t in 128 auto; do TSM_SGEMM_TILE=$t $tsx tools/gpu-probe.ts f32 $shape 200 simt | sed "s/^/tile=$t /"; done
done
for t in 128 auto 128 auto; do for m in lm cnn; do TSM_SGEMM_TILE=$t $tsx tools/gpu-lm-steps.ts $m 20 5 | sed "s/^/tile=$t /"; done; done
