// Child of test/numerics.test.ts: trains a few steps from a seed with THREADS threads and prints the
// sha256 of the parameters' bytes (fresh process each time: nothing carried over).
import { createHash } from 'node:crypto';
import * as tsm from '../../lib/index';
import { trainSmall } from './train';

tsm.setNumThreads(Number(process.env.THREADS ?? 2));
const bytes = trainSmall(Number(process.env.SEED ?? 3), 40);
// A conv layer too: its backward reduces over the batch, where thread partitioning could matter.
tsm.manualSeed(5);
const conv = new tsm.nn.Conv2d(3, 8, 3);
const opt = new tsm.optim.SGD(conv.parameters(), { lr: 0.1, momentum: 0.9 });
const x = tsm.randn([8, 3, 16, 16]);
for (let i = 0; i < 5; i++) tsm.tidy(() => { opt.zeroGrad(); conv.forward(x).square().mean().backward(); opt.step(); });
const h = createHash('sha256').update(bytes);
for (const p of conv.parameters()) h.update(new Uint8Array((p.dataSync() as Float32Array).buffer));
process.stdout.write(`${h.digest('hex')}\n`);
