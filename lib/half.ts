// 16-bit floats on the host: float32 <-> bfloat16 / float16 bit conversions, the storage of
// 'bfloat16' and 'float16' tensors on the CPU (Uint16Array of bits). Round to nearest, ties to
// even; float16 overflows to +-Inf and keeps subnormals; NaN becomes 0x7FC0 (bfloat16) or
// sign|0x7E00 (float16), as PyTorch's c10 conversions. cuda/cast16.cu computes the same bits on the
// device. Internal; tsm.cuda re-exports the four functions for filling device buffers.

/** The storage dtypes of 16 bits. */
export type Dtype16 = 'bfloat16' | 'float16';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> bfloat16 bits, round to nearest even (NaN -> 0x7FC0). */
export function toBfloat16(x: ArrayLike<number>): Uint16Array {
  const n = x.length;
  const out = new Uint16Array(n);
  if (x instanceof Float32Array) {
    const u = new Uint32Array(x.buffer, x.byteOffset, n);
    for (let i = 0; i < n; ++i) out[i] = bf16Bits(u[i]);
    return out;
  }
  for (let i = 0; i < n; ++i) {
    f32[0] = x[i];
    out[i] = bf16Bits(u32[0]);
  }
  return out;
}

function bf16Bits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

/** bfloat16 bits -> float32 (exact). */
export function fromBfloat16(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  const ou = new Uint32Array(out.buffer);
  for (let i = 0; i < h.length; ++i) ou[i] = h[i] << 16;
  return out;
}

/** float32 -> float16 bits, round to nearest even, overflow to Inf. */
export function toFloat16(x: ArrayLike<number>): Uint16Array {
  const n = x.length;
  const out = new Uint16Array(n);
  if (x instanceof Float32Array) {
    const u = new Uint32Array(x.buffer, x.byteOffset, n);
    for (let i = 0; i < n; ++i) out[i] = f16Bits(u[i]);
    return out;
  }
  for (let i = 0; i < n; ++i) {
    f32[0] = x[i];
    out[i] = f16Bits(u32[0]);
  }
  return out;
}

function f16Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && (r & 1))) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) { r++; if (r === 0x400) { r = 0; e++; } }
  return e >= 0x1f ? sign | 0x7c00 : sign | (e << 10) | r;
}

/** float16 bits -> float32 (exact; subnormals and Inf kept, NaN -> 0x7FC00000). */
export function fromFloat16(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  const ou = new Uint32Array(out.buffer);
  for (let i = 0; i < h.length; ++i) {
    const v = h[i], sign = (v & 0x8000) << 16, e = (v >>> 10) & 0x1f, m = v & 0x3ff;
    if (e === 0x1f) ou[i] = m ? 0x7fc00000 : (sign | 0x7f800000) >>> 0;
    else if (e === 0) out[i] = (sign ? -m : m) * 2 ** -24;
    else ou[i] = (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
  }
  return out;
}

/** float32 values -> the bits of `dtype`. */
export function encode16(dtype: Dtype16, x: ArrayLike<number>): Uint16Array {
  return dtype === 'bfloat16' ? toBfloat16(x) : toFloat16(x);
}

/** The bits of `dtype` -> float32 values. */
export function decode16(dtype: Dtype16, h: Uint16Array): Float32Array {
  return dtype === 'bfloat16' ? fromBfloat16(h) : fromFloat16(h);
}

/** True for 'bfloat16' and 'float16'. */
export function is16(dtype: string): dtype is Dtype16 {
  return dtype === 'bfloat16' || dtype === 'float16';
}
