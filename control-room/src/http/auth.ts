import { FastifyRequest } from 'fastify';
import { hasCode, OrderlyError, SegmentName } from '@orderly/shared';
import { can, Permission, Principal, RUNNER_PERMISSIONS } from '../access/permissions';
import { permissionsOf } from '../access/roles';
import type { Identity } from '../identity/identity';
import { tokenMatches } from '../keys/secrets';

export type { Principal } from '../access/permissions';

export interface TokenStore {
  adminTokenHash: Buffer;
  runnerTokenHashes: ReadonlyMap<SegmentName, Buffer>;
}

export function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer ([A-Za-z0-9_\-.~+/]{16,256}={0,2})$/.exec(header);
  return match?.[1];
}

const ADMIN: Principal = {
  kind: 'admin',
  id: 'admin',
  actor: 'admin',
  permissions: permissionsOf(['admin']),
  roles: ['admin'],
  credential: { kind: 'bootstrap' },
};

export const runnerPrincipal = (segment: SegmentName, id = `runner:${segment}`): Principal => ({
  kind: 'runner',
  id,
  actor: id,
  permissions: RUNNER_PERMISSIONS,
  segment,
  credential: { kind: 'bootstrap' },
});

/** The bootstrap tokens: the admin token, and one runner token per segment. */
export function authenticate(request: FastifyRequest, tokens: TokenStore): Principal | undefined {
  const token = bearer(request);
  if (!token) return undefined;
  if (tokenMatches(token, tokens.adminTokenHash)) return ADMIN;
  for (const [segment, hash] of tokens.runnerTokenHashes) {
    if (tokenMatches(token, hash)) return runnerPrincipal(segment);
  }
  return undefined;
}

/**
 * Who is calling: the bootstrap tokens first (files on this host), then the identity store (API
 * tokens, runner identities, session cookie). On a public route a stale session is not an error.
 */
export async function authenticateRequest(
  request: FastifyRequest,
  tokens: TokenStore,
  identity: Identity | undefined,
  publicRoute: boolean,
): Promise<Principal | undefined> {
  const bootstrap = authenticate(request, tokens);
  if (bootstrap || !identity) return bootstrap;
  try {
    return await identity.authenticate(request, bearer(request));
  } catch (err) {
    if (publicRoute && hasCode(err, 'ORDERLY_E_SESSION_EXPIRED')) return undefined;
    throw err;
  }
}

/** Checks the route's permission; throws coded 401/403 errors. */
export function authorize(principal: Principal | undefined, permission: Permission): void {
  if (permission === 'public') return;
  if (!principal) throw new OrderlyError('ORDERLY_E_UNAUTHENTICATED', 'a valid bearer token is required');
  if (!can(principal, permission)) throw new OrderlyError('ORDERLY_E_FORBIDDEN', `this action needs the ${permission} permission`, { permission });
}

/** The calling runner's segment; the route's permission (runner.api) already admitted only runners. */
export function runnerSegment(request: FastifyRequest): SegmentName {
  const segment = request.principal?.kind === 'runner' ? request.principal.segment : undefined;
  if (!segment) throw new OrderlyError('ORDERLY_E_FORBIDDEN', 'runners only');
  return segment;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
    /**
     * What a request acts on when no route parameter names it (a sign-in's attempted username),
     * for the request audit.
     */
    auditTarget?: string;
  }
  interface FastifyContextConfig {
    /** The one permission the route requires; every route declares one. */
    permission?: Permission;
    /** Needs a fresh second factor (promotion, key changes, credential rotation, role changes). */
    stepUp?: boolean;
  }
}
