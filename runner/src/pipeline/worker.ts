import { KeyObject } from 'node:crypto';
import { DelayedError, Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { runQueueName, SegmentName } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { VaultClientFactory } from '@orderly/shared/vault';
import { leaseCredentials } from '../credentials/lease';
import type { ControlRoomClient } from '../control-room-client';
import type { PackageCache } from '../packages/cache';
import type { ReportPublisher } from '../reports/publisher';
import type { SandboxPool } from '../sandbox/pool';
import type { ActiveRuns } from './active-runs';
import { createPipeline } from './attempt';
import type { RunCancellations } from './cancellations';
import type { JobFate } from './halt-job';
import type { CredentialLeaser } from './ports';
import { drainRuns } from './shutdown';

export interface SegmentWorkerDeps {
  segment: SegmentName;
  runnerId: string;
  connection: Redis;
  prefix: string;
  controlRoomSigningKey: KeyObject;
  client: ControlRoomClient;
  cache: PackageCache;
  /** A fresh sandbox for every run, from one slot per concurrent run. */
  sandboxes: SandboxPool;
  /** `none`: development without a sandbox, said on every run's log. */
  sandboxMode?: 'bwrap' | 'none';
  reports: ReportPublisher;
  /** Vault, for bots that declare credentials; undefined: such runs fail with a clear code. */
  vault?: VaultClientFactory | undefined;
  log: Logger;
  /** Called when bot code starts, with the time the browser context took (for dispatch latency). */
  onBotStarted?: (runId: string, contextMs: number) => void;
  /**
   * How long a job's lock lasts without renewal, and how often stalled jobs (whose runner died
   * and stopped renewing) are looked for: together, how soon a dead runner's run is picked up.
   */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** Runs the control room cancelled: their bots are aborted and their jobs fail without retry. */
  cancellations?: RunCancellations;
  /** The attempt lease asked for at claim, renewed every third of it while a run is active (default: the control room's, 30 s). */
  attemptLeaseMs?: number;
}

export interface SegmentWorker {
  worker: Worker;
  runs: ActiveRuns;
  /** Begins the worker's close: no new job is taken. Idempotent. */
  stopTaking(): void;
  /** Runs finish within `graceMs`; past it, they are aborted (an aborted job is retried, never lost) and awaited. */
  drain(graceMs: number): Promise<void>;
  /** The worker's close (begun by stopTaking if it was not yet). */
  closed(): Promise<void>;
  /** All three in order; idempotent. */
  close(graceMs?: number): Promise<void>;
}

/**
 * A stalled job is never failed by BullMQ for stalling: the control room counts a lost attempt
 * against the run's attempts and dead-letters the run when they are used up (see the claim).
 */
const NEVER_FAIL_FOR_STALLING = 1_000_000;

/** Vault credential leases, for a runner with VAULT_ADDR. */
export function vaultLeaser(factory: VaultClientFactory): CredentialLeaser {
  return { lease: (request) => leaseCredentials({ factory, ...request }) };
}

/** Carries out the pipeline's decision with BullMQ's own means. */
export async function applyFate(job: Pick<Job, 'moveToDelayed'>, token: string | undefined, fate: JobFate): Promise<{ ok: boolean }> {
  switch (fate.kind) {
    case 'done':
      return { ok: fate.ok };
    case 'delay':
      // Back in the queue for a while, without spending one of its BullMQ attempts.
      await job.moveToDelayed(Date.now() + fate.ms, token);
      throw new DelayedError();
    case 'drop':
      throw new UnrecoverableError(fate.code);
    case 'retry':
      throw new Error(fate.code);
  }
}

/**
 * The BullMQ side of the runner's pipeline for one segment (attempt.ts holds the steps). Builders
 * like this connect nothing themselves.
 */
export function createSegmentWorker(deps: SegmentWorkerDeps): SegmentWorker {
  const pipeline = createPipeline({
    segment: deps.segment,
    runnerId: deps.runnerId,
    controlRoomSigningKey: deps.controlRoomSigningKey,
    client: deps.client,
    packages: deps.cache,
    sandboxes: deps.sandboxes,
    sandboxMode: deps.sandboxMode,
    reports: deps.reports,
    credentials: deps.vault ? vaultLeaser(deps.vault) : undefined,
    cancellations: deps.cancellations,
    log: deps.log,
    onBotStarted: deps.onBotStarted,
    attemptLeaseMs: deps.attemptLeaseMs,
  });
  const worker = new Worker(runQueueName(deps.segment), async (job: Job, token?: string) => applyFate(job, token, await pipeline.process(job)), {
    connection: deps.connection,
    prefix: deps.prefix,
    concurrency: deps.sandboxes.size,
    autorun: true,
    maxStalledCount: NEVER_FAIL_FOR_STALLING,
    ...(deps.lockDurationMs ? { lockDuration: deps.lockDurationMs } : {}),
    ...(deps.stalledIntervalMs ? { stalledInterval: deps.stalledIntervalMs } : {}),
  });
  worker.on('error', (err) => deps.log.error({ err: { message: err.message } }, 'worker error'));

  let workerClosed: Promise<void> | undefined;
  const stopTaking = () => {
    workerClosed ??= worker.close();
    void workerClosed.catch(() => undefined); // awaited, and reported, by closed()
  };
  const closed = () => {
    stopTaking();
    return workerClosed!;
  };
  const drain = (graceMs: number) => drainRuns(pipeline.runs, graceMs, deps.log);
  let closing: Promise<void> | undefined;
  return {
    worker,
    runs: pipeline.runs,
    stopTaking,
    drain,
    closed,
    close: (graceMs = 30_000) =>
      (closing ??= (async () => {
        stopTaking();
        await drain(graceMs);
        await closed();
      })()),
  };
}
