// bench/lib.ts's side-by-side timing with a peer in another process: PeerProcess (one request line
// in, one JSON line out) and compareSides (blocks of every side in turn, the order rotating); and
// the FMA peak probe, measured once or in blocks. The
// peer here is a small Node script speaking the protocol of bench/peers/torch_common.py's serve(),
// so that the test needs no PyTorch.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { compareSides, localBlock, PeakProbe, PeerProcess } from '../bench/lib';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsm-bench-lib-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// Answers "twice N" with [2N], "seconds S" with a list of two numbers and "err X" with an error
// object; exits on "quit", and with code 3 on "die" (after writing to stderr).
const peerScript = path.join(dir, 'peer.js');
fs.writeFileSync(peerScript, `
const rl = require('node:readline').createInterface({ input: process.stdin });
console.log(JSON.stringify({ hello: process.argv[2] }));
rl.on('line', (line) => {
  const [cmd, arg] = line.split(' ');
  if (cmd === 'quit') { rl.close(); return; }
  if (cmd === 'die') { process.stderr.write('peer: told to die\\n'); process.exit(3); }
  if (cmd === 'twice') console.log(JSON.stringify([2 * Number(arg)]));
  else if (cmd === 'err') console.log(JSON.stringify({ error: 'unknown request ' + arg }));
  else if (cmd === 'seconds') console.log(JSON.stringify([Number(arg), Number(arg)]));
  else console.log('not json');
});
`);

describe('PeerProcess', () => {
  it('reads the first line, answers requests in order and closes', async () => {
    const p = new PeerProcess(process.execPath, [peerScript, 'hi']);
    expect(await p.read()).toEqual({ hello: 'hi' });
    const answers = await Promise.all([1, 2, 3].map(async (n) => p.request<number[]>(`twice ${n}`)));
    expect(answers).toEqual([[2], [4], [6]]);
    await p.close();
    await p.close(); // a second close is harmless
  });

  it('rejects with the peer\'s stderr when it exits, and on a line that is not JSON', async () => {
    const p = new PeerProcess(process.execPath, [peerScript, 'x']);
    await p.read();
    await expect(p.request('bogus')).rejects.toThrow(/not JSON: not json/);
    await expect(p.request('err x')).rejects.toThrow(/the peer answered: unknown request x/);
    await expect(p.request('die')).rejects.toThrow(/exited \(code 3\)[\s\S]*told to die/);
    await expect(p.request('twice 1')).rejects.toThrow(/has exited/);
  });

  it('rejects when the command cannot be started', async () => {
    const p = new PeerProcess(path.join(dir, 'no-such-program'), []);
    await expect(p.read()).rejects.toThrow(/exited/);
  });
});

describe('compareSides', () => {
  it('times every side in every block, rotating which goes first', async () => {
    const order: string[] = [];
    const side = (name: string) => ({
      name,
      block: (seconds: number) => { order.push(name); return [seconds, seconds]; },
    });
    const r = await compareSides([side('a'), side('b'), side('c')], { blocks: 4, blockTime: 0.01, switchSleepMs: 0 });
    expect(order).toEqual(['a', 'b', 'c', 'b', 'c', 'a', 'c', 'a', 'b', 'a', 'b', 'c']);
    expect(r.times.a).toEqual(Array(8).fill(0.01));
    expect(Object.keys(r.times).sort()).toEqual(['a', 'b', 'c']);
  });

  it('alternates a local function with a peer process', async () => {
    const p = new PeerProcess(process.execPath, [peerScript, 'x']);
    await p.read();
    let calls = 0;
    try {
      const r = await compareSides([{ name: 'ours', block: localBlock(() => { calls++; }) },
        { name: 'peer', block: (s) => p.request<number[]>(`seconds ${s}`) }], { blocks: 2, blockTime: 0.005, switchSleepMs: 0 });
      expect(r.times.peer).toEqual([0.005, 0.005, 0.005, 0.005]);
      // Each local block: one untimed call, then at least 2 timed ones.
      expect(r.times.ours.length).toBeGreaterThanOrEqual(4);
      expect(calls).toBe(r.times.ours.length + 2);
    } finally {
      await p.close();
    }
  });
});

const cpuFlags = process.arch === 'x64' && fs.existsSync('/proc/cpuinfo')
  ? (/^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').split(/\s+/) : [];
const avx2 = cpuFlags.includes('avx2') && cpuFlags.includes('fma');
const cc = spawnSync('sh', ['-c', 'command -v cc']).status === 0;

describe.skipIf(!avx2 || !cc)('PeakProbe (x86-64 with AVX2 and a C compiler)', () => {
  it('measures the peak once, and in blocks of runs whose rate agrees with it', () => {
    const probe = PeakProbe.build('avx2')!;
    try {
      const once = probe.measure()!;
      expect(once.fp32PeakGflops).toBeGreaterThan(1);
      expect(once.clockGHz).toBeGreaterThan(0.5);
      const times = probe.block(0.05);
      expect(times.length).toBeGreaterThanOrEqual(3);
      expect(times.every((t) => t > 0)).toBe(true);
      expect(probe.flops).toBe(5_000_000 * 12 * 8 * 2);
      const best = probe.flops / Math.min(...times) / 1e9;
      // The same loop: its best run within a factor of 2 of measure()'s best (the host's load moves it).
      expect(best / once.fp32PeakGflops).toBeGreaterThan(0.5);
      expect(best / once.fp32PeakGflops).toBeLessThan(2);
    } finally {
      probe.close();
    }
  });
});
