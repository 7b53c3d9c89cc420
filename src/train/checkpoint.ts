/**
 * Per-epoch checkpoints of a training run: `epoch-K.onnx` (the model with its parameters and
 * running statistics after epoch K) and `epoch-K.json` (step count, optimizer buffers, epoch
 * reports, which examples were used, and the step strategy's state: DP-SGD's ledger history and
 * clipping bound). Both are written atomically, model first.
 *
 * The directory is checked before a run starts: a path that is a file, a corrupt checkpoint,
 * `resume` with nothing to resume from, and a fresh run over existing checkpoints (without
 * `force`) are all errors, never a silent fresh start or a silent mix of two runs.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, saveModel } from '../graph/io.js';
import { tensorToFloat32 } from '../graph/tensor.js';
import { writeFileAtomic } from '../fs-atomic.js';
import { RpOnnxError } from '../errors.js';
import type { Trainer } from './trainer.js';
import type { EpochReport } from './fit.js';

export interface CheckpointState {
  epoch: number;
  step: number;
  optimizer: { step: number; buffers: Record<string, number[][]> };
  epochs: EpochReport[];
  /** Step strategy ('plain' | 'dp-sgd') and its state. */
  strategy: { name: string; state: unknown };
  /** Base64 bitmap over the training set: example i was in at least one batch. */
  examplesUsed: string;
  examples: number;
}

const CHECKPOINT = /^epoch-(\d+)\.json$/;

function checkpointEpochs(dir: string): number[] {
  return readdirSync(dir).map((f) => CHECKPOINT.exec(f)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1])).sort((a, b) => b - a);
}

/**
 * Checks `dir` before a run. resume: it must hold a checkpoint; otherwise it must not hold any,
 * unless `force` (fit's `overwriteCheckpoints`, the name its errors use), which deletes them (so a later resume cannot pick up the old run's epochs).
 */
export function prepareCheckpointDir(dir: string, o: { resume: boolean; force: boolean }): void {
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new RpOnnxError(`checkpointDir ${dir} is a file: choose a folder`, { param: 'checkpointDir' });
  }
  const found = existsSync(dir) ? checkpointEpochs(dir) : [];
  if (o.resume) {
    if (found.length === 0) throw new RpOnnxError(`resume: ${dir} holds no checkpoint (epoch-K.json); run without resume to start fresh`, { param: 'resume' });
    return;
  }
  if (found.length > 0) {
    if (!o.force) throw new RpOnnxError(`${dir} already holds checkpoints of another run (epoch ${found.join(', ')}): resume it, choose another checkpointDir, or overwriteCheckpoints to replace them`, { param: ['checkpointDir', 'overwriteCheckpoints'] });
    for (const e of found) {
      rmSync(join(dir, `epoch-${e}.json`), { force: true });
      rmSync(join(dir, `epoch-${e}.onnx`), { force: true });
    }
  }
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new RpOnnxError(`cannot create checkpointDir ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e, param: 'checkpointDir' });
  }
}

export function saveCheckpoint(dir: string, trainer: Trainer, ck: Omit<CheckpointState, 'optimizer' | 'step'>): void {
  const st = trainer.optimizer.state();
  const state: CheckpointState = {
    ...ck, step: trainer.stepCount,
    optimizer: { step: st.step, buffers: Object.fromEntries(Object.entries(st.buffers).map(([k, v]) => [k, v.map((a) => Array.from(a))])) },
  };
  // The model first, then the state that names it: a crash between the two leaves the previous
  // checkpoint's state, which still points at its own complete model file.
  saveModel(trainer.exportModel(), join(dir, `epoch-${ck.epoch}.onnx`));
  writeFileAtomic(join(dir, `epoch-${ck.epoch}.json`), JSON.stringify(state));
}

/** Loads the latest checkpoint of `dir` into the trainer and returns its state. */
export function loadLatestCheckpoint(dir: string, trainer: Trainer, expect: { strategy: string; examples: number }): CheckpointState {
  const [e] = existsSync(dir) ? checkpointEpochs(dir) : [];
  if (e === undefined) throw new RpOnnxError(`resume: ${dir} holds no checkpoint (epoch-K.json)`, { param: 'resume' });
  const path = join(dir, `epoch-${e}.json`);
  let ck: CheckpointState;
  try {
    ck = JSON.parse(readFileSync(path, 'utf8')) as CheckpointState;
  } catch (err) {
    throw new RpOnnxError(`checkpoint ${path} is corrupt (${(err as Error).message.split('\n')[0]}): delete it to resume from the epoch before`, { cause: err });
  }
  if (!ck || typeof ck !== 'object' || ck.epoch !== e || !Number.isInteger(ck.step) || !ck.optimizer || !Array.isArray(ck.epochs) || !ck.strategy || typeof ck.examplesUsed !== 'string') {
    throw new RpOnnxError(`checkpoint ${path} is corrupt or from an older rp-onnx: delete it to resume from the epoch before`);
  }
  if (ck.strategy.name !== expect.strategy) {
    throw new RpOnnxError(`checkpoint ${path} is of a ${ck.strategy.name} run; this run is ${expect.strategy}: resume with the same training mode`);
  }
  if (ck.examples !== expect.examples) {
    throw new RpOnnxError(`checkpoint ${path} was trained on ${ck.examples} examples, this run has ${expect.examples}: resume with the same data`);
  }
  const modelPath = join(dir, `epoch-${e}.onnx`);
  let m;
  try {
    m = loadModel(modelPath);
  } catch (err) {
    throw new RpOnnxError(`checkpoint ${modelPath} cannot be read (${(err as Error).message.split('\n')[0]})`, { cause: err });
  }
  for (const name of [...trainer.params.keys(), ...trainer.state.keys()]) {
    const t = m.graph.initializers.get(name);
    if (!t) throw new RpOnnxError(`checkpoint ${modelPath} lacks parameter '${name}': it belongs to another model`);
    const target = trainer.params.get(name) ?? trainer.state.get(name)!;
    const values = tensorToFloat32(t);
    if (values.length !== target.length) throw new RpOnnxError(`checkpoint ${modelPath}: parameter '${name}' has another shape: it belongs to another model`);
    target.set(values);
  }
  trainer.optimizer.loadState({ step: ck.optimizer.step, buffers: Object.fromEntries(Object.entries(ck.optimizer.buffers).map(([k, v]) => [k, v.map((a) => Float32Array.from(a))])) });
  trainer.stepCount = ck.step;
  return ck;
}
