import { describe, expect, it } from 'vitest';
import { raw } from './helpers/raw';

describe('addon', () => {
  it('loads and reports its build', () => {
    const info = raw.buildInfo();
    expect(info.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(['generic', 'avx2', 'avx512', 'neon']).toContain(info.simd);
  });
});
