import { Acl, DEFAULT_POLICY, RESPONSE_WRAPPING_POLICY, parsePolicy, type PathRule } from './acl';
import { ApproleEngine } from './approle';
import { Kv2Engine } from './kv2';
import { matchRoute, type HandlerContext, type Mount, type MountEngine, type Route } from './routing';
import { SysEngine } from './sys';
import { TokenEngine } from './token-engine';
import { TokenStore, type TokenEntry } from './tokens';
import { TransitEngine } from './transit';
import {
  MESSAGES,
  VaultHttpError,
  badRequest,
  isRawResponse,
  type JsonObject,
  type JsonValue,
  type LogicalResponse,
  type RawResponse,
  type VaultRequest,
} from './types';
import { addressAllowed, newUuid, randomBase62, rfc3339 } from './util';

export interface StoredPolicy {
  name: string;
  text: string;
  rules: PathRule[];
}

export interface WrapEntry {
  creationPath: string;
  createdAt: number;
  ttl: number;
  /** The wrapped HTTP response exactly as it would have been sent, like Vault's cubbyhole copy. */
  response: string;
}

/** What the HTTP layer writes back: a status and an optional JSON body. */
export interface HttpAnswer {
  status: number;
  body: string | undefined;
}

/** sys paths that answer while sealed, as in Vault (everything else gets 503). */
const SEALED_OK = new Set(['sys/health', 'sys/seal-status', 'sys/unseal']);

const ENVELOPE_KEYS = new Set(['request_id', 'lease_id', 'renewable', 'lease_duration', 'data', 'wrap_info', 'warnings', 'auth', 'mount_type']);

/**
 * The in-memory Vault: token store, policies, mount table and the request pipeline
 * (seal check → wrapping-token validation → token + ACL → route → handler → envelope → wrap).
 * The order mirrors Vault's request handling so error precedence matches the real server.
 */
export class DevVaultCore {
  readonly tokens: TokenStore;
  readonly policies = new Map<string, StoredPolicy>();
  readonly wraps = new Map<string, WrapEntry>();
  readonly secretMounts = new Map<string, Mount>();
  readonly authMounts = new Map<string, Mount>();
  readonly clusterId = newUuid();
  readonly clusterName = `vault-cluster-${randomBase62(8).toLowerCase()}`;
  readonly version = '1.17.0+orderly-dev';
  sealed = false;

  private readonly sys: SysEngine;
  private readonly builtinPolicies = new Map<string, PathRule[]>([['response-wrapping', parsePolicy(RESPONSE_WRAPPING_POLICY)]]);

  constructor(
    readonly now: () => number,
    rootToken: string,
    readonly unsealKey: Buffer,
  ) {
    this.tokens = new TokenStore(now);
    this.sys = new SysEngine();
    this.policies.set('default', { name: 'default', text: DEFAULT_POLICY, rules: parsePolicy(DEFAULT_POLICY) });
    this.tokens.create({ id: rootToken, policies: ['root'], path: 'auth/token/root', displayName: 'root', orphan: true });
    this.authMounts.set('token/', this.newMount('token/', 'token', new TokenEngine(), 'token based credentials', null, 'auth_token'));
    // What `vault server -dev` mounts (secret/ as KV v2), plus the two Orderly always needs.
    this.mount('secret', 'kv', { version: '2' }, 'key/value secret storage');
    this.mount('transit', 'transit', null, 'transit encryption (dev)');
    this.enableAuth('approle', 'approle', 'approle (dev)');
  }

