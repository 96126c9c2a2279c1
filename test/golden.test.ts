// Golden tests: the TypeScript layer end to end (modules, F, autograd, optimizers) against PyTorch 1.13.
// The fixtures test/fixtures/torch-*.json are made by tools/make-fixtures.py with Debian's
// python3-torch and committed; each case holds the inputs, the parameters under their PyTorch names,
// the upstream gradient dy, the output and the gradients with respect to inputs and parameters.
// Weights are loaded by PyTorch name (Module.loadStateDict), outputs and gradients are compared at
// float32 tolerance: |ours - torch| <= atol + rtol * |torch| with rtol 1e-4, atol 1e-5 unless noted.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import type { Tensor } from '../lib/index';
import { seededRandom as mulberry32 } from '../lib/text';

const { F, nn, optim } = tsm;

interface TJ { shape: number[]; data: number[] }
interface Case {
  name: string;
  op: string;
  config: Record<string, any>;
  inputs: Record<string, TJ>;
  params: Record<string, TJ>;
  buffers?: Record<string, TJ>;
  buffersAfter?: Record<string, TJ>;
  dy: TJ;
  out: TJ;
  grads: Record<string, TJ>;
}
interface Fixture<C = Case> { generator: string; torch: string; cases: C[]; [k: string]: any }

function load<C = Case>(file: string): Fixture<C> {
  return JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', file), 'utf8'));
}

const RTOL = 1e-4;
const ATOL = 1e-5;

/** A float32 tensor from a fixture tensor. */
function f32(j: TJ, requiresGrad = false): Tensor {
  return tsm.tensor(Float32Array.from(j.data), { shape: j.shape, requiresGrad });
}
function i32(j: TJ): Tensor {
  return tsm.tensor(Int32Array.from(j.data), { shape: j.shape });
}
/** A state dict of fixture tensors (num_batches_tracked is an integer buffer). */
function stateDict(...parts: (Record<string, TJ> | undefined)[]): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const p of parts)
    for (const [k, v] of Object.entries(p ?? {})) out[k] = k.endsWith('num_batches_tracked') ? i32(v) : f32(v);
  return out;
}

/** Compares every element; the failure message names the case, the quantity and the worst element. */
function expectClose(actual: Tensor | null | undefined, expected: TJ, what: string, rtol = RTOL, atol = ATOL): void {
  expect(actual, `${what}: missing`).toBeTruthy();
  const a = actual as Tensor;
  expect([...a.shape], `${what}: shape`).toEqual(expected.shape);
  const d = a.dataSync();
  let bad = 0, worst = -1, worstExcess = 0;
  for (let i = 0; i < d.length; i++) {
    const e = expected.data[i];
    const err = Math.abs(d[i] - e);
    const tol = atol + rtol * Math.abs(e);
    if (!(err <= tol)) {
      bad++;
      if (!(err / tol <= worstExcess)) { worstExcess = err / tol; worst = i; }
    }
  }
  if (bad > 0)
    expect.fail(`${what}: ${bad}/${d.length} elements off; worst at ${worst}: got ${d[worst]}, PyTorch ${expected.data[worst]} (${worstExcess.toFixed(1)}x tol)`);
}

function expectNumber(actual: number, expected: number, what: string, rtol = RTOL, atol = ATOL): void {
  expect(Math.abs(actual - expected), `${what}: got ${actual}, PyTorch ${expected}`).toBeLessThanOrEqual(atol + rtol * Math.abs(expected));
}

/** Checks out, then back-propagates dy and checks the gradient of every named leaf. */
function checkForwardBackward(c: Case, out: Tensor, leaves: Record<string, Tensor | null>, rtol = RTOL, atol = ATOL): void {
  expectClose(out, c.out, `${c.name}: output`, rtol, atol);
  out.backward(f32(c.dy));
  for (const [k, g] of Object.entries(c.grads)) {
    const leaf = leaves[k];
    expect(leaf, `${c.name}: no leaf for gradient ${k}`).toBeTruthy();
    expectClose(leaf!.grad, g, `${c.name}: grad ${k}`, rtol, atol);
  }
}

const pairOf = (v: unknown) => (v === null || v === undefined ? undefined : (v as number | [number, number]));

