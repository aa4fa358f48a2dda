import { Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '@orderly/shared';
import { fireTimeOf, SCHEDULES_QUEUE, TICK_ATTEMPTS } from './scheduler-queue';
import { Schedules } from './schedules';
import { TickData } from './schemas';

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

/** The control room's worker on `orderly.schedules`. */
export function createTickWorker(deps: { schedules: Schedules; connection: Redis; prefix: string; log: Logger }): Worker {
  const worker = new Worker(SCHEDULES_QUEUE, (job: Job) => handleTick(deps.schedules, deps.log, job), {
    connection: deps.connection,
    prefix: deps.prefix,
    concurrency: 4,
  });
  worker.on('error', (err) => deps.log.error({ err: { message: err.message } }, 'schedule worker error'));
  return worker;
}
