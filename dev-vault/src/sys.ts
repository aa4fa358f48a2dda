import { PolicyParseError, parsePolicy } from './acl';
import type { HandlerContext, Mount, MountEngine, Route } from './routing';
import { MESSAGES, VaultHttpError, badRequest, type JsonObject, type JsonValue, type LogicalResponse, type RawResponse } from './types';
import { decodeBase64Strict, fieldBool, fieldString, fieldStringMap, rfc3339, unixSeconds } from './util';

const HEALTH_CODES = ['activecode', 'standbycode', 'sealedcode', 'uninitcode', 'drsecondarycode', 'performancestandbycode'] as const;

function healthCode(ctx: HandlerContext, name: (typeof HEALTH_CODES)[number], fallback: number): number {
  const raw = ctx.req.query.get(name);
  if (raw === null || raw === '') return fallback;
  const code = Number(raw);
  if (!Number.isInteger(code) || code < 100 || code > 599) throw badRequest(`bad code: ${raw}`);
  return code;
}

/** GET/HEAD sys/health: a flat body, status per Vault's health.mdx (the dev Vault is never a standby). */
function health(ctx: HandlerContext): RawResponse {
  const { core } = ctx;
  const active = healthCode(ctx, 'activecode', 200);
  const sealed = healthCode(ctx, 'sealedcode', 503);
  // Checked even though this node is never uninitialised or a standby, so a bad value is a 400 as in Vault.
  for (const name of HEALTH_CODES) healthCode(ctx, name, 0);
  const body: JsonObject = {
    initialized: true,
    sealed: core.sealed,
    standby: core.sealed,
    performance_standby: false,
    replication_performance_mode: 'disabled',
    replication_dr_mode: 'disabled',
    server_time_utc: unixSeconds(core.now()),
    version: core.version,
    enterprise: false,
    cluster_name: core.clusterName,
    cluster_id: core.clusterId,
    echo_duration_ms: 0,
    clock_skew_ms: 0,
  };
  return { status: core.sealed ? sealed : active, raw: body };
}

function sealStatus(ctx: HandlerContext): JsonObject {
  const { core } = ctx;
  return {
    type: 'shamir',
    initialized: true,
    sealed: core.sealed,
    t: 1,
    n: 1,
    progress: 0,
    nonce: '',
    version: core.version,
    build_date: '2024-01-01T00:00:00Z',
    migration: false,
    cluster_name: core.clusterName,
    cluster_id: core.clusterId,
    recovery_seal: false,
    storage_type: 'inmem',
  };
}

function unseal(ctx: HandlerContext): RawResponse {
  const { core, req } = ctx;
  if (fieldBool(req.body, 'reset') === true) return { status: 200, raw: sealStatus(ctx) };
  const key = fieldString(req.body, 'key');
  if (key === undefined || key === '') throw badRequest("'key' must be specified in request body as JSON, or 'reset' set to true");
  const bytes = /^[0-9a-fA-F]+$/.test(key) && key.length % 2 === 0 ? Buffer.from(key, 'hex') : decodeBase64Strict(key);
  if (bytes === undefined) throw badRequest("'key' must be a valid hex or base64 string");
  if (!bytes.equals(core.unsealKey)) throw badRequest('Unseal failed, invalid key');
  core.sealed = false;
  return { status: 200, raw: sealStatus(ctx) };
}

function policyName(ctx: HandlerContext): string {
  return (ctx.params.name ?? '').toLowerCase();
}

function readPolicy(field: 'policy' | 'rules') {
  return (ctx: HandlerContext): LogicalResponse => {
    const name = policyName(ctx);
    const stored = ctx.core.policies.get(name);
    if (stored === undefined) {
      if (name === 'root') return { data: { name: 'root', [field]: '' } };
      throw new VaultHttpError(404, []);
    }
    return { data: { name: stored.name, [field]: stored.text } };
  };
}

