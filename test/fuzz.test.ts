/**
 * Fuzzing hostile inputs. A seeded mutator (bit flips, truncation, byte runs, varint/length
 * corruption, edits of dims, data types, shapes and attributes through the protobuf, external
 * data path tricks) runs over a corpus of small models (fixtures, models built by models/, the
 * synthetic every-data-type model) and data files (IDX raw and gzip, NPY, NPZ, CIFAR). Each case
 * must end in success or a clean one-line RpOnnxError within a bounded time; nothing may read
 * outside the model's folder. The only assertions are those: no other exception type, no hang,
 * no escape. A smaller run spawns the CLI (`inspect`, `perturb`) on mutated models.
 *
 * RP_FUZZ_CASES (default 2400), RP_FUZZ_CLI_CASES (default 24) and RP_FUZZ_SEED (default 1) size
 * and seed the runs; the figures are printed as test diagnostics.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { onnx, type ModelProto } from '../src/graph/onnx.js';
import { decodeModel, encodeModel, loadModel } from '../src/graph/io.js';
import { allTensors } from '../src/graph/external-data.js';
import { summarizeModel } from '../src/graph/model-summary.js';
import { perturbModel } from '../src/passes/perturb.js';
import { loadDataDir } from '../src/data/index.js';
import { RpOnnxError } from '../src/errors.js';
import { Random } from '../src/random.js';
import { buildModel } from '../models/index.js';
import { mlpModel, syntheticModel } from './fixtures/synthetic-model.js';
import { ROOT } from './helpers/cli.js';

const CASES = Number(process.env['RP_FUZZ_CASES'] ?? 2400);
const SEED = Number(process.env['RP_FUZZ_SEED'] ?? 1);
/** Spawned CLI runs (RP_FUZZ_CLI_CASES, default 24). */
const CLI_CASES = Number(process.env['RP_FUZZ_CLI_CASES'] ?? 24);
/** Longest a single in-process case may take (the slowest clean ones take well under 1 s). */
const CASE_LIMIT_MS = 5000;
/** Bytes of the file outside the model folder; found in a loaded tensor means an escape. */
const SECRET = Buffer.from('RP-ONNX-FUZZ-SECRET-'.repeat(64));

let tmp: string;
let modelDir: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'rp-onnx-fuzz-'));
  // The model folder offers every trap: a FIFO, a directory, links leading out, a real data file.
  modelDir = join(tmp, 'models');
  mkdirSync(join(modelDir, 'sub'), { recursive: true });
  writeFileSync(join(tmp, 'secret.bin'), SECRET);
  symlinkSync(join(tmp, 'secret.bin'), join(modelDir, 'link-out.bin'));
  symlinkSync(tmp, join(modelDir, 'dir-out'));
  symlinkSync('/etc/passwd', join(modelDir, 'passwd.bin'));
  execFileSync('mkfifo', [join(modelDir, 'fifo.bin')]);
  writeFileSync(join(modelDir, 'w.bin'), Buffer.alloc(4096, 1));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const FIXTURES = join(ROOT, 'test', 'fixtures');
function modelCorpus(): { name: string; bytes: Uint8Array }[] {
  const files = ['cifar-resnet8-optA-concat-op13', 'keras-style-resnet-nhwc-op13', 'hand-transformer-postnorm-op13'];
  return [
    ...files.map((f) => ({ name: f, bytes: readFileSync(join(FIXTURES, `${f}.onnx`)) })),
    { name: 'resnet8-1x8x8', bytes: encodeModel(buildModel('resnet8', { inChannels: 1, imageSize: 8 }).toProto()) },
    { name: 'mlp', bytes: encodeModel(mlpModel().toProto()) },
    { name: 'synthetic', bytes: encodeModel(syntheticModel()) },
  ];
}

// ---------------------------------------------------------------- byte-level mutators

type Mutator = (b: Uint8Array, rng: Random) => Uint8Array;

