// Argument checks with messages that name the op, the argument, what was expected and what came.

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'number') return `${v}`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `an Array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of length ${(v as unknown as { length: number }).length}`;
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'Object'})`;
  return `a ${typeof v}`;
}

/** A non-negative safe integer. */
export function checkSize(op: string, name: string, v: unknown): number {
  if (typeof v !== 'number') throw new TypeError(`${op}: ${name} must be a number, got ${describe(v)}`);
  if (!Number.isSafeInteger(v) || v < 0)
    throw new RangeError(`${op}: ${name} must be a non-negative integer, got ${v}`);
  return v;
}

/** A safe integer >= min. */
export function checkInt(op: string, name: string, v: unknown, min = -Infinity, max = Infinity): number {
  if (typeof v !== 'number') throw new TypeError(`${op}: ${name} must be a number, got ${describe(v)}`);
  if (!Number.isSafeInteger(v)) throw new RangeError(`${op}: ${name} must be an integer, got ${v}`);
  if (v < min || v > max) {
    const range = max === Infinity ? `>= ${min}` : min === -Infinity ? `<= ${max}` : `in [${min}, ${max}]`;
    throw new RangeError(`${op}: ${name} must be ${range}, got ${v}`);
  }
  return v;
}

/** A finite number (optionally within [min, max]). */
export function checkNumber(op: string, name: string, v: unknown, min = -Infinity, max = Infinity): number {
  if (typeof v !== 'number') throw new TypeError(`${op}: ${name} must be a number, got ${describe(v)}`);
  if (!Number.isFinite(v)) throw new RangeError(`${op}: ${name} must be finite, got ${v}`);
  if (v < min || v > max) throw new RangeError(`${op}: ${name} must be in [${min}, ${max}], got ${v}`);
  return v;
}

/** A boolean; throws TypeError naming `op` and `name` otherwise. Returns v. */
export function checkBool(op: string, name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`${op}: ${name} must be a boolean, got ${describe(v)}`);
  return v;
}

export function checkFloat32Array(op: string, name: string, v: unknown): Float32Array {
  if (!(v instanceof Float32Array)) throw new TypeError(`${op}: ${name} must be a Float32Array, got ${describe(v)}`);
  return v;
}

/** The array must hold at least `need` elements. */
export function checkLength(op: string, name: string, arr: { length: number }, need: number, why: string): void {
  if (arr.length < need)
    throw new RangeError(`${op}: ${name} is too short: ${why} needs ${need} elements, got ${arr.length}`);
}
