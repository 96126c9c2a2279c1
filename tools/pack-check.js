#!/usr/bin/env node
// npm run pack:check: what `npm pack` would publish, checked against the rules of issue 9.
//   must contain  dist/ (CJS, ESM, types, CLI), prebuilds/linux-x64, the sources and CMake files
//                 needed to build from source, tools/install.js, README, LICENSE, CHANGELOG
//   must not      tests, benchmarks, fixtures, examples, data sets, build folders, node_modules,
//                 generated docs, editor/CI files
//   size          the tarball stays small (prebuilds included)
// Prints a summary; exits 1 with the list of problems. `checkPack()` is used by test/install.test.ts.
'use strict';
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

const REQUIRED = [
  'package.json',
  'README.md',
  'LICENSE',
  'CHANGELOG.md',
  'CMakeLists.txt',
  'cmake/tensorsmithConfig.cmake.in',
  'tools/install.js',
  'cpp/include/tensorsmith.h',
  'cpp/binding/addon.cpp',
  'cpp/runtime/runtime.h',
  'cpp/kernels/sgemm.cpp',
  'cpp/kernels/simd/gemm_generic.cpp',
  'cuda/runtime/device.cu',
  'dist/cjs/index.js',
  'dist/cjs/index.d.ts',
  'dist/cjs/native.js',
  'dist/cjs/cli.js',
  'dist/cjs/fit-worker.js',
  'dist/esm/index.mjs',
  'dist/esm/index.d.mts',
  'prebuilds/linux-x64/tensorsmith.glibc.node',
];

// Path patterns that must never be published.
const FORBIDDEN = [
  [/^test\//, 'tests'],
  [/(^|\/)[^/]*\.test\.[cm]?[jt]s$/, 'test files'],
  [/^bench\//, 'benchmarks'],
  [/(^|\/)fixtures?\//, 'fixtures'],
  [/^examples\//, 'examples'],
  [/(^|\/)datasets?\//, 'data sets'],
  [/\.(safetensors|npy|npz|pt|pth|onnx|idx\d?-ubyte)$/, 'weights or data files'],
  [/^build(-[^/]*)?\//, 'build folders'],
  [/(^|\/)node_modules\//, 'node_modules'],
  [/^docs\//, 'generated docs'],
  [/^lib\//, 'TypeScript sources (dist/ is shipped)'],
  [/^tools\/(?!install\.js$)/, 'development tools (only tools/install.js is needed)'],
  [/^\.(github|ci|device|vscode|idea)\//, 'CI and editor files'],
  [/(^|\/)\.DS_Store$|\.log$|\.tgz$/, 'stray files'],
  [/^prebuilds\/.*\.(o|a|so\.\d.*)$/, 'objects or libraries in prebuilds/'],
];

// Every native source file the CMake build globs must be in the package, or a build from source
// of the tarball would silently compile less than the repository does.
const SOURCE_DIRS = ['cpp', 'cuda', 'cmake'];

const MAX_PACKED_MB = 15;

function npmPackDryRun() {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  // npm may print notices before the JSON; the JSON array starts at the first line that is '['.
  const start = out.indexOf('[\n') >= 0 ? out.indexOf('[\n') : out.indexOf('[');
  return JSON.parse(out.slice(start))[0];
}

function gitTracked(dirs) {
  try {
    const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '--', ...dirs], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out.split('\n').filter(Boolean);
  } catch {
    return null; // not a git checkout: skip this check
  }
}

/** Returns { pack, files, problems } for the package as `npm pack` would build it now. */
function checkPack() {
  const pack = npmPackDryRun();
  const files = pack.files.map((f) => f.path).sort();
  const have = new Set(files);
  const problems = [];
  for (const f of REQUIRED) if (!have.has(f)) problems.push(`missing ${f}`);
  for (const f of files) {
    for (const [re, what] of FORBIDDEN) {
      if (re.test(f)) {
        problems.push(`${f} should not be published (${what})`);
        break;
      }
    }
  }
  const sources = gitTracked(SOURCE_DIRS);
  if (sources) {
    for (const f of sources) if (/\.(c|cc|cpp|cu|cuh|h|hpp|in|cmake)$/.test(f) && !have.has(f)) problems.push(`source ${f} is not packed`);
  }
  const mb = pack.size / 1048576;
  if (mb > MAX_PACKED_MB) problems.push(`tarball is ${mb.toFixed(1)} MB (limit ${MAX_PACKED_MB} MB)`);
  return { pack, files, problems };
}

module.exports = { checkPack, REQUIRED, FORBIDDEN, MAX_PACKED_MB };

if (require.main === module) {
  const { pack, files, problems } = checkPack();
  const byTop = {};
  for (const f of pack.files) {
    const top = f.path.includes('/') ? `${f.path.split('/')[0]}/` : f.path;
    byTop[top] = (byTop[top] || 0) + f.size;
  }
  console.log(`${pack.filename}: ${files.length} files, ${(pack.size / 1048576).toFixed(2)} MB packed, ${(pack.unpackedSize / 1048576).toFixed(2)} MB unpacked`);
  for (const [top, size] of Object.entries(byTop).sort((a, b) => b[1] - a[1])) console.log(`  ${top.padEnd(20)} ${(size / 1024).toFixed(0).padStart(7)} KiB`);
  const prebuilds = files.filter((f) => f.startsWith('prebuilds/'));
  console.log(`prebuilds: ${prebuilds.join(', ') || 'none'}`);
  if (problems.length > 0) {
    console.error(`pack:check: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log('pack:check: ok');
}
