// safetensors: round trips, files written from PyTorch's side (tools/fixtures/make_io_fixtures.py),
// every dtype decoded, corrupt / truncated / lying files refused, and atomic saves under SIGKILL.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import * as io from '../lib/io';

const { nn } = tsm;
const FIX = path.join(__dirname, 'fixtures');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsm-io-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A safetensors file from a header object and a data section, as bytes. */
function build(header: unknown, data: Uint8Array = new Uint8Array(0), lengthOverride?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const out = Buffer.alloc(8 + json.length + data.length);
  out.writeBigUInt64LE(lengthOverride ?? BigInt(json.length), 0);
  json.copy(out, 8);
  out.set(data, 8 + json.length);
  return out;
}

function writeFile(name: string, bytes: Buffer): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, bytes);
  return f;
}

describe('safetensors round trip', () => {
  it('keeps float32 and int32 tensors of every shape (0-d, empty, 4-d) and the metadata', () => {
    const sd = {
      'w.weight': tsm.randn([3, 4, 2, 2]),
      scalar: tsm.tensor(3.5),
      empty: tsm.zeros([0, 5]),
      ids: tsm.tensor(Int32Array.from([1, -2, 2147483647, -2147483648])),
      'a.b.c': tsm.tensor([[1, 2, 3]]),
    };
    const f = path.join(dir, 'round.safetensors');
    io.save(sd, f, { metadata: { format: 'pt', note: 'héllo' } });
    const { tensors, metadata } = io.loadWithMetadata(f);
    expect(metadata).toEqual({ format: 'pt', note: 'héllo' });
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(sd).sort());
    for (const [k, t] of Object.entries(sd)) {
      expect(tensors[k].shape).toEqual(t.shape);
      expect(tensors[k].dtype).toBe(t.dtype);
      expect(Array.from(tensors[k].dataSync())).toEqual(Array.from(t.dataSync()));
    }
    expect(tensors.scalar.ndim).toBe(0);
    expect(tensors.scalar.item()).toBe(3.5);
  });

  it('writes what the spec says: LE header length, JSON, 8-byte aligned data, offsets relative to the data', () => {
    const f = path.join(dir, 'spec.safetensors');
    io.save({ b: tsm.tensor([1, 2]), a: tsm.tensor(Int32Array.from([7])) }, f);
    const bytes = fs.readFileSync(f);
    const n = Number(bytes.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    expect(header.a).toEqual({ dtype: 'I32', shape: [1], data_offsets: [0, 4] });
    expect(header.b).toEqual({ dtype: 'F32', shape: [2], data_offsets: [4, 12] });
    expect(bytes.length).toBe(8 + n + 12);
    expect(bytes.readInt32LE(8 + n)).toBe(7);
    expect(bytes.readFloatLE(8 + n + 8)).toBe(2);
  });

  it('a model saved and loaded by name gives the same outputs', () => {
    tsm.manualSeed(1);
    const make = () => new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Linear(8, 3));
    const a = make(), b = make();
    const x = tsm.randn([5, 4]);
    const f = path.join(dir, 'model.safetensors');
    io.save(a.stateDict(), f);
    const r = b.loadStateDict(io.load(f));
    expect(r).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(Array.from(b.forward(x).dataSync())).toEqual(Array.from(a.forward(x).dataSync()));
  });
});

