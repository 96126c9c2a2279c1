# Call 3 of the first GPU session: SGEMM block count and split K, the wgmma stage release, where the
# LM training step spends its GPU time. Run through tools/gpu-session.sh (sets LOGS).
tsx="node node_modules/tsx/dist/cli.mjs"
echo "== SGEMM: MINB 1 / 2 (host clock, 20 products)"
for shape in "1024 1024 1024" "2048 2048 2048" "4096 4096 4096" "8192 8192 8192"; do
  for minb in 1 2; do TSM_SGEMM_MINB=$minb $tsx tools/gpu-probe.ts f32 $shape 20 simt | sed "s/^/minb=$minb /"; done
done
echo "== wgmma: stage released after wait_group 1 (0) or 0 (1)"
for t in bf16 tf32; do for shape in "2048 2048 2048" "4096 4096 4096" "8192 8192 8192"; do
  for w in 0 1; do TSM_WGMMA_WAIT0=$w $tsx tools/gpu-probe.ts $t $shape 20 wgmma | sed "s/^/wait0=$w /"; done
done; done
echo "== LM / CNN steps, split K on / off"
for ns in 0 1; do for m in lm cnn; do TSM_SGEMM_NO_SPLITK=$ns $tsx tools/gpu-lm-steps.ts $m 10 3 | sed "s/^/nosplit=$ns /"; done; done
ncu --clock-control none --target-processes all -k regex:wgmma --launch-skip 1 --launch-count 1 \
  --section SpeedOfLight --section WarpStateStats --section SchedulerStats \
  $tsx tools/gpu-probe.ts bf16 4096 4096 4096 3 wgmma > "$LOGS/ncu-bf16-wgmma-v2.txt" 2>&1
grep -E "Duration|Compute \(SM\)|No Eligible|Warp Cycles Per Issued|spends" "$LOGS/ncu-bf16-wgmma-v2.txt"
ncu --query-metrics --chip gh100 > "$LOGS/ncu-metrics.txt" 2>&1
timeout 200 ncu --clock-control none --target-processes all --metrics gpu__time_duration.sum --csv \
  $tsx tools/gpu-lm-steps.ts lm 1 0 > "$LOGS/ncu-lm-step.csv" 2>&1
python3 - "$LOGS/ncu-lm-step.csv" <<'PY'
import csv, sys, collections
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in csv.DictReader(rows):
    if r.get('Metric Name') != 'gpu__time_duration.sum': continue
    name = r['Kernel Name'].split('(')[0].split('<')[0][-60:]
    v = float(r['Metric Value'].replace(',', ''))
    unit = r.get('Metric Unit', 'nsecond')
    v = v / 1000 if unit == 'nsecond' else v * 1000 if unit == 'msecond' else v
    tot[name] += v; cnt[name] += 1
s = sum(tot.values())
print(f"LM step under ncu: {sum(cnt.values())} kernels, {s/1000:.2f} ms of kernel time")
for k, v in sorted(tot.items(), key=lambda x: -x[1])[:25]:
    print(f"{v/1000:8.3f} ms {cnt[k]:5d}x  {k}")
PY