  /** Adds a secrets engine at `path`; 400 like Vault when the path is taken or the type unknown. */
  mount(rawPath: string, type: string, options: Record<string, string> | null, description = ''): void {
    const path = normaliseMountPath(rawPath);
    if (['sys/', 'auth/', 'cubbyhole/', 'identity/'].some((p) => path.startsWith(p))) throw badRequest(`cannot mount under "${path}"`);
    for (const existing of this.secretMounts.keys()) {
      if (existing.startsWith(path) || path.startsWith(existing)) throw badRequest(`path is already in use at ${existing}`);
    }
    let engine: MountEngine;
    let mountOptions = options;
    if (type === 'kv-v2' || (type === 'kv' && options?.version === '2')) {
      engine = new Kv2Engine();
      mountOptions = { version: '2' };
    } else if (type === 'kv') {
      throw badRequest('the dev Vault serves only KV version 2: mount with options.version = "2" or type "kv-v2"');
    } else if (type === 'transit') {
      engine = new TransitEngine(this.now);
    } else {
      throw badRequest(`the dev Vault does not serve secrets engine type "${type}"`);
    }
    this.secretMounts.set(path, this.newMount(path, engine.type, engine, description, mountOptions, engine.type));
  }

  unmount(rawPath: string): void {
    const path = normaliseMountPath(rawPath);
    if (!this.secretMounts.delete(path)) throw badRequest(`no matching mount at "${path}"`);
  }

  enableAuth(rawPath: string, type: string, description = ''): void {
    const path = normaliseMountPath(rawPath);
    if (this.authMounts.has(path)) throw badRequest(`path is already in use at auth/${path}`);
    if (type !== 'approle') throw badRequest(`the dev Vault does not serve auth method type "${type}"`);
    this.authMounts.set(path, this.newMount(path, 'approle', new ApproleEngine(), description, null, 'auth_approle'));
  }

  disableAuth(rawPath: string): void {
    const path = normaliseMountPath(rawPath);
    if (path === 'token/') throw badRequest('token credential backend cannot be disabled');
    if (!this.authMounts.delete(path)) throw badRequest(`no matching mount at "auth/${path}"`);
  }

  private newMount(
    path: string,
    type: string,
    engine: MountEngine,
    description: string,
    options: Record<string, string> | null,
    accessorPrefix: string,
  ): Mount {
    return { path, type, engine, description, options, uuid: newUuid(), accessor: `${accessorPrefix}_${randomBase62(8).toLowerCase()}` };
  }

  /** The ACL of a token: root is all-powerful, otherwise the union of its named policies. */
  aclFor(entry: TokenEntry): Acl {
    if (entry.policies.includes('root')) return new Acl([], true);
    const rules = entry.policies.map((name) => this.builtinPolicies.get(name) ?? this.policies.get(name)?.rules ?? []);
    return new Acl(rules);
  }

  /** Creates a wrapping token holding `envelope` and returns the envelope that replaces it. */
  wrap(req: VaultRequest, envelope: JsonObject, mountType: string): JsonObject {
    const ttl = req.wrapTtlSeconds ?? 0;
    const token = this.tokens.create({
      policies: ['response-wrapping'],
      noDefaultPolicy: true,
      ttl,
      explicitMaxTtl: ttl,
      numUses: 1,
      renewable: false,
      path: req.path,
      displayName: '',
      orphan: true,
    });
    this.wraps.set(token.id, { creationPath: req.path, createdAt: token.createdAt, ttl, response: JSON.stringify(envelope) });
    const auth = envelope.auth;
    const wrapInfo: JsonObject = {
      token: token.id,
      accessor: token.accessor,
      ttl,
      creation_time: rfc3339(token.createdAt),
      creation_path: req.path,
    };
    // Vault names the wrapped token's accessor only when the wrapped response carries a token.
    if (auth !== null && typeof auth === 'object' && !Array.isArray(auth) && typeof auth.accessor === 'string' && auth.accessor !== '') {
      wrapInfo.wrapped_accessor = auth.accessor;
    }
    return {
      request_id: req.requestId,
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      data: null,
      wrap_info: wrapInfo,
      warnings: null,
      auth: null,
      mount_type: mountType,
    };
  }

