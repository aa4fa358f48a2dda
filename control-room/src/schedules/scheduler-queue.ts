import { Queue, RepeatStrategy } from 'bullmq';
import type { Redis } from 'ioredis';
import { repeatOptions, tickName, Timing } from './timing';
import { TickData } from '@orderly/shared';

/** The control room's own queue of schedule ticks (runners never read it). */
export const SCHEDULES_QUEUE = 'orderly.schedules';

/** A tick job's id is BullMQ's `repeat:<schedulerId>:<fire time in ms>`; the scheduler id is the schedule id. */
const TICK_JOB_ID = /^repeat:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(\d{1,15})$/;

/**
 * The fire time of a tick: the millisecond BullMQ scheduled it for, which it writes into the job
 * id. Every delivery of the same fire (a retry, a stalled job taken over by another control room)
 * carries the same id, unlike `job.timestamp` (when the job was created) or `opts.prevMillis`
 * (not maintained for `every` schedulers). Undefined for an id BullMQ's scheduler did not make.
 */
export function fireTimeOf(jobId: string | undefined, scheduleId: string): number | undefined {
  const match = TICK_JOB_ID.exec(jobId ?? '');
  if (!match || match[1] !== scheduleId) return undefined;
  return Number(match[2]);
}

/** What a scheduler in Redis looks like, for reconciling it with its row. */
export interface SchedulerState {
  id: string;
  pattern: string | null;
  tz: string | null;
  name: string | null;
  every: number | null;
  next: number | null;
  data: unknown;
}

/** Ticks are retried a little for transient failures (database or Vault briefly down), then given up. */
export const TICK_ATTEMPTS = 3;

/** The BullMQ job schedulers of the schedules, one per active schedule, under the schedule's id. */
export class SchedulerQueue {
  readonly queue: Queue;

  constructor(connection: Redis, prefix: string, repeatStrategy?: RepeatStrategy) {
    this.queue = new Queue(SCHEDULES_QUEUE, { connection, prefix, ...(repeatStrategy ? { settings: { repeatStrategy } } : {}) });
    // Redis outages reach callers as failed calls; an unheard 'error' event would be printed raw.
    this.queue.on('error', () => undefined);
  }

  /** Creates or updates the scheduler of a schedule; the tick carries only the schedule's id. */
  async upsert(scheduleId: string, timing: Timing): Promise<void> {
    await this.queue.upsertJobScheduler(scheduleId, repeatOptions(timing), {
      name: tickName(timing),
      data: { v: 1, scheduleId } satisfies TickData,
      opts: {
        attempts: TICK_ATTEMPTS,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: { age: 3600, count: 1000 },
        removeOnFail: { age: 7 * 24 * 3600 },
      },
    });
  }

  /** Removes the scheduler and its next pending tick; a no-op when there is none. */
  async remove(scheduleId: string): Promise<void> {
    await this.queue.removeJobScheduler(scheduleId);
  }

  async get(scheduleId: string): Promise<SchedulerState | undefined> {
    const scheduler = await this.queue.getJobScheduler(scheduleId);
    return scheduler ? toState(scheduler) : undefined;
  }

  async all(): Promise<SchedulerState[]> {
    return (await this.queue.getJobSchedulers(0, -1, true)).map(toState);
  }

  /**
   * A queue_one schedule's queued fire waits for the previous run: a `drain` job (one per queued
   * fire) checks again every `pollMs` until the run has ended, then creates the queued fire's run.
   */
  async addDrain(scheduleId: string, fireTimeMs: number, pollMs: number): Promise<void> {
    await this.queue.add('drain', { v: 1, scheduleId } satisfies TickData, {
      jobId: `drain:${scheduleId}:${fireTimeMs}`,
      delay: pollMs,
      attempts: DRAIN_ATTEMPTS,
      backoff: { type: 'fixed', delay: pollMs },
      removeOnComplete: { age: 3600, count: 1000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

/** A queued fire is given up after this many checks (a day at the default 5 s). */
export const DRAIN_ATTEMPTS = 17_280;

function toState(s: {
  key: string;
  name?: string | null;
  pattern?: string | null;
  tz?: string | null;
  every?: number | null;
  next?: number | null;
  template?: { data?: unknown };
}): SchedulerState {
  return {
    id: s.key,
    name: s.name ?? null,
    pattern: s.pattern ?? null,
    tz: s.tz ?? null,
    every: s.every ?? null,
    next: s.next ?? null,
    data: s.template?.data,
  };
}

/** True when the scheduler in Redis already is what `timing` asks for (reconcile leaves it alone). */
export function schedulerMatches(state: SchedulerState, scheduleId: string, timing: Timing): boolean {
  const wanted = repeatOptions(timing);
  const data = TickData.safeParse(state.data);
  if (!data.success || data.data.scheduleId !== scheduleId) return false;
  if (state.name !== tickName(timing)) return false;
  return 'every' in wanted
    ? state.every === wanted.every && state.pattern === null
    : state.pattern === wanted.pattern && state.tz === wanted.tz && state.every === null;
}
