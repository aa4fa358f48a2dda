import { runQueueName, SegmentName } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { Db } from '../db/db';
import { AlertOutbox } from './outbox';

/**
 * Looks at how long the oldest waiting run of each segment's run queue has waited (since it was
 * created, retried or requeued: `updated_at` of a waiting run) and raises a queue-age alert past
 * the threshold. The database, not Redis, is asked: it knows every waiting run, including the
 * ones whose job has not reached Redis yet.
 */
export async function checkQueueAges(deps: {
  db: Db;
  outbox: AlertOutbox;
  segments: readonly SegmentName[];
  thresholdSeconds: number;
  log: Logger;
}): Promise<number> {
  const rows = await deps.db.query<{ segment: string; age: number; waiting: string }>(
    `SELECT segment, EXTRACT(EPOCH FROM now() - min(updated_at))::double precision AS age, count(*) AS waiting
     FROM runs WHERE status = 'waiting' AND segment = ANY($1) GROUP BY segment`,
    [deps.segments],
  );
  let raised = 0;
  for (const row of rows) {
    const age = Number(row.age);
    if (age < deps.thresholdSeconds) continue;
    deps.log.warn({ segment: row.segment, oldestWaitingSeconds: Math.round(age), waiting: Number(row.waiting) }, 'run queue is older than the alert threshold');
    await deps.outbox.queueAge({
      kind: 'queue.age',
      segment: row.segment,
      queue: runQueueName(row.segment as SegmentName),
      oldestWaitingSeconds: Math.round(age),
      waiting: Number(row.waiting),
      thresholdSeconds: deps.thresholdSeconds,
    });
    raised++;
  }
  return raised;
}
