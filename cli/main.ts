#!/usr/bin/env node
/**
 * The rp-onnx command line. Each command lives in its own file and only parses options,
 * calls the library and prints; see docs/architecture.md.
 */
import { Command } from 'commander';
import { reportError } from './common.js';
import { commands } from './registry.js';

const program = new Command();
program
  .name('rp-onnx')
  .description('Make ONNX neural networks private: residual perturbation, private training, audits.')
  .version('0.1.0')
  .option('--verbose', 'print stack traces for errors')
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) });

for (const register of commands) register(program);

program.parseAsync(process.argv).catch(reportError);
