// tsm.F: every functional op, gathered from the files that implement them.
export * from './functional';
export { scaledDotProductAttention } from './attention';
export type { ScaledDotProductAttentionOptions } from './attention';
export { logsumexp } from './ops';
