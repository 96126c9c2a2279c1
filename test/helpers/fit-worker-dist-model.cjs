// The same user model class as fit-worker-dist-model.mjs, in a CommonJS module that requires the
// published package (dist/): fitAsync's worker imports it in the CommonJS check.
'use strict';
const tsm = require('tensorsmith');

class TwoLayer extends tsm.nn.Module {
  constructor() {
    super();
    this.fc1 = new tsm.nn.Linear(4, 8);
    this.fc2 = new tsm.nn.Linear(8, 1);
  }
  forward(x) {
    return this.fc2.forward(this.fc1.forward(x).tanh());
  }
}

module.exports = { TwoLayer };
