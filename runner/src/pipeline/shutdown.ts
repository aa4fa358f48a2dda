import { isOrderlyError, OrderlyError } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { ActiveRuns } from './active-runs';

/** One step of a shutdown: it runs whatever the steps before it did, and may take at most its bound. */
export interface ShutdownStep {
  name: string;
  run: () => unknown;
  /** Milliseconds from the step's start; a function for a deadline shared with earlier steps. */
  boundMs: number | (() => number);
}

export interface ShutdownOutcome {
  /** Steps that threw. */
  failed: string[];
  /** Steps still going when their bound passed (the shutdown went on without them). */
  overran: string[];
}

/**
 * Runs every step in order, each bounded: one that throws or hangs is logged (its name and code,
 * never a message) and the next step runs anyway, as BullMQ's own Worker.close() does with its
 * cleanups. Never rejects.
 */
export async function runShutdown(steps: readonly ShutdownStep[], log: Logger): Promise<ShutdownOutcome> {
  const outcome: ShutdownOutcome = { failed: [], overran: [] };
  for (const step of steps) {
    const boundMs = Math.max(0, typeof step.boundMs === 'function' ? step.boundMs() : step.boundMs);
    let timer: NodeJS.Timeout | undefined;
    const overrun = new Promise<'overran'>((resolve) => (timer = setTimeout(() => resolve('overran'), boundMs)));
    try {
      const done = Promise.resolve()
        .then(step.run)
        .then(() => 'done' as const);
      if ((await Promise.race([done, overrun])) === 'overran') {
        outcome.overran.push(step.name);
        log.warn({ step: step.name, boundMs }, 'shutdown step did not finish in time; going on');
      }
    } catch (err) {
      outcome.failed.push(step.name);
      log.warn({ step: step.name, code: isOrderlyError(err) ? err.code : 'ORDERLY_E_INTERNAL' }, 'shutdown step failed; going on');
    } finally {
      clearTimeout(timer);
    }
  }
  return outcome;
}

/** How long aborted runs get to end (the sandbox ends a bot that ignores the abort after 5 s). */
export const ABORT_WAIT_MS = 6000;

/**
 * Lets the jobs in flight finish within `graceMs`; past that, aborts their runs (an aborted job is
 * retried, never lost) and waits for them to end.
 */
export async function drainRuns(runs: Pick<ActiveRuns, 'settled' | 'abortAll'>, graceMs: number, log: Logger): Promise<void> {
  const settled = runs.settled();
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)));
  const over = await Promise.race([settled.then(() => false), graceOver]);
  clearTimeout(timer);
  if (!over) return;
  const aborted = runs.abortAll();
  log.warn({ runs: aborted.length, graceMs }, 'shutdown grace is over; aborting the active runs');
  await settled;
}

/** Quits a Redis connection politely within `boundMs`, else drops it. */
export async function quitRedis(redis: { quit(): Promise<unknown>; disconnect(): void }, boundMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const quit = redis.quit().then(
    () => true,
    () => false,
  );
  const quitInTime = await Promise.race([quit, new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), boundMs)))]);
  clearTimeout(timer);
  if (!quitInTime) redis.disconnect();
}

/** What the runner closes, in this order. */
export interface RunnerParts {
  worker: {
    /** No new job is taken (the worker's close has begun). */
    stopTaking(): void;
    /** Runs finish within the grace; past it they are aborted and awaited. */
    drain(graceMs: number): Promise<void>;
    /** The worker's close, begun by stopTaking. */
    closed(): Promise<void>;
  };
  /** Warm sandboxes, and any still in use, with their processes and egress proxies. */
  sandboxes: { close(): Promise<void> };
  cancellations: { close(): Promise<void> };
  reports: { close(): Promise<void> };
  redis: { quit(): Promise<unknown>; disconnect(): void };
  graceMs: number;
  log: Logger;
}

/** Past the grace, how long the worker may take to close (its lock renewals, its connections). */
export const WORKER_CLOSE_AFTER_GRACE_MS = 10_000;
const REDIS_QUIT_MS = 2000;
// Ending a sandbox is a SIGKILL and a wait for its exit; on a loaded machine that exit can take seconds.
const SANDBOX_CLOSE_MS = 10_000;
const CONNECTION_CLOSE_MS = 2000;

/**
 * The runner's close(): idempotent (every call returns the first call's promise), and it never
 * skips a step, whichever step throws or hangs. Rejects, after every step ran, when one failed or
 * overran, naming the steps.
 */
export function runnerShutdown(parts: RunnerParts): () => Promise<void> {
  let closing: Promise<void> | undefined;
  const shutdown = async () => {
    const start = Date.now();
    const steps: ShutdownStep[] = [
      { name: 'stop taking jobs', run: () => parts.worker.stopTaking(), boundMs: 1000 },
      { name: 'finish or abort runs', run: () => parts.worker.drain(parts.graceMs), boundMs: parts.graceMs + ABORT_WAIT_MS },
      { name: 'close worker', run: () => parts.worker.closed(), boundMs: () => start + parts.graceMs + WORKER_CLOSE_AFTER_GRACE_MS - Date.now() },
      { name: 'close sandboxes and their egress proxies', run: () => parts.sandboxes.close(), boundMs: SANDBOX_CLOSE_MS },
      { name: 'stop listening for cancels', run: () => parts.cancellations.close(), boundMs: CONNECTION_CLOSE_MS },
      { name: 'close report publisher', run: () => parts.reports.close(), boundMs: CONNECTION_CLOSE_MS },
      { name: 'quit Redis', run: () => quitRedis(parts.redis, REDIS_QUIT_MS), boundMs: REDIS_QUIT_MS + 500 },
    ];
    const outcome = await runShutdown(steps, parts.log);
    const bad = [...outcome.failed, ...outcome.overran];
    parts.log.info({ ms: Date.now() - start, ...(bad.length ? { failed: outcome.failed, overran: outcome.overran } : {}) }, 'runner stopped');
    if (bad.length) throw new OrderlyError('ORDERLY_E_INTERNAL', `the runner stopped, but these shutdown steps did not complete: ${bad.join(', ')}`);
  };
  return () => (closing ??= shutdown());
}
