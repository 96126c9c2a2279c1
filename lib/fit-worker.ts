// The worker thread of model.fitAsync (lib/fit-async.ts is the calling side). It rebuilds the
// model, optimizer, loss and metrics from workerData, runs the ordinary fit() on them with one
// callback that relays every hook to the calling thread, and exits; its tensors go with it.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import type { CallbackHooks, Logs } from './callbacks';
import {
  toWireError, type FromWorker, type ToWorker, type WireSpec, type WireTensor, type WorkerInit,
} from './fit-async';
import * as tsm from './index';
import { parameter } from './nn';
import { getRngState, setRngState } from './ops';
import type { Optimizer } from './optim';
import { fromData, Tensor } from './tensor';
import type { CompileConfig, MetricSpec } from './training';
import { Decoder, Encoder, exportsByName, lookupExport } from './transfer';

const op = 'fitAsync';
const port = parentPort!;

function post(m: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(m, transfer);
}

// Messages of the calling thread, taken by type (streamed batches interleave with the replies).
const inbox: ToWorker[] = [];
let waiting: { want: (m: ToWorker) => boolean; take: (m: ToWorker) => void } | null = null;
/** The stream whose batches are wanted; batches of a stream closed early are dropped. */
let currentStream = -1;
port.on('message', (m: ToWorker) => {
  if (m.type === 'batch' && m.id !== currentStream) return;
  if (waiting?.want(m)) {
    const w = waiting;
    waiting = null;
    w.take(m);
  } else inbox.push(m);
});

function receive<T extends ToWorker['type']>(type: T, id?: number): Promise<Extract<ToWorker, { type: T }>> {
  const want = (m: ToWorker) => m.type === type && (id === undefined || (m as { id?: number }).id === id);
  return new Promise((resolve) => {
    const i = inbox.findIndex(want);
    if (i >= 0) resolve(inbox.splice(i, 1)[0] as Extract<ToWorker, { type: T }>);
    else waiting = { want, take: (m) => resolve(m as Extract<ToWorker, { type: T }>) };
  });
}

/** Training batches sent by the calling thread: one stream per epoch (fit() iterates once per epoch). */
function streamedBatches(): AsyncIterable<Tensor[]> {
  let next = 0;
  return {
    [Symbol.asyncIterator](): AsyncIterator<Tensor[]> {
      const id = next++;
      currentStream = id;
      for (let i = inbox.length - 1; i >= 0; i--) if (inbox[i].type === 'batch') inbox.splice(i, 1);
      post({ type: 'open', id });
      let done = false;
      let last: Tensor[] = [];
      const release = () => {
        for (const t of last) t.dispose();
        last = [];
      };
      return {
        async next(): Promise<IteratorResult<Tensor[]>> {
          release();
          if (done) return { done: true, value: undefined };
          const m = await receive('batch', id);
          if (!m.tensors) {
            done = true;
            return { done: true, value: undefined };
          }
          post({ type: 'pull', id });
          last = m.tensors.map(tensorOf);
          return { done: false, value: last };
        },
        async return(): Promise<IteratorResult<Tensor[]>> {
          release();
          if (!done) {
            done = true;
            post({ type: 'close', id });
          }
          return { done: true, value: undefined };
        },
      };
    },
  };
}

const dynamicImport = new Function('u', 'return import(u)') as (url: string) => Promise<Record<string, unknown>>;

async function loadModules(init: WorkerInit): Promise<[string, Record<string, unknown>][]> {
  const req = createRequire(__filename);
  const out: [string, Record<string, unknown>][] = [];
  for (const url of init.modules) {
    const file = fileURLToPath(url);
    // tsx's require hook handles TypeScript (ESM syntax included); import() everything else.
    out.push([file, init.useRequire ? (req(file) as Record<string, unknown>) : await dynamicImport(url)]);
  }
  return out;
}

function tensorOf(w: WireTensor): Tensor {
  return fromData(w.data, w.shape);
}

function specOf(s: WireSpec, dec: Decoder, fns: Map<string, unknown>, searched: string[], what: string): unknown {
  if (s.kind === 'name') return s.name;
  if (s.kind === 'fn') {
    const f = lookupExport(op, fns, searched, s.name, `${what} function`);
    if (typeof f !== 'function') throw new TypeError(`${op}: ${s.name} (${what}) is not a function in the worker thread`);
    return f;
  }
  return dec.decode(s.value);
}

