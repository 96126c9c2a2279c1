// The npm package as users get it: `npm pack` contents, then the packed tarball installed into an
// empty temporary project
//   (a) with no compiler, no CMake and no network (PATH holds only node, npm and basic tools;
//       npm runs offline from the local cache): the prebuild is used, require() and import both
//       work, a tiny model trains, `npx tensorsmith info` runs, and the types check;
//   (b) with npm_config_build_from_source=true and compilers present: it builds from source.
// Needs dist/ (npm run build:ts) and prebuilds/<platform>-<arch>/ (made here if missing, by
// tools/prebuild.js). The dependencies (cmake-js, node-addon-api, node-api-headers, node-gyp-build
// and theirs) come from the npm cache that installing this repository filled: the temporary
// project gets a lockfile with the repository's versions of them, so only their tarballs must be
// cached (as after `npm ci`), not registry metadata.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, type RunResult } from './helpers/run';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { checkPack } = require('../tools/pack-check.js') as {
  checkPack(): { pack: { size: number; unpackedSize: number; files: { path: string }[] }; files: string[]; problems: string[] };
};

const root = path.resolve(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  dependencies: Record<string, string>;
};
const platformDir = `${process.platform}-${process.arch}`;
const libc = process.platform === 'linux' ? (fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc') : null;
const prebuildFile = path.join(root, 'prebuilds', platformDir, libc ? `tensorsmith.${libc}.node` : 'tensorsmith.node');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsm-install-'));
const keepTmp = !!process.env.TSM_KEEP_INSTALL_TMP;
afterAll(() => {
  if (!keepTmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function which(cmd: string, envPath = process.env.PATH ?? ''): string | null {
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return null;
}

const npmPath = which('npm');
const npxPath = which('npm') ? which('npx') : null;

const output = (r: RunResult) => `${r.stdout}${r.stderr}${r.error ? `\n${r.error.message}` : ''}`;
const tail = (s: string, n = 4000) => (s.length > n ? `...${s.slice(-n)}` : s);

/** npm's settings from the real environment (cache, registry), asked once. */
function npmConfig(key: string): string {
  const r = spawnSync(npmPath!, ['config', 'get', key], { cwd: root, env: process.env, encoding: 'utf8' });
  return r.stdout.trim();
}

/** Environment for the child processes: nothing inherited but HOME (for ~/.npmrc) and the locale. */
function cleanEnv(PATH: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH,
    HOME: process.env.HOME ?? os.homedir(),
    LANG: 'C.UTF-8',
    TMPDIR: os.tmpdir(),
    npm_config_cache: npmCache,
    npm_config_offline: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_progress: 'false',
    ...extra,
  };
}

let npmCache = '';
let registry = '';
let tarball = '';

/**
 * An empty project whose lockfile pins tensorsmith's dependencies to the versions in this
 * repository's package-lock.json, with their registry URLs, so `npm install --offline` needs only
 * the cached tarballs. `allowScripts` lets npm >= 11.x run tensorsmith's install script.
 */
function makeProject(name: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name, version: '1.0.0', private: true, allowScripts: { tensorsmith: true } }, null, 2),
  );
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, Record<string, unknown> & { version: string; dependencies?: Record<string, string> }>;
  };
  const find = (from: string, dep: string): string | null => {
    let base = from;
    for (;;) {
      const key = `${base ? `${base}/` : ''}node_modules/${dep}`;
      if (lock.packages[key]) return key;
      if (!base) return null;
      const i = base.lastIndexOf('/node_modules/');
      base = i < 0 ? '' : base.slice(0, i);
    }
  };
  const entries: Record<string, Record<string, unknown>> = {};
  const todo: [string, string][] = Object.keys(pkg.dependencies).map((d) => ['', d]);
  while (todo.length > 0) {
    const [from, dep] = todo.pop()!;
    const key = find(from, dep);
    if (!key) throw new Error(`install test: ${dep} (needed by ${from || 'tensorsmith'}) is not in package-lock.json`);
    if (entries[key]) continue;
    const e = { ...lock.packages[key] };
    delete e.dev;
    delete e.devOptional;
    delete e.peer;
    const depName = key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
    if (!e.resolved) e.resolved = `${registry}/${depName}/-/${depName.split('/').pop()}-${e.version}.tgz`;
    entries[key] = e;
    for (const d of Object.keys(e.dependencies ?? {})) todo.push([key, d]);
  }
  fs.writeFileSync(
    path.join(dir, 'package-lock.json'),
    JSON.stringify({ name, version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name, version: '1.0.0' }, ...entries } }, null, 2),
  );
  return dir;
}

