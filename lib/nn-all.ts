// tsm.nn: every module, gathered from the files that implement them.
export * from './nn';
export {
  MultiheadAttention, TransformerEncoderLayer, TransformerEncoder, PositionalEncoding, LearnedPositionalEmbedding,
} from './transformer';
export type {
  MultiheadAttentionOptions, MultiheadAttentionForwardOptions, TransformerEncoderLayerOptions, EncoderForwardOptions, Activation,
} from './transformer';
export { LSTM } from './lstm';
export type { LSTMOptions } from './lstm';
