// Shared benchmark support: timing (warm-up, medians, side-by-side alternation with a peer),
// machine information, result records (bench/results/<name>.json) with an SVG chart beside them,
// and the printed table. No dependencies beyond Node.
import { type ChildProcessWithoutNullStreams, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { seededRandom } from '../lib/text';

export const RESULTS_DIR = path.join(__dirname, 'results');
const REPO_ROOT = path.resolve(__dirname, '..');

// ---- the contract between the runner and each benchmark ----

/** One line of the table and of the record (schema in ../shared/BENCHMARKS.md; extra fields allowed). */
export interface BenchRow {
  /** The op, the dtype and the shape, e.g. "sgemm NN 1024x1024x1024". */
  name: string;
  unit: string;
  ours: number;
  /** The peer's name, e.g. "OpenBLAS". */
  peer: string;
  peerValue: number;
  /** ours / peerValue for throughputs (higher is better); peerValue / ours for times (see lowerIsBetter). */
  ratio: number;
  lowerIsBetter?: boolean;
  threads?: number;
  note?: string;
}

export interface BenchOptions {
  /** Threads for us and for the peer (--threads N, default 2). */
  threads: number;
  /** Fewer repetitions, for a quick look (--quick). */
  quick: boolean;
  /** Arguments the runner did not recognise, for the benchmark to interpret. */
  args: string[];
}

export interface BenchResult {
  rows: BenchRow[];
  /** Extra machine facts the benchmark measured (e.g. clock, FP32 peak). */
  machine?: Record<string, unknown>;
  /** Settings worth keeping with the record (peer library, versions, ...). */
  settings?: Record<string, unknown>;
}

export interface Benchmark {
  /** A line for `npm run bench -- --list`. */
  description: string;
  run(opts: BenchOptions): Promise<BenchResult> | BenchResult;
}

// ---- timing ----

/** Blocks the thread for ms milliseconds without spinning (lets a peer's spinning threads go idle). */
export function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Seconds for one call of fn. */
export function timeOnce(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) * 1e-9;
}

export interface TimeOptions {
  /** Calls before timing (default 2). */
  warmup?: number;
  /** At least this many timed calls (default 5)... */
  minRuns?: number;
  /** ...and at least this much timed time, in seconds (default 0.5). */
  minTime?: number;
  /** At most this many timed calls (default 1000). */
  maxRuns?: number;
}

/** Times fn after a warm-up; returns every run's seconds (take the median). */
export function timeRuns(fn: () => void, o: TimeOptions = {}): number[] {
  const warmup = o.warmup ?? 2, minRuns = o.minRuns ?? 5, minTime = o.minTime ?? 0.5, maxRuns = o.maxRuns ?? 1000;
  for (let i = 0; i < warmup; ++i) fn();
  const times: number[] = [];
  let total = 0;
  while (times.length < maxRuns && (times.length < minRuns || total < minTime)) {
    const t = timeOnce(fn);
    times.push(t);
    total += t;
  }
  return times;
}

// ---- background load: other processes on this (shared) machine ----