const BYTE_MUTATORS: Record<string, Mutator> = {
  bitflips: (b, rng) => {
    const out = Uint8Array.from(b);
    for (let k = 1 + rng.int(8); k > 0 && out.length > 0; k--) out[rng.int(out.length)] ^= 1 << rng.int(8);
    return out;
  },
  truncate: (b, rng) => b.subarray(0, rng.int(b.length + 1)),
  bytes: (b, rng) => {
    const out = Uint8Array.from(b);
    const at = rng.int(Math.max(1, out.length));
    const run = [0x00, 0xff, 0x7f, 0x80][rng.int(4)]!;
    for (let i = at; i < Math.min(out.length, at + 1 + rng.int(16)); i++) out[i] = run;
    return out;
  },
  /** A varint or length prefix made huge, zero or unterminated. */
  varint: (b, rng) => {
    const out = Uint8Array.from(b);
    if (out.length < 2) return out;
    const at = rng.int(out.length - 1);
    const forms = [[0xff, 0xff, 0xff, 0xff, 0x0f], [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], [0x00], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], [0xff]];
    const f = forms[rng.int(forms.length)]!;
    for (let i = 0; i < f.length && at + i < out.length; i++) out[at + i] = f[i]!;
    return out;
  },
  splice: (b, rng) => {
    const a = rng.int(b.length + 1);
    const len = rng.int(Math.min(256, b.length - a) + 1);
    return Buffer.concat([b.subarray(0, a), b.subarray(a + len), b.subarray(a, a + len)]);
  },
};

// ---------------------------------------------------------------- protobuf-level mutators

const pick = <T>(rng: Random, a: readonly T[]): T => a[rng.int(a.length)]!;
const EDGE_INTS = [-1, 0, 1, 2, 3, 7, 64, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 40, Number.MAX_SAFE_INTEGER];
const LOCATIONS = ['link-out.bin', 'dir-out/secret.bin', 'passwd.bin', 'fifo.bin', 'sub', '', '../secret.bin', '/etc/passwd',
  'sub/../../secret.bin', 'w.bin', 'missing.bin', 'C:\\windows\\win.ini', '\\\\server\\share', 'a\u0000b', 'x'.repeat(300), './w.bin', 'a\nb.bin', 'sub/\r\n'];

