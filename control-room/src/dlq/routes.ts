import { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { OrderlyError, RunId } from '@orderly/shared';
import { canIn, segmentsWith } from '../access/bindings';
import type { Permission } from '../access/permissions';
import { parseRequest } from '../http/errors';
import { DeadLetters, DlqActor } from './dlq';
import { BulkRequeueRequest, DiscardRequest, DlqListQuery, RequeueRequest } from '@orderly/shared';

const RunParams = z.object({ runId: RunId });

const actorOf = (request: FastifyRequest): DlqActor => ({ actor: request.principal?.actor ?? 'unknown', sourceIp: request.ip, requestId: String(request.id) });

/**
 * Role bindings are per segment: a caller bound to some segments filters by one of them (the only
 * one is implied), and a run of another segment answers like a missing one.
 */
function scopedFilter<F extends { segment?: string | undefined }>(request: FastifyRequest, permission: Permission, filter: F): F | undefined {
  const segments = segmentsWith(request.principal, permission);
  if (segments === 'all') return filter;
  if (filter.segment !== undefined) return segments.has(filter.segment) ? filter : undefined;
  if (segments.size === 1) return { ...filter, segment: [...segments][0] };
  throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'your role bindings cover several segments: name one (segment)');
}
async function assertInSegment(request: FastifyRequest, dlq: DeadLetters, permission: Permission, runId: string): Promise<void> {
  const segment = await dlq.segmentOf(runId);
  if (segment === undefined || !canIn(request.principal, permission, segment)) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no run ${runId}`);
}

/** The dead letter queue: `dlq.read` to look, `dlq.manage` to requeue or discard, within the caller's segments. */
export function dlqRoutes(app: FastifyInstance, dlq: DeadLetters): void {
  app.get('/v1/dlq', { config: { permission: 'dlq.read' } }, async (request) => {
    const query = scopedFilter(request, 'dlq.read', parseRequest(DlqListQuery, request.query, 'query'));
    return query ? dlq.list(query) : { entries: [], nextCursor: null };
  });
  app.get('/v1/dlq/:runId', { config: { permission: 'dlq.read' } }, async (request) => {
    const { runId } = parseRequest(RunParams, request.params, 'path');
    await assertInSegment(request, dlq, 'dlq.read', runId);
    return dlq.show(runId);
  });
  app.post('/v1/dlq/requeue', { config: { permission: 'dlq.manage' } }, async (request) => {
    const body = parseRequest(BulkRequeueRequest, request.body);
    const filter = scopedFilter(request, 'dlq.manage', body.filter);
    if (!filter) return { dryRun: body.dryRun ?? false, matched: 0, requeued: 0, skipped: [] };
    return dlq.requeueMany({ ...body, filter }, actorOf(request));
  });
  app.post('/v1/dlq/:runId/requeue', { config: { permission: 'dlq.manage' } }, async (request) => {
    const { runId } = parseRequest(RunParams, request.params, 'path');
    await assertInSegment(request, dlq, 'dlq.manage', runId);
    const body = parseRequest(RequeueRequest, request.body);
    return dlq.requeue(runId, actorOf(request), body.reason, body.ticket);
  });
  app.post('/v1/dlq/:runId/discard', { config: { permission: 'dlq.manage' } }, async (request) => {
    const { runId } = parseRequest(RunParams, request.params, 'path');
    await assertInSegment(request, dlq, 'dlq.manage', runId);
    return dlq.discard(runId, actorOf(request), parseRequest(DiscardRequest, request.body).reason);
  });
}
