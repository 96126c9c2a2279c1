#!/usr/bin/env node
// A/B of two builds of the addon in one process, for kernel changes smaller than the run-to-run
// noise of this machine (+-10% between runs of the same binary). Both builds are loaded side by
// side (each .node file is self-contained: its own kernels and thread pool), then timed in rounds
// that alternate which build runs first; each round takes the best of a few calls, and the report
// gives the median per build and how many rounds each won. Both builds must compute the same
// result (checked after timing).
//
//   cp build/Release/tensorsmith.node /tmp/a.node      # build A
//   ...change, rebuild...
//   node tools/ab-addons.js /tmp/a.node build/Release/tensorsmith.node \
//        sgemm:NN:1024:1024:1024 conv:64:32:13:64:3:0 [--threads 2] [--rounds 15] [--cold]
//
// --cold writes through a 64 MiB buffer before every timed call, so the operands come from DRAM as
// they do inside a training step (where other layers ran in between), not from the caches.
//
// Cases: sgemm:<NN|NT|TN|TT>:m:n:k, conv:N:C:H:OC:K:pad (square images, stride 1) which times
// the forward, backward-data and backward-weight passes, and lstm:T:B:I:H (seq-first, with h0, c0 and
// both biases) which times the fused forward and backward through time.
'use strict';
const path = require('path');

function usage(msg) {
  console.error(`ab-addons: ${msg}\nusage: node tools/ab-addons.js A.node B.node CASE... [--threads N] [--rounds R]`);
  process.exit(2);
}

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(args[i + 1]);
  args.splice(i, 2);
  if (!Number.isInteger(v) || v < 1) usage(`--${name} needs a positive integer`);
  return v;
};
const coldAt = args.indexOf('--cold');
const cold = coldAt >= 0;
if (cold) args.splice(coldAt, 1);
const threads = opt('threads', 2), rounds = opt('rounds', 15);
const flushBuf = cold ? new Float32Array(16 << 20) : null;
let flushSum = 0;
const flush = () => {
  if (!flushBuf) return;
  for (let i = 0; i < flushBuf.length; i += 16) flushBuf[i] += 1;
  flushSum += flushBuf[flushBuf.length - 16];
};
if (args.length < 3) usage('two addon files and at least one case are needed');
const load = (f) => {
  const m = { exports: {} };
  process.dlopen(m, path.resolve(f));
  m.exports.setNumThreads(threads);
  return m.exports;
};
const A = load(args[0]), B = load(args[1]);
const rand = (n) => { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = Math.random() - 0.5; return a; };

