import { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseRequest } from '../http/errors';
import { Compliance } from './report';
import { DISPOSAL_KINDS } from './retention';

const EvidenceRequest = z.strictObject({
  kind: z.enum(['audit_review', 'access_review', 'restore_drill', 'backup']),
  details: z.record(z.string().max(64), z.union([z.string().max(500), z.number(), z.boolean(), z.null()])).default({}),
});

const DisposalsQuery = z.strictObject({
  kind: z.enum(DISPOSAL_KINDS).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/**
 * `GET /v1/compliance` runs every check and answers the signed report (its digest goes to the audit
 * chain); `POST /v1/compliance/evidence` records that a review or drill was done;
 * `GET /v1/compliance/inventory` is the bot data inventory and `GET /v1/compliance/disposals` the
 * retention purges' disposal records.
 */
export function complianceRoutes(app: FastifyInstance, compliance: Compliance): void {
  app.get('/v1/compliance', { config: { permission: 'compliance.read' } }, async (request) => compliance.check(request.principal?.actor ?? 'unknown'));
  app.post('/v1/compliance/evidence', { config: { permission: 'compliance.read' } }, async (request, reply) => {
    const body = parseRequest(EvidenceRequest, request.body);
    await compliance.recordEvidence(body.kind, request.principal?.actor ?? 'unknown', body.details);
    return reply.code(201).send({ recorded: body.kind });
  });
  app.get('/v1/compliance/inventory', { config: { permission: 'compliance.read' } }, async () => compliance.inventory());
  app.get('/v1/compliance/disposals', { config: { permission: 'compliance.read' } }, async (request) => {
    const query = parseRequest(DisposalsQuery, request.query);
    return { disposals: await compliance.disposals(query) };
  });
}
