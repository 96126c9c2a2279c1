// Training-step throughput of an LSTM language model (issue 4 item 7):
//   Embedding(128, 256) -> LSTM(256) -> Linear(256, 128), batch 32 x seq 64 (seq-first), cross-entropy,
//   Adam(1e-3), tokens/s, ours vs PyTorch CPU side by side. Before timing, both libraries take one
//   step from the same weights (a safetensors file written by tsm.io.save) on the same batch, and
//   their losses before and after the step must agree.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tsm from '../lib/index';
import { LSTM } from '../lib/lstm';
import { argValue, checkLosses, compareTraining, median, stepNote, type Benchmark, type BenchRow } from './lib';

const PYTHON = process.env.TSM_TORCH_PYTHON ?? '/usr/bin/python3';
const { nn } = tsm;

export class LstmLm extends nn.Module {
  embedding: tsm.nn.Embedding;
  lstm: LSTM;
  fc: tsm.nn.Linear;
  constructor(vocab: number, dim: number, hidden: number) {
    super();
    this.embedding = new nn.Embedding(vocab, dim);
    this.lstm = new LSTM({ inputSize: dim, hiddenSize: hidden });
    this.fc = new nn.Linear(hidden, vocab);
  }
  /** tokens: (T, B) int32 -> logits (T * B, vocab). */
  forward(tokens: tsm.Tensor): tsm.Tensor {
    const [out] = this.lstm.forward(this.embedding.forward(tokens));
    return this.fc.forward(out.reshape([-1, out.shape[2]]));
  }
}

export const benchmark: Benchmark = {
  description: 'LSTM language-model training step (Embedding 128x256, LSTM 256, Linear, batch 32 x seq 64, Adam) vs PyTorch CPU',
  async run(opts) {
    const batch = Number(argValue(opts.args, 'batch') ?? 32);
    const seq = Number(argValue(opts.args, 'seq') ?? 64);
    const vocab = 128, dim = 256, hidden = 256, lr = 1e-3;
    const seconds = opts.quick ? 1 : 4;
    tsm.setNumThreads(opts.threads);
    tsm.manualSeed(1);
    const model = new LstmLm(vocab, dim, hidden);
    const x = tsm.randint(0, vocab, [seq, batch]);
    const y = tsm.randint(0, vocab, [seq, batch]);
    const file = path.join(os.tmpdir(), `tsm-train-lstm-${process.pid}.safetensors`);
    tsm.io.save({ ...model.stateDict(), 'batch.x': x, 'batch.y': y }, file);

    const opt = new tsm.optim.Adam(model.parameters(), { lr });
    const yFlat = y.reshape([-1]);
    const step = () => tsm.tidy(() => {
      opt.zeroGrad();
      const loss = tsm.F.crossEntropy(model.forward(x), yFlat);
      loss.backward();
      opt.step();
      return loss.item();
    });
    const loss0 = step();
    const loss1 = tsm.noGrad(() => tsm.tidy(() => tsm.F.crossEntropy(model.forward(x), yFlat).item()));

    // Our steps and PyTorch's take turns in blocks (compareTraining), the `seconds` of each in all.
    const blocks = opts.quick ? 2 : 6;
    let r;
    try {
      r = await compareTraining(PYTHON, path.join(__dirname, 'peers', 'train_lstm.py'), (t) => [file, String(t), String(lr)], opts.threads,
        (peer) => checkLosses([loss0, loss1], peer, 1e-4), step, { blocks, blockTime: seconds / blocks, warmup: 3 });
    } finally {
      fs.rmSync(file, { force: true });
    }
    const tokens = batch * seq;
    const ours = tokens / median(r.ours);
    const theirs = tokens / median(r.peer);
    const rows: BenchRow[] = [{
      name: `train-lstm step batch ${batch} x seq ${seq} Adam`, unit: 'tokens/s', ours: Math.round(ours), peer: `PyTorch ${r.torch} (${r.threads}t)`,
      peerValue: Math.round(theirs), ratio: +(ours / theirs).toFixed(3), threads: opts.threads,
      note: stepNote(r, 2),
    }];
    return { rows, settings: { batch, seq, vocab, dim, hidden, lr, peerPython: PYTHON } };
  },
};