const PROTO_MUTATORS: Record<string, (p: ModelProto, rng: Random) => void> = {
  dims: (p, rng) => {
    const t = pick(rng, allTensors(p));
    if (!t) return;
    const dims = [...t.dims];
    const op = rng.int(3);
    if (op === 0 && dims.length > 0) dims[rng.int(dims.length)] = pick(rng, EDGE_INTS);
    else if (op === 1) dims.push(pick(rng, EDGE_INTS));
    else dims.pop();
    t.dims = dims;
  },
  dataType: (p, rng) => {
    const t = pick(rng, allTensors(p));
    if (t) t.dataType = rng.int(32) - 1;
  },
  rawData: (p, rng) => {
    const t = pick(rng, allTensors(p));
    if (!t) return;
    const op = rng.int(3);
    if (op === 0) t.rawData = (t.rawData ?? new Uint8Array(0)).subarray(0, rng.int((t.rawData?.length ?? 0) + 1));
    else if (op === 1) { t.floatData = Array.from({ length: rng.int(9) }, () => rng.normal()); t.rawData = new Uint8Array(0); }
    else t.int64Data = Array.from({ length: rng.int(5) }, () => pick(rng, EDGE_INTS));
  },
  external: (p, rng) => {
    const t = pick(rng, allTensors(p));
    if (!t) return;
    const entries: [string, string][] = [['location', pick(rng, LOCATIONS)]];
    if (rng.int(2)) entries.push(['offset', String(pick(rng, [0, 1, 4096, 4095, -1, 2 ** 53, 1e30]))]);
    if (rng.int(2)) entries.push(['length', pick(rng, ['0', '4', '4096', '9600', '-4', '1e3', 'abc', String(2 ** 60)])]);
    t.externalData = entries.map(([key, value]) => onnx.StringStringEntryProto.create({ key, value }));
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    Reflect.deleteProperty(t, 'rawData');
  },
  inputShape: (p, rng) => {
    const g = p.graph;
    const vi = g && pick(rng, [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]);
    const dims = vi?.type?.tensorType?.shape?.dim;
    if (!vi?.type?.tensorType) return;
    const op = rng.int(4);
    if (op === 0 && dims && dims.length > 0) dims[rng.int(dims.length)] = { dimValue: pick(rng, EDGE_INTS) };
    else if (op === 1 && dims) dims.pop();
    else if (op === 2) vi.type.tensorType.elemType = rng.int(32) - 1;
    else vi.type.tensorType.shape = null;
  },
  attribute: (p, rng) => {
    const nodes = p.graph?.node ?? [];
    const n = nodes.length > 0 ? pick(rng, nodes) : undefined;
    const attrs = n?.attribute ?? [];
    if (attrs.length === 0) return;
    const a = pick(rng, attrs);
    const op = rng.int(4);
    if (op === 0 && a.ints && a.ints.length > 0) a.ints[rng.int(a.ints.length)] = pick(rng, EDGE_INTS);
    else if (op === 1) a.ints = [...(a.ints ?? []), pick(rng, EDGE_INTS)];
    else if (op === 2) a.i = pick(rng, EDGE_INTS);
    else a.type = rng.int(16);
  },
  wiring: (p, rng) => {
    const nodes = p.graph?.node ?? [];
    if (nodes.length === 0) return;
    const n = pick(rng, nodes);
    const names = nodes.flatMap((x) => x.output ?? []);
    const op = rng.int(4);
    if (op === 0 && n.input && n.input.length > 0) n.input[rng.int(n.input.length)] = pick(rng, [...names, '', 'nowhere']);
    else if (op === 1) n.input = [...(n.input ?? []), pick(rng, names)];
    else if (op === 2) n.opType = pick(rng, ['Conv', 'Add', 'Reshape', 'Slice', 'Pad', 'Transpose', 'Gather', 'Concat', 'Unsqueeze', 'NoSuchOp', '']);
    else nodes.splice(rng.int(nodes.length), 1);
  },
  /** Names with control characters, which end up in error messages. */
  names: (p, rng) => {
    const t = pick(rng, allTensors(p));
    if (t) t.name = `${t.name}${pick(rng, ['\n', '\r\n', '\u2028', '\u0000', ''])}x`;
    const n = p.graph?.node?.[0];
    if (n && rng.int(2)) n.output = (n.output ?? []).map((o) => `${o}\n`);
  },
  opset: (p, rng) => {
    const o = p.opsetImport?.[0];
    if (o) o.version = pick(rng, [0, 1, 6, 9, 11, 13, 18, 21, 99, -1]);
    if (rng.int(4) === 0) p.irVersion = pick(rng, [0, 1, 3, 14, 15, -1]);
  },
  metadata: (p, rng) => {
    const key = pick(rng, ['rp-onnx.perturbation', 'rp-onnx.privacy', 'rp-onnx.training', 'rp-onnx.version']);
    const value = pick(rng, ['{', '[]', 'null', '{"blocks": 3}', '{"blocks": [null, 1, {"gamma": "x", "initializers": [1]}]}', '1e999', '"x"']);
    p.metadataProps = [...(p.metadataProps ?? []), onnx.StringStringEntryProto.create({ key, value })];
  },
};

// ---------------------------------------------------------------- outcomes

interface Tally {
  cases: number;
  clean: number;
  success: number;
  internal: string[];
  slow: string[];
  escapes: string[];
  byMutator: Record<string, number>;
}
const newTally = (): Tally => ({ cases: 0, clean: 0, success: 0, internal: [], slow: [], escapes: [], byMutator: {} });

