#!/usr/bin/env node
// Smoke test of a tensorsmith build on the platform it runs on (used under qemu-aarch64 by
// tools/arm64/build-and-test.sh, but it runs anywhere):
//   node tools/arm64/smoke.js PACKAGE_DIR [--expect-arch arm64] [--dump OUT.json]
// PACKAGE_DIR is an installed-like tensorsmith (package.json, dist/, prebuilds/, node_modules/).
// Checks: the addon loads through the normal loader, buildInfo, SGEMM against a float64 JS
// reference over edge shapes, conv2d against a direct JS convolution, and a few steps of training
// a Linear model. --dump writes the outputs of the GEMM consumers (matmul, conv2d, LSTM, attention)
// so two runs (NEON and TSM_SIMD=generic) can be compared by tools/arm64/compare.js.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const pkgDir = path.resolve(process.argv[2] || '.');
const opt = (name) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const tsm = require(path.join(pkgDir, 'dist', 'cjs', 'index.js'));

let failures = 0;
function check(name, ok, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`);
  if (!ok) failures++;
}

// Deterministic inputs without the library's RNG (so they do not depend on what is being tested).
function lcg(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1;
}
function randArray(n, seed) {
  const r = lcg(seed), a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r();
  return a;
}

const info = tsm.buildInfo();
console.log(`tensorsmith ${info.version} on ${process.platform}-${process.arch}, node ${process.version}, simd ${info.simd}, threads ${info.threads}`);
const expectArch = opt('--expect-arch');
if (expectArch) check(`process.arch is ${expectArch}`, process.arch === expectArch, process.arch);
if (process.arch === 'arm64') check('simd is neon or generic', info.simd === 'neon' || info.simd === 'generic', info.simd);
check('cuda not compiled into a cross build', process.arch !== 'arm64' || !info.cuda.compiled);

// ---- SGEMM vs a float64 reference, shapes that hit full and edge tiles, both transposes ----
let worst = 0;
const shapes = [[1, 1, 1], [7, 5, 3], [8, 12, 16], [9, 13, 17], [33, 29, 70], [64, 64, 64], [100, 37, 300], [130, 250, 260]];
for (const [m, n, k] of shapes) {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const a = randArray(m * k, m * 31 + k), b = randArray(k * n, n * 17 + k), c0 = randArray(m * n, m + n);
      const c = c0.slice();
      const alpha = 0.75, beta = 0.5;
      tsm.kernels.sgemm({ transA, transB, m, n, k, alpha, a, b, beta, c });
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let p = 0; p < k; p++) s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
          const want = alpha * s + beta * c0[i * n + j];
          worst = Math.max(worst, Math.abs(c[i * n + j] - want) / (1 + Math.abs(want)));
        }
      }
    }
  }
}
check('kernels.sgemm matches the float64 reference', worst < 1e-4, `max rel err ${worst.toExponential(2)}`);

// ---- conv2d vs a direct convolution ----
{
  const N = 2, C = 3, H = 9, W = 8, O = 5, K = 3;
  const x = randArray(N * C * H * W, 1), w = randArray(O * C * K * K, 2), bias = randArray(O, 3);
  const y = tsm.F.conv2d(tsm.tensor(x, { shape: [N, C, H, W] }), tsm.tensor(w, { shape: [O, C, K, K] }),
    tsm.tensor(bias), { padding: 1 }).dataSync();
  let err = 0;
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
    let s = bias[o];
    for (let c = 0; c < C; c++) for (let u = 0; u < K; u++) for (let v = 0; v < K; v++) {
      const ii = i + u - 1, jj = j + v - 1;
      if (ii >= 0 && ii < H && jj >= 0 && jj < W) s += x[((n * C + c) * H + ii) * W + jj] * w[((o * C + c) * K + u) * K + v];
    }
    err = Math.max(err, Math.abs(y[((n * O + o) * H + i) * W + j] - s));
  }
  check('F.conv2d matches a direct convolution', err < 1e-4, `max abs err ${err.toExponential(2)}`);
}

// ---- a tiny training run: Linear(3 -> 1) on y = 2a - b + 0.5c + 1 ----
{
  tsm.manualSeed(0);
  const n = 64, xs = randArray(n * 3, 7), ys = new Float32Array(n);
  for (let i = 0; i < n; i++) ys[i] = 2 * xs[i * 3] - xs[i * 3 + 1] + 0.5 * xs[i * 3 + 2] + 1;
  const x = tsm.tensor(xs, { shape: [n, 3] }), y = tsm.tensor(ys, { shape: [n, 1] });
  const model = new tsm.nn.Linear(3, 1);
  const opt = new tsm.optim.SGD(model.parameters(), { lr: 0.1 });
  const losses = [];
  for (let step = 0; step < 50; step++) {
    opt.zeroGrad();
    const loss = tsm.F.mseLoss(model.forward(x), y);
    loss.backward();
    opt.step();
    losses.push(loss.item());
  }
  check('Linear regression trains (loss decreases 10x)', losses[49] < losses[0] / 10,
    `loss ${losses[0].toFixed(4)} -> ${losses[49].toFixed(5)}`);
}

// ---- outputs of the GEMM consumers, for comparing NEON with the portable kernel ----
const dumpFile = opt('--dump');
if (dumpFile) {
  const out = {};
  out.matmul = Array.from(tsm.matmul(tsm.tensor(randArray(37 * 91, 11), { shape: [37, 91] }),
    tsm.tensor(randArray(91 * 53, 12), { shape: [91, 53] })).dataSync());
  out.conv2d = Array.from(tsm.F.conv2d(tsm.tensor(randArray(2 * 8 * 12 * 12, 13), { shape: [2, 8, 12, 12] }),
    tsm.tensor(randArray(16 * 8 * 3 * 3, 14), { shape: [16, 8, 3, 3] })).dataSync());
  if (tsm.nn.LSTM) {
    tsm.manualSeed(1);
    const lstm = new tsm.nn.LSTM({ inputSize: 10, hiddenSize: 20 });
    const [y] = lstm.forward(tsm.tensor(randArray(5 * 3 * 10, 15), { shape: [5, 3, 10] }));
    out.lstm = Array.from(y.dataSync());
  }
  if (tsm.F.scaledDotProductAttention) {
    const q = tsm.tensor(randArray(2 * 2 * 17 * 16, 16), { shape: [2, 2, 17, 16] });
    const k = tsm.tensor(randArray(2 * 2 * 17 * 16, 17), { shape: [2, 2, 17, 16] });
    const v = tsm.tensor(randArray(2 * 2 * 17 * 16, 18), { shape: [2, 2, 17, 16] });
    out.attention = Array.from(tsm.F.scaledDotProductAttention(q, k, v).dataSync());
  }
  fs.writeFileSync(dumpFile, JSON.stringify({ simd: info.simd, out }));
  console.log(`wrote ${Object.keys(out).join(', ')} to ${dumpFile}`);
}

console.log(failures === 0 ? 'smoke: all checks passed' : `smoke: ${failures} check(s) failed`);
process.exitCode = failures === 0 ? 0 : 1;