/** A folder of symlinks to node, npm, npx and basic tools; no compiler, no CMake, no make/ninja. */
function makeBareBin(): string {
  const bin = path.join(tmp, 'bare-bin');
  fs.mkdirSync(bin, { recursive: true });
  const link = (name: string, target: string | null) => {
    if (target && !fs.existsSync(path.join(bin, name))) fs.symlinkSync(target, path.join(bin, name));
  };
  link('node', process.execPath);
  link('npm', npmPath);
  link('npx', npxPath);
  const basics = ['sh', 'bash', 'dash', 'env', 'cat', 'ls', 'mkdir', 'rm', 'rmdir', 'cp', 'mv', 'ln', 'chmod', 'tar',
    'gzip', 'uname', 'grep', 'sed', 'dirname', 'basename', 'readlink', 'realpath', 'true', 'false', 'head', 'tail',
    'tr', 'sort', 'id', 'which', 'touch', 'test', 'printf', 'echo'];
  for (const b of basics) link(b, which(b));
  return bin;
}

// Scripts run inside the temporary project. They report which addon file the process mapped.
const MAPPED_ADDON = `
function mappedAddon() {
  const maps = require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n');
  const hit = maps.map((l) => l.split(/\\s+/).slice(5).join(' ')).find((p) => /tensorsmith[^/]*\\.node$/.test(p));
  return hit || null;
}`;
const TRAIN_CJS = `'use strict';
const tsm = require('tensorsmith');
${MAPPED_ADDON}
tsm.manualSeed(0);
// y = 3x - 2 + noise-free, 32 points in [-1, 1]
const n = 32, xs = new Float32Array(n), ys = new Float32Array(n);
for (let i = 0; i < n; i++) { xs[i] = -1 + (2 * i) / (n - 1); ys[i] = 3 * xs[i] - 2; }
const x = tsm.tensor(xs, { shape: [n, 1] }), y = tsm.tensor(ys, { shape: [n, 1] });
const model = new tsm.nn.Linear(1, 1);
const opt = new tsm.optim.SGD(model.parameters(), { lr: 0.1 });
const losses = [];
for (let step = 0; step < 100; step++) {
  opt.zeroGrad();
  const loss = tsm.F.mseLoss(model.forward(x), y);
  loss.backward();
  opt.step();
  losses.push(loss.item());
}
console.log(JSON.stringify({ first: losses[0], last: losses[losses.length - 1], info: tsm.buildInfo(),
  addon: mappedAddon(), resolved: require.resolve('tensorsmith') }));
`;
const IMPORT_MJS = `import * as tsm from 'tensorsmith';
import def from 'tensorsmith';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const cjs = require('tensorsmith');
const t = tsm.add(tsm.tensor([1, 2, 3]), tsm.tensor([10, 20, 30]));
console.log(JSON.stringify({
  values: Array.from(t.dataSync()),
  named: typeof tsm.tensor, nn: typeof tsm.nn.Linear, simd: tsm.buildInfo().simd,
  sameInstance: def === cjs && tsm.Tensor === cjs.Tensor,
}));
`;
const CONSUMER_MTS = `import * as tsm from 'tensorsmith';
const t: tsm.Tensor = tsm.zeros([2, 3]);
const layer = new tsm.nn.Linear(3, 1);
const out: tsm.Tensor = layer.forward(t);
const info: tsm.BuildInfo = tsm.buildInfo();
export const shape: readonly number[] = out.shape;
export const simd: string = info.simd;
`;
const CONSUMER_CTS = `import tsm = require('tensorsmith');
export const t: tsm.Tensor = tsm.ones([4]);
`;

