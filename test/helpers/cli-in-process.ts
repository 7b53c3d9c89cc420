/**
 * Runs many rp-onnx command lines in one process (cli/program.ts, process.exit and the output
 * streams stubbed) and prints their exit codes and output as one JSON array: a spawned process
 * per case would cost a TypeScript start-up each. Usage: node --import tsx cli-in-process.ts
 * '<JSON array of argument lists>'. Output after a case's first process.exit is dropped (the
 * user would never see it).
 */
import { runCli } from '../../cli/program.js';

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

export interface CliRun { args: string[]; code: number; stderr: string; stdout: string }

const cases = JSON.parse(process.argv[2] ?? '[]') as string[][];
const saved = { exit: process.exit, err: process.stderr.write.bind(process.stderr), out: process.stdout.write.bind(process.stdout) };
const results: CliRun[] = [];
for (const args of cases) {
  let code: number | null = null;
  let stderr = '';
  let stdout = '';
  process.exit = ((c?: number) => {
    if (code === null) code = c ?? 0;
    throw new Exit(c ?? 0);
  }) as typeof process.exit;
  process.stderr.write = ((s: string | Uint8Array) => {
    if (code === null) stderr += String(s);
    return true;
  }) as typeof process.stderr.write;
  process.stdout.write = ((s: string | Uint8Array) => {
    if (code === null) stdout += String(s);
    return true;
  }) as typeof process.stdout.write;
  try {
    await runCli(['node', 'rp-onnx', ...args]);
  } catch (e) {
    if (!(e instanceof Exit)) {
      code ??= -1;
      stderr += `harness: uncaught ${String(e)}`;
    }
  } finally {
    process.exit = saved.exit;
    process.stderr.write = saved.err as typeof process.stderr.write;
    process.stdout.write = saved.out as typeof process.stdout.write;
  }
  results.push({ args, code: code ?? 0, stderr, stdout });
}
process.stdout.write(`${JSON.stringify(results)}\n`);
process.exit(0);
