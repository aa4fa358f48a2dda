import type { HandlerContext, MountEngine, Route } from './routing';
import type { TokenEntry } from './tokens';
import { VaultHttpError, badRequest, type LogicalResponse } from './types';
import { fieldBool, fieldDuration, fieldInt, fieldString, fieldStringList, fieldStringMap } from './util';

function caller(ctx: HandlerContext): TokenEntry {
  if (ctx.caller === undefined) throw new VaultHttpError(403, 'permission denied');
  return ctx.caller;
}

/** auth/token/create[-orphan]: a non-root caller may only hand out a subset of its own policies. */
function create(orphan: boolean) {
  return (ctx: HandlerContext): LogicalResponse => {
    const parent = caller(ctx);
    const body = ctx.req.body;
    const isRootCaller = parent.policies.includes('root');
    const requested = fieldStringList(body, 'policies');
    const policies =
      requested === undefined || requested.length === 0
        ? parent.policies.filter((p) => p !== 'default' || fieldBool(body, 'no_default_policy') !== true)
        : requested.map((p) => p.toLowerCase());
    if (!isRootCaller) {
      const allowed = new Set([...parent.policies, 'default']);
      if (!policies.every((p) => allowed.has(p))) throw badRequest('child policies must be subset of parent');
    }
    const period = fieldDuration(body, 'period') ?? 0;
    if (period > 0) throw badRequest('the dev Vault does not issue periodic tokens');
    const type = fieldString(body, 'type') ?? 'service';
    if (type !== 'service' && type !== 'batch') throw badRequest(`invalid 'type' value "${type}"`);
    const id = fieldString(body, 'id');
    if (id !== undefined && !isRootCaller) throw badRequest('root or sudo privileges required to specify token id');
    if (id !== undefined && ctx.core.tokens.lookup(id) !== undefined) throw badRequest('cannot create a token with a duplicate ID');
    const displayName = fieldString(body, 'display_name');
    const entry = ctx.core.tokens.create({
      id,
      policies,
      noDefaultPolicy: fieldBool(body, 'no_default_policy') === true,
      ttl: fieldDuration(body, 'ttl'),
      explicitMaxTtl: fieldDuration(body, 'explicit_max_ttl'),
      // A child never outlives what its parent could renew to.
      maxTtl: parent.maxExpiresAt === null ? undefined : Math.max(1, Math.floor((parent.maxExpiresAt - ctx.core.now()) / 1000)),
      numUses: fieldInt(body, 'num_uses'),
      renewable: fieldBool(body, 'renewable'),
      meta: fieldStringMap(body, 'meta') ?? null,
      displayName: displayName === undefined || displayName === '' ? 'token' : `token-${displayName}`,
      path: orphan ? 'auth/token/create-orphan' : 'auth/token/create',
      orphan,
      type,
    });
    return { auth: ctx.core.tokens.authBlock(entry) };
  };
}

function tokenFromBody(ctx: HandlerContext): TokenEntry {
  const token = fieldString(ctx.req.body, 'token');
  if (token === undefined || token === '') throw badRequest('missing token to look up');
  const entry = ctx.core.tokens.lookup(token);
  // Vault answers an unknown token with "bad token" and 403 so lookups cannot probe for ids.
  if (entry === undefined || ctx.core.tokens.isSpent(entry)) throw new VaultHttpError(403, 'bad token');
  return entry;
}

function tokenFromAccessor(ctx: HandlerContext): TokenEntry {
  const accessor = fieldString(ctx.req.body, 'accessor');
  if (accessor === undefined || accessor === '') throw badRequest('missing accessor');
  const entry = ctx.core.tokens.lookupAccessor(accessor);
  if (entry === undefined) throw badRequest('invalid accessor');
  return entry;
}

function renew(ctx: HandlerContext, entry: TokenEntry): LogicalResponse {
  const { auth, warnings } = ctx.core.tokens.renew(entry, fieldDuration(ctx.req.body, 'increment'));
  return { auth, warnings };
}

/** The token auth method at auth/token/. */
export class TokenEngine implements MountEngine {
  readonly type = 'token';
  readonly routes: Route[] = [
    { pattern: /^create$/, write: create(false) },
    { pattern: /^create-orphan$/, write: create(true) },
    {
      pattern: /^lookup-self$/,
      read: (ctx) => ({ data: ctx.core.tokens.lookupData(caller(ctx), true) }),
      write: (ctx) => ({ data: ctx.core.tokens.lookupData(caller(ctx), true) }),
    },
    { pattern: /^lookup$/, write: (ctx) => ({ data: ctx.core.tokens.lookupData(tokenFromBody(ctx), true) }) },
    { pattern: /^lookup-accessor$/, write: (ctx) => ({ data: ctx.core.tokens.lookupData(tokenFromAccessor(ctx), false) }) },
    { pattern: /^renew-self$/, write: (ctx) => renew(ctx, caller(ctx)) },
    { pattern: /^renew$/, write: (ctx) => renew(ctx, tokenFromBody(ctx)) },
    {
      pattern: /^revoke-self$/,
      write: (ctx) => {
        ctx.core.tokens.revoke(caller(ctx));
        return null;
      },
    },
    {
      pattern: /^revoke$/,
      write: (ctx) => {
        const token = fieldString(ctx.req.body, 'token');
        if (token === undefined || token === '') throw badRequest('missing token to revoke');
        const entry = ctx.core.tokens.lookup(token);
        if (entry !== undefined) ctx.core.tokens.revoke(entry);
        return null;
      },
    },
    {
      pattern: /^revoke-accessor$/,
      write: (ctx) => {
        ctx.core.tokens.revoke(tokenFromAccessor(ctx));
        return null;
      },
    },
  ];
}