/** mtime of the newest file the addon is built from (cpp/, cuda/, cmake/, CMakeLists.txt). */
function newestNativeSource(): number {
  let newest = fs.statSync(path.join(root, 'CMakeLists.txt')).mtimeMs;
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  for (const d of ['cpp', 'cuda', 'cmake']) if (fs.existsSync(path.join(root, d))) walk(path.join(root, d));
  return newest;
}

beforeAll(async () => {
  if (!npmPath) return;
  npmCache = npmConfig('cache');
  registry = npmConfig('registry').replace(/\/+$/, '');
  // dist/ and the prebuild this test packs.
  if (!fs.existsSync(path.join(root, 'dist', 'cjs', 'index.js')) || !fs.existsSync(path.join(root, 'dist', 'esm', 'index.mjs'))) {
    const r = await run(npmPath, ['run', 'build:ts'], { cwd: root, env: process.env, timeoutMs: 300_000 });
    if (r.status !== 0) throw new Error(`npm run build:ts failed:\n${tail(output(r))}`);
  }
  if (!fs.existsSync(prebuildFile) || fs.statSync(prebuildFile).mtimeMs < newestNativeSource()) {
    // Missing or older than the native sources (a stale prebuild would be packed and tested). One CUDA arch keeps this build ~2 minutes shorter; the release prebuild (npm run prebuild, which
    // rebuilds from scratch) compiles the full arch list.
    const env = { ...process.env, CMAKE_CUDA_ARCHITECTURES: process.env.CMAKE_CUDA_ARCHITECTURES ?? '80' };
    const r = await run(process.execPath, [path.join(root, 'tools', 'prebuild.js')], { cwd: root, env, timeoutMs: 600_000 });
    if (r.status !== 0) throw new Error(`tools/prebuild.js failed:\n${tail(output(r))}`);
  }
  const r = await run(npmPath, ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: root, env: process.env });
  if (r.status !== 0) throw new Error(`npm pack failed:\n${tail(output(r))}`);
  const json = r.stdout.slice(r.stdout.indexOf('['));
  tarball = path.join(tmp, (JSON.parse(json) as { filename: string }[])[0].filename);
}, 900_000);

