// nn.MultiheadAttention, nn.TransformerEncoderLayer (both norm orders, both activations) and
// nn.TransformerEncoder against PyTorch 1.13 (tools/fixtures/make_attention_fixtures.py): PyTorch's
// weights loaded by name, outputs and the gradients of the input and of every parameter compared.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import type { Tensor } from '../lib/index';
import {
  LearnedPositionalEmbedding, MultiheadAttention, PositionalEncoding, TransformerEncoder, TransformerEncoderLayer,
} from '../lib/transformer';

interface TJ { shape: number[]; data: number[] }
interface Case {
  name: string;
  config: Record<string, any>;
  inputs: Record<string, TJ>;
  params: Record<string, TJ>;
  dy: TJ;
  out: TJ;
  grads: Record<string, TJ>;
}
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'attn-modules.json'), 'utf8')) as { mha: Case[]; layers: Case[] };

const MASKS = new Set(['keyPaddingMask', 'attnMask', 'srcMask', 'srcKeyPaddingMask', 'mask']);
function input(name: string, j: TJ, isFloatMask = false): Tensor {
  if (MASKS.has(name) && !isFloatMask) return tsm.tensor(Int32Array.from(j.data), { shape: j.shape });
  return tsm.tensor(Float32Array.from(j.data), { shape: j.shape, requiresGrad: !MASKS.has(name) });
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rtol = 1e-4, atol = 2e-5): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const ok = Math.abs(actual[i] - expected[i]) <= atol + rtol * Math.abs(expected[i]);
    if (!ok) expect.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

function loadParams(m: { loadStateDict(sd: Record<string, Tensor>): unknown }, params: Record<string, TJ>): void {
  const sd: Record<string, Tensor> = {};
  for (const [k, j] of Object.entries(params)) sd[k] = tsm.tensor(Float32Array.from(j.data), { shape: j.shape });
  m.loadStateDict(sd);
}

function checkCase(c: Case, module: { namedParameters(): [string, Tensor][] }, inputs: Record<string, Tensor>, out: Tensor): void {
  expectClose(out.dataSync(), c.out.data, 'out');
  out.backward(tsm.tensor(Float32Array.from(c.dy.data), { shape: c.dy.shape }));
  const names = module.namedParameters().map(([k]) => k).sort();
  expect(names).toEqual(Object.keys(c.params).sort());
  for (const [k, p] of module.namedParameters()) expectClose(p.grad!.dataSync(), c.grads[k].data, `grad ${k}`);
  for (const [k, g] of Object.entries(c.grads))
    if (k.startsWith('input.')) expectClose(inputs[k.slice(6)].grad!.dataSync(), g.data, `grad ${k}`);
}

describe('MultiheadAttention vs PyTorch', () => {
  for (const c of fixture.mha) {
    it(c.name, () => {
      const m = new MultiheadAttention({ embedDim: c.config.embedDim, numHeads: c.config.numHeads, batchFirst: c.config.batchFirst, bias: c.config.bias ?? true });
      loadParams(m, c.params);
      const isFloatMask = c.name.includes('float mask');
      const xs: Record<string, Tensor> = {};
      for (const [k, j] of Object.entries(c.inputs)) xs[k] = input(k, j, isFloatMask && k === 'attnMask');
      const q = xs.x ?? xs.query, k = xs.x ?? xs.key, v = xs.x ?? xs.value;
      const [out, w] = m.forward(q, k, v, { keyPaddingMask: xs.keyPaddingMask, attnMask: xs.attnMask });
      expect(w).toBeNull();
      checkCase(c, m, xs, out);
    });
  }

  it('isCausal gives the same result as a causal boolean mask', () => {
    tsm.manualSeed(2);
    const m = new MultiheadAttention({ embedDim: 8, numHeads: 2, batchFirst: true });
    const x = tsm.randn([2, 5, 8]);
    const causal = tsm.tensor(Int32Array.from({ length: 25 }, (_, i) => (i % 5 > Math.floor(i / 5) ? 1 : 0)), { shape: [5, 5] });
    const [a] = m.forward(x, x, x, { isCausal: true });
    const [b] = m.forward(x, x, x, { attnMask: causal });
    expectClose(a.dataSync(), b.dataSync(), 'isCausal vs mask', 1e-5, 1e-6);
  });

  it('PyTorch names, shapes and initialisation; bad options are named errors', () => {
    const m = new MultiheadAttention({ embedDim: 12, numHeads: 3 });
    const shapes = Object.fromEntries(m.namedParameters().map(([k, p]) => [k, p.shape]));
    expect(shapes).toEqual({ in_proj_weight: [36, 12], in_proj_bias: [36], 'out_proj.weight': [12, 12], 'out_proj.bias': [12] });
    expect(Array.from(m.in_proj_bias!.dataSync()).every((x) => x === 0)).toBe(true);
    expect(Array.from(m.out_proj.bias!.dataSync()).every((x) => x === 0)).toBe(true);
    const bound = Math.sqrt(6 / (12 + 36));
    expect(Array.from(m.in_proj_weight.dataSync()).every((x) => Math.abs(x) <= bound)).toBe(true);
    expect(() => new MultiheadAttention({ embedDim: 10, numHeads: 3 })).toThrow(/divisible by numHeads/);
    expect(() => m.forward(tsm.randn([4, 2, 10]), tsm.randn([4, 2, 10]), tsm.randn([4, 2, 10]))).toThrow(/E = 12/);
    const x = tsm.randn([4, 2, 12]);
    expect(() => m.forward(x, x, x, { keyPaddingMask: tsm.zeros([2, 5], { dtype: 'int32' }) })).toThrow(/keyPaddingMask of shape/);
    expect(() => m.forward(x, x, x, { needWeights: true })).toThrow(/needWeights/);
  });
});