/** Runs one case; records a clean error, a success, or a finding. */
function runCase(t: Tally, what: string, fn: () => void): void {
  t.cases++;
  const started = Date.now();
  try {
    fn();
    t.success++;
  } catch (e) {
    if (e instanceof RpOnnxError && !e.message.includes('\n')) t.clean++;
    else t.internal.push(`${what}: ${e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e)}`);
  }
  const ms = Date.now() - started;
  if (ms > CASE_LIMIT_MS) t.slow.push(`${what}: ${ms} ms`);
}

function report(t: Tally, label: string): string {
  return `${label}: ${t.cases} cases, ${t.clean} clean errors, ${t.success} successes, ${t.slow.length} hangs/slow, ${t.internal.length} internal errors, ${t.escapes.length} escapes`;
}

function assertNoFindings(t: Tally, label: string): void {
  assert.deepEqual(t.internal.slice(0, 10), [], `${label}: internal errors`);
  assert.deepEqual(t.slow, [], `${label}: cases over ${CASE_LIMIT_MS} ms`);
  assert.deepEqual(t.escapes, [], `${label}: data read from outside the model folder`);
}

/** One mutated model: bytes mutators, proto mutators, or both. */
function mutateModel(bytes: Uint8Array, rng: Random): { bytes: Uint8Array; how: string } {
  const how: string[] = [];
  let out = bytes;
  if (rng.int(3) !== 0) {
    const p = onnx.ModelProto.decode(bytes);
    for (let k = 1 + rng.int(3); k > 0; k--) {
      const name = pick(rng, Object.keys(PROTO_MUTATORS));
      PROTO_MUTATORS[name]!(p, rng);
      how.push(name);
    }
    out = encodeModel(p);
  }
  if (how.length === 0 || rng.int(4) === 0) {
    const name = pick(rng, Object.keys(BYTE_MUTATORS));
    out = BYTE_MUTATORS[name]!(out, rng);
    how.push(name);
  }
  return { bytes: out, how: how.join('+') };
}

test(`fuzz: mutated models load, summarize, infer shapes, re-encode and perturb with clean errors only (${CASES * 3 / 4} cases)`, { timeout: 600_000 }, (ctx) => {
  const corpus = modelCorpus();
  const rng = new Random(SEED);
  const t = newTally();
  const path = join(modelDir, 'model.onnx');
  const started = Date.now();
  for (let i = 0; i < (CASES * 3) / 4; i++) {
    const base = corpus[i % corpus.length]!;
    const { bytes, how } = mutateModel(base.bytes, rng);
    t.byMutator[how.split('+')[0]!] = (t.byMutator[how.split('+')[0]!] ?? 0) + 1;
    writeFileSync(path, bytes);
    runCase(t, `#${i} ${base.name} ${how}`, () => {
      const model = loadModel(path);
      for (const tensor of allTensors(model.toProto())) {
        if (tensor.rawData && Buffer.from(tensor.rawData).includes(SECRET.subarray(0, 40))) t.escapes.push(`#${i} ${base.name} ${how}`);
        if (tensor.rawData && Buffer.from(tensor.rawData).includes('root:')) t.escapes.push(`#${i} ${base.name} ${how} (/etc/passwd)`);
      }
      summarizeModel(model); // what inspect does: shape inference records types, residual blocks
      decodeModel(encodeModel(model.toProto()), 're-encoded model');
      if (i % 8 === 0) perturbModel(model, { gamma: 0.1, strategy: 'I', scale: 'absolute', toolVersion: 'fuzz' });
    });
  }
  const seconds = (Date.now() - started) / 1000;
  const line = `${report(t, 'models')} in ${seconds.toFixed(1)} s (seed ${SEED})`;
  console.log(line);
  ctx.diagnostic(line);
  assertNoFindings(t, 'models');
  assert.ok(t.clean > 0 && t.success > 0, 'the mutator reaches both outcomes');
});

