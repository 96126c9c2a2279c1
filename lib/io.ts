// tsm.io: state dicts in the safetensors format, so weights move between this library and
// PyTorch / Hugging Face tools.
//
// Layout: 8-byte little-endian header length N, then N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}}
// then the tensor bytes, offsets relative to the end of the header. Writes are atomic: a temporary
// file in the same folder, fsync, rename. Reads never trust the header: every size and offset is
// checked against the file before anything is allocated.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe } from './check';
import { fromData, Tensor } from './tensor';

const MAX_HEADER = 100 * 1024 * 1024;

const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** Options of io.save and io.serialize. */
export interface SaveOptions {
  /** String-to-string metadata stored under __metadata__. */
  metadata?: Record<string, string>;
}

/** Serialises a state dict (name -> float32/int32/bfloat16/float16 tensor; F32/I32/BF16/F16 entries) to safetensors bytes. */
export function serialize(stateDict: Record<string, Tensor>, opts: SaveOptions = {}): Buffer {
  if (typeof stateDict !== 'object' || stateDict === null) throw new TypeError(`io.save: stateDict must be an object of tensors, got ${describe(stateDict)}`);
  const header: Record<string, unknown> = {};
  if (opts.metadata) {
    for (const [k, v] of Object.entries(opts.metadata))
      if (typeof v !== 'string') throw new TypeError(`io.save: metadata values must be strings, got ${describe(v)} for ${k}`);
    header.__metadata__ = opts.metadata;
  }
  const names = Object.keys(stateDict).sort();
  let offset = 0;
  const parts: Uint8Array[] = [];
  for (const name of names) {
    if (name === '__metadata__') throw new RangeError('io.save: "__metadata__" is reserved and cannot name a tensor');
    const t = stateDict[name];
    if (!(t instanceof Tensor)) throw new TypeError(`io.save: ${name} must be a Tensor, got ${describe(t)}`);
    // The stored elements (bits for bfloat16/float16); a CUDA tensor is copied back first.
    const data = t.device === 'cpu' ? t._data : t._download('io.save');
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const dtype = t.dtype === 'int32' ? 'I32' : t.dtype === 'bfloat16' ? 'BF16' : t.dtype === 'float16' ? 'F16' : 'F32';
    header[name] = { dtype, shape: t.shape.slice(), data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (allowed by the format).
  const pad = (8 - ((8 + Buffer.byteLength(json)) % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.allocUnsafe(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/**
 * Writes a state dict atomically: the old file stays intact until the new one is complete.
 *
 * @example
 * ```ts
 * tsm.io.save(model.stateDict(), 'model.safetensors', { metadata: { epochs: '10' } });
 * const { tensors, metadata } = tsm.io.loadWithMetadata('model.safetensors');
 * model.loadStateDict(tensors); // metadata.epochs === '10'
 * ```
 */
export function save(stateDict: Record<string, Tensor>, file: string, opts: SaveOptions = {}): void {
  if (typeof file !== 'string' || !file) throw new TypeError(`io.save: path must be a non-empty string, got ${describe(file)}`);
  const bytes = serialize(stateDict, opts);
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    let written = 0;
    while (written < bytes.length) written += fs.writeSync(fd, bytes, written, bytes.length - written);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  try {
    const dfd = fs.openSync(dir, 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  } catch {
    // Some filesystems do not allow fsync on a directory; the rename is still atomic.
  }
}

function bad(file: string, why: string): Error {
  return new RangeError(`io.load: ${file} is not a valid safetensors file: ${why}`);
}

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Parses and validates the header; returns the entries and where the data starts. */
function parseHeader(file: string, head: Buffer, fileSize: number): { entries: [string, Entry][]; dataStart: number; metadata: Record<string, string> } {
  if (fileSize < 8) throw bad(file, `it has ${fileSize} bytes, fewer than the 8-byte header length`);
  const n = head.readBigUInt64LE(0);
  if (n > BigInt(Math.min(MAX_HEADER, fileSize - 8)))
    throw bad(file, `the header claims ${n} bytes but the file has ${fileSize - 8} after the length (limit ${MAX_HEADER})`);
  const len = Number(n);
  let parsed: unknown;
  try {
    parsed = JSON.parse(head.subarray(8, 8 + len).toString('utf8'));
  } catch (err) {
    throw bad(file, `the header is not JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad(file, 'the header is not a JSON object');
  const dataStart = 8 + len;
  const dataLen = fileSize - dataStart;
  const entries: [string, Entry][] = [];
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string'))
        throw bad(file, '__metadata__ must be an object of string values');
      metadata = v as Record<string, string>;
      continue;
    }
    const e = v as Partial<Entry>;
    if (!e || typeof e !== 'object' || typeof e.dtype !== 'string' || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets) || e.data_offsets.length !== 2)
      throw bad(file, `entry ${JSON.stringify(name)} needs dtype, shape and data_offsets`);
    const size = DTYPE_BYTES[e.dtype];
    if (!size) throw bad(file, `entry ${JSON.stringify(name)} has unknown dtype ${JSON.stringify(e.dtype)}`);
    let count = 1;
    for (const d of e.shape) {
      if (!Number.isSafeInteger(d) || d < 0) throw bad(file, `entry ${JSON.stringify(name)} has shape [${e.shape.join(', ')}]`);
      count *= d;
    }
    const [b, end] = e.data_offsets;
    if (!Number.isSafeInteger(b) || !Number.isSafeInteger(end) || b < 0 || end < b || end > dataLen)
      throw bad(file, `entry ${JSON.stringify(name)} has data_offsets [${b}, ${end}] outside the ${dataLen} data bytes`);
    if (end - b !== count * size)
      throw bad(file, `entry ${JSON.stringify(name)} spans ${end - b} bytes but shape [${e.shape.join(', ')}] of ${e.dtype} needs ${count * size}`);
    entries.push([name, e as Entry]);
  }
  // Tensors must not overlap.
  const sorted = entries.map(([, e]) => e.data_offsets).sort((p, q) => p[0] - q[0]);
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i][0] < sorted[i - 1][1]) throw bad(file, 'two tensors overlap in the data section');
  return { entries, dataStart, metadata };
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function decode(dtype: string, bytes: Buffer, count: number): Float32Array | Int32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32': { const o = new Float32Array(count); for (let i = 0; i < count; i++) o[i] = dv.getFloat32(i * 4, true); return o; }
    case 'F64': { const o = new Float32Array(count); for (let i = 0; i < count; i++) o[i] = dv.getFloat64(i * 8, true); return o; }
    case 'F16': { const o = new Float32Array(count); for (let i = 0; i < count; i++) o[i] = halfToFloat(dv.getUint16(i * 2, true)); return o; }
    case 'BF16': {
      const o = new Float32Array(count), u = new Uint32Array(o.buffer);
      for (let i = 0; i < count; i++) u[i] = dv.getUint16(i * 2, true) << 16;
      return o;
    }
    case 'I32': { const o = new Int32Array(count); for (let i = 0; i < count; i++) o[i] = dv.getInt32(i * 4, true); return o; }
    case 'I64': {
      const o = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const v = dv.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n) throw new RangeError(`io.load: I64 value ${v} at position ${i} does not fit the int32 tensors of this library`);
        o[i] = Number(v);
      }
      return o;
    }
    case 'I16': { const o = new Int32Array(count); for (let i = 0; i < count; i++) o[i] = dv.getInt16(i * 2, true); return o; }
    case 'I8': { const o = new Int32Array(count); for (let i = 0; i < count; i++) o[i] = dv.getInt8(i); return o; }
    case 'U8': case 'BOOL': { const o = new Int32Array(count); for (let i = 0; i < count; i++) o[i] = dv.getUint8(i); return o; }
  }
  throw new RangeError(`io.load: unsupported dtype ${dtype}`);
}

/**
 * Loads a safetensors file into a state dict. F32/F64/F16/BF16 load as float32 tensors, integer
 * types as int32.
 */
export function load(file: string): Record<string, Tensor> {
  return loadWithMetadata(file).tensors;
}

/** Result of io.loadWithMetadata. */
export interface LoadedSafetensors {
  /** The state dict (name -> tensor). */
  tensors: Record<string, Tensor>;
  /** The file's __metadata__ ({} when it has none). */
  metadata: Record<string, string>;
}

/** As io.load, and also returns the file's string metadata. Throws RangeError when the file is not valid safetensors. */
export function loadWithMetadata(file: string): LoadedSafetensors {
  if (typeof file !== 'string' || !file) throw new TypeError(`io.load: path must be a non-empty string, got ${describe(file)}`);
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const first = Buffer.alloc(Math.min(size, 8));
    fs.readSync(fd, first, 0, first.length, 0);
    if (size < 8) throw bad(file, `it has ${size} bytes, fewer than the 8-byte header length`);
    const n = first.readBigUInt64LE(0);
    if (n > BigInt(Math.min(MAX_HEADER, size - 8)))
      throw bad(file, `the header claims ${n} bytes but the file has ${size - 8} after the length (limit ${MAX_HEADER})`);
    const head = Buffer.alloc(8 + Number(n));
    fs.readSync(fd, head, 0, head.length, 0);
    const { entries, dataStart, metadata } = parseHeader(file, head, size);
    const tensors: Record<string, Tensor> = {};
    for (const [name, e] of entries) {
      const [b, end] = e.data_offsets;
      const buf = Buffer.alloc(end - b);
      let got = 0;
      while (got < buf.length) {
        const r = fs.readSync(fd, buf, got, buf.length - got, dataStart + b + got);
        if (r === 0) throw bad(file, `it ends inside tensor ${JSON.stringify(name)}`);
        got += r;
      }
      const count = e.shape.reduce((p, d) => p * d, 1);
      tensors[name] = fromData(decode(e.dtype, buf, count), e.shape);
    }
    return { tensors, metadata };
  } finally {
    fs.closeSync(fd);
  }
}