// ---------------------------------------------------------------------------------------------

describe('golden: conv2d (nn.Conv2d, weights by name)', () => {
  const fx = load('torch-conv.json');
  it('covers strides, padding, dilation, groups incl. depthwise, with and without bias', () => {
    const cfgs = fx.cases.map((c) => c.config);
    expect(new Set(cfgs.map((c) => JSON.stringify(c.stride))).size).toBeGreaterThan(2);
    expect(cfgs.some((c) => c.groups === 2)).toBe(true);
    expect(cfgs.some((c) => c.groups > 1 && c.groups === c.inChannels)).toBe(true);
    expect(cfgs.some((c) => JSON.stringify(c.dilation).includes('2'))).toBe(true);
    expect(cfgs.some((c) => !c.bias) && cfgs.some((c) => c.bias)).toBe(true);
  });
  for (const c of fx.cases) {
    it(c.name, () => tsm.tidy(() => {
      const g = c.config;
      const m = new nn.Conv2d(g.inChannels, g.outChannels, g.kernelSize,
        { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: g.groups, bias: g.bias });
      m.loadStateDict(stateDict(c.params));
      const x = f32(c.inputs.x, true);
      checkForwardBackward(c, m.forward(x), { x, weight: m.weight, bias: m.bias });
    }));
  }
});

describe('golden: pooling', () => {
  const fx = load('torch-pool.json');
  for (const c of fx.cases) {
    it(c.name, () => tsm.tidy(() => {
      const g = c.config;
      const x = f32(c.inputs.x, true);
      let y: Tensor;
      if (c.op === 'maxPool2d') {
        const m = new nn.MaxPool2d(g.kernelSize, { stride: pairOf(g.stride), padding: g.padding, dilation: g.dilation, ceilMode: g.ceilMode });
        y = m.forward(x);
      } else if (c.op === 'avgPool2d') {
        y = F.avgPool2d(x, { kernelSize: g.kernelSize, stride: pairOf(g.stride), padding: g.padding, ceilMode: g.ceilMode,
          countIncludePad: g.countIncludePad });
      } else {
        y = F.adaptiveAvgPool2d(x, g.outputSize);
      }
      checkForwardBackward(c, y, { x });
    }));
  }
});

describe('golden: softmax, logSoftmax, activations', () => {
  const fx = load('torch-activations.json');
  for (const c of fx.cases) {
    it(c.name, () => tsm.tidy(() => {
      const x = f32(c.inputs.x, true);
      const g = c.config;
      const y: Tensor = {
        softmax: () => x.softmax(g.dim),
        logSoftmax: () => F.logSoftmax(x, g.dim),
        gelu: () => new nn.GELU(g.approximate).forward(x),
        relu: () => new nn.ReLU().forward(x),
        sigmoid: () => new nn.Sigmoid().forward(x),
        tanh: () => x.tanh(),
      }[c.op]!();
      checkForwardBackward(c, y, { x });
    }));
  }
});

describe('golden: losses', () => {
  const fx = load('torch-losses.json');
  for (const c of fx.cases) {
    it(c.name, () => tsm.tidy(() => {
      const g = c.config;
      const x = f32(c.inputs.x, true);
      let y: Tensor;
      const leaves: Record<string, Tensor> = { x };
      switch (c.op) {
        case 'crossEntropy': {
          const opts = { reduction: g.reduction, ignoreIndex: g.ignoreIndex, labelSmoothing: g.labelSmoothing };
          // alternate between the functional and the module form
          y = c.name.includes('mean') ? new nn.CrossEntropyLoss(opts).forward(x, i32(c.inputs.target))
            : F.crossEntropy(x, i32(c.inputs.target), opts);
          break;
        }
        case 'nllLoss':
          y = F.nllLoss(x, i32(c.inputs.target), { reduction: g.reduction, ignoreIndex: g.ignoreIndex });
          break;
        case 'mseLoss': {
          const t = f32(c.inputs.target, true);
          leaves.target = t;
          y = new nn.MSELoss({ reduction: g.reduction }).forward(x, t);
          break;
        }
        case 'binaryCrossEntropy':
          y = g.weight ? F.binaryCrossEntropy(x, f32(c.inputs.target), { reduction: g.reduction, weight: f32(c.inputs.weight) })
            : new nn.BCELoss({ reduction: g.reduction }).forward(x, f32(c.inputs.target));
          break;
        case 'binaryCrossEntropyWithLogits':
          y = g.posWeight
            ? F.binaryCrossEntropyWithLogits(x, f32(c.inputs.target), { reduction: g.reduction, posWeight: f32(c.inputs.pos_weight) })
            : new nn.BCEWithLogitsLoss({ reduction: g.reduction }).forward(x, f32(c.inputs.target));
          break;
        default:
          throw new Error(`unknown op ${c.op}`);
      }
      checkForwardBackward(c, y, leaves);
    }));
  }
});

