/**
 * rp-onnx's onnxruntime-node wrapper. Every session it creates runs a private copy of the model
 * in which
 * - the Gaussian random ops whose shapes are known are graph inputs, fed by the session's own
 *   generator (src/runtime/noise-feed.ts: fresh OS entropy before every run, or a reproducible
 *   stream from a numeric seed), which is exact and faster than onnxruntime's kernel;
 * - any other random op carries a fresh seed (src/runtime/noise-seeding.ts), because onnxruntime
 *   on its own replays the same noise in every session of a process and, with a seed in the
 *   file, in every process.
 * Errors from onnxruntime become one-line RpOnnxErrors.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { type Dim, type Model, tensorTypeOf } from '../graph/ir.js';
import type { DType } from '../graph/tensor.js';
import { encodeModel } from '../graph/io.js';
import { RpOnnxError } from '../errors.js';
import { withNoiseSeeds, type NoiseSeed } from './noise-seeding.js';
import { externalizeNoise, simplifyNoiseTerms } from '../passes/externalize-noise.js';
import { NoiseFeed } from './noise-feed.js';
import { hasFedConvolution, rewriteNchwcConvolutions } from '../passes/nchwc-conv.js';
import { nchwcBlockSize } from './nchwc.js';

export type ExecutionProvider = 'cpu' | 'cuda';
export const EXECUTION_PROVIDERS: readonly ExecutionProvider[] = ['cpu', 'cuda'];

export interface CreateSessionOptions {
  /** Default 'cpu'. 'cuda' needs onnxruntime-node's CUDA binaries; there is no silent fallback. */
  executionProvider?: ExecutionProvider;
  /** Intra-op threads; default: onnxruntime's choice (all cores). */
  threads?: number;
  /** Seeds of the model's random ops (default 'secure': fresh OS entropy per session). */
  noiseSeed?: NoiseSeed;
  /**
   * Feed Gaussian noise from rp-onnx's generator instead of onnxruntime's RandomNormalLike where
   * the shapes allow (default true; ignored with noiseSeed 'model', which keeps the file's ops).
   */
  feedNoise?: boolean;
  /**
   * Let onnxruntime's intra-op threads spin between parallel sections instead of sleeping
   * (default: on, onnxruntime's own default, unless the environment sets RP_ONNX_SPIN=0).
   * Spinning threads hold a core while there is nothing to run (while the optimizer or the noise
   * generator works on the main thread, and in every idle session): it pays on a machine the
   * process has to itself and costs on a shared one. A ResNet-8 training step at batch 128, 2
   * threads, separate processes alternated: quiet machine (load ~1.5, 3 pairs) 151-155 ms
   * spinning vs 173-181 ms not (ResNet-20 510-590 vs 528-606 ms); shared machine (load ~4) 655-658
   * vs 421-441 ms (bench/README.md). The test runner sets RP_ONNX_SPIN=0.
   * With spinning on, the threads stop spinning when a run ends (onnxruntime's
   * `session.force_spinning_stop`), so a session does not hold a core between its runs: with four
   * training sessions stepped in turn in one process, ResNet-8's step took 137-172 ms with it
   * against 155-189 ms without (4 alternated process pairs, 3 of them faster), and a lone
   * session's step is unchanged (medians 129.9-130.4 vs 132.0-138.0 ms).
   */
  intraOpSpinning?: boolean;
  /**
   * Run convolutions whose weights are fed (training graphs, attacks) on onnxruntime's blocked
   * NCHWc kernel, which onnxruntime itself only uses for initializer weights (default: on for the
   * CPU provider where onnxruntime has the kernel, unless the environment sets RP_ONNX_NCHWC=0;
   * src/passes/nchwc-conv.ts). A ResNet-8 training step at batch 128 in a process of its own: 0.68-0.87x
   * the time, ResNet-20 0.89-0.92x (bench/README.md).
   */
  nchwc?: boolean;
}

/** Name, element type and declared shape of a graph input or output. */
export interface TensorInfo {
  name: string;
  dtype: DType | null;
  shape: Dim[] | null;
}

export type Feeds = Record<string, ort.Tensor>;
export type Fetches = Record<string, ort.Tensor>;

const CUDA_INSTALL_HINT = 'reinstall with the CUDA 12 binaries: ONNXRUNTIME_NODE_INSTALL=cuda12 npm install onnxruntime-node (needs CUDA 12 and cuDNN 9 on the machine)';

/** Folder of onnxruntime-node's native binaries for this platform, if found. */
function nativeBinaryDir(): string | undefined {
  try {
    const pkg = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
    const bin = join(dirname(pkg), 'bin');
    for (const napi of readdirSync(bin)) {
      const dir = join(bin, napi, process.platform, process.arch);
      if (existsSync(dir)) return dir;
    }
  } catch {
    // not found: reported by the caller
  }
  return undefined;
}

/** Throws unless onnxruntime-node's CUDA execution provider is installed. */
export function checkCudaInstalled(): void {
  const supported = ort.listSupportedBackends().some((b) => b.name === 'cuda');
  if (!supported) throw new RpOnnxError(`executionProvider cuda: this onnxruntime-node build has no CUDA support on ${process.platform}/${process.arch}; use --execution-provider cpu`, { param: 'executionProvider' });
  const dir = nativeBinaryDir();
  const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  if (!dir || !existsSync(join(dir, lib))) {
    throw new RpOnnxError(`executionProvider cuda: onnxruntime-node's CUDA provider (${lib}) is not installed; ${CUDA_INSTALL_HINT}`, { param: 'executionProvider' });
  }
}

