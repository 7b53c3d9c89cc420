// Copies non-TypeScript files the compiled package needs next to their compiled modules.
import { cpSync, existsSync, chmodSync } from 'node:fs';
cpSync('src/graph/proto/onnx.js', 'dist/src/graph/proto/onnx.js');
cpSync('src/graph/proto/onnx.d.ts', 'dist/src/graph/proto/onnx.d.ts');
if (existsSync('dist/cli/main.js')) chmodSync('dist/cli/main.js', 0o755);
