export { startRunner } from './main';
export { RunnerConfigSchema, loadRunnerConfig } from './config';
export type { RunnerConfig } from './config';
export { createSegmentWorker } from './pipeline/worker';
export { BotHost } from './bot-host/host';
export { PackageCache } from './packages/cache';
