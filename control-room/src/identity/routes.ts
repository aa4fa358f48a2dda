import { FastifyInstance, FastifyRequest } from 'fastify';
import { OrderlyError } from '@orderly/shared';
import { Principal } from '../access/permissions';
import type { AccessRequests } from '../access/requests';
import { parseRequest } from '../http/errors';
import { Identity } from './identity';
import {
  ConfirmEnrolmentRequest,
  CreateServiceAccountRequest,
  CreateTokenRequest,
  CreateUserRequest,
  IdParam,
  ListTokensQuery,
  RegisterRunnerRequest,
  SegmentParam,
  SetRolesRequest,
  SignInRequest,
  StartEnrolmentRequest,
  StepUpRequest,
  TokenSignInRequest,
} from './schemas';
import { Sessions } from './sessions';

/** The calling principal; the route's permission already required one. */
function caller(request: FastifyRequest): Principal {
  if (!request.principal) throw new OrderlyError('ORDERLY_E_UNAUTHENTICATED', 'a valid credential is required');
  return request.principal;
}

/**
 * Identity routes: enrolment, sign-in (session cookie or CLI token), step-up, API tokens, people,
 * service accounts and runner identities. Request outcomes are audited by the request audit hook;
 * sign-in routes name the attempted username in `request.auditTarget` for it.
 */
