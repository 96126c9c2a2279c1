// A small deterministic training run shared by the threads and determinism tests: an MLP with
// dropout (so the RNG is exercised) trained with Adam on seeded random data. Returns the
// parameters' bytes.
import * as tsm from '../../lib/index';

export function trainSmall(seed: number, steps: number): Uint8Array {
  tsm.manualSeed(seed);
  const nn = tsm.nn;
  const model = new nn.Sequential(new nn.Linear(16, 32), new nn.ReLU(), new nn.Dropout(0.1), new nn.Linear(32, 4));
  const opt = new tsm.optim.Adam(model.parameters(), { lr: 1e-2 });
  const x = tsm.randn([64, 16]);
  const y = tsm.randint(0, 4, [64]);
  for (let s = 0; s < steps; s++) {
    tsm.tidy(() => {
      opt.zeroGrad();
      const loss = tsm.F.crossEntropy(model.forward(x), y);
      loss.backward();
      opt.step();
    });
  }
  const parts = model.parameters().map((p) => new Uint8Array((p.dataSync() as Float32Array).buffer));
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  x.dispose();
  y.dispose();
  return out;
}