  /**
   * A live wrapping token and its stored response, or undefined (used, expired or never issued).
   * `presentedAsClientToken`: the token authenticated this very request, which spent its single
   * use on getting here; that use is the unwrap itself.
   */
  wrapping(token: string | undefined, presentedAsClientToken = false): { entry: TokenEntry; wrap: WrapEntry } | undefined {
    const entry = this.tokens.lookup(token);
    if (entry === undefined || (this.tokens.isSpent(entry) && !presentedAsClientToken)) return undefined;
    if (entry.policies.length !== 1 || entry.policies[0] !== 'response-wrapping') return undefined;
    const wrap = this.wraps.get(entry.id);
    return wrap === undefined ? undefined : { entry, wrap };
  }

  consumeWrapping(entry: TokenEntry): void {
    this.wraps.delete(entry.id);
    this.tokens.remove(entry);
  }

  private resolve(path: string): { mount: Mount; rest: string } | undefined {
    if (path === 'sys' || path.startsWith('sys/')) {
      return { mount: { path: 'sys/', type: 'system', engine: this.sys, description: '', accessor: 'system', uuid: '', options: null }, rest: path.slice(4) };
    }
    let table = this.secretMounts;
    let relative = path;
    let prefix = '';
    if (path.startsWith('auth/')) {
      table = this.authMounts;
      relative = path.slice(5);
      prefix = 'auth/';
    }
    let best: Mount | undefined;
    for (const [mountPath, mount] of table) {
      if ((relative + '/').startsWith(mountPath) && (best === undefined || mountPath.length > best.path.length)) best = mount;
    }
    if (best === undefined) return undefined;
    return { mount: { ...best, path: prefix + best.path }, rest: relative.slice(best.path.length) };
  }

  /** Runs one request through Vault's pipeline; never throws. */
  handle(req: VaultRequest): HttpAnswer {
    try {
      return this.handleUnsafe(req);
    } catch (error) {
      if (error instanceof VaultHttpError) return errorAnswer(error.status, error.errors);
      // Unexpected failure: answer like Vault's ErrInternalError and never echo internals.
      return errorAnswer(500, ['internal error']);
    }
  }

  private handleUnsafe(req: VaultRequest): HttpAnswer {
    if (this.sealed && !SEALED_OK.has(req.path)) throw new VaultHttpError(503, MESSAGES.sealed);
    const resolved = this.resolve(req.path);
    const matched = resolved === undefined ? undefined : matchRoute(resolved.mount.engine, resolved.rest);
    const route: Route | undefined = matched?.route;
    const ctx: HandlerContext = { req, params: matched?.params ?? {}, core: this, caller: undefined, mountPath: resolved?.mount.path ?? '' };

    if (req.path === 'sys/wrapping/lookup' || req.path === 'sys/wrapping/unwrap') this.validateWrappingRequest(req);

    let spent: TokenEntry | undefined;
    if (route?.unauthenticated !== true) {
      if (req.token === undefined || req.token === '') throw badRequest(MESSAGES.missingClientToken);
      const entry = this.tokens.lookup(req.token);
      if (entry === undefined || this.tokens.isSpent(entry)) throw new VaultHttpError(403, MESSAGES.permissionDenied);
      // Bound CIDRs bind every token except non-expiring root tokens (request_handling.go).
      if (entry.expiresAt !== null && !addressAllowedFor(entry, req.remoteAddress)) throw new VaultHttpError(403, MESSAGES.permissionDenied);
      if ((req.operation === 'update' || req.operation === 'create') && route?.exists !== undefined) {
        req.operation = route.exists(ctx) ? 'update' : 'create';
      } else if (req.operation === 'create') {
        req.operation = 'update';
      }
      const allowed = this.aclFor(entry).allows(req.path, req.operation, route?.sudo === true);
      // Vault counts a use whether or not the ACL allowed the request.
      if (this.tokens.use(entry)) spent = entry;
      if (!allowed) {
        if (spent) this.tokens.remove(spent);
        throw new VaultHttpError(403, MESSAGES.permissionDenied);
      }
      ctx.caller = entry;
    } else if (req.operation === 'create') {
      req.operation = 'update';
    }

    try {
      if (resolved === undefined || route === undefined) throw new VaultHttpError(404, `no handler for route "${req.path}". route entry not found.`);
      if (req.path.endsWith('/') && req.operation === 'update') throw badRequest("cannot write to a path ending in '/'");
      const handler =
        req.operation === 'read'
          ? route.read
          : req.operation === 'list'
            ? route.list
            : req.operation === 'delete'
              ? route.delete
              : req.operation === 'patch'
                ? undefined
                : route.write;
      if (handler === undefined) throw new VaultHttpError(405, MESSAGES.unsupportedOperation);
      const result = handler(ctx);
      return this.answer(req, result, resolved.mount);
    } finally {
      // A token whose last use this was goes away once its request is done, as in Vault.
      if (spent) this.tokens.remove(spent);
    }
  }

