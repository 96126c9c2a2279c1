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

// Replies of the calling thread, in order.
const inbox: ToWorker[] = [];
let waiting: ((m: ToWorker) => void) | null = null;
port.on('message', (m: ToWorker) => {
  if (waiting) {
    const w = waiting;
    waiting = null;
    w(m);
  } else inbox.push(m);
});

function receive<T extends ToWorker['type']>(type: T): Promise<Extract<ToWorker, { type: T }>> {
  return new Promise((resolve, reject) => {
    const take = (m: ToWorker) => {
      if (m.type === type) resolve(m as Extract<ToWorker, { type: T }>);
      else reject(new Error(`${op}: the worker expected '${type}' from the calling thread, got '${m.type}'`));
    };
    const next = inbox.shift();
    if (next) take(next);
    else waiting = take;
  });
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

  const x = init.x.map(tensorOf);
  const y = tensorOf(init.y);
  const f = init.fit;
  await model.fit(x, y, {
    epochs: f.epochs as number, initialEpoch: f.initialEpoch as number, batchSize: f.batchSize as number,
    shuffle: f.shuffle as boolean, seed: f.seed as number | undefined, validationSplit: f.validationSplit as number | undefined,
    validationBatchSize: f.validationBatchSize as number | undefined, gradAccumulation: f.gradAccumulation as number,
    clipGradNorm: f.clipGradNorm as number | undefined,
    validationData: init.validation ? [init.validation.x.map(tensorOf), tensorOf(init.validation.y)] : undefined,
    verbose: 0, callbacks: [bridge],
  });
  post({ type: 'trainEnd', rng: getRngState() });
}

main().then(
  () => port.removeAllListeners('message'),
  (err) => {
    post({ type: 'error', error: toWireError(err) });
    port.removeAllListeners('message');
  },
);
