import { FastifyInstance } from 'fastify';
import { parseRequest } from '../http/errors';
import { AuditLog } from './audit';
import { AuditHeads } from './heads';
import { AuditEventsQuery, AuditHeadsQuery } from './schemas';

/**
 * Reading the audit log (auditors: `audit.read`). Verification happens on the client (`orderly
 * audit verify`) with the release public key, which is public so anyone can pin it.
 */
export function auditRoutes(app: FastifyInstance, deps: { log: AuditLog; heads: AuditHeads; releasePublicKeyPem: string }): void {
  app.get('/v1/audit/events', { config: { permission: 'audit.read' } }, async (request) => {
    const query = parseRequest(AuditEventsQuery, request.query, 'query');
    const events = await deps.log.list(query);
    return { events, nextAfterSeq: events.length === query.limit ? events[events.length - 1]!.seq : null };
  });
  app.get('/v1/audit/heads', { config: { permission: 'audit.read' } }, async (request) => {
    const query = parseRequest(AuditHeadsQuery, request.query, 'query');
    const heads = await deps.heads.list(query);
    return { heads, nextAfterSeq: heads.length === query.limit ? heads[heads.length - 1]!.seq : null };
  });
  app.get('/v1/audit/release-key', { config: { permission: 'public' } }, async (_request, reply) =>
    reply.type('application/x-pem-file').send(deps.releasePublicKeyPem),
  );
}
