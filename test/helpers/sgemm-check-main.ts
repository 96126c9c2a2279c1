// Child-process entry of the SGEMM checks (see sgemm-check.ts): prints one JSON line
// {simd, threads, cases, failures} for the SIMD path and thread count chosen by TSM_SIMD / TSM_NUM_THREADS.
import { buildInfo } from '../../lib/runtime';
import { runSgemmChecks } from './sgemm-check';

const info = buildInfo();
const res = runSgemmChecks(Number(process.env.SGEMM_CHECK_SEED ?? 1234));
process.stdout.write(JSON.stringify({ simd: info.simd, threads: info.threads, ...res }) + '\n');
