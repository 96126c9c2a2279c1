// A user model class in an ES module that imports the published package (dist/): fitAsync's worker
// imports it (workerModules) in test/fit-worker.test.ts's ESM check.
import * as tsm from 'tensorsmith';

export class TwoLayer extends tsm.nn.Module {
  fc1 = new tsm.nn.Linear(4, 8);
  fc2 = new tsm.nn.Linear(8, 1);
  forward(x) {
    return this.fc2.forward(this.fc1.forward(x).tanh());
  }
}