async function main(): Promise<void> {
  const init = workerData as WorkerInit;
  const loaded = await loadModules(init);
  const searched = loaded.map(([f]) => f);
  const exported = exportsByName(loaded);

  const state = new Map<string, Tensor>();
  for (const s of init.state) {
    const t = fromData(s.data, s.shape);
    if (s.param) parameter(t);
    // A frozen parameter (requiresGrad_(false)) stays frozen.
    if (t.requiresGrad !== s.requiresGrad) t.requiresGrad_(s.requiresGrad);
    state.set(s.name, t);
  }
  // Decoded in the order they were encoded (references point backwards).
  const dec = new Decoder({ op, state, userClasses: exported, searched });
  const model = dec.decode(init.model) as tsm.nn.Module;
  const optimizer = dec.decode(init.optimizer) as Optimizer;
  const loss = specOf(init.loss, dec, exported, searched, 'loss') as CompileConfig['loss'];
  const metrics = init.metrics.map((m) => specOf(m, dec, exported, searched, 'metric') as MetricSpec);
  if (!(model instanceof tsm.nn.Module)) throw new TypeError(`${op}: the model did not arrive as a Module (its class does not extend tsm.nn.Module in the worker)`);
  model.compile({ optimizer, loss, metrics });
  setRngState(init.rng);
  tsm.setDetectAnomaly(init.detectAnomaly);

  const stateNames = () => {
    const m = new Map<Tensor, string>();
    for (const [k, t] of Object.entries(model.stateDict())) if (!m.has(t)) m.set(t, k);
    return m;
  };
  const checkStop = () => {
    if (Atomics.load(init.stop, 0) === 1) model.stopTraining = true;
  };
  const bridge: CallbackHooks = {
    onTrainBegin(): void {
      post({ type: 'trainBegin', params: this.params! });
    },
    async onEpochBegin(epoch: number): Promise<void> {
      post({ type: 'epochBegin', epoch });
      const go = await receive('epochGo');
      const own = model.stateDict();
      for (const [k, d] of Object.entries(go.state)) own[k]?._data.set(d as never);
      optimizer.lr = go.lr;
      if (go.stop) model.stopTraining = true;
    },
    onBatchBegin(step: number, logs: Logs): void {
      post({ type: 'batchBegin', step, logs });
      checkStop();
    },
    onBatchEnd(step: number, logs: Logs): void {
      post({ type: 'batchEnd', step, logs });
      checkStop();
    },
    async onEpochEnd(epoch: number, logs: Logs): Promise<void> {
      const sd: Record<string, tsm.TypedArray> = {};
      const buffers: ArrayBuffer[] = [];
      for (const [k, t] of Object.entries(model.stateDict())) {
        const d = t._data.slice();
        sd[k] = d;
        buffers.push(d.buffer as ArrayBuffer);
      }
      const opt = new Encoder({ op, stateNames: stateNames() }).encode(optimizer, 'the optimizer');
      post({ type: 'epochEnd', epoch, logs, state: sd, optimizer: opt, rng: getRngState() }, buffers);
      const ack = await receive('epochEndAck');
      if (ack.stop) model.stopTraining = true;
      checkStop();
    },
  };

  const f = init.fit;
  const common = {
    epochs: f.epochs as number, initialEpoch: f.initialEpoch as number, gradAccumulation: f.gradAccumulation as number,
    clipGradNorm: f.clipGradNorm as number | undefined, verbose: 0 as const, callbacks: [bridge],
  };
  if (init.stream) {
    // The caller batches (a Dataset, DataLoader or iterable) and owns the validation split.
    const val = init.valBatches?.map((b) => b.map(tensorOf));
    await model.fit(streamedBatches(), { ...common, validationData: val });
  } else {
    await model.fit(init.x.map(tensorOf), tensorOf(init.y!), {
      ...common, batchSize: f.batchSize as number, shuffle: f.shuffle as boolean, seed: f.seed as number | undefined,
      validationSplit: f.validationSplit as number | undefined, validationBatchSize: f.validationBatchSize as number | undefined,
      validationData: init.validation ? [init.validation.x.map(tensorOf), tensorOf(init.validation.y)] : undefined,
    });
  }
  post({ type: 'trainEnd', rng: getRngState() });
}

main().then(
  () => port.removeAllListeners('message'),
  (err) => {
    post({ type: 'error', error: toWireError(err) });
    port.removeAllListeners('message');
  },
);
