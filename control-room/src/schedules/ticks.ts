import { Job, RepeatStrategy, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '@orderly/shared';
import { fireTimeOf, SCHEDULES_QUEUE, TICK_ATTEMPTS } from './scheduler-queue';
import { Schedules } from './schedules';
import { TickData } from '@orderly/shared';

/**
 * Handles one tick job. The fire time comes from the job id BullMQ's scheduler gave it, so a
 * redelivery of the same fire, here or in another control room, creates no second run. A job
 * that is not a scheduler's tick (pushed into Redis by hand) is dropped: it cannot name a fire.
 */
export async function handleTick(schedules: Pick<Schedules, 'fire'>, log: Logger, job: Pick<Job, 'id' | 'data' | 'attemptsMade' | 'opts'>): Promise<void> {
  const data = TickData.safeParse(job.data);
  const fireTime = data.success ? fireTimeOf(job.id, data.data.scheduleId) : undefined;
  if (!data.success || fireTime === undefined) {
    log.warn({ queue: SCHEDULES_QUEUE }, 'malformed schedule tick dropped');
    throw new UnrecoverableError('malformed schedule tick');
  }
  const finalAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? TICK_ATTEMPTS);
  const outcome = await schedules.fire(data.data.scheduleId, fireTime, finalAttempt).catch((err: unknown) => {
    // The schedule could not even be read (database away): BullMQ retries the tick. Only the
    // error's code is logged; a driver's message may quote the query.
    log.warn({ scheduleId: data.data.scheduleId, fireTime, finalAttempt, code: (err as { code?: unknown }).code ?? null }, 'schedule tick failed');
    throw err;
  });
  if (outcome.kind !== 'failed') return;
  // Given up (audited by `fire`): failed in BullMQ without another attempt.
  if (!outcome.retryable || finalAttempt) throw new UnrecoverableError(outcome.code);
  throw new Error(outcome.code);
}

/** A drain job's id: `drain:<scheduleId>:<queued fire time in ms>` (see `SchedulerQueue.addDrain`). */
const DRAIN_JOB_ID = /^drain:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(\d{1,15})$/;

/** Still waiting: the job fails this attempt and BullMQ checks again after its fixed backoff. */
export class StillWaiting extends Error {}

/**
 * Handles a queue_one schedule's drain job: creates the queued fire's run once the previous run
 * has ended; throws StillWaiting (retried after the poll interval) while it goes on.
 */
export async function handleDrain(schedules: Pick<Schedules, 'drain'>, log: Logger, job: Pick<Job, 'id' | 'data'>): Promise<void> {
  const data = TickData.safeParse(job.data);
  const match = DRAIN_JOB_ID.exec(job.id ?? '');
  if (!data.success || !match || match[1] !== data.data.scheduleId) {
    log.warn({ queue: SCHEDULES_QUEUE }, 'malformed schedule drain dropped');
    throw new UnrecoverableError('malformed schedule drain');
  }
  const state = await schedules.drain(data.data.scheduleId, Number(match[2]));
  if (state === 'waiting') throw new StillWaiting('the previous run is still going');
}

/** The control room's worker on `orderly.schedules`; `repeatStrategy` computes cron schedulers' next fires. */
export function createTickWorker(deps: { schedules: Schedules; connection: Redis; prefix: string; log: Logger; repeatStrategy?: RepeatStrategy }): Worker {
  const worker = new Worker(
    SCHEDULES_QUEUE,
    (job: Job) => (job.name === 'drain' ? handleDrain(deps.schedules, deps.log, job) : handleTick(deps.schedules, deps.log, job)),
    {
      connection: deps.connection,
      prefix: deps.prefix,
      concurrency: 4,
      ...(deps.repeatStrategy ? { settings: { repeatStrategy: deps.repeatStrategy } } : {}),
    },
  );
  worker.on('error', (err) => deps.log.error({ err: { message: err.message } }, 'schedule worker error'));
  return worker;
}