describe('golden: Linear, LayerNorm, BatchNorm2d, Embedding (weights by PyTorch name)', () => {
  const fx = load('torch-layers.json');
  for (const c of fx.cases) {
    it(c.name, () => tsm.tidy(() => {
      const g = c.config;
      switch (c.op) {
        case 'Linear': {
          const m = new nn.Linear(g.inFeatures, g.outFeatures, { bias: g.bias });
          m.loadStateDict(stateDict(c.params));
          const x = f32(c.inputs.x, true);
          checkForwardBackward(c, m.forward(x), { x, weight: m.weight, bias: m.bias });
          break;
        }
        case 'LayerNorm': {
          const m = new nn.LayerNorm(g.normalizedShape, { eps: g.eps, elementwiseAffine: g.elementwiseAffine });
          m.loadStateDict(stateDict(c.params));
          const x = f32(c.inputs.x, true);
          checkForwardBackward(c, m.forward(x), { x, weight: m.weight, bias: m.bias });
          break;
        }
        case 'BatchNorm2d': {
          const m = new nn.BatchNorm2d(g.numFeatures, { momentum: g.momentum, eps: g.eps, affine: g.affine });
          m.loadStateDict(stateDict(c.params, c.buffers));
          if (g.training) {
            m.train();
            tsm.noGrad(() => m.forward(f32(c.inputs.x0)));
          } else m.eval();
          const x = f32(c.inputs.x, true);
          checkForwardBackward(c, m.forward(x), { x, weight: m.weight, bias: m.bias });
          const sd = m.stateDict();
          for (const [k, v] of Object.entries(c.buffersAfter!)) expectClose(sd[k], v, `${c.name}: buffer ${k}`);
          break;
        }
        case 'Embedding': {
          const m = new nn.Embedding(g.numEmbeddings, g.embeddingDim, { paddingIdx: g.paddingIdx ?? undefined });
          m.loadStateDict(stateDict(c.params));
          checkForwardBackward(c, m.forward(i32(c.inputs.indices)), { weight: m.weight });
          break;
        }
        default:
          throw new Error(`unknown op ${c.op}`);
      }
    }));
  }
});

// ---------------------------------------------------------------------------------------------
// The MNIST CNN of DESIGN.md at batch 2. Its two large weights come from mulberry32 (same integer
// arithmetic as tools/make-fixtures.py); their gradients are checked by sample, sum, norm and a
// random projection.

function generated(shape: number[], seed: number, bound: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const r = mulberry32(seed);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = Math.floor((2 * r() - 1) * bound * 1e4 + 0.5) / 1e4;
  return tsm.tensor(d, { shape });
}

