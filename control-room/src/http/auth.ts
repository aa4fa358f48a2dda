import { FastifyRequest } from 'fastify';
import { OrderlyError, SegmentName } from '@orderly/shared';
import { tokenMatches } from '../identity/secrets';

/** Who is calling. Users, roles and per-runner identities extend this union. */
export type Principal = { kind: 'admin' } | { kind: 'runner'; segment: SegmentName };

export type RouteAccess = 'public' | 'admin' | 'runner';

export interface TokenStore {
  adminTokenHash: Buffer;
  runnerTokenHashes: ReadonlyMap<SegmentName, Buffer>;
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer ([A-Za-z0-9_\-.~+/]{16,256}={0,2})$/.exec(header);
  return match?.[1];
}

export function authenticate(request: FastifyRequest, tokens: TokenStore): Principal | undefined {
  const token = bearer(request);
  if (!token) return undefined;
  if (tokenMatches(token, tokens.adminTokenHash)) return { kind: 'admin' };
  for (const [segment, hash] of tokens.runnerTokenHashes) {
    if (tokenMatches(token, hash)) return { kind: 'runner', segment };
  }
  return undefined;
}

/** Checks the route's access rule; throws coded 401/403 errors. */
export function authorize(principal: Principal | undefined, access: RouteAccess): void {
  if (access === 'public') return;
  if (!principal) throw new OrderlyError('ORDERLY_E_UNAUTHENTICATED', 'a valid bearer token is required');
  if (principal.kind !== access) throw new OrderlyError('ORDERLY_E_FORBIDDEN', `this route is for ${access} callers`);
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}
