// The C ABI from the outside: a C program (examples/c/sgemm.c) compiled against cpp/include and
// build/Release/libtensorsmith.so, and the same program built by CMake against an installed copy
// found with find_package(tensorsmith CONFIG).
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
const libDir = path.join(root, 'build', 'Release');
const lib = path.join(libDir, 'libtensorsmith.so');
const header = path.join(root, 'cpp', 'include', 'tensorsmith.h');
const example = path.join(root, 'examples', 'c', 'sgemm.c');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsm-capi-'));

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function run(cmd: string, args: string[], cwd = tmp): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** What examples/c/sgemm.c must print. */
function expectExampleOutput(out: string) {
  expect(out).toMatch(/^tensorsmith \d+\.\d+\.\d+, simd (generic|avx2|avx512|neon)$/m);
  expect(out).toMatch(/^tsm_set_num_threads\(2\): ok, threads now 2$/m);
  expect(out).toMatch(/^tsm_sgemm\(3x5x4\): ok$/m);
  expect(out).toMatch(/^ {2}C\[0\] = +12\.50 +6\.50 +0\.50 +-5\.50 +-11\.50$/m);
  expect(out).toMatch(/^max \|C - reference\| = 0$/m);
  expect(out).toMatch(/^tsm_sgemm with lda=3 \(< k=4\): invalid argument \(1\)$/m);
  expect(out).toMatch(/tsm_last_error\(\): sgemm: lda must be >= .*4.*got 3/);
  expect(out).toMatch(/^tsm_set_num_threads\(0\): invalid argument$/m);
  expect(out.trim().split('\n').pop()).toBe('OK');
}

beforeAll(() => {
  if (!fs.existsSync(lib)) {
    throw new Error(
      `${path.relative(root, lib)} is missing. It is built with the addon: run \`npm install\` ` +
        '(or `npm run build:native`) in the repository first.',
    );
  }
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('C API', () => {
  it('exports every function the header declares', () => {
    const declared = [...fs.readFileSync(header, 'utf8').matchAll(/TSM_API[^;(]*?\b(tsm_\w+)\s*\(/g)].map((m) => m[1]);
    expect(declared).toContain('tsm_sgemm');
    expect(declared).toContain('tsm_version');
    if (!has('nm')) return;
    const exported = new Set(
      execFileSync('nm', ['-D', '--defined-only', lib], { encoding: 'utf8' })
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[2])
        .filter(Boolean),
    );
    expect(declared.filter((name) => !exported.has(name))).toEqual([]);
  });

  it('examples/c/sgemm.c builds with cc against the header and libtensorsmith.so, and runs', () => {
    expect(has('cc'), 'a C compiler (cc) is needed: apt-get install gcc').toBe(true);
    const exe = path.join(tmp, 'sgemm-direct');
    const cc = run('cc', ['-O2', '-std=c99', '-Wall', '-Wextra', '-Werror', example, `-I${path.dirname(header)}`,
      `-L${libDir}`, '-ltensorsmith', '-lm', `-Wl,-rpath,${libDir}`, '-o', exe]);
    expect(cc.status, cc.out).toBe(0);
    const r = run(exe, []);
    expect(r.status, r.out).toBe(0);
    expectExampleOutput(r.out);
  });

  it('cmake --install, then find_package(tensorsmith CONFIG) in another project builds and runs it', () => {
    expect(has('cmake'), 'cmake is needed: apt-get install cmake').toBe(true);
    const buildDir = path.join(root, 'build');
    expect(fs.existsSync(path.join(buildDir, 'cmake_install.cmake')), 'build/ has no install rules; run npm install').toBe(true);
    const prefix = path.join(tmp, 'prefix');
    const inst = run('cmake', ['--install', buildDir, '--prefix', prefix]);
    expect(inst.status, inst.out).toBe(0);
    for (const f of ['include/tensorsmith.h', 'lib/cmake/tensorsmith/tensorsmithConfig.cmake',
      'lib/cmake/tensorsmith/tensorsmithConfigVersion.cmake', 'lib/cmake/tensorsmith/tensorsmithTargets.cmake']) {
      expect(fs.existsSync(path.join(prefix, f)), f).toBe(true);
    }
    const libs = fs.readdirSync(path.join(prefix, 'lib')).filter((f) => f.startsWith('libtensorsmith.so'));
    expect(libs).toContain('libtensorsmith.so');

    // A consumer project in its own folder: the example's CMakeLists.txt and source, copied.
    const src = path.join(tmp, 'consumer');
    fs.mkdirSync(src);
    fs.copyFileSync(path.join(root, 'examples', 'c', 'CMakeLists.txt'), path.join(src, 'CMakeLists.txt'));
    fs.copyFileSync(example, path.join(src, 'sgemm.c'));
    const bin = path.join(tmp, 'consumer-build');
    const conf = run('cmake', ['-S', src, '-B', bin, `-DCMAKE_PREFIX_PATH=${prefix}`, '-DCMAKE_BUILD_TYPE=Release']);
    expect(conf.status, conf.out).toBe(0);
    const build = run('cmake', ['--build', bin]);
    expect(build.status, build.out).toBe(0);
    const exe = path.join(bin, 'sgemm');
    const r = run(exe, []);
    expect(r.status, r.out).toBe(0);
    expectExampleOutput(r.out);
    // It runs against the installed copy, not the build tree.
    if (has('ldd')) expect(execFileSync('ldd', [exe], { encoding: 'utf8' })).toContain(path.join(prefix, 'lib'));
  });

  it('find_package refuses an incompatible version request', () => {
    const prefix = path.join(tmp, 'prefix');
    if (!fs.existsSync(prefix)) run('cmake', ['--install', path.join(root, 'build'), '--prefix', prefix]);
    const src = path.join(tmp, 'too-new');
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(src, 'CMakeLists.txt'),
      'cmake_minimum_required(VERSION 3.18)\nproject(x LANGUAGES C)\nfind_package(tensorsmith 99.0 CONFIG REQUIRED)\n');
    const conf = run('cmake', ['-S', src, '-B', path.join(tmp, 'too-new-build'), `-DCMAKE_PREFIX_PATH=${prefix}`]);
    expect(conf.status).not.toBe(0);
    expect(conf.out).toMatch(/tensorsmith/);
  });
});
