// tsm.GradScaler on CPU tensors (PyTorch's torch.amp.GradScaler semantics): scale, unscale_, step
// skipped on inf/NaN, backoff and growth of the scale, call-order errors, state dicts, disabled
// pass-through, and the same parameters as an unscaled run when nothing overflows. The CUDA side
// (one kernel, one read-back) is in test/helpers/amp-suite.ts.
import { describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import type { Tensor } from '../lib/index';

const { nn, optim, F } = tsm;

function model(seed: number) {
  tsm.manualSeed(seed);
  return new nn.Sequential(new nn.Linear(6, 16), new nn.Tanh(), new nn.Linear(16, 3));
}

describe('GradScaler', () => {
  it('defaults and validation', () => {
    const s = new tsm.GradScaler();
    expect(s.getScale()).toBe(65536);
    expect(s.getGrowthFactor()).toBe(2);
    expect(s.getBackoffFactor()).toBe(0.5);
    expect(s.getGrowthInterval()).toBe(2000);
    expect(s.isEnabled()).toBe(true);
    expect(() => new tsm.GradScaler({ initScale: -1 })).toThrow(/GradScaler: initScale must be a finite number/);
    expect(() => new tsm.GradScaler({ growthFactor: 1 })).toThrow(/growthFactor/);
    expect(() => new tsm.GradScaler({ backoffFactor: 1 })).toThrow(/backoffFactor/);
    expect(() => new tsm.GradScaler({ growthInterval: 0.5 })).toThrow(/growthInterval must be a positive integer/);
    expect(() => s.scale(3 as never)).toThrow(/GradScaler.scale: outputs must be a Tensor/);
    expect(() => s.step({} as never)).toThrow(/optimizer must be a tsm.optim optimizer/);
  });

  it('scale() multiplies by the scale (tensors and arrays), differentiably', () => {
    const s = new tsm.GradScaler({ initScale: 1024 });
    const x = tsm.tensor([1, -2], { requiresGrad: true });
    const [a, b] = s.scale([x.sum(), x.mul(2)]);
    expect(a.item()).toBe(-1024);
    expect(b.dataSync()).toEqual(Float32Array.from([2048, -4096]));
    a.backward();
    expect(x.grad!.dataSync()).toEqual(Float32Array.from([1024, 1024]));
  });

  it('same parameters as an unscaled run when nothing overflows (SGD with momentum, Adam)', () => {
    for (const make of [(p: Tensor[]) => new optim.SGD(p, { lr: 0.1, momentum: 0.9 }), (p: Tensor[]) => new optim.Adam(p, { lr: 0.01 })]) {
      const m1 = model(1), m2 = model(1);
      const o1 = make(m1.parameters()), o2 = make(m2.parameters());
      const scaler = new tsm.GradScaler({ initScale: 2 ** 12, growthInterval: 2 });
      tsm.manualSeed(9);
      const x = tsm.randn([8, 6]), y = tsm.randint(0, 3, [8]);
      for (let step = 0; step < 6; step++) {
        const l1 = F.crossEntropy(m1.forward(x), y);
        l1.backward();
        o1.step();
        o1.zeroGrad();
        const l2 = F.crossEntropy(m2.forward(x), y);
        scaler.scale(l2).backward();
        scaler.step(o2);
        scaler.update();
        o2.zeroGrad();
      }
      expect(scaler.getScale()).toBe(2 ** 15); // grew every 2 clean steps
      const p1 = m1.parameters(), p2 = m2.parameters();
      for (let i = 0; i < p1.length; i++) expect(p2[i].dataSync(), `param ${i}`).toEqual(p1[i].dataSync());
    }
  });

  it('skips the step on inf or NaN gradients, backs off the scale and resets the growth count', () => {
    for (const bad of [Infinity, -Infinity, NaN]) {
      const m = model(2);
      const opt = new optim.SGD(m.parameters(), { lr: 0.1 });
      const scaler = new tsm.GradScaler({ initScale: 256, growthInterval: 3 });
      const x = tsm.randn([4, 6]);
      const before = m.parameters().map((p) => p.dataSync());
      // Two clean steps (growth count 2), then one with a bad gradient.
      for (let i = 0; i < 2; i++) {
        scaler.scale(m.forward(x).sum()).backward();
        scaler.step(opt);
        scaler.update();
        opt.zeroGrad();
      }
      expect(scaler.stateDict()).toMatchObject({ scale: 256, growthTracker: 2 });
      const mid = m.parameters().map((p) => p.dataSync());
      expect(mid[0]).not.toEqual(before[0]);
      scaler.scale(m.forward(x).sum()).backward();
      const g = m.parameters()[2].grad!;
      const d = g._data as Float32Array;
      d[1] = bad;
      expect(scaler.step(opt)).toBeUndefined();
      m.parameters().forEach((p, i) => expect(p.dataSync(), `param ${i} unchanged`).toEqual(mid[i]));
      expect(opt.stepCount).toBe(2);
      scaler.update();
      expect(scaler.getScale()).toBe(128);
      expect(scaler.stateDict()).toMatchObject({ growthTracker: 0 });
      opt.zeroGrad();
      // Clean steps again: growth after growthInterval (3) of them.
      for (let i = 0; i < 3; i++) {
        scaler.scale(m.forward(x).sum()).backward();
        scaler.step(opt);
        scaler.update();
        opt.zeroGrad();
      }
      expect(scaler.getScale()).toBe(256);
    }
  });

  it('unscale_ before clipping, then step does not unscale twice; call-order errors as PyTorch', () => {
    const m = model(3);
    const opt = new optim.SGD(m.parameters(), { lr: 0.1 });
    const scaler = new tsm.GradScaler({ initScale: 8 });
    const x = tsm.randn([4, 6]);
    scaler.scale(m.forward(x).sum()).backward();
    const scaled = m.parameters()[0].grad!.dataSync();
    scaler.unscale_(opt);
    const unscaled = m.parameters()[0].grad!.dataSync();
    expect(Array.from(unscaled)).toEqual(Array.from(scaled, (v) => v / 8));
    expect(() => scaler.unscale_(opt)).toThrow(/unscale_\(\) has already been called on this optimizer since the last update\(\)/);
    optim.clipGradNorm(m.parameters(), 1e9);
    scaler.step(opt);
    expect(m.parameters()[0].grad!.dataSync()).toEqual(unscaled);
    expect(() => scaler.step(opt)).toThrow(/step\(\) has already been called since the last update\(\)/);
    expect(() => scaler.unscale_(opt)).toThrow(/unscale_\(\) is being called after step\(\)/);
    scaler.update();
    expect(() => scaler.update()).toThrow(/no inf checks were recorded prior to update\(\)/);
    scaler.update(4);
    expect(scaler.getScale()).toBe(4);
  });

  it('stateDict / loadStateDict; a disabled scaler is a pass-through', () => {
    const a = new tsm.GradScaler({ initScale: 32, growthInterval: 5 });
    const b = new tsm.GradScaler();
    b.loadStateDict(a.stateDict() as never);
    expect(b.stateDict()).toEqual({ scale: 32, growthFactor: 2, backoffFactor: 0.5, growthInterval: 5, growthTracker: 0 });
    expect(() => b.loadStateDict({} as never)).toThrow(/state dict is empty/);
    expect(() => b.loadStateDict({ ...a.stateDict(), scale: -1 } as never)).toThrow(/scale must be/);
    const off = new tsm.GradScaler({ enabled: false });
    const m = model(4);
    const opt = new optim.SGD(m.parameters(), { lr: 0.1 });
    const loss = m.forward(tsm.randn([2, 6])).sum();
    expect(off.scale(loss)).toBe(loss);
    expect(off.getScale()).toBe(1);
    expect(off.stateDict()).toEqual({});
    loss.backward();
    off.step(opt);
    off.update();
    expect(opt.stepCount).toBe(1);
  });
});