describe('golden: MNIST CNN (Sequential) at batch 2', () => {
  const c = load<any>('torch-cnn.json').cases[0];
  it('mulberry32 matches the Python generator', () => {
    const r = mulberry32(c.mulberry32.seed);
    expect(c.mulberry32.values.map(() => r())).toEqual(c.mulberry32.values);
  });
  it('output, loss and every parameter gradient', () => tsm.tidy(() => {
    const model = new nn.Sequential(
      new nn.Conv2d(1, 32, 3), new nn.ReLU(), new nn.MaxPool2d(2),
      new nn.Conv2d(32, 64, 3), new nn.ReLU(), new nn.MaxPool2d(2),
      new nn.Flatten(), new nn.Linear(1600, 512), new nn.ReLU(), new nn.Linear(512, 10));
    const sd = stateDict(c.params);
    for (const [k, g] of Object.entries<any>(c.generatedParams)) sd[k] = generated(g.shape, g.seed, g.bound);
    expect(Object.keys(model.stateDict()).sort()).toEqual(Object.keys(sd).sort());
    model.loadStateDict(sd);
    const x = f32(c.inputs.x);
    const out = model.forward(x);
    expectClose(out, c.out, 'cnn output');
    const loss = F.crossEntropy(out, i32(c.inputs.target));
    expectNumber(loss.item(), c.loss, 'cnn loss');
    loss.backward();
    const params = Object.fromEntries(model.namedParameters());
    expect(Object.keys(params).sort()).toEqual([...Object.keys(c.grads), ...Object.keys(c.gradSummaries)].sort());
    for (const [k, g] of Object.entries<TJ>(c.grads)) expectClose(params[k].grad, g, `cnn grad ${k}`);
    for (const [k, s] of Object.entries<any>(c.gradSummaries)) {
      const grad = params[k].grad!;
      expect([...grad.shape]).toEqual(s.shape);
      const d = grad.dataSync();
      const r = mulberry32(s.projSeed);
      let sum = 0, sq = 0, proj = 0;
      for (let i = 0; i < d.length; i++) { sum += d[i]; sq += d[i] * d[i]; proj += d[i] * (2 * r() - 1); }
      const norm = Math.sqrt(sq);
      // sum and projection add 18k-819k terms of both signs: compare at 1e-4 of the norm.
      expectNumber(sum, s.sum, `cnn grad ${k} sum`, 0, 1e-4 * s.norm + ATOL);
      expectNumber(proj, s.proj, `cnn grad ${k} projection`, 0, 1e-4 * s.norm + ATOL);
      expectNumber(norm, s.norm, `cnn grad ${k} norm`);
      s.positions.forEach((p: number, i: number) => expectNumber(d[p], s.values[i], `cnn grad ${k}[${p}]`));
    }
  }));
});

// ---------------------------------------------------------------------------------------------

describe('golden: optimizer trajectories over 10 steps', () => {
  const fx = load<any>('torch-optim.json');
  const make: Record<string, (p: Tensor[], o: any) => { zeroGrad(): void; step(): void }> = {
    SGD: (p, o) => new optim.SGD(p, o),
    Adam: (p, o) => new optim.Adam(p, o),
    AdamW: (p, o) => new optim.AdamW(p, o),
    RMSprop: (p, o) => new optim.RMSprop(p, o),
  };
  it('covers SGD momentum (+nesterov, weight decay), Adam (+amsgrad), AdamW', () => {
    const names = fx.cases.map((c: any) => c.name).join('\n');
    for (const s of ['SGD {"lr": 0.1, "momentum"', '"nesterov": true', 'Adam {', '"amsgrad": true', 'AdamW {'])
      expect(names).toContain(s);
  });
  for (const c of fx.cases) {
    it(c.name, () => tsm.tidy(() => {
      const model = new nn.Sequential(new nn.Linear(4, 5), new nn.Tanh(), new nn.Linear(5, 2));
      model.loadStateDict(stateDict(fx.data.init));
      const x = f32(fx.data.x), y = f32(fx.data.y);
      const opt = make[c.optimizer](model.parameters(), c.options);
      const params = Object.fromEntries(model.namedParameters());
      for (let step = 0; step < 10; step++) {
        tsm.tidy(() => {
          opt.zeroGrad();
          const loss = F.mseLoss(model.forward(x), y);
          // The trajectory compounds float32 rounding of 10 forward/backward/update passes; the losses and
          // parameters stay within 1e-4 relative / 2e-5 absolute of PyTorch's.
          expectNumber(loss.item(), c.losses[step], `${c.name}: loss at step ${step}`);
          loss.backward();
          opt.step();
        });
        for (const [k, v] of Object.entries<number[]>(c.trajectory[step]))
          expectClose(params[k], { shape: [...params[k].shape], data: v }, `${c.name}: ${k} after step ${step + 1}`, RTOL, 2e-5);
      }
    }));
  }
});
