/** A small softmax-regression model on 1x28x28 images (Flatten + Gemm), fast enough for end-to-end loop tests. */
import { saveModel } from '../../src/graph/io.js';
import { Random } from '../../src/random.js';
import { buildModel } from './gradcheck.js';

export function saveLinearModel(path: string, seed = 1): void {
  const r = new Random(seed);
  const m = buildModel({
    opset: 17, inputs: [{ name: 'input', dims: ['N', 1, 28, 28] }], outputs: ['logits'],
    build: (b) => {
      const flat = b.op1('Flatten', ['input'], { axis: 1 });
      const w = b.initializer('fc.w', [10, 784], Float32Array.from({ length: 7840 }, () => 0.05 * r.normal()));
      const bias = b.initializer('fc.b', [10], new Float32Array(10));
      b.op('Gemm', [flat, w, bias], { transB: 1 }, { outputs: ['logits'] });
    },
  });
  saveModel(m, path);
}
