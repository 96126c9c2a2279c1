// The native loader (lib/native.ts), buildInfo, thread settings, and the package's two entry points
// (ESM import and CommonJS require of 'tensorsmith', which resolves to this package through "exports").
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildInfo, getNumThreads, NativeLoadError, setNumThreads } from '../lib/index';
import { candidatePaths, loadAddon, packageRoot } from '../lib/native';

const root = path.resolve(__dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsm-loader-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('loader', () => {
  it('finds the package root', () => {
    expect(packageRoot(__dirname)).toBe(root);
  });

  it('tries TSM_ADDON first, then build/Release, build/Debug, prebuilds/<platform>-<arch>', () => {
    const saved = process.env.TSM_ADDON;
    try {
      delete process.env.TSM_ADDON;
      expect(candidatePaths('/pkg')).toEqual([
        path.join('/pkg', 'build', 'Release', 'tensorsmith.node'),
        path.join('/pkg', 'build', 'Debug', 'tensorsmith.node'),
        path.join('/pkg', 'prebuilds', `${process.platform}-${process.arch}`),
      ]);
      process.env.TSM_ADDON = 'custom/addon.node';
      expect(candidatePaths('/pkg')[0]).toBe(path.resolve('custom/addon.node'));
    } finally {
      if (saved === undefined) delete process.env.TSM_ADDON;
      else process.env.TSM_ADDON = saved;
    }
  });

  it('explains every failed path, why, and how to fix it', () => {
    const missing = path.join(tmp, 'missing', 'tensorsmith.node');
    const garbage = path.join(tmp, 'garbage.node');
    fs.writeFileSync(garbage, 'this is not a shared object\n'.repeat(20));
    const emptyPrebuilds = path.join(tmp, 'prebuilds', `${process.platform}-${process.arch}`);
    fs.mkdirSync(emptyPrebuilds, { recursive: true });
    let err: unknown;
    try {
      loadAddon(tmp, [missing, garbage, emptyPrebuilds]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NativeLoadError);
    const e = err as NativeLoadError;
    expect(e.name).toBe('NativeLoadError');
    expect(e.attempts.map((a) => a.path)).toEqual([missing, garbage, emptyPrebuilds]);
    expect(e.attempts[0].error).toBe('not found');
    expect(e.attempts[1].error).toMatch(/ELF|invalid|not a valid/i);
    expect(e.attempts[2].error.length).toBeGreaterThan(0);
    // The message itself carries everything (it is what a user sees in a stack trace).
    expect(e.message).toContain(`${process.platform}-${process.arch}`);
    expect(e.message).toContain(`${missing}: not found`);
    expect(e.message).toContain(`${garbage}: ${e.attempts[1].error}`);
    expect(e.message).toContain(emptyPrebuilds);
    expect(e.message).toMatch(/How to fix/);
    expect(e.message).toMatch(/--build-from-source/);
    expect(e.message).toMatch(/npm run build:native/);
    expect(e.message).toMatch(/TSM_ADDON/);
  });

  it('with no candidates at all still throws the explained error', () => {
    expect(() => loadAddon(tmp, [])).toThrow(NativeLoadError);
  });

  it('a broken build/Release does not hide a valid prebuild', () => {
    const root = packageRoot();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsm-prebuild-'));
    try {
      const broken = path.join(tmp, 'build', 'Release', 'tensorsmith.node');
      fs.mkdirSync(path.dirname(broken), { recursive: true });
      fs.writeFileSync(broken, 'not an ELF file');
      const dir = path.join(tmp, 'prebuilds', `${process.platform}-${process.arch}`);
      fs.mkdirSync(dir, { recursive: true });
      fs.copyFileSync(path.join(root, 'build', 'Release', 'tensorsmith.node'), path.join(dir, 'tensorsmith.glibc.node'));
      const addon = loadAddon(tmp, [broken, dir]) as { buildInfo(): { version: string } };
      expect(addon.buildInfo().version).toMatch(/^\d+\.\d+\.\d+$/);
      // An empty prebuilds folder is explained, not a crash.
      fs.rmSync(path.join(dir, 'tensorsmith.glibc.node'));
      expect(() => loadAddon(tmp, [broken, dir])).toThrow(/no prebuilt binary/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('loads the built addon from build/Release', () => {
    const file = path.join(root, 'build', 'Release', 'tensorsmith.node');
    const a = loadAddon(root, [path.join(tmp, 'nope.node'), file]) as { version(): string };
    expect(a.version()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe('buildInfo and threads', () => {
  it('buildInfo() has the shape of API.md', () => {
    const info = buildInfo();
    expect(Object.keys(info).sort()).toEqual(['cuda', 'simd', 'threads', 'version']);
    expect(info.version).toBe(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
    expect(['avx2', 'avx512', 'neon', 'generic']).toContain(info.simd);
    expect(Number.isInteger(info.threads) && info.threads >= 1).toBe(true);
    expect(typeof info.cuda.compiled).toBe('boolean');
    expect(Array.isArray(info.cuda.archs)).toBe(true);
    if (info.cuda.compiled) {
      expect(typeof info.cuda.runtimeVersion).toBe('number');
      expect(info.cuda.archs.length).toBeGreaterThan(0);
    } else {
      expect(info.cuda.runtimeVersion).toBeNull();
      expect(info.cuda.archs).toEqual([]);
    }
    if (process.arch === 'x64') expect(info.simd).not.toBe('neon');
  });

  it('setNumThreads / getNumThreads round trip, reflected in buildInfo', () => {
    const before = getNumThreads();
    try {
      for (const n of [1, 3, 2]) {
        setNumThreads(n);
        expect(getNumThreads()).toBe(n);
        expect(buildInfo().threads).toBe(n);
      }
    } finally {
      setNumThreads(before);
    }
    expect(getNumThreads()).toBe(before);
  });

  it('rejects bad thread counts and keeps the old one', () => {
    const before = getNumThreads();
    for (const bad of [0, -1, 1.5, NaN, Infinity, 1025]) {
      expect(() => setNumThreads(bad), String(bad)).toThrow(RangeError);
      expect(() => setNumThreads(bad)).toThrow(/setNumThreads: n must/);
    }
    for (const bad of ['2', null, undefined, {}]) {
      expect(() => setNumThreads(bad as unknown as number)).toThrow(TypeError);
    }
    expect(getNumThreads()).toBe(before);
  });

  it('TSM_NUM_THREADS sets the default', () => {
    const out = execFileSync(
      process.execPath,
      ['-e', "process.stdout.write(String(require('./build/Release/tensorsmith.node').getNumThreads()))"],
      { cwd: root, env: { ...process.env, TSM_NUM_THREADS: '3' }, encoding: 'utf8' },
    );
    expect(out).toBe('3');
  });
});

describe("the package entry points ('tensorsmith' resolves to this package)", () => {
  beforeAll(() => {
    // `npm test` runs build:ts first; build it here too when vitest is run on its own.
    if (!fs.existsSync(path.join(root, 'dist', 'esm', 'index.mjs')) || !fs.existsSync(path.join(root, 'dist', 'cjs', 'index.js'))) {
      execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'inherit' });
    }
  });

  const node = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
    spawnSync(process.execPath, args, { cwd: root, env, encoding: 'utf8', timeout: 60_000 });

  it('ESM import: named exports, default export, and one instance shared with require', () => {
    const script = `
      import * as tsm from 'tensorsmith';
      import def from 'tensorsmith';
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const cjs = require('tensorsmith');
      const c = new Float32Array(4);
      tsm.kernels.sgemm({ m: 2, n: 2, k: 1, a: new Float32Array([1, 2]), b: new Float32Array([3, 4]), c });
      console.log(JSON.stringify({
        c: Array.from(c), simd: tsm.buildInfo().simd, threads: tsm.getNumThreads(),
        shared: def === cjs && tsm.kernels === cjs.kernels && tsm.buildInfo === cjs.buildInfo,
        err: typeof tsm.NativeLoadError,
      }));`;
    const r = node(['--input-type=module', '-e', script]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim());
    expect(out.c).toEqual([3, 4, 6, 8]);
    expect(out.simd).toBe(buildInfo().simd);
    expect(out.shared).toBe(true);
    expect(out.err).toBe('function');
  });

  it('every CommonJS export is also a named ESM export', () => {
    const r = node([
      '--input-type=module',
      '-e',
      `import * as tsm from 'tensorsmith'; import { createRequire } from 'node:module';
       const cjs = createRequire(import.meta.url)('tensorsmith');
       const missing = Object.keys(cjs).filter((k) => k !== '__esModule' && !(k in tsm));
       console.log(JSON.stringify(missing));`,
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual([]);
  });

  it('CommonJS require', () => {
    const r = node([
      '-e',
      `const tsm = require('tensorsmith');
       const c = new Float32Array(1);
       tsm.kernels.sgemm({ m: 1, n: 1, k: 2, a: new Float32Array([1, 2]), b: new Float32Array([3, 4]), c });
       console.log(JSON.stringify({ c: c[0], version: tsm.buildInfo().version }));`,
    ]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim());
    expect(out.c).toBe(11);
    expect(out.version).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('without any binary, the first native call throws the explained error (importing alone does not)', () => {
    // A copy of the compiled package with no build/ and no prebuilds/.
    const pkg = path.join(tmp, 'pkg');
    fs.mkdirSync(path.join(pkg, 'dist'), { recursive: true });
    fs.cpSync(path.join(root, 'dist', 'cjs'), path.join(pkg, 'dist', 'cjs'), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'tensorsmith', version: '0.0.0' }));
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_PATH: path.join(root, 'node_modules') };
    delete env.TSM_ADDON;
    const r = node(
      [
        '-e',
        `const tsm = require(${JSON.stringify(path.join(pkg, 'dist', 'cjs', 'index.js'))});
         try { tsm.buildInfo(); console.log('loaded?!'); }
         catch (e) { console.log(JSON.stringify({ name: e.name, isClass: e instanceof tsm.NativeLoadError, message: e.message })); }`,
      ],
      env,
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim());
    expect(out.name).toBe('NativeLoadError');
    expect(out.isClass).toBe(true);
    expect(out.message).toContain(`${path.join(pkg, 'build', 'Release', 'tensorsmith.node')}: not found`);
    expect(out.message).toContain(path.join(pkg, 'prebuilds', `${process.platform}-${process.arch}`));
    expect(out.message).toMatch(/How to fix/);
  });
});
