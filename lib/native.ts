// Loads the native addon through node-gyp-build (build/Release, build/Debug, or
// prebuilds/<platform>-<arch>/). When nothing loads, throws one error that lists every place tried,
// why each failed, and how to fix it.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Finds the package root (the folder whose package.json is named "tensorsmith"). */
export function packageRoot(start: string = __dirname): string {
  let dir = start;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if (JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'tensorsmith') return dir;
      } catch {
        // not ours; keep walking up
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`tensorsmith: cannot find the package root above ${start}`);
    dir = parent;
  }
}

/** One place the loader tried, and why it did not load. */
export interface LoadAttempt {
  /** The candidate path (a .node file or a prebuilds folder). */
  path: string;
  /** Why it did not load: 'not found', no matching prebuilt binary, or the first line of the loader's error. */
  error: string;
}

/** The native addon could not be loaded from any candidate path; the message lists them and how to fix it. */
export class NativeLoadError extends Error {
  /** Every path tried, in order, with its error. */
  readonly attempts: LoadAttempt[];
  constructor(attempts: LoadAttempt[]) {
    const lines = attempts.map((a) => `  - ${a.path}: ${a.error}`).join('\n');
    super(
      `tensorsmith: could not load the native addon for ${process.platform}-${process.arch} ` +
        `(Node ${process.versions.node}, N-API ${process.versions.napi}).\nTried:\n${lines}\n` +
        'How to fix:\n' +
        '  - build it from source: `npm rebuild tensorsmith --build-from-source` (needs CMake >= 3.18 and a C++17 compiler, e.g. `apt-get install cmake g++`),\n' +
        '  - or, in a clone of the repository, `npm run build:native`,\n' +
        '  - or set TSM_ADDON to the path of a tensorsmith.node built for this platform.',
    );
    this.name = 'NativeLoadError';
    this.attempts = attempts;
  }
}

/** Candidate locations, in the order they are tried. */
export function candidatePaths(root: string): string[] {
  const out: string[] = [];
  if (process.env.TSM_ADDON) out.push(path.resolve(process.env.TSM_ADDON));
  out.push(path.join(root, 'build', 'Release', 'tensorsmith.node'));
  out.push(path.join(root, 'build', 'Debug', 'tensorsmith.node'));
  const prebuildDir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  out.push(prebuildDir);
  return out;
}

/** Tries each candidate; returns the addon or throws NativeLoadError. */
export function loadAddon(root: string, candidates: string[] = candidatePaths(root)): unknown {
  const attempts: LoadAttempt[] = [];
  for (const p of candidates) {
    if (!fs.existsSync(p)) {
      attempts.push({ path: p, error: 'not found' });
      continue;
    }
    try {
      if (fs.statSync(p).isDirectory()) {
        // A prebuilds/<platform>-<arch> folder (node-gyp-build's layout): the file tagged with this
        // libc. (node-gyp-build's own lookup would prefer build/Release even when that failed above.)
        const libc = process.platform !== 'linux' ? null : fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
        const files = fs.readdirSync(p).filter((f) => f.endsWith('.node'));
        const tagged = (f: string) => f.split('.').slice(1, -1);
        const file = files.find((f) => libc !== null && tagged(f).includes(libc)) ??
          files.find((f) => !tagged(f).some((t) => t === 'glibc' || t === 'musl'));
        if (!file) {
          attempts.push({ path: p, error: `no prebuilt binary for ${libc ?? process.platform} among [${files.join(', ')}]` });
          continue;
        }
        return require(path.join(p, file));
      }
      return require(p);
    } catch (err) {
      attempts.push({ path: p, error: err instanceof Error ? err.message.split('\n')[0] : String(err) });
    }
  }
  throw new NativeLoadError(attempts);
}

// The addon's shape is declared in native-types.ts; this file only loads it.
let cached: unknown;
export function addon<T>(): T {
  if (cached === undefined) cached = loadAddon(packageRoot());
  return cached as T;
}
