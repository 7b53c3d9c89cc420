/**
 * A dataset mapped through a fixed feature extractor (an ONNX model with one image input and
 * one [N, C, H, W] output), computed once. DP training on such features is DP training on the
 * images as long as the extractor is fixed in advance and maps each example on its own (no
 * statistics over the data): neighbouring datasets map to neighbouring feature sets.
 */
import type { Model } from '../graph/ir.js';
import { createSession, ort } from '../runtime/session.js';
import { makeDataset, exampleSize, type Dataset } from '../data/index.js';
import { RpOnnxError } from '../errors.js';

export async function featureDataset(extractor: Model, ds: Dataset, opts: { threads?: number; batch?: number; name?: string } = {}): Promise<Dataset> {
  const session = await createSession(extractor, { threads: opts.threads });
  try {
    const [input] = session.inputs;
    const [output] = session.outputs;
    if (!input || !output || session.inputs.length !== 1) throw new RpOnnxError('a feature extractor needs one input and one output');
    const per = exampleSize(ds);
    const batch = opts.batch ?? 256;
    let images: Float32Array | null = null;
    let shape: [number, number, number] | null = null;
    for (let start = 0; start < ds.count; start += batch) {
      const n = Math.min(batch, ds.count - start);
      const x = ds.images.subarray(start * per, (start + n) * per);
      const r = await session.run({ [input.name]: new ort.Tensor('float32', x, [n, ...ds.shape]) });
      const y = r[output.name]!;
      if (!shape) {
        if (y.dims.length !== 4) throw new RpOnnxError(`the feature extractor's output '${output.name}' has rank ${y.dims.length}, not 4 ([N, C, H, W])`);
        shape = [Number(y.dims[1]), Number(y.dims[2]), Number(y.dims[3])];
        images = new Float32Array(ds.count * shape[0] * shape[1] * shape[2]);
      }
      images!.set(y.data as Float32Array, start * shape[0] * shape[1] * shape[2]);
    }
    if (!shape || !images) throw new RpOnnxError(`dataset ${ds.name} is empty`);
    return makeDataset({
      images, labels: ds.labels, count: ds.count, shape, classes: ds.classes,
      name: opts.name ?? `${ds.name}/features`, source: `${ds.source} (fixed features: ${extractor.graph.name})`,
    });
  } finally {
    await session.release();
  }
}
