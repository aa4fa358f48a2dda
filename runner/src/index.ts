export { startRunner } from './main';
export { RunnerConfigSchema, loadRunnerConfig } from './config';
export type { RunnerConfig } from './config';
export { createSegmentWorker } from './pipeline/worker';
export { Sandbox } from './sandbox/sandbox';
export { PackageCache } from './packages/cache';
