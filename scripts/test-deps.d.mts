// Types of scripts/test-deps.mjs for the TypeScript tests.
export interface TestPackage { name: string; why: string; path?: string; commands?: string[] }
export const TEST_PACKAGES: TestPackage[];
export function onPath(command: string, env?: NodeJS.ProcessEnv): boolean;
export function missingPackages(packages?: TestPackage[], probe?: { exists(path: string): boolean; onPath(command: string): boolean }): string[];
export type ProvisionPlan =
  | { action: 'none' }
  | { action: 'install'; steps: string[][] }
  | { action: 'instruct'; command: string };
export function provisionPlan(o: { missing: string[]; isRoot: boolean; hasAptGet: boolean }): ProvisionPlan;
export function ensureTestDeps(o?: {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  run?: (cmd: string, args: string[]) => number | null;
  facts?: () => { missing: string[]; isRoot: boolean; hasAptGet: boolean };
}): boolean;