  /**
   * sys/wrapping/lookup and unwrap validate the wrapping token before anything else, so a used
   * or expired token is a 400 with Vault's text whatever the caller's own token could do.
   */
  private validateWrappingRequest(req: VaultRequest): void {
    const bodyToken = req.body.token;
    if (bodyToken !== undefined && typeof bodyToken !== 'string') throw badRequest('could not decode token in request body');
    const candidate = typeof bodyToken === 'string' && bodyToken !== '' ? bodyToken : req.token;
    if (candidate === undefined || candidate === '') {
      throw badRequest(req.path === 'sys/wrapping/lookup' ? 'missing "token" value in input' : MESSAGES.missingClientToken);
    }
    if (this.wrapping(candidate) === undefined) throw badRequest(MESSAGES.invalidWrappingToken);
  }

  private answer(req: VaultRequest, result: LogicalResponse | RawResponse | null, mount: Mount): HttpAnswer {
    if (isRawResponse(result)) {
      if (req.isHead || result.raw === undefined) return { status: result.status, body: undefined };
      return { status: result.status, body: typeof result.raw === 'string' ? result.raw : JSON.stringify(result.raw) };
    }
    if (result === null || (result.data == null && result.auth == null && (result.warnings?.length ?? 0) === 0 && result.status === undefined)) {
      return { status: 204, body: undefined };
    }
    let envelope: JsonObject = {
      request_id: req.requestId,
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      data: result.data ?? null,
      wrap_info: null,
      warnings: result.warnings !== undefined && result.warnings.length > 0 ? result.warnings : null,
      auth: (result.auth ?? null) as JsonValue,
      mount_type: mount.type,
    };
    const status = result.status ?? 200;
    if (req.wrapTtlSeconds !== undefined && req.wrapTtlSeconds > 0 && status === 200 && (result.data != null || result.auth != null)) {
      envelope = this.wrap(req, envelope, mount.type);
    } else if (mount.path === 'sys/' && result.data != null) {
      // HTTPSysInjector: sys answers repeat their data fields at the top level.
      for (const [k, v] of Object.entries(result.data)) if (!ENVELOPE_KEYS.has(k)) envelope[k] = v;
    }
    return { status, body: JSON.stringify(envelope) };
  }
}

function addressAllowedFor(entry: TokenEntry, remote: string): boolean {
  if (entry.boundCidrs.length === 0) return true;
  return addressAllowed(remote, entry.boundCidrs);
}

export function normaliseMountPath(raw: string): string {
  const trimmed = raw.replace(/^\/+|\/+$/g, '');
  if (trimmed === '' || trimmed.split('/').some((s) => s === '' || s === '.' || s === '..')) throw badRequest(`invalid mount path "${raw}"`);
  return `${trimmed}/`;
}

export function errorAnswer(status: number, errors: string[]): HttpAnswer {
  return { status, body: JSON.stringify({ errors }) };
}
