// The op codes of the native kernels (enums in cpp/include/tensorsmith.h, exported by the binding)
// and the TypeScript tables in lib/ops.ts must agree name for name and code for code.
import { describe, expect, it } from 'vitest';
import { BINARY, REDUCE, UNARY } from '../lib/ops';
import { raw } from './helpers/raw';

describe('op tables', () => {
  it('unary op codes match the C enum', () => expect({ ...UNARY }).toEqual(raw.UNARY_OPS));
  it('binary op codes match the C enum', () => expect({ ...BINARY }).toEqual(raw.BINARY_OPS));
  it('reduce op codes match the C enum', () => expect({ ...REDUCE }).toEqual(raw.REDUCE_OPS));
  it('an op code outside the table is refused by the binding', () => {
    const x = new Float32Array(4), y = new Float32Array(4);
    expect(() => raw.unaryForward(Object.keys(UNARY).length, y, x)).toThrow(RangeError);
    expect(() => raw.unaryForward(-1, y, x)).toThrow(RangeError);
  });
});
