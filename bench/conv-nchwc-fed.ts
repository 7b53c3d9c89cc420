/**
 * Can a training graph use onnxruntime's blocked NCHWc convolution although its weights are fed?
 * onnxruntime's NchwcTransformer only rewrites a Conv whose weight is an initializer (it reorders
 * the filter once, at load), but the kernel it targets, com.microsoft.nchwc:Conv, reads its filter
 * from its input on every run. So the graph can reorder a fed OIHW weight itself (Reshape +
 * Transpose into OIHWBiBo, or OIHWBo when the input has fewer channels than a block) and call the
 * kernel between ReorderInput and ReorderOutput. This times, interleaved in one process, the forward
 * convolutions of ResNet-8's layers at batch 128: the generic Conv with the weight fed (what every
 * training graph runs today), the NCHWc Conv the transformer makes of an initializer weight, and the
 * explicit NCHWc chain on a fed weight; outputs are compared with the generic Conv.
 * Run: [THREADS=2] [ROUNDS=15] [SPIN=1] node --import tsx bench/conv-nchwc-fed.ts
 */
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../src/graph/io.js';
import { makeTensor } from '../src/graph/tensor.js';
import { Random } from '../src/random.js';
import { GraphBuilder } from '../src/graph/builder.js';
import { benchModel } from './graph.js';
import { printTimed, timeInterleaved } from './interleaved.js';

const NCHWC = 'com.microsoft.nchwc';
const threads = Number(process.env.THREADS ?? 2);
const rounds = Number(process.env.ROUNDS ?? 15);
const spin = process.env.SPIN === '1' ? '1' : '0';
const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3, extra: { session: { intra_op: { allow_spinning: spin } } } };
const withNchwcDomain = (m: ReturnType<typeof benchModel>) => { m.proto.opsetImport.push({ domain: NCHWC, version: 1 }); return m; };

/** onnxruntime's NCHWc block size on this CPU (8 with AVX2, 16 with AVX-512): ReorderInput pads 4 channels to one block. */
async function blockSize(): Promise<number> {
  const m = withNchwcDomain(benchModel([['X', [1, 4, 1, 1]]], (b) => b.op1('ReorderInput', ['X'], {}, { domain: NCHWC })));
  const s = await ort.InferenceSession.create(encodeModel(m.toProto()), opts);
  const o = await s.run({ X: new ort.Tensor('float32', new Float32Array(4), [1, 4, 1, 1]) });
  return o[s.outputNames[0]!]!.dims[1]!;
}

/** The fed OIHW weight in the NCHWc kernel's layout: OIHWBiBo, or OIHWBo when I < block. */
function reorderedWeight(b: GraphBuilder, w: string, [O, I, KH, KW]: number[], B: number): string {
  if (I < B) {
    const v = b.op1('Reshape', [w, b.int64s('s', [O / B, B, I, KH, KW])]);
    return b.op1('Reshape', [b.op1('Transpose', [v], { perm: [0, 2, 3, 4, 1] }), b.int64s('s', [O, I, KH, KW])]);
  }
  const v = b.op1('Reshape', [w, b.int64s('s', [O / B, B, I / B, B, KH, KW])]);
  return b.op1('Reshape', [b.op1('Transpose', [v], { perm: [0, 2, 4, 5, 3, 1] }), b.int64s('s', [O, I, KH, KW])]);
}

const B = await blockSize();
const N = 128;
// ResNet-8 on 1x28x28: the stem, a 16->16 conv of stage 1, the strided and plain convs of stages 2 and 3.
const layers = [
  { name: 'stem 1->16 28x28', C: 1, O: 16, H: 28, stride: 1 },
  { name: '16->16 28x28', C: 16, O: 16, H: 28, stride: 1 },
  { name: '16->32 28x28 stride 2', C: 16, O: 32, H: 28, stride: 2 },
  { name: '32->32 14x14', C: 32, O: 32, H: 14, stride: 1 },
  { name: '64->64 7x7', C: 64, O: 64, H: 7, stride: 1 },
];
const rng = new Random(1);
const data = (n: number) => { const a = new Float32Array(n); rng.fillNormal(a); return a; };
console.log(`NCHWc block size ${B}, ${threads} threads, spinning ${spin === '1' ? 'on' : 'off'}, ${rounds} rounds, batch ${N}`);
for (const { name, C, O, H, stride } of layers) {
  const K = 3, attrs = { pads: [1, 1, 1, 1], strides: [stride, stride], kernel_shape: [K, K] };
  const x = data(N * C * H * H), w = data(O * C * K * K);
  const fed = benchModel([['X', [N, C, H, H]], ['Wt', [O, C, K, K]]], (b) => b.op1('Conv', ['X', 'Wt'], attrs));
  const init = benchModel([['X', [N, C, H, H]]], (b) => {
    b.graph.addInitializer(makeTensor('Wt', [O, C, K, K], w));
    return b.op1('Conv', ['X', 'Wt'], attrs);
  });
  const explicit = withNchwcDomain(benchModel([['X', [N, C, H, H]], ['Wt', [O, C, K, K]]], (b) => {
    const xc = C < B ? 'X' : b.op1('ReorderInput', ['X'], {}, { domain: NCHWC });
    const y = b.op1('Conv', [xc, reorderedWeight(b, 'Wt', [O, C, K, K], B)], attrs, { domain: NCHWC });
    return b.op1('ReorderOutput', [y], { channels: O }, { domain: NCHWC });
  }));
  const feeds = { X: new ort.Tensor('float32', x, [N, C, H, H]), Wt: new ort.Tensor('float32', w, [O, C, K, K]) };
  const runs = await timeInterleaved([
    { label: 'generic Conv, weight fed', model: fed },
    { label: 'NCHWc Conv, weight an initializer', model: init },
    { label: 'NCHWc chain, weight fed', model: explicit },
  ], feeds, rounds, opts);
  console.log(name);
  printTimed(runs, '  ');
}
