import { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { OrderlyError } from '@orderly/shared';
import { csrfCookie } from '../../console/routes';
import { parseRequest } from '../../http/errors';
import type { Identity } from '../identity';
import { CreateTokenRequest } from '../schemas';
import { CliFlow, clearFlowCookie, flowCookie, flowCookieValue } from './flow';
import { SsoLogin, SsoTrace } from './sso';

/**
 * `GET /v1/auth/sso/start` sends the browser to the provider; `GET /v1/auth/sso/callback` is where
 * it comes back (ORDERLY_OIDC_REDIRECT_URL). A successful callback sets the same session cookie
 * the password sign-in sets (and the console's CSRF cookie) and goes to the console. Refusals are
 * coded 401/403 answers, which the request audit hook records as `sso.sign_in` with the
 * provider's subject; successes and role changes are recorded by SsoLogin. Without single sign-on
 * configured both answer 404 (the routes exist either way, so the route table stays one table).
 */
export function ssoRoutes(app: FastifyInstance, configured: SsoLogin | undefined, identity: Identity): void {
  const sso = (): SsoLogin => {
    if (!configured) throw new OrderlyError('ORDERLY_E_NOT_FOUND', 'single sign-on is not configured (ORDERLY_OIDC_ISSUER)');
    return configured;
  };
  app.get('/v1/auth/sso/start', { config: { permission: 'public', audit: 'sso.start' } }, async (request, reply) => {
    const query = parseRequest(SsoStartQuery, request.query, 'query');
    const cli =
      query.cli_redirect === undefined
        ? undefined
        : parseRequest(CliFlow, { redirect: query.cli_redirect, challenge: query.cli_challenge, state: query.cli_state }, 'query');
    const { url, flow } = await sso().start(cli);
    return reply.header('set-cookie', flowCookie(flow)).header('cache-control', 'no-store').redirect(url, 303);
  });
  app.get('/v1/auth/sso/callback', { config: { permission: 'public', audit: 'sso.sign_in' } }, async (request, reply) => {
    const login = sso();
    const trace: SsoTrace = {};
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '';
    // The flow is single use, whatever the outcome.
    reply.header('cache-control', 'no-store').header('set-cookie', clearFlowCookie());
    try {
      const signedIn = await login.callback(query, flowCookieValue(request.headers.cookie), trace, { sourceIp: request.ip, requestId: String(request.id) });
      // `orderly login --sso`: back to the CLI's loopback listener with a one-time code, no session.
      if (signedIn.cliRedirect) return reply.redirect(signedIn.cliRedirect, 303);
      if (!signedIn.session) throw new OrderlyError('ORDERLY_E_INTERNAL', 'no session was opened');
      const cookies = [
        clearFlowCookie(),
        identity.sessions.cookie(signedIn.session.sessionId),
        csrfCookie(signedIn.session.csrfToken, identity.settings.sessionMaxHours),
      ];
      return reply.header('set-cookie', cookies).redirect('/console', 303);
    } finally {
      if (trace.target) request.auditTarget = trace.target;
      if (trace.details) request.auditDetails = { ...request.auditDetails, ...trace.details };
    }
  });

  // The CLI's half: its one-time code and PKCE verifier for an API token, as `POST /v1/login/token` answers.
  app.post('/v1/login/sso/token', { config: { permission: 'public', audit: 'sso.cli_token' } }, async (request, reply) => {
    const body = parseRequest(SsoTokenRequest, request.body);
    const user = await sso().redeemCliCode(body.code, body.codeVerifier);
    request.auditTarget = `user:${user.username}`;
    const token = await identity.tokens.create(
      { kind: 'user', id: user.id, name: user.username, roles: user.roles },
      { name: body.name, expiresInDays: body.expiresInDays, ...(body.scopes ? { scopes: body.scopes } : {}) },
    );
    return reply.code(201).header('cache-control', 'no-store').send(token);
  });
}

const SsoStartQuery = z.strictObject({
  cli_redirect: z.string().max(300).optional(),
  cli_challenge: z.string().max(100).optional(),
  cli_state: z.string().max(300).optional(),
});

export const SsoTokenRequest = CreateTokenRequest.extend({
  code: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  codeVerifier: z.string().regex(/^[A-Za-z0-9._~-]{43,128}$/),
});