function writePolicy(ctx: HandlerContext): null {
  const name = policyName(ctx);
  if (name === '') throw badRequest('policy name must be provided in the URL');
  if (name === 'root' || name === 'response-wrapping') throw badRequest(`cannot update "${name}" policy`);
  let text = fieldString(ctx.req.body, 'policy') ?? fieldString(ctx.req.body, 'rules');
  if (text === undefined || text.trim() === '') throw badRequest("'policy' parameter not supplied or empty");
  // Vault also accepts the policy base64-encoded.
  const decoded = decodeBase64Strict(text.trim());
  if (decoded !== undefined && /^\s*(path|#|\/\/|\/\*)/.test(decoded.toString('utf8'))) text = decoded.toString('utf8');
  try {
    ctx.core.policies.set(name, { name, text, rules: parsePolicy(text) });
  } catch (error) {
    if (error instanceof PolicyParseError) throw badRequest(`failed to parse policy: ${error.message}`);
    throw error;
  }
  return null;
}

function deletePolicy(ctx: HandlerContext): null {
  const name = policyName(ctx);
  if (name === 'root' || name === 'default') throw badRequest(`cannot delete "${name}" policy`);
  ctx.core.policies.delete(name);
  return null;
}

function policyNames(ctx: HandlerContext): string[] {
  return [...ctx.core.policies.keys(), 'root'].sort();
}

function mountInfo(mount: Mount): JsonObject {
  return {
    type: mount.type,
    description: mount.description,
    accessor: mount.accessor,
    uuid: mount.uuid,
    config: { default_lease_ttl: 0, max_lease_ttl: 0, force_no_cache: false },
    options: mount.options as JsonValue,
    local: false,
    seal_wrap: false,
    external_entropy_access: false,
    plugin_version: '',
    running_plugin_version: `v${mount.type === 'kv' ? '0.17.0' : '1.17.0'}+builtin`,
    running_sha256: '',
  };
}

function mountBody(ctx: HandlerContext): { type: string; description: string; options: Record<string, string> | null } {
  const type = fieldString(ctx.req.body, 'type');
  if (type === undefined || type === '') throw badRequest('backend type must be specified as a string');
  const options = fieldStringMap(ctx.req.body, 'options') ?? null;
  return { type, description: fieldString(ctx.req.body, 'description') ?? '', options };
}

function wrappingLookup(ctx: HandlerContext): LogicalResponse {
  const token = typeof ctx.req.body.token === 'string' && ctx.req.body.token !== '' ? ctx.req.body.token : ctx.req.token;
  const found = ctx.core.wrapping(token);
  if (found === undefined) throw badRequest(MESSAGES.invalidWrappingToken);
  return { data: { creation_path: found.wrap.creationPath, creation_time: rfc3339(found.wrap.createdAt), creation_ttl: found.wrap.ttl } };
}

/** Answers with the stored response verbatim and burns the token: a wrapping token is single use. */
function wrappingUnwrap(ctx: HandlerContext): RawResponse {
  const token = typeof ctx.req.body.token === 'string' && ctx.req.body.token !== '' ? ctx.req.body.token : ctx.req.token;
  const found = ctx.core.wrapping(token, token !== undefined && ctx.caller?.id === token);
  if (found === undefined) throw badRequest(MESSAGES.invalidWrappingToken);
  ctx.core.consumeWrapping(found.entry);
  return { status: 200, raw: found.wrap.response };
}

function wrappingWrap(ctx: HandlerContext): LogicalResponse {
  if (ctx.req.wrapTtlSeconds === undefined || ctx.req.wrapTtlSeconds <= 0) throw badRequest('endpoint requires response wrapping to be used');
  return { data: ctx.req.body as JsonObject };
}

/** The `sys/` backend: health, seal, policies, mounts, auth methods and response wrapping. */
export class SysEngine implements MountEngine {
  readonly type = 'system';
  readonly routes: Route[] = [
    { pattern: /^health$/, unauthenticated: true, read: health },
    { pattern: /^seal-status$/, unauthenticated: true, read: (ctx) => ({ status: 200, raw: sealStatus(ctx) }) },
    { pattern: /^unseal$/, unauthenticated: true, write: unseal },
    {
      pattern: /^seal$/,
      sudo: true,
      write: (ctx) => {
        ctx.core.sealed = true;
        return null;
      },
    },
    {
      pattern: /^policy\/?$/,
      read: (ctx) => ({ data: { keys: policyNames(ctx), policies: policyNames(ctx) } }),
      list: (ctx) => ({ data: { keys: policyNames(ctx), policies: policyNames(ctx) } }),
    },
    {
      pattern: /^policy\/(?<name>[^/]+)$/,
      exists: (ctx) => ctx.core.policies.has(policyName(ctx)),
      read: readPolicy('rules'),
      write: writePolicy,
      delete: deletePolicy,
    },
    { pattern: /^policies\/acl\/?$/, list: (ctx) => ({ data: { keys: policyNames(ctx) } }) },
    {
      pattern: /^policies\/acl\/(?<name>[^/]+)$/,
      exists: (ctx) => ctx.core.policies.has(policyName(ctx)),
      read: readPolicy('policy'),
      write: writePolicy,
      delete: deletePolicy,
    },
    {
      pattern: /^mounts\/?$/,
      read: (ctx) => ({ data: Object.fromEntries([...ctx.core.secretMounts].map(([p, m]) => [p, mountInfo(m)])) }),
    },
    {
      pattern: /^mounts\/(?<path>.+)$/,
      read: (ctx) => {
        const mount = ctx.core.secretMounts.get(`${(ctx.params.path ?? '').replace(/\/+$/, '')}/`);
        if (mount === undefined) throw badRequest(`no mount entry found at "${ctx.params.path ?? ''}"`);
        return { data: mountInfo(mount) };
      },
      write: (ctx) => {
        const { type, description, options } = mountBody(ctx);
        ctx.core.mount(ctx.params.path ?? '', type, options, description);
        return null;
      },
      delete: (ctx) => {
        ctx.core.unmount(ctx.params.path ?? '');
        return null;
      },
    },
    {
      pattern: /^auth\/?$/,
      read: (ctx) => ({ data: Object.fromEntries([...ctx.core.authMounts].map(([p, m]) => [p, mountInfo(m)])) }),
    },
    {
      pattern: /^auth\/(?<path>.+)$/,
      sudo: true,
      write: (ctx) => {
        const { type, description } = mountBody(ctx);
        ctx.core.enableAuth(ctx.params.path ?? '', type, description);
        return null;
      },
      delete: (ctx) => {
        ctx.core.disableAuth(ctx.params.path ?? '');
        return null;
      },
    },
    { pattern: /^wrapping\/wrap$/, write: wrappingWrap },
    { pattern: /^wrapping\/lookup$/, unauthenticated: true, write: wrappingLookup, read: wrappingLookup },
    { pattern: /^wrapping\/unwrap$/, write: wrappingUnwrap },
  ];
}
