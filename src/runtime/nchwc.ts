/**
 * onnxruntime's NCHWc block size on this machine (8 with AVX2, 16 with AVX-512), asked of
 * onnxruntime itself: its ReorderInput pads 4 channels up to one block. null where this build has
 * no NCHWc kernels (then the convolutions keep the generic kernel). Asked once per process.
 */
import * as ort from 'onnxruntime-node';
import { Graph, Model, makeTensorTypeProto } from '../graph/ir.js';
import { GraphBuilder } from '../graph/builder.js';
import { encodeModel } from '../graph/io.js';
import { onnx } from '../graph/onnx.js';
import { NCHWC_DOMAIN } from '../passes/nchwc-conv.js';

let asked: Promise<number | null> | undefined;

export function nchwcBlockSize(): Promise<number | null> {
  asked ??= probe();
  return asked;
}

async function probe(): Promise<number | null> {
  const g = new Graph({ name: 'nchwc-probe' });
  g.inputs = [{ name: 'x', type: makeTensorTypeProto({ dtype: 'float32', shape: [1, 4, 1, 1] }) }];
  const y = new GraphBuilder(g).op1('ReorderInput', ['x'], {}, { domain: NCHWC_DOMAIN });
  g.outputs = [{ name: y, type: null }];
  const model = new Model(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }, { domain: NCHWC_DOMAIN, version: 1 }] }), g);
  try {
    const s = await ort.InferenceSession.create(encodeModel(model.toProto()), { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 4 });
    try {
      const out = await s.run({ x: new ort.Tensor('float32', new Float32Array(4), [1, 4, 1, 1]) });
      const block = out[y]!.dims[1]!;
      return block >= 4 && block % 4 === 0 ? block : null;
    } finally {
      await s.release();
    }
  } catch {
    return null;
  }
}