// ---------------------------------------------------------------- data files

function idx(magic: number, dims: number[], data: Uint8Array): Buffer {
  const b = Buffer.alloc(4 + 4 * dims.length);
  b.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([b, data]);
}
function npy(descr: string, shape: number[], data: Uint8Array): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const head = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), data]);
}
function storedZip(entries: Record<string, Uint8Array>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [n, data] of Object.entries(entries)) {
    const body = zlib.deflateRawSync(data);
    const name = Buffer.from(n);
    const crc = zlib.crc32(data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(8, 8); lh.writeUInt32LE(crc, 14); lh.writeUInt32LE(body.length, 18); lh.writeUInt32LE(data.length, 22); lh.writeUInt16LE(name.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(8, 10); ch.writeUInt32LE(crc, 16); ch.writeUInt32LE(body.length, 20); ch.writeUInt32LE(data.length, 24); ch.writeUInt16LE(name.length, 28); ch.writeUInt32LE(offset, 42);
    locals.push(lh, name, body);
    centrals.push(ch, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(centrals.length / 2, 8); end.writeUInt16LE(centrals.length / 2, 10); end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** Data sets of a few examples each: file name -> bytes, one entry per format. */
function dataCorpus(rng: Random): { name: string; files: Record<string, Buffer> }[] {
  const pixels = (n: number) => Uint8Array.from({ length: n }, () => rng.int(256));
  const labels = (n: number) => Uint8Array.from({ length: n }, () => rng.int(10));
  const cifar = Buffer.concat(Array.from({ length: 4 }, () => Buffer.concat([Buffer.from([rng.int(10)]), Buffer.from(pixels(3072))])));
  const images = idx(0x803, [5, 6, 6], pixels(180));
  const lab = idx(0x801, [5], labels(5));
  return [
    { name: 'idx', files: { 'train-images-idx3-ubyte': images, 'train-labels-idx1-ubyte': lab } },
    { name: 'idx.gz', files: { 'train-images-idx3-ubyte.gz': zlib.gzipSync(images), 'train-labels-idx1-ubyte.gz': zlib.gzipSync(lab) } },
    { name: 'npy', files: { 'x_train.npy': npy('|u1', [5, 6, 6], pixels(180)), 'y_train.npy': npy('|u1', [5], labels(5)) } },
    { name: 'npy-f4', files: { 'x_train.npy': npy('<f4', [3, 2, 2], Buffer.from(new Float32Array(12).fill(0.5).buffer)), 'y_train.npy': npy('<i8', [3], Buffer.from(new BigInt64Array([0n, 1n, 2n]).buffer)) } },
    { name: 'npz', files: { 'train.npz': storedZip({ 'images.npy': npy('|u1', [4, 3, 3], pixels(36)), 'labels.npy': npy('|u1', [4], labels(4)) }) } },
    { name: 'cifar', files: { 'data_batch_1.bin': cifar } },
  ];
}

const DATA_MUTATORS: Record<string, Mutator> = {
  ...BYTE_MUTATORS,
  /** A header field (IDX dims, NPY shape digits, zip sizes) set to an edge value. */
  header: (b, rng) => {
    const out = Buffer.from(b);
    if (out.length < 8) return out;
    const at = rng.int(Math.min(out.length - 4, 64));
    out.writeUInt32BE(pick(rng, [0, 1, 0xffffffff, 0x7fffffff, 60000, 28]), at);
    return out;
  },
  /** Mutated, then gzipped (or a gzip stream cut short). */
  gzip: (b, rng) => {
    const z = zlib.gzipSync(BYTE_MUTATORS['bitflips']!(b, rng));
    return rng.int(2) ? z : z.subarray(0, rng.int(z.length + 1));
  },
};

test(`fuzz: mutated data sets (IDX, gzip, NPY, NPZ, CIFAR) load or fail cleanly, in bounded time (${CASES / 4} cases)`, { timeout: 600_000 }, (ctx) => {
  const rng = new Random(SEED + 1000);
  const corpus = dataCorpus(rng);
  const t = newTally();
  const started = Date.now();
  for (let i = 0; i < CASES / 4; i++) {
    const base = corpus[i % corpus.length]!;
    const dir = join(tmp, `data-${i % 4}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    const names = Object.keys(base.files);
    const victim = pick(rng, names);
    const how = pick(rng, Object.keys(DATA_MUTATORS));
    for (const n of names) writeFileSync(join(dir, n), n === victim ? DATA_MUTATORS[how]!(base.files[n]!, rng) : base.files[n]!);
    runCase(t, `#${i} ${base.name} ${victim} ${how}`, () => {
      loadDataDir(dir, { split: 'train' });
    });
  }
  const line = `${report(t, 'data')} in ${((Date.now() - started) / 1000).toFixed(1)} s (seed ${SEED})`;
  console.log(line);
  ctx.diagnostic(line);
  assertNoFindings(t, 'data');
  assert.ok(t.clean > 0 && t.success > 0, 'the mutator reaches both outcomes');
});

// ---------------------------------------------------------------- through the CLI

interface Spawned { code: number | null; signal: NodeJS.Signals | null; stderr: string; ms: number }

function spawnCli(args: string[], timeoutMs: number): Promise<Spawned> {
  return new Promise((resolvePromise, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'main.ts'), ...args], { cwd: ROOT, timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code, signal, stderr, ms: Date.now() - started }));
  });
}

