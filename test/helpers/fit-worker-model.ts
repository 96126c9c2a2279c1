// Classes and functions for test/fit-worker.test.ts: the worker thread of fitAsync imports this
// module (workerModules) to rebuild models that use them. Importing it must not start anything.
import * as tsm from '../../lib/index';

const { nn, F } = tsm;

/** A small CNN of user code: conv + batch norm (buffers) + dropout, then two linear layers. */
export class SmallCnn extends nn.Module {
  conv = new nn.Conv2d(1, 4, 3, { padding: 1 });
  bn = new nn.BatchNorm2d(4);
  drop = new nn.Dropout(0.1);
  fc1 = new nn.Linear(4 * 4 * 4, 16);
  fc2 = new nn.Linear(16, 3);
  forward(x: tsm.Tensor): tsm.Tensor {
    let h = F.maxPool2d(this.bn.forward(this.conv.forward(x)).relu(), 2);
    h = this.drop.forward(h.flatten(1));
    return this.fc2.forward(this.fc1.forward(h).relu());
  }
}

/** A block nested inside a Sequential, to check user classes anywhere in the tree. */
export class Residual extends nn.Module {
  inner: tsm.nn.Linear;
  constructor(n: number) {
    super();
    this.inner = new nn.Linear(n, n);
  }
  forward(x: tsm.Tensor): tsm.Tensor {
    return x.add(this.inner.forward(x).tanh());
  }
}

/** A loss defined in user code (compile({loss: smoothL1}) finds it by name in the worker). */
export function smoothL1(pred: tsm.Tensor, target: tsm.Tensor): tsm.Tensor {
  const d = pred.sub(target.reshape(pred.shape.slice())).abs();
  return tsm.where(d.lt(1), d.square().mul(0.5), d.sub(0.5)).mean();
}

/** A metric defined in user code. */
export function maxAbsError(pred: tsm.Tensor, target: tsm.Tensor): number {
  return pred.sub(target.reshape(pred.shape.slice())).abs().max().item();
}

/** Throws from forward after `okCalls` calls: an error raised inside the worker thread. */
export class Faulty extends nn.Module {
  fc = new nn.Linear(4, 2);
  calls = 0;
  constructor(readonly okCalls: number) {
    super();
  }
  forward(x: tsm.Tensor): tsm.Tensor {
    if (++this.calls > this.okCalls) return this.fc.forward(x.reshape([-1, 2])); // Linear(4, 2) on 2 features: RangeError from linear
    return this.fc.forward(x);
  }
}

/** log of a linear layer's output: NaN for negative values (anomaly detection names 'log'). */
export class LogNet extends nn.Module {
  fc = new nn.Linear(2, 1);
  forward(x: tsm.Tensor): tsm.Tensor {
    return this.fc.forward(x).log();
  }
}
