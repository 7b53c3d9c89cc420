#!/usr/bin/env node
/**
 * The rp-onnx command line. Each command lives in its own file and only parses options,
 * calls the library and prints; see docs/architecture.md. The tree is built in cli/program.ts.
 */
import { runCli } from './program.js';

void runCli(process.argv);