describe('files written from PyTorch', () => {
  // The same architecture as tools/fixtures/make_io_fixtures.py, with PyTorch's parameter names.
  const cnn = () => new nn.Sequential(
    new nn.Conv2d(1, 4, 3), new nn.BatchNorm2d(4), new nn.ReLU(), new nn.MaxPool2d(2),
    new nn.Conv2d(4, 8, 3), new nn.ReLU(), new nn.Flatten(), new nn.Linear(8 * 3 * 3, 5),
  );

  it('a CNN state_dict loads by parameter name and gives PyTorch\'s output', () => {
    const { tensors: sd, metadata } = io.loadWithMetadata(path.join(FIX, 'io-torch-cnn.safetensors'));
    expect(metadata.format).toBe('pt');
    expect(sd['1.num_batches_tracked'].dtype).toBe('int32'); // I64 in the file
    const model = cnn();
    const r = model.loadStateDict(sd);
    expect(r).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(model.stateDict()['1.num_batches_tracked'].item()).toBe(3);
    const { input, output } = io.load(path.join(FIX, 'io-torch-cnn-io.safetensors'));
    model.eval();
    const y = tsm.noGrad(() => model.forward(input));
    expect(y.shape).toEqual([3, 5]);
    const got = y.dataSync(), want = output.dataSync();
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-4);
  });

  it('loadStateDict reports missing and unexpected keys (strict: false) and refuses them when strict', () => {
    const sd = io.load(path.join(FIX, 'io-torch-cnn.safetensors'));
    const partial: Record<string, tsm.Tensor> = { ...sd, extra: tsm.zeros([1]) };
    delete partial['7.bias'];
    const model = cnn();
    expect(model.loadStateDict(partial, { strict: false })).toEqual({ missingKeys: ['7.bias'], unexpectedKeys: ['extra'] });
    expect(() => model.loadStateDict(partial)).toThrow(/missing keys \[7\.bias\].*unexpected keys \[extra\]/);
  });

  it('decodes F16, BF16, F64, I64, I32, U8 and BOOL as PyTorch converts them, 0-d and empty tensors too', () => {
    const t = io.load(path.join(FIX, 'io-torch-dtypes.safetensors'));
    for (const k of ['f16', 'bf16', 'f64', 'i64', 'i32', 'u8', 'bool', 'scalar', 'empty', 'f16_sub']) {
      const got = t[k], want = t[`${k}.expected`];
      expect(got.shape, k).toEqual(want.shape);
      // (float32 cannot hold every int32: compare integers through the same rounding)
      expect(Array.from(got.dataSync(), (v) => Math.fround(v)), k).toEqual(Array.from(want.dataSync()));
    }
    expect(t.f16.dtype).toBe('float32');
    expect(t.i64.dtype).toBe('int32');
    expect(t.scalar.ndim).toBe(0);
    expect(t.empty.shape).toEqual([0, 3]);
    expect(Array.from(t.i64.dataSync())).toEqual([0, 1, -1, 2147483647, -2147483648, 123456789, -42, 7]);
  });
});

