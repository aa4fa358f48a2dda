import { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { RunId } from '@orderly/shared';
import { parseRequest } from '../http/errors';
import { DeadLetters, DlqActor } from './dlq';
import { BulkRequeueRequest, DiscardRequest, DlqListQuery, RequeueRequest } from './schemas';

const RunParams = z.object({ runId: RunId });

const actorOf = (request: FastifyRequest): DlqActor => ({ actor: request.principal?.actor ?? 'unknown', sourceIp: request.ip, requestId: String(request.id) });

/** The dead letter queue: `dlq.read` to look, `dlq.manage` to requeue or discard. */
export function dlqRoutes(app: FastifyInstance, dlq: DeadLetters): void {
  app.get('/v1/dlq', { config: { permission: 'dlq.read' } }, async (request) => dlq.list(parseRequest(DlqListQuery, request.query, 'query')));
  app.get('/v1/dlq/:runId', { config: { permission: 'dlq.read' } }, async (request) => dlq.show(parseRequest(RunParams, request.params, 'path').runId));
  app.post('/v1/dlq/requeue', { config: { permission: 'dlq.manage' } }, async (request) => dlq.requeueMany(parseRequest(BulkRequeueRequest, request.body), actorOf(request)));
  app.post('/v1/dlq/:runId/requeue', { config: { permission: 'dlq.manage' } }, async (request) => {
    const { runId } = parseRequest(RunParams, request.params, 'path');
    const body = parseRequest(RequeueRequest, request.body);
    return dlq.requeue(runId, actorOf(request), body.reason, body.ticket);
  });
  app.post('/v1/dlq/:runId/discard', { config: { permission: 'dlq.manage' } }, async (request) => {
    const { runId } = parseRequest(RunParams, request.params, 'path');
    return dlq.discard(runId, actorOf(request), parseRequest(DiscardRequest, request.body).reason);
  });
}