function readJiffies(): { busy: number; self: number } | undefined {
  try {
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = cpu[3] + (cpu[4] ?? 0);
    // /proc/self/stat: fields after the command's closing parenthesis; utime and stime are 14 and 15.
    const st = fs.readFileSync('/proc/self/stat', 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return { busy: total - idle, self: Number(f[11]) + Number(f[12]) };
  } catch {
    return undefined;
  }
}

/** Sleeps ms and returns how many CPUs other processes kept busy meanwhile (undefined off Linux). */
export function sleepAndMeasureBackground(ms: number): number | undefined {
  const a = readJiffies();
  const t0 = process.hrtime.bigint();
  sleep(ms);
  const b = readJiffies();
  const secs = Number(process.hrtime.bigint() - t0) * 1e-9;
  if (!a || !b) return undefined;
  const hz = 100; // USER_HZ on Linux
  return Math.max(0, (b.busy - a.busy - (b.self - a.self)) / hz / secs);
}

/**
 * Pauses at least ms; while other processes keep more than `threshold` CPUs busy, keeps waiting
 * (up to maxWaitMs). Returns the background load seen in the last pause.
 */
export function waitQuiet(ms: number, threshold = 0.15, maxWaitMs = 3_000): number {
  let waited = 0;
  for (;;) {
    const load = sleepAndMeasureBackground(Math.max(ms, 100));
    waited += Math.max(ms, 100);
    if (load === undefined) return 0;
    if (load <= threshold || waited >= maxWaitMs) return load;
    ms = 250;
  }
}

export interface CompareOptions {
  /** Alternating blocks per side (default 6). */
  blocks?: number;
  /** Timed seconds per side per block, at least (default 0.15); at least 2 runs per block. */
  blockTime?: number;
  /** Pause before each switch between ours and the peer, in ms (default 150): OpenBLAS worker
   *  threads busy-wait after a call and would steal cores from the other side, and ours spin too.
   *  The pause is extended while other processes keep the machine busy (see waitQuiet). */
  switchSleepMs?: number;
}

/** One side of compareSides(): a name and a function that times one block of at least `seconds`
 *  (after one untimed call) and returns the per-call seconds. */
export interface Side {
  name: string;
  block: (seconds: number) => number[] | Promise<number[]>;
}

/**
 * Times the sides side by side, some of them maybe in another process (a PeerProcess): in each of
 * `blocks` rounds every side times one block, after a pause; the order rotates from round to round
 * (with two: ours first in even rounds, the peer in odd ones), so that each side goes first equally
 * often and a disturbance of the host lasting a second or two falls on all of them rather than on
 * one. Returns each side's per-call seconds.
 */
export async function compareSides(
  sides: Side[],
  o: CompareOptions = {},
): Promise<{ times: Record<string, number[]>; backgroundLoad: number }> {
  const blocks = o.blocks ?? 6, blockTime = o.blockTime ?? 0.15, pause = o.switchSleepMs ?? 150;
  const times: Record<string, number[]> = {};
  for (const s of sides) times[s.name] = [];
  let background = 0;
  for (let b = 0; b < blocks; ++b) {
    for (let i = 0; i < sides.length; ++i) {
      const s = sides[(b + i) % sides.length];
      background = Math.max(background, waitQuiet(pause));
      times[s.name].push(...(await s.block(blockTime)));
    }
  }
  return { times, backgroundLoad: background };
}

/** A block of calls of fn, for compareSides(): one untimed call, then at least `seconds` (and 2
 *  calls), at most maxRuns. */
export function localBlock(fn: () => void, maxRuns = 10_000): (seconds: number) => number[] {
  return (seconds) => timeRuns(fn, { warmup: 1, minRuns: 2, minTime: seconds, maxRuns });
}

/**
 * A peer that stays running and answers requests: one line in on its stdin, one JSON line out on its
 * stdout (bench/peers/conv.py). Lets a benchmark alternate its own blocks with the peer's in one run
 * instead of timing all of its own and then all of the peer's.
 */
export class PeerProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private pending = '';
  private readonly lines: string[] = [];
  private readonly waiters: ((line: string | null) => void)[] = [];
  private stderr = '';
  private ended = false;

  constructor(command: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => {
      this.pending += chunk;
      let nl: number;
      while ((nl = this.pending.indexOf('\n')) >= 0) {
        this.deliver(this.pending.slice(0, nl));
        this.pending = this.pending.slice(nl + 1);
      }
    });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (chunk: string) => { this.stderr = (this.stderr + chunk).slice(-4000); });
    const end = () => { this.ended = true; this.deliver(null); };
    this.child.on('close', end);
    this.child.on('error', (err) => { this.stderr += `\n${err.message}`; end(); });
  }

  // A line goes to the oldest read() waiting for one, or is kept for the next; the end (null) goes
  // to every read() still waiting.
  private deliver(line: string | null): void {
    if (line === null) {
      for (const w of this.waiters.splice(0)) w(null);
    } else {
      const w = this.waiters.shift();
      if (w) w(line);
      else this.lines.push(line);
    }
  }

  /** The next JSON line the peer writes, parsed; rejects if the peer exits first, and on an
   *  {"error": ...} line (torch_common.serve's answer to a request it does not know). */
  async read<T = unknown>(): Promise<T> {
    const line = this.lines.length > 0 ? this.lines.shift() as string
      : this.ended ? null : await new Promise<string | null>((resolve) => { this.waiters.push(resolve); });
    if (line === null) throw new Error(`the peer exited (code ${this.child.exitCode}):\n${this.stderr}`);
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`the peer wrote a line that is not JSON: ${line.slice(0, 200)}\n${this.stderr}`);
    }
    if (value !== null && typeof value === 'object' && 'error' in value)
      throw new Error(`the peer answered: ${String((value as { error: unknown }).error)}`);
    return value as T;
  }

  /** Sends one request line and returns the peer's answer. */
  async request<T = unknown>(line: string): Promise<T> {
    if (this.ended) throw new Error(`the peer has exited:\n${this.stderr}`);
    this.child.stdin.write(`${line}\n`);
    return this.read<T>();
  }

  /** Asks the peer to quit and waits for it to exit. */
  async close(): Promise<void> {
    if (this.ended) return;
    const done = new Promise<void>((resolve) => this.child.once('close', () => resolve()));
    this.child.stdin.end('quit\n');
    await done;
  }
}