// Each case: name, flop count, and run(lib, out) writing into its own output buffer.
function cases(spec) {
  const f = spec.split(':');
  if (f[0] === 'sgemm' && f.length === 5 && /^[NT]{2}$/.test(f[1])) {
    const [m, n, k] = f.slice(2).map(Number);
    const ta = f[1][0] === 'T', tb = f[1][1] === 'T';
    const a = rand(m * k), b = rand(k * n);
    return [{ name: spec, flop: 2 * m * n * k, size: m * n,
      run: (L, c) => L.sgemm(ta, tb, m, n, k, 1, a, ta ? m : k, b, tb ? k : n, 0, c, n, false) }];
  }
  if (f[0] === 'conv' && f.length === 7) {
    const [N, C, H, OC, K, P] = f.slice(1).map(Number);
    const OH = H + 2 * P - K + 1;
    if (!(OH > 0)) usage(`${spec}: empty output`);
    const x = rand(N * C * H * H), w = rand(OC * C * K * K), bias = rand(OC), dy = rand(N * OC * OH * OH);
    const g = [N, C, H, H, OC, K, K, 1, 1, P, P, 1, 1, 1];
    const flop = 2 * N * OC * OH * OH * C * K * K;
    return [
      { name: `${spec} fwd`, flop, size: N * OC * OH * OH, run: (L, y) => L.conv2dForward(y, x, w, bias, ...g) },
      { name: `${spec} bwd-data`, flop, size: N * C * H * H, run: (L, dx) => L.conv2dBackwardData(dx, dy, w, ...g) },
      { name: `${spec} bwd-weight`, flop, size: OC * C * K * K + OC,
        run: (L, o) => L.conv2dBackwardWeight(o.subarray(0, OC * C * K * K), o.subarray(OC * C * K * K), dy, x, ...g) },
    ];
  }
  if (f[0] === 'lstm' && f.length === 5) {
    const [T, Bt, I, H] = f.slice(1).map(Number);
    const G = 4 * H, TB = T * Bt;
    const x = rand(TB * I), h0 = rand(Bt * H), c0 = rand(Bt * H), wIh = rand(G * I), wHh = rand(G * H);
    const bIh = rand(G), bHh = rand(G), dy = rand(TB * H);
    // Both builds' backward runs on one forward's results (A's), so their outputs must agree.
    const y = new Float32Array(TB * H), gates = new Float32Array(TB * G), cs = new Float32Array(TB * H);
    const hN = new Float32Array(Bt * H), cN = new Float32Array(Bt * H);
    A.lstmForward(y, hN, cN, gates, cs, x, h0, c0, wIh, wHh, bIh, bHh, T, Bt, I, H, false);
    const scratch = new Map();
    const state = (out) => {
      if (!scratch.has(out)) scratch.set(out, [new Float32Array(TB * G), new Float32Array(TB * H)]);
      return scratch.get(out);
    };
    return [
      { name: `${spec} fwd`, flop: 2 * TB * G * (I + H), size: TB * H + 2 * Bt * H,
        run: (L, o) => L.lstmForward(o.subarray(0, TB * H), o.subarray(TB * H, TB * H + Bt * H), o.subarray(TB * H + Bt * H),
          ...state(o), x, h0, c0, wIh, wHh, bIh, bHh, T, Bt, I, H, false) },
      { name: `${spec} bwd`, flop: 4 * TB * G * (I + H), size: TB * I + G * I + G * H + G,
        run: (L, o) => L.lstmBackward(o.subarray(0, TB * I), null, null, o.subarray(TB * I, TB * I + G * I),
          o.subarray(TB * I + G * I, TB * I + G * I + G * H), o.subarray(TB * I + G * I + G * H), null, dy, null, null,
          x, h0, c0, wIh, wHh, y, gates, cs, T, Bt, I, H, false) },
    ];
  }
  return usage(`cannot read the case '${spec}'`);
}

const median = (v) => v.slice().sort((p, q) => p - q)[v.length >> 1];
for (const c of args.slice(2).flatMap(cases)) {
  const outA = new Float32Array(c.size), outB = new Float32Array(c.size);
  c.run(A, outA); c.run(B, outB); // warm-up
  const reps = cold ? 5 : Math.max(3, Math.min(20, Math.round(1e9 / c.flop)));
  const ta = [], tb = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [[A, ta, outA], [B, tb, outB]] : [[B, tb, outB], [A, ta, outA]];
    for (const [L, times, out] of order) {
      let best = Infinity;
      for (let i = 0; i < reps; i++) {
        flush();
        const t0 = performance.now();
        c.run(L, out);
        best = Math.min(best, performance.now() - t0);
      }
      times.push(best);
    }
  }
  let scale = 0, diff = 0;
  for (let i = 0; i < c.size; i++) { scale = Math.max(scale, Math.abs(outB[i])); diff = Math.max(diff, Math.abs(outA[i] - outB[i])); }
  const wins = ta.filter((t, i) => t < tb[i]).length;
  const ma = median(ta), mb = median(tb);
  console.log(`${c.name.padEnd(32)} A ${ma.toFixed(3)} ms (${(c.flop / ma / 1e6).toFixed(0)} GFLOP/s)  ` +
    `B ${mb.toFixed(3)} ms  A speed-up ${(mb / ma).toFixed(3)}  A faster in ${wins}/${rounds}  ` +
    `max |A-B|/max|B| ${(diff / (scale || 1)).toExponential(1)}`);
}
