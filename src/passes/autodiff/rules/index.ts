/**
 * Imports every gradient-rule module once, so each registers its ops (see ../registry.ts).
 * A new op family is a new file here plus one import line; the engine never changes.
 */
import './elementwise.js';
import './activations.js';
import './shape-ops.js';
import './reductions.js';
import './conv.js';
import './conv-transpose.js';
import './gemm.js';
import './matmul.js';
import './pooling.js';
import './scatter.js';
import './batchnorm.js';
import './normalization.js';
