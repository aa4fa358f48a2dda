import { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { cancelChannel, signCancel, Signer, OrderlyError, RunId, runQueueName, RunStatus, SegmentName } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { canIn } from '../access/bindings';
import { Db } from '../db/db';
import { parseRequest } from '../http/errors';
import { cancelRun } from './outcome';
import { RunQueues } from './queues';

/**
 * Cancels waiting and active runs. The database moves first: once the run is `cancelled`, no
 * runner can claim it (ORDERLY_E_RUN_NOT_CLAIMABLE), so a job picked up in the meantime is not
 * run. Then the waiting job is removed from the queue; if a runner holds it (it is locked), the
 * runner is told over Redis (on its segment's cancel channel) to abort the bot, and it fails the job
 * without retry.
 */
export class RunCancellation {
  /** `signer`: the job signer; runners verify cancels with the same public key as job envelopes. */
  constructor(private readonly deps: { db: Db; queues: RunQueues; redis: Redis; prefix: string; log: Logger; signer: Signer }) {}

  /** The run's segment, for the route's binding check. */
  segmentOf(runId: string): Promise<{ segment: string }[]> {
    return this.deps.db.query<{ segment: string }>('SELECT segment FROM runs WHERE id = $1', [runId]);
  }

  async cancel(runId: string): Promise<{ runId: string; status: 'cancelled'; previous: RunStatus; jobRemoved: boolean }> {
    if (!RunId.safeParse(runId).success) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'run ids are UUIDs');
    const rows = await cancelRun(this.deps.db, runId);
    const row = rows[0];
    if (!row) {
      const existing = await this.deps.db.query<{ status: RunStatus }>('SELECT status FROM runs WHERE id = $1', [runId]);
      if (!existing[0]) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no run ${runId}`);
      throw new OrderlyError('ORDERLY_E_RUN_NOT_CANCELLABLE', `run ${runId} is ${existing[0].status}; only waiting or active runs can be cancelled`, {
        status: existing[0].status,
      });
    }
    // remove() answers 0 for a job a runner has locked: that run is (about to be) active.
    const removed = await this.deps.queues
      .queue(runQueueName(row.segment as SegmentName))
      .remove(this.deps.queues.jobIdOf(row.idempotency_key))
      .catch((err: Error) => {
        this.deps.log.warn({ runId, err: { message: err.message } }, 'cancelled run job not removed; its claim will be refused');
        return 0;
      });
    if (row.previous === 'active' || removed !== 1) {
      const message = await signCancel(this.deps.signer, runId as RunId, row.segment as SegmentName);
      await this.deps.redis.publish(cancelChannel(this.deps.prefix, row.segment as SegmentName), JSON.stringify(message));
    }
    this.deps.log.info({ runId, previous: row.previous, jobRemoved: removed === 1 }, 'run cancelled');
    return { runId, status: 'cancelled', previous: row.previous, jobRemoved: removed === 1 };
  }
}

/** `POST /v1/runs/:id/cancel`: a finished run answers 409 ORDERLY_E_RUN_NOT_CANCELLABLE. */
export function runCancelRoutes(app: FastifyInstance, cancellation: RunCancellation): void {
  app.post('/v1/runs/:id/cancel', { config: { permission: 'runs.cancel' } }, async (request) => {
    const { id } = parseRequest(z.object({ id: RunId }), request.params, 'path');
    // Role bindings are per segment: a run outside the caller's answers like a missing one.
    const [run] = await cancellation.segmentOf(id);
    if (!run || !canIn(request.principal, 'runs.cancel', run.segment)) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no run ${id}`);
    return cancellation.cancel(id);
  });
}