// ---- the machine ----

export interface MachineInfo {
  cpu: string;
  /** Threads the benchmark used. */
  threads: number;
  logicalCpus: number;
  node: string;
  os: string;
  gpu?: string;
  [key: string]: unknown;
}

export function cpuModel(): string {
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const model = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim();
    const family = /^cpu family\s*:\s*(\d+)$/m.exec(info)?.[1];
    const modelNo = /^model\s*:\s*(\d+)$/m.exec(info)?.[1];
    const flags = /^flags\s*:\s*(.+)$/m.exec(info)?.[1]?.split(/\s+/) ?? [];
    const isa = flags.includes('avx512f') ? 'AVX-512' : flags.includes('avx2') ? 'AVX2' : '';
    const vendor = /^vendor_id\s*:\s*(\S+)$/m.exec(info)?.[1];
    // Virtual machines often report a bare "AMD EPYC": name the core generation from the family.
    const amdCore: Record<string, string> = { '23': 'Zen/Zen 2', '25': 'Zen 3/Zen 4', '26': 'Zen 5' };
    const core = vendor === 'AuthenticAMD' && family ? amdCore[family] : undefined;
    const fam = family ? ` (${core ? `${core}, ` : ''}family ${family} model ${modelNo}${isa ? `, ${isa}` : ''})` : '';
    if (model) return `${model}${fam}`;
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? 'unknown CPU';
}

/** Cache sizes as the kernel reports them, e.g. "L1d 48K, L2 1024K, L3 32768K". */
export function cacheInfo(): string | undefined {
  try {
    const dir = '/sys/devices/system/cpu/cpu0/cache';
    const parts: string[] = [];
    for (const idx of fs.readdirSync(dir).filter((d) => d.startsWith('index')).sort()) {
      const rd = (f: string) => fs.readFileSync(path.join(dir, idx, f), 'utf8').trim();
      const type = rd('type');
      if (type === 'Instruction') continue;
      parts.push(`L${rd('level')}${type === 'Data' ? 'd' : ''} ${rd('size')}`);
    }
    return parts.join(', ') || undefined;
  } catch {
    return undefined;
  }
}

export function machineInfo(threads: number): MachineInfo {
  const m: MachineInfo = {
    cpu: cpuModel(),
    threads,
    logicalCpus: os.cpus().length,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
  };
  const caches = cacheInfo();
  if (caches) m.caches = caches;
  // A run with the instruction sets narrowed (ours by TSM_SIMD, PyTorch's oneDNN and ATen kernels
  // by theirs, e.g. to compare the AVX2 paths on an AVX-512 machine) says so in its record.
  const limits = ['TSM_SIMD', 'ONEDNN_MAX_CPU_ISA', 'ATEN_CPU_CAPABILITY'].filter((k) => process.env[k]);
  if (limits.length) m.isaLimits = Object.fromEntries(limits.map((k) => [k, process.env[k]]));
  return m;
}

/**
 * The short commit hash, with "-dirty" when the tracked files of the library or of the benchmarks
 * (not their records, which a run writes as it goes) differ from it.
 */
export function gitCommit(): string {
  try {
    const hash = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const dirty = spawnSync('git', ['diff', '--quiet', 'HEAD', '--', 'cpp', 'cuda', 'lib', 'CMakeLists.txt', 'bench',
      ':(exclude)bench/results'], { cwd: REPO_ROOT }).status === 1;
    return dirty ? `${hash}-dirty` : hash;
  } catch {
    return 'unknown';
  }
}

