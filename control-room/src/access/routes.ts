import { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { OrderlyError } from '@orderly/shared';
import type { Db } from '../db/db';
import { parseRequest } from '../http/errors';
import { listPhiReads } from './phi';
import { AccessRequests } from './requests';

const RequestId = z.strictObject({ id: z.uuid() });
const ListRequestsQuery = z.strictObject({ status: z.enum(['pending', 'all']).default('pending') });
const PhiReadsQuery = z.strictObject({
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  actor: z.string().min(1).max(200).optional(),
  runId: z.uuid().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/**
 * Access routes: pending sensitive identity changes (a second security person confirms or
 * rejects, with a fresh second factor) and the review of PHI reads (auditors).
 */
export function accessRoutes(app: FastifyInstance, access: AccessRequests, db: Db): void {
  app.get('/v1/access/requests', { config: { permission: 'users.manage' } }, async (request) => ({
    requests: await access.list(parseRequest(ListRequestsQuery, request.query, 'query').status),
  }));
  for (const [verb, decision] of [
    ['approve', 'approved'],
    ['reject', 'rejected'],
  ] as const) {
    app.post(`/v1/access/requests/:id/${verb}`, { config: { permission: 'users.manage', stepUp: true } }, async (request) => {
      if (!request.principal) throw new OrderlyError('ORDERLY_E_UNAUTHENTICATED', 'a valid credential is required');
      return access.decide(request.principal, parseRequest(RequestId, request.params, 'path').id, decision);
    });
  }
  app.get('/v1/access/phi-reads', { config: { permission: 'audit.read' } }, async (request) => ({
    reads: await listPhiReads(db, parseRequest(PhiReadsQuery, request.query, 'query')),
  }));
}
