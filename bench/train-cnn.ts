// Training-step throughput of the MNIST CNN (DESIGN.md system 2), batch 64, SGD with momentum,
// ours vs PyTorch CPU side by side. Before timing, both libraries take one step from the same
// weights on the same batch and their losses must agree.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tsm from '../lib/index';
import { MnistCnn } from '../examples/mnist-cnn';
import { loadMnist } from '../examples/data/mnist';
import { argValue, checkLosses, compareTraining, median, stepNote, type Benchmark, type BenchRow } from './lib';

const PYTHON = process.env.TSM_TORCH_PYTHON ?? '/usr/bin/python3';

export const benchmark: Benchmark = {
  description: 'MNIST CNN training step (batch 64, SGD momentum) vs PyTorch CPU',
  async run(opts) {
    const batch = Number(argValue(opts.args, 'batch') ?? 64);
    const seconds = opts.quick ? 1 : 4;
    const lr = 0.01, momentum = 0.9;
    tsm.setNumThreads(opts.threads);
    tsm.manualSeed(1);
    const model = new MnistCnn();
    const { train } = loadMnist();
    const x = tsm.tensor(train.images.slice(0, batch * 784), { shape: [batch, 1, 28, 28] });
    // A batch with every class: spread the picks over the (class-ordered) training set.
    const idx = Array.from({ length: batch }, (_, i) => Math.floor((i * train.n) / batch));
    const xd = x._data as Float32Array;
    idx.forEach((j, i) => xd.set(train.images.subarray(j * 784, (j + 1) * 784), i * 784));
    const y = tsm.tensor(Int32Array.from(idx, (j) => train.labels[j]));
    const file = path.join(os.tmpdir(), `tsm-train-cnn-${process.pid}.safetensors`);
    tsm.io.save({ ...model.stateDict(), 'batch.x': x, 'batch.y': y }, file);

    const opt = new tsm.optim.SGD(model.parameters(), { lr, momentum });
    const step = () => tsm.tidy(() => {
      opt.zeroGrad();
      const loss = tsm.F.crossEntropy(model.forward(x), y);
      loss.backward();
      opt.step();
      return loss.item();
    });
    const loss0 = step();
    const loss1 = tsm.noGrad(() => tsm.tidy(() => tsm.F.crossEntropy(model.forward(x), y).item()));

    // Our steps and PyTorch's take turns in blocks (compareTraining), the `seconds` of each in all.
    const blocks = opts.quick ? 2 : 6;
    let r;
    try {
      r = await compareTraining(PYTHON, path.join(__dirname, 'peers', 'train_cnn.py'), (t) => [file, String(t), String(lr), String(momentum)], opts.threads,
        (peer) => checkLosses([loss0, loss1], peer, 1e-4), step, { blocks, blockTime: seconds / blocks, warmup: 3 });
    } finally {
      fs.rmSync(file, { force: true });
    }
    const ours = batch / median(r.ours);
    const theirs = batch / median(r.peer);
    const rows: BenchRow[] = [{
      name: `train-cnn step batch ${batch} SGD-momentum`, unit: 'samples/s', ours: Math.round(ours), peer: `PyTorch ${r.torch} (${r.threads}t)`,
      peerValue: Math.round(theirs), ratio: +(ours / theirs).toFixed(3), threads: opts.threads,
      note: stepNote(r, 2),
    }];
    return { rows, settings: { batch, lr, momentum, peerPython: PYTHON } };
  },
};
