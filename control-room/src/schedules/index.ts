import type { Redis } from 'ioredis';
import { SchedulerQueue } from './scheduler-queue';
import { Calendars } from './calendars';
import { scheduleRepeatStrategy, Schedules, SchedulesDeps } from './schedules';
import { createTickWorker } from './ticks';

export { Schedules } from './schedules';
export { scheduleRoutes } from './routes';
export { Calendars } from './calendars';

/** How often Redis is reconciled with the schedules table besides on start (heals a Redis that lost its data). */
export const RECONCILE_INTERVAL_MS = 60_000;

export interface RunningSchedules {
  schedules: Schedules;
  close(): Promise<void>;
}

/**
 * Starts schedules: reconciles Redis with the database (before the worker takes ticks, so a
 * scheduler of a deleted or paused schedule is gone first), starts the tick worker, and
 * reconciles again at intervals. A reconcile that fails (Redis down) is logged and retried.
 */
export async function startSchedules(deps: Omit<SchedulesDeps, 'schedulers'> & { connection: Redis; prefix: string }): Promise<RunningSchedules> {
  const repeatStrategy = scheduleRepeatStrategy(new Calendars(deps.db));
  const schedulers = new SchedulerQueue(deps.connection, deps.prefix, repeatStrategy);
  const schedules = new Schedules({ ...deps, schedulers });
  const reconcile = () =>
    schedules.reconcile().catch((err: Error) => deps.log.warn({ err: { message: err.message } }, 'schedule reconcile failed; retried later'));
  await reconcile();
  const worker = createTickWorker({ schedules, connection: deps.connection, prefix: deps.prefix, log: deps.log, repeatStrategy });
  const timer = setInterval(() => void reconcile(), RECONCILE_INTERVAL_MS);
  timer.unref();
  let closed = false;
  return {
    schedules,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await worker.close();
      await schedulers.close();
    },
  };
}
