/**
 * Public data for `--norm-fix public-batch`: it must be disjoint from the private training set
 * (Davody et al.'s fix costs no privacy only then), and the model records which public data it
 * was normalized with. Examples are compared by the SHA-256 of their image values (labels left
 * out: the same image under another label is still the private example).
 */
import { createHash } from 'node:crypto';
import { RpOnnxError } from '../../errors.js';
import { exampleSize, type Dataset } from '../../data/index.js';

function exampleDigests(ds: Dataset): string[] {
  const per = exampleSize(ds);
  const bytes = new Uint8Array(ds.images.buffer, ds.images.byteOffset, ds.images.byteLength);
  const out: string[] = [];
  for (let i = 0; i < ds.count; i++) out.push(createHash('sha256').update(bytes.subarray(i * per * 4, (i + 1) * per * 4)).digest('hex'));
  return out;
}

export interface PublicDataRecord {
  /** SHA-256 over the examples' digests in order (and the shape): names the public set exactly. */
  digest: string;
  examples: number;
  source: string;
}

/** Refuses public data that shares an example with the private set; returns its record. */
export function checkPublicData(pub: Dataset, priv: Dataset): PublicDataRecord {
  if (pub.shape.join('x') !== priv.shape.join('x')) {
    throw new RpOnnxError(`public data ${pub.source} has examples of shape [${pub.shape.join(', ')}], the training data [${priv.shape.join(', ')}]`);
  }
  if (pub.count === 0) throw new RpOnnxError(`public data ${pub.source} holds no examples`);
  const pubDigests = exampleDigests(pub);
  const privateSet = new Set(exampleDigests(priv));
  const overlap = pubDigests.filter((d) => privateSet.has(d)).length;
  if (overlap > 0) {
    throw new RpOnnxError(`public data ${pub.source} shares ${overlap} of its ${pub.count} examples with the private training data: public-batch statistics are free of privacy cost only on disjoint public data`);
  }
  const h = createHash('sha256').update(`${pub.shape.join('x')}:${pub.count}:`);
  for (const d of pubDigests) h.update(d);
  return { digest: `sha256:${h.digest('hex')}`, examples: pub.count, source: pub.source };
}