// ---- records, table, chart ----

export interface BenchRecord {
  bench: string;
  date: string;
  commit: string;
  machine: MachineInfo;
  settings?: Record<string, unknown>;
  rows: BenchRow[];
}

/** Appends the record to bench/results/<name>.json (a JSON array, oldest first). */
export function appendRecord(record: BenchRecord): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${record.bench}.json`);
  let all: BenchRecord[] = [];
  if (fs.existsSync(file)) {
    const prev = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchRecord | BenchRecord[];
    all = Array.isArray(prev) ? prev : [prev];
  }
  all.push(record);
  fs.writeFileSync(file, JSON.stringify(all, null, 2) + '\n');
  return file;
}

const fmt = (v: number): string =>
  !Number.isFinite(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);

/** The table: name, ours, peer, ratio (and a note). */
export function formatTable(rows: BenchRow[]): string {
  const header = ['benchmark', 'unit', 'ours', 'peer', 'peer value', 'ratio', 'note'];
  const body = rows.map((r) => [r.name, r.unit, fmt(r.ours), r.peer, fmt(r.peerValue), `${r.ratio.toFixed(3)}x`, r.note ?? '']);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i >= 2 && i <= 5 && i !== 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A horizontal grouped bar chart of one record: per row, ours and the peer, scaled per unit. */
export function renderSvg(record: BenchRecord): string {
  const rows = record.rows;
  const labelW = 330, barW = 470, rightW = 90, rowH = 40, top = 64, bottom = 36;
  const width = labelW + barW + rightW;
  const height = top + rows.length * rowH + bottom;
  const maxByUnit = new Map<string, number>();
  for (const r of rows) maxByUnit.set(r.unit, Math.max(maxByUnit.get(r.unit) ?? 0, r.ours, r.peerValue));
  const peers = [...new Set(rows.map((r) => r.peer))].join(' / ');
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="10" y="20" font-size="15" font-weight="bold">${esc(`${record.bench}: tensorsmith vs ${peers}`)}</text>`);
  out.push(`<text x="10" y="38" fill="#555">${esc(`${record.machine.cpu}, ${record.machine.threads} threads, commit ${record.commit}, ${record.date}`)}</text>`);
  out.push(`<rect x="${labelW}" y="46" width="12" height="10" fill="#2b6cb0"/><text x="${labelW + 16}" y="55">tensorsmith</text>`);
  out.push(`<rect x="${labelW + 110}" y="46" width="12" height="10" fill="#a0aec0"/><text x="${labelW + 126}" y="55">${esc(peers)}</text>`);
  out.push(`<text x="${width - 10}" y="55" text-anchor="end" fill="#555">ratio</text>`);
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const max = maxByUnit.get(r.unit) || 1;
    const w = (v: number) => Math.max(1, (Number.isFinite(v) ? v : 0) / max * (barW - 60));
    if (i % 2 === 1) out.push(`<rect x="0" y="${y - 2}" width="${width}" height="${rowH}" fill="#f7f7f7"/>`);
    out.push(`<text x="${labelW - 8}" y="${y + 17}" text-anchor="end">${esc(r.name)}</text>`);
    out.push(`<text x="${labelW - 8}" y="${y + 30}" text-anchor="end" fill="#777" font-size="10">${esc(r.unit)}</text>`);
    out.push(`<rect x="${labelW}" y="${y + 3}" width="${w(r.ours).toFixed(1)}" height="15" fill="#2b6cb0"/>`);
    out.push(`<text x="${(labelW + w(r.ours) + 4).toFixed(1)}" y="${y + 15}" font-size="11">${esc(fmt(r.ours))}</text>`);
    out.push(`<rect x="${labelW}" y="${y + 19}" width="${w(r.peerValue).toFixed(1)}" height="15" fill="#a0aec0"/>`);
    out.push(`<text x="${(labelW + w(r.peerValue) + 4).toFixed(1)}" y="${y + 31}" font-size="11">${esc(fmt(r.peerValue))}</text>`);
    const good = r.ratio >= 1;
    out.push(`<text x="${width - 10}" y="${y + 23}" text-anchor="end" font-weight="bold" fill="${good ? '#276749' : '#c53030'}">${r.ratio.toFixed(2)}x</text>`);
  });
  out.push(`<text x="10" y="${height - 12}" fill="#777" font-size="10">${esc('ratio = ours / peer for throughputs (higher is better). Medians of alternating runs in one process.')}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

export function writeSvg(record: BenchRecord): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${record.bench}.svg`);
  fs.writeFileSync(file, renderSvg(record));
  return file;
}

