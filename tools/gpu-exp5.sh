# Call 5 of the first GPU session: every example on the GPU (in parallel, for errors and accuracy),
# compute-sanitizer on the split-K SGEMM and the softmax attention path, split K aimed at one or two
# blocks per multiprocessor (TSM_SGEMM_SPLIT_WAVES) in the training steps.
tsx="node node_modules/tsx/dist/cli.mjs"
[ -f .device-data/data.tar.xz ] && python3 -c "import tarfile; tarfile.open('.device-data/data.tar.xz').extractall('.')"
run_ex() { timeout 100 $tsx examples/$1 --device cuda "${@:2}" > "$LOGS/ex-${1%.ts}.log" 2>&1; echo "rc=$? $*" >> "$LOGS/ex-${1%.ts}.log"; }
run_ex char-lm-lstm.ts --steps 300 --hidden 128 &
run_ex transformer-lm.ts --steps 200 &
run_ex spam-lstm.ts --limit 2000 --epochs 2 --max-len 100 &
run_ex spam-embedding.ts --epochs 2 &
run_ex spam-keras.ts --epochs 2 &
run_ex mnist-keras.ts --epochs 1 &
run_ex mlp.ts --epochs 20 &
wait
for f in "$LOGS"/ex-*.log; do echo "== $(basename "$f")"; grep -v "^\s*$" "$f" | tail -4 | cut -c1-200; done
timeout 90 compute-sanitizer --tool memcheck --target-processes all node node_modules/vitest/vitest.mjs run test/cuda.test.ts -t "SGEMM \(SIMT\)" > "$LOGS/memcheck-sgemm.log" 2>&1
echo "== memcheck SGEMM: rc=$?"; grep -E "ERROR SUMMARY|Tests " "$LOGS/memcheck-sgemm.log" | head -5
timeout 90 compute-sanitizer --tool memcheck --target-processes all node node_modules/vitest/vitest.mjs run test/cuda-tensor.test.ts -t "scaledDotProductAttention|matmul" > "$LOGS/memcheck-sdpa.log" 2>&1
echo "== memcheck sdpa+matmul: rc=$?"; grep -E "ERROR SUMMARY|Tests " "$LOGS/memcheck-sdpa.log" | head -5
for round in 1 2; do for w in 2 1; do for m in lm cnn; do
  TSM_SGEMM_SPLIT_WAVES=$w $tsx tools/gpu-lm-steps.ts $m 20 5 | sed "s/^/r$round waves=$w /"
done; done; done
