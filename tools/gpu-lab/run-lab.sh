#!/usr/bin/env bash
# Device-side driver for the labs of tools/gpu-lab (built here into .device/<lab>; carried with
# .device): each (first argument, variant, shape) in its own process under a time limit, a table to
# stdout and $OUT/lab.txt.
# Usage there: bash tools/gpu-lab/run-lab.sh LAB "VARIANTS" "SHAPES" "KINDS"
#   LAB: wgmma_lab or sgemm_lab; VARIANTS: numbers separated by spaces ("0 1 3"); SHAPES: MxNxK
#   separated by spaces; KINDS: the lab's first argument, each in turn (wgmma_lab: "bf16 tf32";
#   sgemm_lab: layouts "nn nt tn tt").
set -u
OUT=${OUT:-/tmp/lab-out}
mkdir -p "$OUT"
lab=.device/$1
variants=${2:-"0"}
shapes=${3:-"4096x4096x4096 8192x8192x8192"}
kinds=${4:-"bf16 tf32"}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv | tee -a "$OUT/lab.txt"
for t in $kinds; do
  for s in $shapes; do
    IFS=x read -r m n k <<< "$s"
    for v in $variants; do
      timeout -k 5 60 "$lab" "$t" "$v" "$m" "$n" "$k" "${REPS:-40}" 2>&1 | tee -a "$OUT/lab.txt"
      rc=${PIPESTATUS[0]}
      [[ $rc -ne 0 ]] && echo "$1 $t v$v $s: rc=$rc" | tee -a "$OUT/lab.txt"
    done
  done
done