export class RpSession {
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];
  /** Seeds written into the random ops left in the graph (empty with noiseSeed 'model'). */
  readonly seeds: readonly number[];
  /** Number of noise tensors the session feeds from its own generator. */
  readonly fedNoise: number;
  /** Convolutions with fed weights that run on onnxruntime's NCHWc kernel (CreateSessionOptions.nchwc). */
  readonly nchwcConvolutions: number;
  private released = false;

  constructor(private readonly session: ort.InferenceSession, model: Model, seeds: number[], readonly executionProvider: ExecutionProvider, private readonly noise: NoiseFeed | null = null, nchwc = 0) {
    const info = (name: string, type: ReturnType<typeof tensorTypeOf>): TensorInfo => ({ name, dtype: type?.dtype ?? null, shape: type?.shape ?? null });
    this.inputs = model.graph.realInputs().map((v) => info(v.name, tensorTypeOf(v.type)));
    this.outputs = model.graph.outputs.map((v) => info(v.name, tensorTypeOf(v.type)));
    this.seeds = seeds;
    this.fedNoise = noise?.count ?? 0;
    this.nchwcConvolutions = nchwc;
  }

  /** Runs the model; every output is fetched unless `outputs` names some. */
  async run(feeds: Feeds, outputs?: string[]): Promise<Fetches> {
    if (this.released) throw new RpOnnxError('the inference session was already released');
    const noise = await this.noise?.feeds(feeds);
    const all = noise ? { ...feeds, ...noise.tensors } : feeds;
    try {
      if (!noise) return outputs ? await this.session.run(all, outputs) : await this.session.run(all);
      const checks = this.noise!.checkOutputs;
      const fetched = outputs ? await this.session.run(all, [...outputs, ...checks]) : await this.session.run(all);
      noise.verify(fetched);
      return Object.fromEntries(Object.entries(fetched).filter(([name]) => !checks.includes(name))) as Fetches;
    } catch (e) {
      if (e instanceof RpOnnxError) throw e;
      throw new RpOnnxError(`onnxruntime failed to run the model: ${oneLine(e)}`, { exitCode: 1, cause: e });
    } finally {
      noise?.release();
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n').map((s) => s.trim()).filter(Boolean).join(' ');
}

/**
 * Creates an inference session for a copy of `model` whose random ops carry fresh seeds, so
 * separate sessions (ensemble members, server restarts) draw independent noise.
 */
export async function createSession(model: Model, opts: CreateSessionOptions = {}): Promise<RpSession> {
  const ep = opts.executionProvider ?? 'cpu';
  if (!EXECUTION_PROVIDERS.includes(ep)) throw new RpOnnxError(`executionProvider must be one of ${EXECUTION_PROVIDERS.join(', ')}, got '${String(ep)}'`, { param: 'executionProvider' });
  if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 1)) {
    throw new RpOnnxError(`threads must be a positive integer, got ${opts.threads}`, { param: 'threads' });
  }
  if (ep === 'cuda') checkCudaInstalled();
  const noiseSeed = opts.noiseSeed ?? 'secure';
  let runnable = model;
  let noise: NoiseFeed | null = null;
  if (noiseSeed !== 'model' && opts.feedNoise !== false) {
    const copy = model.clone();
    const ext = externalizeNoise(copy.graph, copy.opset(''));
    if (ext.noise.length > 0) {
      simplifyNoiseTerms(copy.graph, ext.noise);
      runnable = copy;
      // A numeric seed drives both the fed noise and the seeds of ops left in the graph.
      noise = new NoiseFeed(ext.noise, ext.symbols, noiseSeed === 'secure' ? 'secure' : (noiseSeed ^ 0x5bd1e995) >>> 0, new Set(copy.graph.outputs.map((o) => o.name)));
    }
  }
  let nchwc = 0;
  if (ep === 'cpu' && (opts.nchwc ?? process.env.RP_ONNX_NCHWC !== '0') && hasFedConvolution(runnable)) {
    const block = await nchwcBlockSize();
    if (block !== null) {
      // The noise pass may already have made the session's private copy.
      if (runnable === model) runnable = model.clone();
      nchwc = rewriteNchwcConvolutions(runnable, block).rewritten;
    }
  }
  const { model: seeded, seeds } = withNoiseSeeds(runnable, noiseSeed);
  const spinning = opts.intraOpSpinning ?? process.env.RP_ONNX_SPIN !== '0';
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: [ep === 'cuda' ? { name: 'cuda' } : { name: 'cpu' }],
    executionMode: 'sequential',
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    extra: { session: spinning ? { intra_op: { allow_spinning: '1' }, force_spinning_stop: '1' } : { intra_op: { allow_spinning: '0' } } },
    ...(opts.threads !== undefined ? { intraOpNumThreads: opts.threads } : {}),
  };
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(encodeModel(seeded.toProto()), options);
  } catch (e) {
    const why = oneLine(e);
    if (ep === 'cuda') throw new RpOnnxError(`executionProvider cuda: onnxruntime could not start the CUDA provider (${why}); ${CUDA_INSTALL_HINT}`, { cause: e, param: 'executionProvider' });
    throw new RpOnnxError(`onnxruntime cannot load the model: ${why}`, { cause: e });
  }
  return new RpSession(session, model, seeds, ep, noise, nchwc);
}

export { ort };
