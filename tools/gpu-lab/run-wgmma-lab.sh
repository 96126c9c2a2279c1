#!/usr/bin/env bash
# Device-side driver for tools/gpu-lab/wgmma_lab.cu (built here into .device/wgmma_lab; carried with
# .device): each (type, variant, shape) in its own process under a time limit, a table to stdout and
# $OUT/lab.txt; machine code of the kernels to $OUT/sass.txt.
# Usage there: bash tools/gpu-lab/run-wgmma-lab.sh "VARIANTS" "SHAPES" [TYPES]
#   VARIANTS: flags separated by spaces ("0 1 3"); SHAPES: MxNxK separated by spaces; TYPES: "bf16 tf32"
set -u
OUT=${OUT:-/tmp/lab-out}
mkdir -p "$OUT"
lab=.device/wgmma_lab
variants=${1:-"0 1 2 3"}
shapes=${2:-"4096x4096x4096 8192x8192x8192"}
types=${3:-"bf16 tf32"}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv | tee -a "$OUT/lab.txt"
for t in $types; do
  for s in $shapes; do
    IFS=x read -r m n k <<< "$s"
    for v in $variants; do
      timeout -k 5 60 "$lab" "$t" "$v" "$m" "$n" "$k" "${REPS:-40}" 2>&1 | tee -a "$OUT/lab.txt"
      rc=${PIPESTATUS[0]}
      [[ $rc -ne 0 ]] && echo "$t v$v $s: rc=$rc" | tee -a "$OUT/lab.txt"
    done
  done
done
