/** Datasets: loaders (IDX, CIFAR binary, NPY/NPZ), the embedded default dataset, batching and sampling. */
export { type Dataset, makeDataset, exampleSize, subset, split, normalize, channelStats, checkLabels } from './dataset.js';
export { type Batch, type BatchOptions, batches, batchCount, gatherBatch, poissonBatches, poissonSample } from './samplers.js';
export { type LoadDataOptions, type Split, FORMATS, loadDataDir, hasSplit, loadDefaultDataset } from './load.js';
export { defaultDataDir, findFashionMnist, packageRoot, DEBIAN_FASHION_MNIST } from './paths.js';
export type { DataFormat, FormatOptions, SplitData } from './format.js';
export { parseIdxU8, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC } from './idx.js';
export { parseNpy, type NpyArray, type NpyDtype } from './npy.js';
export { ZipArchive, type ZipEntry } from './zip.js';
export { checkFiniteInputs } from './finite.js';
export { fitDataToModel, fitExamplesToModel, fitSplitsToModel, LAYOUTS, type Examples, type FitToModelOptions, type Layout } from './fit-to-model.js';
