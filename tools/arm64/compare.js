#!/usr/bin/env node
// Compares two dumps of tools/arm64/smoke.js (e.g. NEON vs TSM_SIMD=generic): every output must
// agree to a float32 accumulation-order tolerance.
//   node tools/arm64/compare.js A.json B.json
'use strict';
const fs = require('node:fs');

const [fa, fb] = process.argv.slice(2);
const a = JSON.parse(fs.readFileSync(fa, 'utf8'));
const b = JSON.parse(fs.readFileSync(fb, 'utf8'));
console.log(`${a.simd} vs ${b.simd}`);
if (a.simd === b.simd) console.warn('compare: both runs used the same kernels; the comparison proves nothing');
let bad = 0;
for (const name of Object.keys(a.out)) {
  const x = a.out[name], y = b.out[name];
  if (!y || x.length !== y.length) {
    console.log(`FAIL ${name}: missing or different length`);
    bad++;
    continue;
  }
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / (1 + Math.abs(y[i])));
  const ok = worst < 1e-4 && x.every(Number.isFinite);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${x.length} values, max rel diff ${worst.toExponential(2)}`);
  if (!ok) bad++;
}
process.exitCode = bad === 0 ? 0 : 1;
