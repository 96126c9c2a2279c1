// Training-step throughput of one nn.TransformerEncoderLayer (DESIGN.md system 4): d = 256, h = 8,
// ff = 2048, batch 32 x seq 128, dropout 0, MSE to a fixed target, Adam; ours vs PyTorch CPU side by
// side. Before timing, both take one step from the same weights on the same batch (written with
// tsm.io.save, read by bench/peers/train_transformer.py) and their losses must agree.
//   npm run bench -- train-transformer [--batch 32] [--seq 128] [--norm-first] [--gelu]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tsm from '../lib/index';
import { TransformerEncoderLayer } from '../lib/transformer';
import { argValue, checkLosses, compareTraining, median, stepNote, type Benchmark, type BenchRow } from './lib';

const PYTHON = process.env.TSM_TORCH_PYTHON ?? '/usr/bin/python3';

export const benchmark: Benchmark = {
  description: 'TransformerEncoderLayer training step (d=256, h=8, ff=2048, 32 x 128 tokens, Adam) vs PyTorch CPU',
  async run(opts) {
    const batch = Number(argValue(opts.args, 'batch') ?? 32);
    const seq = Number(argValue(opts.args, 'seq') ?? 128);
    const d = 256, h = 8, ff = 2048, lr = 1e-3;
    const normFirst = opts.args.includes('--norm-first');
    const activation = opts.args.includes('--gelu') ? 'gelu' : 'relu';
    const seconds = opts.quick ? 2 : 6;
    tsm.setNumThreads(opts.threads);
    tsm.manualSeed(1);
    const layer = new TransformerEncoderLayer({ dModel: d, nhead: h, dimFeedforward: ff, dropout: 0, batchFirst: true, normFirst, activation });
    const x = tsm.randn([batch, seq, d]);
    const target = tsm.randn([batch, seq, d]);
    const file = path.join(os.tmpdir(), `tsm-train-transformer-${process.pid}.safetensors`);
    const sd: Record<string, tsm.Tensor> = {};
    for (const [k, v] of Object.entries(layer.stateDict())) sd[`layer.${k}`] = v;
    tsm.io.save({ ...sd, 'batch.x': x, 'batch.target': target }, file);

    const opt = new tsm.optim.Adam(layer.parameters(), { lr });
    const step = () => tsm.tidy(() => {
      opt.zeroGrad();
      const loss = tsm.F.mseLoss(layer.forward(x), target);
      loss.backward();
      opt.step();
      return loss.item();
    });
    const loss0 = step();
    const loss1 = tsm.noGrad(() => tsm.tidy(() => tsm.F.mseLoss(layer.forward(x), target).item()));

    // Our steps and PyTorch's take turns in blocks (compareTraining), the `seconds` of each in all.
    const blocks = opts.quick ? 2 : 6;
    let r;
    try {
      r = await compareTraining(PYTHON, path.join(__dirname, 'peers', 'train_transformer.py'), (t) => [file, String(t), String(lr), String(d), String(h), String(ff), normFirst ? '1' : '0', activation], opts.threads,
        (peer) => checkLosses([loss0, loss1], peer, 2e-4), step, { blocks, blockTime: seconds / blocks, warmup: 2 });
    } finally {
      fs.rmSync(file, { force: true });
    }
    const tokens = batch * seq;
    const ours = tokens / median(r.ours);
    const theirs = tokens / median(r.peer);
    const rows: BenchRow[] = [{
      name: `train-transformer layer d${d} h${h} ff${ff} ${batch}x${seq}${normFirst ? ' norm-first' : ''} ${activation} Adam`,
      unit: 'tokens/s', ours: Math.round(ours), peer: `PyTorch ${r.torch} (${r.threads}t)`, peerValue: Math.round(theirs),
      ratio: +(ours / theirs).toFixed(3), threads: opts.threads,
      note: stepNote(r, 1),
    }];
    return { rows, settings: { batch, seq, d, h, ff, lr, normFirst, activation, peerPython: PYTHON } };
  },
};