describe.skipIf(!npmPath)('npm pack', () => {
  it('contains dist, prebuilds, the native sources, install script and docs; no tests, benchmarks or data', async () => {
    const { pack, files, problems } = checkPack();
    expect(problems).toEqual([]);
    for (const f of ['tools/install.js', 'CMakeLists.txt', 'cpp/include/tensorsmith.h', 'dist/esm/index.mjs', 'dist/cjs/cli.js',
      `prebuilds/${platformDir}/${path.basename(prebuildFile)}`, 'LICENSE', 'CHANGELOG.md', 'README.md']) {
      expect(files).toContain(f);
    }
    for (const f of files) expect(f).not.toMatch(/^(test|bench|examples|build|node_modules|lib|docs)\//);
    // Sane size: the prebuild dominates; a data set or a stray build folder would blow this.
    expect(pack.size).toBeGreaterThan(100 * 1024);
    expect(pack.size).toBeLessThan(15 * 1024 * 1024);
    expect(fs.statSync(tarball).size).toBe(pack.size);
  });

  it('the tarball declares the install script, the bin and Node-API version', async () => {
    const r = await run('tar', ['-xzOf', tarball, 'package/package.json'], { cwd: tmp, env: process.env });
    const packed = JSON.parse(r.stdout) as { scripts: Record<string, string>; bin: Record<string, string>; binary: { napi_versions: number[] }; engines: { node: string } };
    expect(packed.scripts.install).toBe('node tools/install.js');
    expect(packed.bin.tensorsmith).toBe('./dist/cjs/cli.js');
    expect(packed.binary.napi_versions).toContain(8);
    expect(packed.engines.node).toMatch(/>=\s*18/);
  });
});

describe.skipIf(!npmPath || process.platform !== 'linux')('install without a compiler or network', () => {
  let bin = '';
  let project = '';
  let env: NodeJS.ProcessEnv = {};
  let installed = false;
  let cacheMiss = '';

  beforeAll(() => {
    bin = makeBareBin();
    project = makeProject('no-compiler');
    env = cleanEnv(bin);
  });

  it('PATH has node and npm but no compiler, CMake, make or ninja', async () => {
    for (const tool of ['node', 'npm', 'npx']) expect(which(tool, bin), tool).not.toBeNull();
    for (const tool of ['cc', 'c++', 'gcc', 'g++', 'clang', 'clang++', 'cmake', 'make', 'ninja', 'nvcc', 'ld', 'python3']) {
      const r = await run('sh', ['-c', `command -v ${tool}`], { cwd: project, env });
      expect(r.status, `${tool} resolves to ${r.stdout.trim()}`).not.toBe(0);
    }
  });

  it('npm install <tarball> --offline succeeds and uses the prebuild', async (ctx) => {
    const t0 = Date.now();
    const r = await run('npm', ['install', tarball, '--offline', '--foreground-scripts', '--no-audit', '--no-fund'], { cwd: project, env, timeoutMs: 180_000 });
    const out = output(r);
    if (r.status !== 0 && /ENOTCACHED/.test(out)) {
      // A precondition, not a bug: the dependencies' tarballs are not in this machine's npm cache.
      cacheMiss = out.match(/request to (\S+)/)?.[1] ?? 'a dependency';
      ctx.skip(`the npm cache (${npmCache}) lacks ${cacheMiss}; run npm ci/npm install in the repository once`);
    }
    expect(r.status, tail(out)).toBe(0);
    installed = true;
    const dir = path.join(project, 'node_modules', 'tensorsmith');
    expect(fs.existsSync(path.join(dir, 'prebuilds', platformDir, path.basename(prebuildFile)))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'build')), 'no source build happened').toBe(false);
    expect(out).not.toMatch(/building the native addon from source/);
    // npm < 11 runs install scripts by default; newer npm runs ours because the project allows it.
    if (/tensorsmith: /.test(out)) expect(out).toMatch(/tensorsmith: using the prebuilt native addon/);
    for (const d of Object.keys(pkg.dependencies)) expect(fs.existsSync(path.join(project, 'node_modules', d)), d).toBe(true);
    const ran = /tensorsmith: using the prebuilt native addon/.test(out);
    console.log(`install (no compiler, offline): ${((Date.now() - t0) / 1000).toFixed(1)} s; install script ${ran ? 'ran and chose the prebuild' : 'not run by this npm'}`);
  }, 200_000);

  it('require("tensorsmith") loads the prebuild from node_modules and a Linear model trains', async (ctx) => {
    if (!installed) ctx.skip('not installed');
    fs.writeFileSync(path.join(project, 'train.cjs'), TRAIN_CJS);
    const r = await run('node', ['train.cjs'], { cwd: project, env });
    expect(r.status, tail(output(r))).toBe(0);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      first: number; last: number; info: { version: string }; addon: string; resolved: string;
    };
    expect(res.resolved).toBe(path.join(project, 'node_modules', 'tensorsmith', 'dist', 'cjs', 'index.js'));
    expect(res.addon).toBe(path.join(fs.realpathSync(project), 'node_modules', 'tensorsmith', 'prebuilds', platformDir, path.basename(prebuildFile)));
    expect(res.info.version).toBe(pkg.version);
    expect(res.last).toBeLessThan(res.first / 100);
  });

  it('import * as tsm from "tensorsmith" works and shares the CommonJS instance', async (ctx) => {
    if (!installed) ctx.skip('not installed');
    fs.writeFileSync(path.join(project, 'esm.mjs'), IMPORT_MJS);
    const r = await run('node', ['esm.mjs'], { cwd: project, env });
    expect(r.status, tail(output(r))).toBe(0);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(res).toMatchObject({ values: [11, 22, 33], named: 'function', nn: 'function', sameInstance: true });
  });

  it('npx tensorsmith info prints the version, SIMD level, threads and CUDA', async (ctx) => {
    if (!installed) ctx.skip('not installed');
    const r = await run('npx', ['--offline', '--no', 'tensorsmith', 'info'], { cwd: project, env });
    const out = output(r);
    expect(r.status, tail(out)).toBe(0);
    expect(out).toContain(`tensorsmith ${pkg.version}`);
    expect(out).toMatch(/cpu simd\s+(avx512|avx2|neon|generic)/);
    expect(out).toMatch(/threads\s+\d+/);
    expect(out).toMatch(/cuda\s+/);
    const help = await run('npx', ['--offline', '--no', 'tensorsmith', 'bench'], { cwd: project, env });
    expect(help.status).toBe(1);
    expect(output(help)).toMatch(/not part of the npm package/);
  });

  it('the shipped types check from ESM and CommonJS consumers (moduleResolution nodenext)', async (ctx) => {
    if (!installed) ctx.skip('not installed');
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    if (!fs.existsSync(tsc)) ctx.skip('typescript is not installed in the repository');
    fs.writeFileSync(path.join(project, 'consumer.mts'), CONSUMER_MTS);
    fs.writeFileSync(path.join(project, 'consumer.cts'), CONSUMER_CTS);
    fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true,
        types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')], skipLibCheck: false,
      },
      files: ['consumer.mts', 'consumer.cts'],
    }));
    const r = await run('node', [tsc, '-p', 'tsconfig.json'], { cwd: project, env });
    expect(r.status, tail(output(r))).toBe(0);
  });
});