describe('TransformerEncoderLayer and TransformerEncoder vs PyTorch', () => {
  for (const c of fixture.layers) {
    it(c.name, () => {
      const cfg = c.config;
      const mk = () => new TransformerEncoderLayer({ dModel: cfg.dModel, nhead: cfg.nhead, dimFeedforward: cfg.dimFeedforward,
        dropout: 0, activation: cfg.activation ?? 'relu', normFirst: cfg.normFirst, batchFirst: cfg.batchFirst });
      const module = cfg.numLayers
        ? new TransformerEncoder(mk(), cfg.numLayers, { norm: cfg.norm ? new tsm.nn.LayerNorm(cfg.dModel) : null })
        : mk();
      loadParams(module, c.params);
      const xs: Record<string, Tensor> = {};
      for (const [k, j] of Object.entries(c.inputs)) xs[k] = input(k, j);
      const out = module instanceof TransformerEncoder
        ? module.forward(xs.x, { mask: xs.mask })
        : module.forward(xs.x, { srcMask: xs.srcMask, srcKeyPaddingMask: xs.srcKeyPaddingMask });
      checkCase(c, module, xs, out);
    });
  }

  it('TransformerEncoder copies the layer (independent weights) or calls a factory; names layers.N', () => {
    const layer = new TransformerEncoderLayer({ dModel: 8, nhead: 2, dimFeedforward: 16 });
    const enc = new TransformerEncoder(layer, 3);
    const names = enc.namedParameters().map(([k]) => k);
    expect(names).toContain('layers.2.self_attn.in_proj_weight');
    expect(names).toContain('layers.0.norm2.bias');
    expect(enc.layers[0].linear1.weight).not.toBe(enc.layers[1].linear1.weight);
    expect(Array.from(enc.layers[1].linear1.weight.dataSync())).toEqual(Array.from(layer.linear1.weight.dataSync()));
    const enc2 = new TransformerEncoder(() => new TransformerEncoderLayer({ dModel: 8, nhead: 2, dimFeedforward: 16 }), 2);
    expect(enc2.layers.length).toBe(2);
  });
});

describe('positional encodings', () => {
  it('PositionalEncoding: sin on even, cos on odd features, added per position', () => {
    const pe = new PositionalEncoding(6, { dropout: 0, batchFirst: true, maxLen: 10 });
    const x = tsm.zeros([2, 3, 6]);
    const y = pe.forward(x).dataSync();
    const pos = 2, i = 2;
    const angle = pos / Math.pow(10000, i / 6);
    expect(y[pos * 6 + i]).toBeCloseTo(Math.sin(angle), 6);
    expect(y[pos * 6 + i + 1]).toBeCloseTo(Math.cos(angle), 6);
    expect(y[18 + pos * 6 + i]).toBeCloseTo(Math.sin(angle), 6);
    expect(() => pe.forward(tsm.zeros([2, 11, 6]))).toThrow(/exceeds maxLen/);
  });
  it('LearnedPositionalEmbedding: a trainable table, gradient summed over the batch', () => {
    const lp = new LearnedPositionalEmbedding(8, 4);
    expect(lp.namedParameters().map(([k]) => k)).toEqual(['weight']);
    const x = tsm.zeros([5, 3, 4]); // (L, N, d)
    lp.forward(x).sum().backward();
    const g = lp.weight.grad!.dataSync();
    expect(g[0]).toBe(3);
    expect(g[5 * 4]).toBe(0);
  });
});
