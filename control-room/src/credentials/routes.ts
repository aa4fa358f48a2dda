import { FastifyInstance, FastifyRequest } from 'fastify';
import { parseRequest } from '../http/errors';
import { Credentials, RequestContext } from './credentials';
import { CredentialParams, CredentialStatusQuery, RotateCredentialRequest, SetCredentialRequest } from '@orderly/shared';

/** Who and where, for the audit log. */
function context(request: FastifyRequest): RequestContext {
  return { actor: request.principal?.actor ?? 'anonymous', sourceIp: request.ip, requestId: request.id };
}

/**
 * Credential management for the security team (admin until roles arrive). Responses never hold a
 * value. Every set/rotate whose path names a valid bot and credential is audited, refusals
 * included; a malformed path is not, as its text is not a target we can name safely.
 */
export function credentialRoutes(app: FastifyInstance, credentials: Credentials): void {
  app.put('/v1/credentials/:bot/:name', { config: { permission: 'credentials.manage', stepUp: true } }, async (request) => {
    const ctx = context(request);
    const target = parseRequest(CredentialParams, request.params, 'path');
    const body = await credentials.parseAudited('set', ctx, target, () => parseRequest(SetCredentialRequest, request.body));
    return credentials.set(ctx, target, body);
  });
  app.post('/v1/credentials/:bot/:name/rotate', { config: { permission: 'credentials.manage', stepUp: true } }, async (request) => {
    const ctx = context(request);
    const target = parseRequest(CredentialParams, request.params, 'path');
    const body = await credentials.parseAudited('rotate', ctx, target, () => parseRequest(RotateCredentialRequest, request.body));
    return credentials.rotate(ctx, target, body);
  });
  app.post('/v1/credentials/:bot/revoke-runs', { config: { permission: 'credentials.manage', stepUp: true } }, async (request) => {
    const { bot } = parseRequest(CredentialParams.pick({ bot: true }), request.params, 'path');
    return credentials.revokeRuns(context(request), bot);
  });
  app.get('/v1/credentials', { config: { permission: 'credentials.read' } }, async (request) => {
    const query = parseRequest(CredentialStatusQuery, request.query, 'query');
    return { credentials: await credentials.status(query.bot) };
  });
}