// ---- small helpers for benchmarks ----

/** Parses "--name value" from the benchmark's extra arguments. */
export function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}

/** Deterministic uniform numbers in [-1, 1) (mulberry32), for reproducible inputs. */
export function randomArray(n: number, seed = 1): Float32Array {
  const random = seededRandom(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; ++i) x[i] = random() * 2 - 1;
  return x;
}

// ---- FP32 peak of one core, measured ----

export interface CpuPeak {
  /** Sustained clock under a scalar dependent-add chain, GHz. */
  clockGHz: number;
  /** FMA throughput of one core with the widest vectors in use, GFLOP/s. */
  fp32PeakGflops: number;
  flopsPerCycle: number;
  method: string;
}

// Twelve independent FMA chains (enough to cover latency x pipes on current x86 cores), and a
// chain of dependent adds (one per cycle) for the clock. Compiled at run time with the system cc.
const PEAK_PROBE = String.raw`
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
#if defined(__AVX512F__)
typedef __m512 V; enum { W = 16 };
#define SET(x) _mm512_set1_ps(x)
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define SUM(v) _mm512_reduce_add_ps(v)
#else
typedef __m256 V; enum { W = 8 };
#define SET(x) _mm256_set1_ps(x)
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
static float SUM(V v) { float t[8]; _mm256_storeu_ps(t, v); float s = 0; for (int i = 0; i < 8; ++i) s += t[i]; return s; }
#endif
#include <stdlib.h>
// No argument: "clock_GHz peak_GFLOPs checksum", each the best of 5. With an argument N: only the FMA
// loop, N times, each run's seconds on a line of its own ("flops F" first).
int main(int argc, char** argv) {
  const long iters = 20000000;
  double clk = 0, peak = 0;
  const int runs = argc > 1 ? atoi(argv[1]) : 0;
  for (int r = 0; r < 5 && runs == 0; ++r) {
    unsigned long x = 0; double t0 = now();
    for (long i = 0; i < iters; ++i)
      __asm__ volatile("add $1,%0\n\tadd $1,%0\n\tadd $1,%0\n\tadd $1,%0\n\tadd $1,%0\n\t"
                       "add $1,%0\n\tadd $1,%0\n\tadd $1,%0\n\tadd $1,%0\n\tadd $1,%0" : "+r"(x));
    double g = iters * 10.0 / (now() - t0) / 1e9; if (g > clk) clk = g;
  }
  V a = SET(0.999f), b = SET(0.001f);
  V c0 = SET(0), c1 = SET(1), c2 = SET(2), c3 = SET(3), c4 = SET(4), c5 = SET(5);
  V c6 = SET(6), c7 = SET(7), c8 = SET(8), c9 = SET(9), c10 = SET(10), c11 = SET(11);
  if (runs > 0) printf("flops %.0f\n", (iters / 4) * 12.0 * W * 2);
  for (int r = 0; r < (runs > 0 ? runs : 5); ++r) {
    double t0 = now();
    for (long i = 0; i < iters / 4; ++i) {
      c0 = FMA(c0, a, b); c1 = FMA(c1, a, b); c2 = FMA(c2, a, b); c3 = FMA(c3, a, b);
      c4 = FMA(c4, a, b); c5 = FMA(c5, a, b); c6 = FMA(c6, a, b); c7 = FMA(c7, a, b);
      c8 = FMA(c8, a, b); c9 = FMA(c9, a, b); c10 = FMA(c10, a, b); c11 = FMA(c11, a, b);
    }
    const double dt = now() - t0;
    if (runs > 0) printf("%.9f\n", dt);
    double g = (iters / 4) * 12.0 * W * 2 / dt / 1e9; if (g > peak) peak = g;
  }
  float s = SUM(c0) + SUM(c1) + SUM(c2) + SUM(c3) + SUM(c4) + SUM(c5) + SUM(c6) + SUM(c7) + SUM(c8) + SUM(c9) + SUM(c10) + SUM(c11);
  if (runs > 0) printf("checksum %g\n", s);
  else printf("%.4f %.3f %g\n", clk, peak, s);
  return 0;
}
`;