describe.skipIf(!npmPath || process.platform !== 'linux')('install with npm_config_build_from_source=true', () => {
  const missing = ['cmake', 'c++'].filter((t) => !which(t));
  it.skipIf(missing.length > 0)(`builds the addon from source (needs ${['cmake', 'c++'].join(', ')})`, async (ctx) => {
    const project = makeProject('from-source');
    // Full PATH (compilers, CMake), still offline. TSM_CUDA=OFF keeps the build short: this checks
    // the from-source path, not the CUDA build (npm run prebuild covers that).
    const env = cleanEnv(process.env.PATH ?? '', { npm_config_build_from_source: 'true', TSM_CUDA: 'OFF' });
    const t0 = Date.now();
    const r = await run('npm', ['install', tarball, '--offline', '--foreground-scripts', '--no-audit', '--no-fund'], { cwd: project, env, timeoutMs: 600_000 });
    const out = output(r);
    if (r.status !== 0 && /ENOTCACHED/.test(out)) ctx.skip(`the npm cache (${npmCache}) lacks a dependency's tarball`);
    expect(r.status, tail(out)).toBe(0);
    expect(out).toMatch(/tensorsmith: building the native addon from source/);
    const built = path.join(project, 'node_modules', 'tensorsmith', 'build', 'Release', 'tensorsmith.node');
    expect(fs.existsSync(built)).toBe(true);
    console.log(`install (build from source, TSM_CUDA=OFF): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // The loader prefers build/Release over the prebuild.
    fs.writeFileSync(path.join(project, 'train.cjs'), TRAIN_CJS);
    const t = await run('node', ['train.cjs'], { cwd: project, env });
    expect(t.status, tail(output(t))).toBe(0);
    const res = JSON.parse(t.stdout.trim().split('\n').pop()!) as { first: number; last: number; addon: string; info: { cuda: { compiled: boolean } } };
    expect(res.addon).toBe(path.join(fs.realpathSync(project), 'node_modules', 'tensorsmith', 'build', 'Release', 'tensorsmith.node'));
    expect(res.info.cuda.compiled).toBe(false);
    expect(res.last).toBeLessThan(res.first / 100);
  }, 660_000);
});
