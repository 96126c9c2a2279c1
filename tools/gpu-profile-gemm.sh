# Profiles one product of each GEMM family (ncu, clocks as found) and dumps their machine code.
# Run through tools/gpu-session.sh (sh=tools/gpu-profile-gemm.sh), which sets LOGS.
tsx="node node_modules/tsx/dist/cli.mjs"
node=build/Release/tensorsmith.node
cuobjdump -sass "$node" > "$LOGS/sass-all.txt" 2>&1
grep -n "Function : " "$LOGS/sass-all.txt" | grep -i "gemm" | head -20
for spec in "bf16 4096 4096 4096 3 wgmma" "tf32 4096 4096 4096 3 wgmma" "f32 4096 4096 4096 3 simt"; do
  set -- $spec
  $tsx tools/gpu-probe.ts $spec
  ncu --clock-control none --target-processes all -k regex:gemm --launch-skip 1 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis \
    --section Occupancy --section LaunchStats \
    $tsx tools/gpu-probe.ts $spec > "$LOGS/ncu-$1-$6.txt" 2>&1
  echo "== ncu $spec"; grep -E "Duration|Throughput|Busy|Pipe|Stall|Issued|Eligible|No Eligible|Registers|Achieved Occupancy|L2 Hit|Mem Busy|Max Bandwidth|warp cycles per" "$LOGS/ncu-$1-$6.txt" | head -40
done
