# Call 4 of the first GPU session: training steps with split K (TSM_SGEMM_SPLITK 1 = default rule,
# 2 = restricted, 0 = off) and the attention path (TSM_CUDA_SDPA softmax / fused), alternating.
tsx="node node_modules/tsx/dist/cli.mjs"
for round in 1 2; do
  for sk in 1 2 0; do TSM_SGEMM_SPLITK=$sk $tsx tools/gpu-lm-steps.ts cnn 20 5 | sed "s/^/r$round splitk=$sk /"; done
done
for sd in softmax fused; do for sk in 1 2 0; do
  TSM_CUDA_SDPA=$sd TSM_SGEMM_SPLITK=$sk $tsx tools/gpu-lm-steps.ts lm 10 3 | sed "s/^/sdpa=$sd splitk=$sk /"
done; done
for shape in "64 512 1600" "128 2048 256" "4096 256 256" "256 256 4096" "1024 256 4096"; do
  for sk in 1 0; do TSM_SGEMM_SPLITK=$sk $tsx tools/gpu-probe.ts f32 $shape 200 simt | sed "s/^/splitk=$sk /"; done
done
