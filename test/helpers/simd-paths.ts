import { buildInfo } from '../../lib/runtime';

/** The SIMD paths this CPU can run (TSM_SIMD values), the best last. */
export function simdPaths(): string[] {
  const order = ['generic', 'avx2', 'avx512'];
  const best = buildInfo().simd;
  return best === 'neon' ? ['generic', 'neon'] : order.slice(0, order.indexOf(best) + 1);
}
