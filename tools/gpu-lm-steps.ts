// Training steps of bench/cuda-train's Transformer LM (or the CNN) on the GPU, for profiling:
//   node node_modules/tsx/dist/cli.mjs tools/gpu-lm-steps.ts [lm|cnn] [STEPS] [WARMUP]
// Prints the wall time per step (synchronised blocks). Under ncu, pass WARMUP 0 and STEPS 1.
import * as tsm from '../lib/index';
import { buildCase, CASES, type ModelKey } from '../bench/cuda-train';

const [key = 'lm', stepsS = '10', warmS = '3'] = process.argv.slice(2);
const c = buildCase(CASES[key as ModelKey], 'cuda');
for (let i = 0; i < Number(warmS); ++i) c.step().dispose();
tsm.cuda.synchronize();
const t0 = performance.now();
for (let i = 0; i < Number(stepsS); ++i) c.step().dispose();
tsm.cuda.synchronize();
console.log(`gpu-lm-steps ${key}: ${((performance.now() - t0) / Number(stepsS)).toFixed(3)} ms/step over ${stepsS}`);
c.dispose();
