/**
 * Query augmentation for the shadow-model attacks: the target and every shadow are also queried
 * on transformed copies of each audited example, and the attacks average their per-query
 * evidence (Carlini et al. 2022 query mirrored and shifted images). Only transforms that keep an
 * image a plausible example of its class belong here: a horizontal mirror for natural images
 * and clothing, not for digits or text.
 */
import { exampleSize, type Dataset } from '../../data/index.js';
import { RpOnnxError } from '../../errors.js';

export const AUGMENTATIONS = ['none', 'hflip'] as const;
export type Augmentation = (typeof AUGMENTATIONS)[number];

/** Every image mirrored left-right (NCHW: reverse W). */
export function flipHorizontal(ds: Dataset): Dataset {
  const [c, h, w] = ds.shape;
  const per = exampleSize(ds);
  const out = new Float32Array(ds.images.length);
  for (let n = 0; n < ds.count; n++) {
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        const row = n * per + (ch * h + y) * w;
        for (let x = 0; x < w; x++) out[row + x] = ds.images[row + w - 1 - x]!;
      }
    }
  }
  return { ...ds, images: out, name: `${ds.name}[hflip]` };
}

/** The query sets: the examples themselves first, then each augmentation's copies. */
export function queryViews(ds: Dataset, augmentation: Augmentation): Dataset[] {
  if (augmentation === 'none') return [ds];
  if (augmentation === 'hflip') return [ds, flipHorizontal(ds)];
  throw new RpOnnxError(`unknown query augmentation '${augmentation as string}' (choose from ${AUGMENTATIONS.join(', ')})`);
}
