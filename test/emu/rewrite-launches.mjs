// Copies .cu files for the host emulation (test/emu/cuda_host.h) with every kernel launch
//   name<targs><<<grid, block, smem, stream>>>(args)
// rewritten to
//   ::tsm_emu::Launch(grid, block, smem, stream).named("name").run([](auto... a_) { name<targs>(a_...); })(args)
// Nothing else changes; a #line directive keeps diagnostics pointing at the original file and lines.
//   node test/emu/rewrite-launches.mjs OUT_DIR file.cu...
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const launch = /([A-Za-z_][\w:]*(?:<[^<>;(){}]*>)?)\s*<<<([^;]*?)>>>\s*\(/g;

export function rewriteLaunches(src) {
  let count = 0;
  const out = src.replace(launch, (_m, kernel, cfg) => {
    count++;
    const name = kernel.replace(/<.*$/, '').replace(/^.*::/, '');
    return `::tsm_emu::Launch(${cfg}).named("${name}").run([](auto... tsm_a_) { ${kernel}(tsm_a_...); })(`;
  });
  if (out.includes('<<<')) throw new Error('a launch was not rewritten: ' + out.split('\n').find((l) => l.includes('<<<')));
  return { out, count };
}

export function rewriteFiles(outDir, files) {
  fs.mkdirSync(outDir, { recursive: true });
  const written = [];
  for (const f of files) {
    const abs = path.resolve(f);
    const { out } = rewriteLaunches(fs.readFileSync(abs, 'utf8'));
    const dst = path.join(outDir, path.basename(f));
    const text = `#line 1 "${abs}"\n${out}`;
    if (!fs.existsSync(dst) || fs.readFileSync(dst, 'utf8') !== text) fs.writeFileSync(dst, text);
    written.push(dst);
  }
  return written;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [outDir, ...files] = process.argv.slice(2);
  if (!outDir || files.length === 0) {
    console.error('usage: node test/emu/rewrite-launches.mjs OUT_DIR file.cu...');
    process.exit(2);
  }
  for (const w of rewriteFiles(outDir, files)) console.log(w);
}