/**
 * One core's FP32 FMA peak for the given SIMD level ('avx512' or 'avx2'), from a small C probe built
 * by the system cc (x86-64 only): `measure()` once (best of 5, with the clock), or `block(seconds)`
 * as a side of compareSides, so that a row can set its rate against the peak measured in the same
 * minutes (this machine's speed moves by 10-30% within an hour). `close()` removes the probe.
 */
export class PeakProbe {
  /** The FLOPs of one run of the FMA loop (known after the first block). */
  flops = 0;
  private constructor(private readonly dir: string, private readonly exe: string, private readonly simd: string,
                      private readonly pin: boolean) {}
  /** Builds the probe; undefined where that is not possible. */
  static build(simd: string): PeakProbe | undefined {
    if (process.arch !== 'x64' || (simd !== 'avx512' && simd !== 'avx2')) return undefined;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsm-peak-'));
    const src = path.join(dir, 'peak.c'), exe = path.join(dir, 'peak');
    fs.writeFileSync(src, PEAK_PROBE);
    const flags = simd === 'avx512' ? ['-mavx512f', '-mavx2', '-mfma'] : ['-mavx2', '-mfma'];
    const cc = spawnSync('cc', ['-O2', ...flags, src, '-o', exe], { encoding: 'utf8' });
    if (cc.status !== 0) {
      fs.rmSync(dir, { recursive: true, force: true });
      return undefined;
    }
    // Pinned to one CPU when taskset exists, so the OS cannot move it mid-measurement.
    return new PeakProbe(dir, exe, simd, spawnSync('sh', ['-c', 'command -v taskset']).status === 0);
  }
  private run(args: string[]): string | undefined {
    const r = this.pin ? spawnSync('taskset', ['-c', '0', this.exe, ...args], { encoding: 'utf8' }) : spawnSync(this.exe, args, { encoding: 'utf8' });
    return r.status === 0 ? r.stdout : undefined;
  }
  /** The clock and the peak, each the best of 5 runs. */
  measure(): CpuPeak | undefined {
    const out = this.run([]);
    if (out === undefined) return undefined;
    const [clk, peak] = out.trim().split(/\s+/).map(Number);
    const width = this.simd === 'avx512' ? 16 : 8;
    return {
      clockGHz: clk,
      fp32PeakGflops: peak,
      flopsPerCycle: peak / clk,
      method: `C probe: 12 independent ${width}-wide FMA chains on one core (best of 5), clock from a dependent add chain`,
    };
  }
  /** Runs of the FMA loop for about `seconds` (at least 3): each run's seconds. */
  block(seconds: number): number[] {
    const first = this.runs(3);
    const each = first.reduce((a, b) => a + b, 0) / first.length;
    const more = Math.max(0, Math.round(seconds / each) - 3);
    return more > 0 ? [...first, ...this.runs(more)] : first;
  }
  private runs(n: number): number[] {
    const out = this.run([String(n)]);
    if (out === undefined) throw new Error('the peak probe failed');
    const lines = out.trim().split('\n');
    this.flops = Number(lines[0].split(' ')[1]);
    const times = lines.slice(1, 1 + n).map(Number);
    if (times.length !== n || !times.every((t) => t > 0)) throw new Error(`the peak probe wrote ${JSON.stringify(out)}`);
    return times;
  }
  close(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---- the PyTorch peers ----

/** A PyTorch peer kept running (a PeerProcess), with its first line and its thread count. */
export interface TorchPeer<H> {
  proc: PeerProcess;
  /** The peer's first line: its check of our results, its PyTorch version, ... */
  hello: H;
  threads: number;
}

/**
 * Starts a PyTorch peer script (one that answers requests, like bench/peers/conv.py) with `threads`
 * and, when that is more than 1, also with 1 thread, one after the other; `check` sees each one's
 * first line (and throws if our results differ). The benchmark times both and reports the faster:
 * on these 2-vCPU machines Debian's PyTorch 1.13 (GNU OpenMP) can be many times slower with 2
 * threads than with 1 (its LSTM step: ~1.5-2 s vs ~0.11 s), and a ratio against a pathological
 * configuration would flatter us. `args(t)` gives the script's arguments for t threads.
 */
export async function startTorchPeers<H>(python: string, script: string, args: (threads: number) => string[], threads: number,
                                         check: (hello: H) => void): Promise<TorchPeer<H>[]> {
  const peers: TorchPeer<H>[] = [];
  try {
    for (const t of threads > 1 ? [threads, 1] : [threads]) {
      const proc = new PeerProcess(python, [script, ...args(t)], { ...process.env, OMP_NUM_THREADS: String(t) });
      let hello: H;
      try {
        hello = await proc.read<H>();
      } catch (err) {
        await proc.close();
        throw new Error(`PyTorch peer failed (is python3-torch installed for ${python}?): ${(err as Error).message}`);
      }
      peers.push({ proc, hello, threads: t });
      check(hello);
    }
  } catch (err) {
    await closePeers(peers);
    throw err;
  }
  return peers;
}

export async function closePeers(peers: TorchPeer<unknown>[]): Promise<void> {
  await Promise.all(peers.map((p) => p.proc.close()));
}

/** The first line of the training peers (bench/peers/torch_common.py, serve_training). */
export interface TrainingHello {
  loss0: number;
  loss1: number;
  torch: string;
}

/**
 * A training benchmark's timing: our `step` and the PyTorch peers (startTorchPeers) take turns,
 * `blocks` blocks each of at least `blockTime` seconds (and 2 steps), after `warmup` untimed steps of
 * ours; the faster peer (by median) is the one reported. `check` compares a peer's first-step losses
 * with ours.
 */
export async function compareTraining(python: string, script: string, args: (threads: number) => string[], threads: number,
                                      check: (hello: TrainingHello) => void, step: () => unknown,
                                      o: { blocks: number; blockTime: number; warmup: number }) {
  const peers = await startTorchPeers<TrainingHello>(python, script, args, threads, check);
  try {
    for (let i = 0; i < o.warmup; i++) step();
    const r = await compareSides([{ name: 'ours', block: localBlock(step) },
      ...peers.map((p) => ({ name: `${p.threads}t`, block: (seconds: number) => p.proc.request<number[]>(`steps ${seconds}`) }))],
      { blocks: o.blocks, blockTime: o.blockTime });
    const tried: Record<number, number> = {};
    for (const p of peers) tried[p.threads] = median(r.times[`${p.threads}t`]);
    const best = peers.reduce((a, p) => (tried[p.threads] < tried[a.threads] ? p : a));
    return { ours: r.times.ours, peer: r.times[`${best.threads}t`], backgroundLoad: r.backgroundLoad, torch: best.hello.torch,
             threads: best.threads, tried };
  } finally {
    await closePeers(peers);
  }
}

/** Fails unless our first-step loss and the loss after that step match the peer's (relative tol). */
export function checkLosses(ours: [number, number], peer: { loss0: number; loss1: number }, tol: number): void {
  const [loss0, loss1] = ours;
  const off = (a: number, b: number) => Math.abs(a - b) > tol * Math.max(1, Math.abs(b));
  if (off(peer.loss0, loss0) || off(peer.loss1, loss1))
    throw new Error(`results differ: ours loss ${loss0} -> ${loss1}, PyTorch ${peer.loss0} -> ${peer.loss1}`);
  console.log(`check: first-step loss ${loss0.toFixed(6)} (PyTorch ${peer.loss0.toFixed(6)}), after the step ${loss1.toFixed(6)} (PyTorch ${peer.loss1.toFixed(6)})`);
}

/** "median step X ms vs Y ms (N / M steps in alternating blocks; PyTorch 1t .., 2t ..)" for a training row. */
export function stepNote(r: { ours: number[]; peer: number[]; tried: Record<number, number>; backgroundLoad: number }, digits = 2): string {
  const tried = Object.entries(r.tried).map(([t, s]) => `${t}t ${(s * 1e3).toFixed(1)} ms`).join(', ');
  const busy = r.backgroundLoad > 0.15 ? `; machine busy: other processes used ${r.backgroundLoad.toFixed(2)} CPUs` : '';
  return `median step ${(median(r.ours) * 1e3).toFixed(digits)} ms vs ${(median(r.peer) * 1e3).toFixed(digits)} ms ` +
    `(${r.ours.length} / ${r.peer.length} steps in alternating blocks; PyTorch's medians ${tried})${busy}`;
}