export function identityRoutes(app: FastifyInstance, identity: Identity, access: AccessRequests): void {
  // Enrolment: the one-time secret from `POST /v1/users`, then a code from the authenticator app.
  app.post('/v1/enrolment', { config: { permission: 'public' } }, async (request) => {
    const body = parseRequest(StartEnrolmentRequest, request.body);
    request.auditTarget = `user:${body.username}`;
    return identity.users.startEnrolment(body.username, body.enrolmentSecret);
  });
  app.post('/v1/enrolment/confirm', { config: { permission: 'public' } }, async (request) => {
    const body = parseRequest(ConfirmEnrolmentRequest, request.body);
    request.auditTarget = `user:${body.username}`;
    return { recoveryCodes: await identity.users.confirmEnrolment(body.username, body.enrolmentSecret, body.password, body.code) };
  });

  // Console sign-in: password and a second factor, always both; there is no session without TOTP.
  app.post('/v1/session', { config: { permission: 'public' } }, async (request, reply) => {
    const body = parseRequest(SignInRequest, request.body);
    request.auditTarget = `user:${body.username}`;
    const user = await identity.signInLocally(body.username, body.password, body.code, 'api', { sourceIp: request.ip, requestId: String(request.id) });
    const session = await identity.sessions.create(user.id);
    reply.header('set-cookie', identity.sessions.cookie(session.sessionId)).header('cache-control', 'no-store');
    return reply.code(201).send({
      csrfToken: session.csrfToken,
      expiresAt: new Date(session.expiresAt).toISOString(),
      idleMinutes: identity.settings.sessionIdleMinutes,
      user: identity.users.view(user),
    });
  });
  app.delete('/v1/session', { config: { permission: 'self' } }, async (request, reply) => {
    const credential = caller(request).credential;
    if (credential?.kind === 'session') await identity.sessions.end(credential.sessionHash);
    return reply.header('set-cookie', Sessions.clearCookie()).code(204).send();
  });
  app.post('/v1/session/step-up', { config: { permission: 'self' } }, async (request, reply) => {
    const principal = caller(request);
    const { code } = parseRequest(StepUpRequest, request.body);
    if (principal.kind !== 'user' || principal.credential?.kind !== 'session')
      throw new OrderlyError('ORDERLY_E_BAD_REQUEST', `step-up is for console sessions; API tokens send the ${'X-Orderly-TOTP'} header`);
    if (!(await identity.users.stepUp(principal.id, code))) throw new OrderlyError('ORDERLY_E_SIGN_IN_FAILED', 'the code is wrong or was already used');
    await identity.sessions.markSteppedUp(principal.credential.sessionHash);
    return reply.code(204).send();
  });
  app.get('/v1/me', { config: { permission: 'self' } }, async (request) => {
    const p = caller(request);
    return { kind: p.kind, actor: p.actor, roles: [...(p.roles ?? [])], permissions: [...p.permissions].sort(), ...(p.segment ? { segment: p.segment } : {}) };
  });

  // The CLI's sign-in (`orderly login`): the same proof as a session, answered with an API token.
  app.post('/v1/login/token', { config: { permission: 'public' } }, async (request, reply) => {
    const body = parseRequest(TokenSignInRequest, request.body);
    request.auditTarget = `user:${body.username}`;
    const user = await identity.signInLocally(body.username, body.password, body.code, 'cli', { sourceIp: request.ip, requestId: String(request.id) });
    const token = await identity.tokens.create({ kind: 'user', id: user.id, name: user.username, roles: user.roles }, body);
    return reply.code(201).header('cache-control', 'no-store').send(token);
  });

  // API tokens of the caller (a person); the security team sees and revokes everyone's.
  // Creating a token mints a credential: a fresh second factor, like every identity change.
  app.post('/v1/tokens', { config: { permission: 'self', stepUp: true } }, async (request, reply) => {
    const principal = caller(request);
    const body = parseRequest(CreateTokenRequest, request.body);
    if (principal.kind !== 'user')
      throw new OrderlyError('ORDERLY_E_FORBIDDEN', 'only people create their own tokens; service account tokens come from the security team', {
        permission: 'self',
      });
    // A token made with a token can carry at most that token's roles.
    const token = await identity.tokens.create(
      { kind: 'user', id: principal.id, name: principal.actor.replace(/^user:/, ''), roles: principal.roles ?? [] },
      body,
    );
    return reply.code(201).header('cache-control', 'no-store').send(token);
  });
  app.get('/v1/tokens', { config: { permission: 'self' } }, async (request) => {
    const principal = caller(request);
    const { all } = parseRequest(ListTokensQuery, request.query, 'query');
    if (all === 'true') {
      if (!principal.permissions.has('users.manage'))
        throw new OrderlyError('ORDERLY_E_FORBIDDEN', 'listing every token needs users.manage', { permission: 'users.manage' });
      return { tokens: await identity.tokens.list('all') };
    }
    if (principal.kind !== 'user' && principal.kind !== 'service') return { tokens: [] };
    const current = principal.credential?.kind === 'token' ? principal.credential.tokenId : undefined;
    return { tokens: (await identity.tokens.list({ kind: principal.kind, id: principal.id })).map((t) => ({ ...t, current: t.id === current })) };
  });
  app.delete('/v1/tokens/:id', { config: { permission: 'self' } }, async (request) =>
    identity.tokens.revoke(parseRequest(IdParam, request.params, 'path').id, caller(request)),
  );

  // People (the security team; the bootstrap admin creates the first security user). Creating
  // people, service accounts, runners and tokens and changing roles need a fresh second factor;
  // nobody grants a role they do not hold; sensitive grants wait for a second person (access/requests.ts).
  app.post('/v1/users', { config: { permission: 'users.manage', stepUp: true } }, async (request, reply) => {
    const body = parseRequest(CreateUserRequest, request.body);
    return reply
      .code(201)
      .header('cache-control', 'no-store')
      .send(await access.createUser(caller(request), body.username, body.roles));
  });
  app.get('/v1/users', { config: { permission: 'users.manage' } }, async () => ({ users: await identity.users.list() }));
  app.put('/v1/users/:id/roles', { config: { permission: 'users.manage', stepUp: true } }, async (request, reply) => {
    const { id } = parseRequest(IdParam, request.params, 'path');
    const changed = await access.setRoles(caller(request), id, parseRequest(SetRolesRequest, request.body).roles);
    return reply.code(changed.request ? 202 : 200).send(changed);
  });
  app.post('/v1/users/:id/disable', { config: { permission: 'users.manage' } }, async (request) =>
    identity.users.disable(parseRequest(IdParam, request.params, 'path').id),
  );
  app.post('/v1/users/:id/unlock', { config: { permission: 'users.manage' } }, async (request) =>
    identity.users.unlock(parseRequest(IdParam, request.params, 'path').id),
  );

  // Service accounts: tokens only, issued by the security team.
  app.post('/v1/service-accounts', { config: { permission: 'users.manage', stepUp: true } }, async (request, reply) => {
    const body = parseRequest(CreateServiceAccountRequest, request.body);
    access.assertGrantable(caller(request), access.bindings(body.roles));
    return reply.code(201).send(await identity.serviceAccounts.create(body.name, body.roles, caller(request).actor));
  });
  app.get('/v1/service-accounts', { config: { permission: 'users.manage' } }, async () => ({ serviceAccounts: await identity.serviceAccounts.list() }));
  app.post('/v1/service-accounts/:id/disable', { config: { permission: 'users.manage' } }, async (request) =>
    identity.serviceAccounts.disable(parseRequest(IdParam, request.params, 'path').id),
  );
  app.post('/v1/service-accounts/:id/tokens', { config: { permission: 'users.manage', stepUp: true } }, async (request, reply) => {
    const account = await identity.serviceAccounts.find(parseRequest(IdParam, request.params, 'path').id);
    const body = parseRequest(CreateTokenRequest, request.body);
    // A token hands the account's roles to whoever holds it: the issuer must hold them too.
    access.assertGrantable(caller(request), access.bindings(body.scopes ?? account.roles));
    const token = await identity.tokens.create({ kind: 'service', id: account.id, name: account.name, roles: account.roles }, body);
    return reply.code(201).header('cache-control', 'no-store').send(token);
  });

  // Runner identities: one per runner, bound to its segment; a production one waits for a second person.
  app.post('/v1/runners', { config: { permission: 'runners.manage', stepUp: true } }, async (request, reply) => {
    const body = parseRequest(RegisterRunnerRequest, request.body);
    const registered = await access.registerRunner(caller(request), body.name, body.segment, body.publicKey);
    return reply
      .code(registered.request ? 202 : 201)
      .header('cache-control', 'no-store')
      .send(registered);
  });
  app.get('/v1/runners', { config: { permission: 'runners.manage' } }, async () => ({ runners: await identity.runners.list() }));
  app.delete('/v1/runners/:id', { config: { permission: 'runners.manage' } }, async (request) =>
    identity.runners.revoke(parseRequest(IdParam, request.params, 'path').id),
  );
  // The segment's bootstrap runner token and key (files in the control room's secrets directory).
  app.delete('/v1/runners/bootstrap/:segment', { config: { permission: 'runners.manage', stepUp: true } }, async (request) =>
    identity.runners.revokeBootstrap(parseRequest(SegmentParam, request.params, 'path').segment, caller(request).actor),
  );
}
