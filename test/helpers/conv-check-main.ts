// Child-process entry of the conv2d checks (see conv-check.ts): runs every group of
// configurations on the SIMD path and thread count chosen by TSM_SIMD / TSM_NUM_THREADS and prints
// one JSON line {simd, threads, groups, failures}.
import { buildInfo } from '../../lib/runtime';
import { CONV_GROUPS } from './conv-check';

const info = buildInfo();
const failures: string[] = [];
for (const [title, run] of CONV_GROUPS) {
  try {
    run();
  } catch (err) {
    failures.push(`${title}: ${(err as Error).message}`);
  }
}
process.stdout.write(JSON.stringify({ simd: info.simd, threads: info.threads, groups: CONV_GROUPS.length, failures }) + '\n');
