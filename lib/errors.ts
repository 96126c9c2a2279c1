// Error types thrown by the library. Bad input is a TypeError (wrong type/dtype) or RangeError
// (shape, index, value); these subclasses cover device failures and use after dispose.

/** A tensor (or its storage) was used after dispose(). */
export class TsmDisposedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TsmDisposedError';
  }
}

/** A CUDA runtime call failed; `call` names it. */
export class TsmCudaError extends Error {
  /** The native call (or tsm.cuda operation) that failed, e.g. 'cudaMalloc'. */
  readonly call: string;
  constructor(call: string, message: string) {
    super(`${call}: ${message}`);
    this.name = 'TsmCudaError';
    this.call = call;
  }
}
