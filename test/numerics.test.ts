// Numerics: softmax, logSoftmax, crossEntropy and logsumexp stay finite (and right) for logits of
// +-1e4; tsm.setDetectAnomaly(true) names the first op that produced NaN/Inf (forward and backward);
// same seed and thread count give bitwise-identical CPU results in fresh processes.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import { TsmAnomalyError, detectAnomaly, isAnomalyEnabled, setDetectAnomaly } from '../lib/anomaly';
import { logsumexp } from '../lib/ops';

const ROOT = path.resolve(__dirname, '..');
const allFinite = (t: tsm.Tensor) => Array.from(t.dataSync()).every(Number.isFinite);

describe('numerics at +-1e4', () => {
  const logits = () => tsm.tensor([[1e4, -1e4, 0, 1e4], [-1e4, -1e4, -1e4, -1e4], [1e4, 1e4 - 1, -1e4, 3]], { requiresGrad: true });

  it('softmax / logSoftmax: finite values and gradients', () => {
    const x = logits();
    const p = tsm.softmax(x, 1), lp = tsm.logSoftmax(x, 1);
    expect(allFinite(p) && allFinite(lp)).toBe(true);
    expect(p.toArray()).toEqual([[0.5, 0, 0, 0.5], [0.25, 0.25, 0.25, 0.25], [expect.closeTo(0.7311, 4), expect.closeTo(0.2689, 4), 0, 0]]);
    expect((lp.toArray() as number[][])[0][1]).toBeCloseTo(-2e4 - Math.log(2), 0);
    lp.sum().backward();
    expect(allFinite(x.grad!)).toBe(true);
  });

  it('crossEntropy: finite loss and gradient, with label smoothing too', () => {
    for (const labelSmoothing of [0, 0.1]) {
      const x = logits();
      const loss = tsm.F.crossEntropy(x, tsm.tensor([1, 2, 0], { dtype: 'int32' }), { labelSmoothing });
      expect(Number.isFinite(loss.item())).toBe(true);
      loss.backward();
      expect(allFinite(x.grad!)).toBe(true);
    }
    // A confidently wrong logit costs about 2e4 (not Infinity).
    const l = tsm.F.crossEntropy(tsm.tensor([[1e4, -1e4]]), tsm.tensor([1], { dtype: 'int32' }));
    expect(l.item()).toBeCloseTo(2e4, 0);
  });

  it('logsumexp: finite, exact, and its gradient is the softmax', () => {
    const x = logits();
    const l = logsumexp(x, 1);
    expect(allFinite(l)).toBe(true);
    const v = l.dataSync();
    expect(v[0]).toBeCloseTo(1e4 + Math.log(2), 2);
    expect(v[1]).toBeCloseTo(-1e4 + Math.log(4), 2);
    l.sum().backward();
    const sm = tsm.softmax(x.detach(), 1).dataSync();
    Array.from(x.grad!.dataSync()).forEach((g, i) => expect(g).toBeCloseTo(sm[i], 6));
    expect(logsumexp(tsm.tensor([[-Infinity, -Infinity]]), 1).item()).toBe(-Infinity);
    expect(logsumexp(x, -1, true).shape).toEqual([3, 1]);
  });
});

describe('setDetectAnomaly', () => {
  afterEach(() => setDetectAnomaly(false));

  it('names the first op that produced NaN or Infinity in forward', () => {
    setDetectAnomaly(true);
    expect(isAnomalyEnabled()).toBe(true);
    const x = tsm.tensor([1, 0, 2], { requiresGrad: true });
    const y = x.mul(3); // fine
    let err: unknown;
    try {
      y.sub(3).log().mul(2).exp(); // log(-3)/log(0) is the first bad op, before mul and exp
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TsmAnomalyError);
    expect((err as TsmAnomalyError).op).toBe('log');
    expect((err as TsmAnomalyError).phase).toBe('forward');
    expect((err as Error).message).toMatch(/'log' produced NaN in forward/);
    // Division by zero is named as 'div', without gradients as well.
    expect(() => tsm.noGrad(() => tsm.tensor([1]).div(tsm.tensor([0])))).toThrow(/'div' produced Infinity/);
    // Off again: no checks.
    setDetectAnomaly(false);
    expect(tsm.tensor([0]).log().item()).toBe(-Infinity);
  });

  it('names the op whose backward produced NaN or Infinity', () => {
    const x = tsm.tensor([0, 4], { requiresGrad: true });
    const loss = x.sqrt().sum(); // finite forward; d sqrt / dx at 0 is Infinity
    expect(() => detectAnomaly(() => loss.backward())).toThrow(/backward of 'sqrt' produced Infinity/);
    expect(isAnomalyEnabled()).toBe(false);
  });

  it('costs nothing when off and leaves results unchanged when on', () => {
    const a = tsm.randn([64, 64]);
    const off = a.matmul(a).softmax(1).dataSync();
    const on = detectAnomaly(() => a.matmul(a).softmax(1).dataSync());
    expect(Array.from(on)).toEqual(Array.from(off));
  });
});

describe('determinism', () => {
  it('same seed and thread count: bitwise-identical parameters in fresh processes', () => {
    const run = (threads: number, seed = 3) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/reliability/determinism-child.ts')], {
        cwd: ROOT, env: { ...process.env, THREADS: String(threads), SEED: String(seed) }, encoding: 'utf8', timeout: 60_000,
      });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.trim();
    };
    const [a, b] = [run(2), run(2)];
    const [c, d] = [run(1), run(1)];
    console.log(`determinism: 2 threads ${a.slice(0, 16)} / ${b.slice(0, 16)}; 1 thread ${c.slice(0, 16)} / ${d.slice(0, 16)}`);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toBe(a);
    expect(d).toBe(c);
    expect(run(2, 4)).not.toBe(a); // the seed matters
  });
});