test('fuzz through the CLI: inspect and perturb on mutated models exit non-zero with one `error:` line, or succeed', { timeout: 600_000 }, async (ctx) => {
  const corpus = modelCorpus();
  const rng = new Random(SEED + 2000);
  const jobs: { args: string[]; what: string }[] = [];
  for (let i = 0; i < CLI_CASES; i++) {
    const base = corpus[i % corpus.length]!;
    const { bytes, how } = mutateModel(base.bytes, rng);
    const path = join(modelDir, `cli-${i}.onnx`);
    writeFileSync(path, bytes);
    const args = i % 2 === 0 ? ['inspect', path, ...(i % 4 === 0 ? ['--json'] : [])] : ['perturb', path, '--gamma', '0.1', '-o', join(tmp, `out-${i}.onnx`), '--force'];
    jobs.push({ args, what: `#${i} ${base.name} ${how} ${args[0]}` });
  }
  const results: Spawned[] = [];
  const started = Date.now();
  for (let k = 0; k < jobs.length; k += 3) results.push(...(await Promise.all(jobs.slice(k, k + 3).map((j) => spawnCli(j.args, 60_000)))));
  let errors = 0;
  results.forEach((r, i) => {
    const what = jobs[i]!.what;
    assert.equal(r.signal, null, `${what}: killed after ${r.ms} ms (a hang)`);
    if (r.code === 0) return;
    errors++;
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`);
    assert.match(lines[0]!, /^error: /, what);
    assert.doesNotMatch(r.stderr, /internal error/, what);
  });
  // Whatever perturb wrote holds nothing from outside the model folder.
  let written = 0;
  for (let i = 0; i < jobs.length; i++) {
    const out = join(tmp, `out-${i}.onnx`);
    if (!existsSync(out)) continue;
    written++;
    const bytes = readFileSync(out);
    assert.ok(!bytes.includes(SECRET.subarray(0, 40)) && !bytes.includes('root:x:0:0'), `${jobs[i]!.what}: output embeds a file from outside the model folder`);
  }
  const line = `cli: ${results.length} spawned runs, ${errors} clean errors, ${results.length - errors} successes (${written} perturbed models written, 0 escapes), 0 hangs, 0 internal errors in ${((Date.now() - started) / 1000).toFixed(1)} s`;
  console.log(line);
  ctx.diagnostic(line);
});
