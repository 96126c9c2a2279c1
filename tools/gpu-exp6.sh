# Call 6 of the first GPU session: compute-sanitizer racecheck and memcheck on the attention kernels
# (cp.async pipelines, shared-memory barriers) and racecheck on the block-reduction kernels.
v="node node_modules/vitest/vitest.mjs run"
cs() { local tool=$1 name=$2; shift 2; timeout 85 compute-sanitizer --tool "$tool" --target-processes all $v "$@" > "$LOGS/$tool-$name.log" 2>&1
  echo "== $tool $name: rc=$?"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Tests |Hazard|Invalid" "$LOGS/$tool-$name.log" | head -6; }
cs racecheck attention test/cuda-attention.test.ts -t "Lq != Lk"
cs memcheck attention test/cuda-attention.test.ts -t "Lq != Lk"
cs racecheck tensor test/cuda-tensor.test.ts -t "sum and mean|softmax|layerNorm|batchNorm"
