import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTrainingRecord, decodeExampleBitmap, encodeExampleBitmap, completeRecipe, DEFAULT_RECIPE } from '../src/audit/training-record.js';
import { planShadowAudit } from '../src/audit/shadow-audit.js';
import { Random } from '../src/random.js';
import { gaussianData } from './helpers/synthetic-mia.js';

test('the contract form: recipe object and the bitmap of examples used', () => {
  // Bits 0, 3, 9 set: byte 0 = 0b00001001, byte 1 = 0b00000010.
  const bitmap = Buffer.from([0b00001001, 0b00000010]).toString('base64');
  const r = parseTrainingRecord(JSON.stringify({
    data: 'd', examples: 12, steps: 20, epochs: 2, examplesUsed: 3, examplesUsedBitmap: bitmap, finalTestAccuracy: 0.5,
    recipe: { steps: 20, batchSize: 8, lr: 0.1, optimizer: 'adam', momentum: 0, weightDecay: 0, schedule: 'constant', batchNorm: 'frozen', seed: 3, shuffle: false },
  }));
  assert.deepEqual(r.used, [0, 3, 9]);
  assert.equal(r.usedFrom, 'bitmap');
  assert.deepEqual(r.recipe, { steps: 20, batchSize: 8, lr: 0.1, optimizer: 'adam', momentum: 0, weightDecay: 0, schedule: 'constant', batchNorm: 'frozen', shuffle: false });
  assert.equal(decodeExampleBitmap(encodeExampleBitmap([1, 5, 8, 15], 16), 16).join(), '1,5,8,15');
  // Against bytes written by hand: example i is bit i % 8 of byte i >> 3, least significant first.
  // Examples 1, 5 -> byte 0 = 0b00100010 = 0x22; 8, 15 -> byte 1 = 0b10000001 = 0x81.
  assert.equal(encodeExampleBitmap([1, 5, 8, 15], 16), Buffer.from([0x22, 0x81]).toString('base64'));
  assert.equal(decodeExampleBitmap(Buffer.from([0x22, 0x81]).toString('base64'), 16).join(), '1,5,8,15');
  // Bits past n in the last byte are not examples; a bitmap too short for n is an error.
  assert.equal(decodeExampleBitmap(Buffer.from([0xff]).toString('base64'), 3).join(), '0,1,2');
  assert.throws(() => decodeExampleBitmap(Buffer.from([0xff]).toString('base64'), 9), /holds 8 bits for 9 examples/);
});

test('the old flat form: fields at the top level, no bitmap = all examples used', () => {
  const r = parseTrainingRecord(JSON.stringify({ data: 'd', examples: 5, steps: 30, epochs: 3, batch: 64, lr: 0.05, optimizer: 'sgd', momentum: 0.9, weightDecay: 5e-4, schedule: 'cosine', batchNorm: 'train', finalTestAccuracy: null }));
  assert.deepEqual(r.used, [0, 1, 2, 3, 4]);
  assert.equal(r.usedFrom, 'all');
  assert.equal(r.recipe.batchSize, 64);
  assert.equal(r.recipe.epochs, 3);
  assert.throws(() => parseTrainingRecord('{"lr": 1}'), /examples/);
  assert.throws(() => parseTrainingRecord('nope'), /not JSON/);
});

test('recipe: record, then flags; an explicit budget replaces the other', () => {
  const r = completeRecipe({ epochs: 30, batchSize: 64 }, { steps: 10 });
  assert.equal(r.steps, 10);
  assert.equal(r.epochs, undefined);
  assert.equal(r.batchSize, 64);
  assert.equal(completeRecipe({}).lr, DEFAULT_RECIPE.lr);
});

test('plan: members only from examples training used; non-members from unused training examples in file order', () => {
  const rng = new Random(1);
  const train = gaussianData(40, rng, 'train');
  const test = gaussianData(30, rng, 'test');
  const used = [1, 4, 6, 9, 12, 20];
  const plan = planShadowAudit({
    train, trainDir: '/d', test, testDir: '/d', used, nonMembersFrom: 'train', shadows: 4, seed: 0,
    recipe: DEFAULT_RECIPE, init: { path: '/i.onnx', sha256: 'x' }, threads: 1,
  });
  assert.deepEqual(plan.memberIndices, used);
  assert.deepEqual(plan.nonMemberIndices, [0, 2, 3, 5, 7, 8]);
  assert.equal(plan.population.count, 6);
  assert.equal(plan.include.length, 4);
  for (let i = 0; i < 12; i++) assert.equal(plan.include.reduce((s, row) => s + row[i]!, 0), 2);
  // Jobs carry exactly the inclusion rows.
  plan.jobs.forEach((j, k) => assert.deepEqual(j.include, [...plan.include[k]!.keys()].filter((i) => plan.include[k]![i])));
  const fromTest = planShadowAudit({
    train, trainDir: '/d', test, testDir: '/d', used, count: 4, shadows: 2, seed: 0,
    recipe: DEFAULT_RECIPE, init: { path: '/i.onnx', sha256: 'x' }, threads: 1,
  });
  assert.equal(fromTest.members.count, 4);
  for (const i of fromTest.memberIndices) assert.ok(used.includes(i));
  // The RMIA population never overlaps the test non-members.
  assert.equal(fromTest.task.pool[1]!.split, 'test');
});