describe('bad files are refused with a clear error before any large allocation', () => {
  const good = () => {
    const f = path.join(dir, 'good.safetensors');
    io.save({ a: tsm.tensor([1, 2, 3, 4]), b: tsm.tensor([5, 6]) }, f);
    return fs.readFileSync(f);
  };

  it('truncated files: inside the length, inside the header, inside the data', () => {
    const bytes = good();
    const n = Number(bytes.readBigUInt64LE(0));
    expect(() => io.load(writeFile('t1.safetensors', bytes.subarray(0, 5)))).toThrow(/not a valid safetensors file.*fewer than the 8-byte/);
    expect(() => io.load(writeFile('t2.safetensors', bytes.subarray(0, 8 + Math.floor(n / 2))))).toThrow(/not a valid safetensors file.*header claims/);
    expect(() => io.load(writeFile('t3.safetensors', bytes.subarray(0, bytes.length - 3)))).toThrow(/not a valid safetensors file.*outside the .* data bytes/);
    expect(() => io.load(writeFile('t0.safetensors', Buffer.alloc(0)))).toThrow(/fewer than the 8-byte/);
  });

  it('corrupt JSON and headers of the wrong form', () => {
    expect(() => io.load(writeFile('j1.safetensors', build('{"a": {"dtype": "F32", ')))).toThrow(/header is not JSON/);
    expect(() => io.load(writeFile('j2.safetensors', build('[1, 2]')))).toThrow(/not a JSON object/);
    expect(() => io.load(writeFile('j3.safetensors', build({ a: { dtype: 'F32', shape: [1] } }, new Uint8Array(4))))).toThrow(/needs dtype, shape and data_offsets/);
    expect(() => io.load(writeFile('j4.safetensors', build({ a: { dtype: 'Q7', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4))))).toThrow(/unknown dtype "Q7"/);
    expect(() => io.load(writeFile('j5.safetensors', build({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4))))).toThrow(/shape \[-1\]/);
    expect(() => io.load(writeFile('j6.safetensors', build({ __metadata__: { n: 3 } })))).toThrow(/metadata/);
  });

  it('a header length claiming 100 GB fails at once, without allocating it', () => {
    const f = writeFile('huge.safetensors', build('{}', new Uint8Array(0), 100n * 1024n ** 3n));
    const before = process.memoryUsage().arrayBuffers;
    expect(() => io.load(f)).toThrow(/header claims 107374182400 bytes but the file has 2/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
    expect(() => io.load(writeFile('huge2.safetensors', build('{}', new Uint8Array(0), 0xffffffffffffffffn)))).toThrow(/header claims/);
  });

  it('lying headers: offsets outside the file, huge shapes, overlapping tensors, wrong byte counts', () => {
    const data = new Uint8Array(16);
    expect(() => io.load(writeFile('l1.safetensors', build({ a: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, data)))).toThrow(/data_offsets \[8, 24\] outside the 16 data bytes/);
    expect(() => io.load(writeFile('l2.safetensors', build({ a: { dtype: 'F32', shape: [1e6, 1e6], data_offsets: [0, 16] } }, data)))).toThrow(/spans 16 bytes but shape \[1000000, 1000000\] of F32 needs/);
    expect(() => io.load(writeFile('l3.safetensors', build({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 1e15] } }, data)))).toThrow(/outside the 16 data bytes/);
    expect(() => io.load(writeFile('l4.safetensors', build({
      a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    }, data)))).toThrow(/overlap/);
    expect(() => io.load(writeFile('l5.safetensors', build({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, data)))).toThrow(/spans 16 bytes but shape \[3\] of F32 needs 12/);
    expect(() => io.load(writeFile('l6.safetensors', build({ a: { dtype: 'F32', shape: [2], data_offsets: [12, 4] } }, data)))).toThrow(/data_offsets \[12, 4\]/);
    expect(() => io.load(writeFile('l7.safetensors', build({ a: { dtype: 'F32', shape: [2], data_offsets: [0.5, 8.5] } }, data)))).toThrow(/data_offsets/);
  });

  it('a missing file and bad arguments are clear errors', () => {
    expect(() => io.load(path.join(dir, 'nope.safetensors'))).toThrow(/ENOENT/);
    expect(() => io.load('' as string)).toThrow(TypeError);
    expect(() => io.save({ a: 3 as unknown as tsm.Tensor }, path.join(dir, 'x.safetensors'))).toThrow(/a must be a Tensor/);
  });
});

describe('atomic save', () => {
  it('a save killed by SIGKILL leaves the previous complete file', async () => {
    const target = path.join(dir, 'killed.safetensors');
    const child = path.join(dir, 'saver.ts');
    // Saves version k (every element = k) of a 16 MB state dict in a loop, announcing each save.
    fs.writeFileSync(child, `
      import * as io from ${JSON.stringify(path.join(__dirname, '..', 'lib', 'io'))};
      import * as tsm from ${JSON.stringify(path.join(__dirname, '..', 'lib', 'index'))};
      const big = tsm.zeros([2, 1024, 1024]), small = tsm.zeros([10]);
      for (let k = 1; ; k++) {
        (big._data as Float32Array).fill(k); (small._data as Float32Array).fill(k);
        process.stdout.write('begin ' + k + '\\n');
        io.save({ big, small }, ${JSON.stringify(target)}, { metadata: { version: String(k) } });
        process.stdout.write('done ' + k + '\\n');
      }`);
    const root = path.join(__dirname, '..');
    const isTmp = (f: string) => f.startsWith('.killed.safetensors.') && f.endsWith('.tmp');
    let interruptedMidWrite = 0;
    for (let round = 0; round < 3; round++) {
      const delay = [0, 3, 5][round];
      let polling = false;
      // node itself (not the tsx wrapper, which would leave its node child running after SIGKILL).
      const p = spawn(process.execPath, ['--import', 'tsx', child], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
      let lastDone = 0;
      const guard = setTimeout(() => p.kill('SIGKILL'), 20_000);
      await new Promise<void>((resolve) => {
        let buf = '';
        p.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          for (const m of buf.matchAll(/done (\d+)/g)) lastDone = Math.max(lastDone, Number(m[1]));
          // Once a complete version exists, kill during a later save: as soon as its temporary
          // file appears (round 0), a little after (round 1), or a little after 'begin' (round 2).
          if (lastDone >= 2 && !polling) {
            polling = true;
            const poll = () => {
              if (p.exitCode !== null || p.killed) return;
              if (round === 2 || fs.readdirSync(dir).some(isTmp)) setTimeout(() => p.kill('SIGKILL'), delay);
              else setImmediate(poll);
            };
            poll();
          }
        });
        p.on('close', () => resolve());
      });
      clearTimeout(guard);
      const leftovers = fs.readdirSync(dir).filter(isTmp);
      if (leftovers.length) interruptedMidWrite++;
      for (const f of leftovers) fs.rmSync(path.join(dir, f));
      const { tensors, metadata } = io.loadWithMetadata(target);
      const v = Number(metadata.version);
      expect(v).toBeGreaterThanOrEqual(lastDone);
      expect(v).toBeLessThanOrEqual(lastDone + 1);
      const big = tensors.big._data as Float32Array;
      expect(big.length).toBe(2 * 1024 * 1024);
      expect(big.every((x) => x === v)).toBe(true);
      expect(Array.from(tensors.small.dataSync())).toEqual(new Array(10).fill(v));
    }
    // At least one kill landed while the temporary file was being written.
    expect(interruptedMidWrite).toBeGreaterThan(0);
  }, 60_000);
});
