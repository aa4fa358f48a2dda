import { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { cancelChannel, CancelMessage, canTransition, OrderlyError, RUN_STATUSES, RunId, runQueueName, RunStatus, SegmentName } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { Db } from '../db/db';
import { parseRequest } from '../http/errors';
import { RunQueues } from './queues';

const CANCELLABLE_FROM: RunStatus[] = RUN_STATUSES.filter((s) => canTransition(s, 'cancelled'));

/**
 * Cancels waiting and active runs. The database moves first: once the run is `cancelled`, no
 * runner can claim it (ORDERLY_E_RUN_NOT_CLAIMABLE), so a job picked up in the meantime is not
 * run. Then the waiting job is removed from the queue; if a runner holds it (it is locked), the
 * runner is told over Redis to abort the bot, and it fails the job without retry.
 */
export class RunCancellation {
  constructor(private readonly deps: { db: Db; queues: RunQueues; redis: Redis; prefix: string; log: Logger }) {}

  async cancel(runId: string): Promise<{ runId: string; status: 'cancelled'; previous: RunStatus; jobRemoved: boolean }> {
    if (!RunId.safeParse(runId).success) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'run ids are UUIDs');
    const rows = await this.deps.db.query<{ previous: RunStatus; segment: string; idempotency_key: string }>(
      `WITH prev AS (SELECT id, status FROM runs WHERE id = $1 FOR UPDATE)
       UPDATE runs r SET status = 'cancelled', finished_at = now(), updated_at = now()
       FROM prev WHERE r.id = prev.id AND prev.status = ANY($2)
       RETURNING prev.status AS previous, r.segment, r.idempotency_key`,
      [runId, CANCELLABLE_FROM],
    );
    const row = rows[0];
    if (!row) {
      const existing = await this.deps.db.query<{ status: RunStatus }>('SELECT status FROM runs WHERE id = $1', [runId]);
      if (!existing[0]) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no run ${runId}`);
      throw new OrderlyError('ORDERLY_E_RUN_NOT_CANCELLABLE', `run ${runId} is ${existing[0].status}; only waiting or active runs can be cancelled`, { status: existing[0].status });
    }
    // remove() answers 0 for a job a runner has locked: that run is (about to be) active.
    const removed = await this.deps.queues.queue(runQueueName(row.segment as SegmentName)).remove(row.idempotency_key).catch((err: Error) => {
      this.deps.log.warn({ runId, err: { message: err.message } }, 'cancelled run job not removed; its claim will be refused');
      return 0;
    });
    if (row.previous === 'active' || removed !== 1) {
      await this.deps.redis.publish(cancelChannel(this.deps.prefix), JSON.stringify({ v: 1, runId: runId as RunId } satisfies CancelMessage));
    }
    this.deps.log.info({ runId, previous: row.previous, jobRemoved: removed === 1 }, 'run cancelled');
    return { runId, status: 'cancelled', previous: row.previous, jobRemoved: removed === 1 };
  }
}

/** `POST /v1/runs/:id/cancel`: a finished run answers 409 ORDERLY_E_RUN_NOT_CANCELLABLE. */
export function runCancelRoutes(app: FastifyInstance, cancellation: RunCancellation): void {
  app.post('/v1/runs/:id/cancel', { config: { permission: 'runs.cancel' } }, async (request) => cancellation.cancel(parseRequest(z.object({ id: RunId }), request.params, 'path').id));
}
