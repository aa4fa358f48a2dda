import { z } from 'zod';
import type { HandlerContext, MountEngine, Route } from './routing';
import { MESSAGES, VaultHttpError, badRequest, type JsonObject, type LogicalResponse } from './types';
import { addressAllowed, fieldBool, fieldDuration, fieldInt, fieldString, fieldStringList, newUuid, parseCidrs, rfc3339 } from './util';

interface Role {
  name: string;
  roleId: string;
  bindSecretId: boolean;
  secretIdBoundCidrs: string[];
  secretIdNumUses: number;
  secretIdTtl: number;
  tokenBoundCidrs: string[];
  tokenPolicies: string[];
  tokenTtl: number;
  tokenMaxTtl: number;
  tokenExplicitMaxTtl: number;
  tokenNumUses: number;
  tokenPeriod: number;
  tokenType: 'default' | 'service' | 'batch';
  tokenNoDefaultPolicy: boolean;
}

interface SecretId {
  secretId: string;
  accessor: string;
  roleName: string;
  /** Remaining uses; 0 means unlimited. */
  numUses: number;
  ttl: number;
  createdAt: number;
  updatedAt: number;
  expiresAt: number | null;
  cidrList: string[];
  tokenBoundCidrs: string[];
  metadata: Record<string, string>;
}

/** secret-id `metadata`: a JSON object of strings, sent as a string. */
const SecretIdMetadata = z.record(z.string(), z.string());

const ROLE_NAME = '(?<name>\\w(?:[\\w.@-]*\\w)?)';
const route = (suffix: string): RegExp => new RegExp(`^role/${ROLE_NAME}${suffix}$`);

/**
 * The AppRole auth method. Secret IDs are consumed on login (num_uses) and expire against the
 * dev Vault's clock; login is the one unauthenticated route.
 */
export class ApproleEngine implements MountEngine {
  readonly type = 'approle';
  private readonly roles = new Map<string, Role>();
  private readonly secretIds = new Map<string, SecretId>();
  private readonly accessors = new Map<string, string>();

  readonly routes: Route[] = [
    { pattern: /^login$/, unauthenticated: true, write: (ctx) => this.login(ctx) },
    { pattern: /^role\/?$/, list: () => this.listRoles() },
    {
      pattern: route(''),
      exists: (ctx) => this.roles.has(this.roleName(ctx)),
      read: (ctx) => ({ data: this.roleData(this.role(ctx)) }),
      write: (ctx) => this.writeRole(ctx),
      delete: (ctx) => this.deleteRole(ctx),
    },
    {
      pattern: route('/role-id'),
      read: (ctx) => ({ data: { role_id: this.role(ctx).roleId } }),
      write: (ctx) => {
        const roleId = fieldString(ctx.req.body, 'role_id');
        if (roleId === undefined || roleId === '') throw badRequest('missing role_id');
        this.role(ctx).roleId = roleId;
        return null;
      },
    },
    {
      pattern: route('/secret-id/?'),
      write: (ctx) => this.generateSecretId(ctx),
      list: (ctx) => this.listAccessors(ctx),
    },
    { pattern: route('/secret-id/lookup'), write: (ctx) => this.lookupSecretId(this.bySecretId(ctx)) },
    { pattern: route('/secret-id/destroy'), write: (ctx) => this.destroy(this.bySecretId(ctx)), delete: (ctx) => this.destroy(this.bySecretId(ctx)) },
    { pattern: route('/secret-id-accessor/lookup'), write: (ctx) => this.lookupSecretId(this.byAccessor(ctx)) },
    {
      pattern: route('/secret-id-accessor/destroy'),
      write: (ctx) => this.destroy(this.byAccessor(ctx)),
      delete: (ctx) => this.destroy(this.byAccessor(ctx)),
    },
  ];

  private roleName(ctx: HandlerContext): string {
    return (ctx.params.name ?? '').toLowerCase();
  }

  private role(ctx: HandlerContext): Role {
    const role = this.roles.get(this.roleName(ctx));
    if (role === undefined) throw new VaultHttpError(404, []);
    return role;
  }

  private listRoles(): LogicalResponse {
    if (this.roles.size === 0) throw new VaultHttpError(404, []);
    return { data: { keys: [...this.roles.keys()].sort() } };
  }

  private roleData(role: Role): JsonObject {
    return {
      bind_secret_id: role.bindSecretId,
      local_secret_ids: false,
      secret_id_bound_cidrs: [...role.secretIdBoundCidrs],
      secret_id_num_uses: role.secretIdNumUses,
      secret_id_ttl: role.secretIdTtl,
      token_bound_cidrs: [...role.tokenBoundCidrs],
      token_explicit_max_ttl: role.tokenExplicitMaxTtl,
      token_max_ttl: role.tokenMaxTtl,
      token_no_default_policy: role.tokenNoDefaultPolicy,
      token_num_uses: role.tokenNumUses,
      token_period: role.tokenPeriod,
      token_policies: [...role.tokenPolicies],
      token_ttl: role.tokenTtl,
      token_type: role.tokenType,
      policies: [...role.tokenPolicies],
      period: role.tokenPeriod,
    };
  }

  /** Create or update: only the fields given change, as with Vault's role endpoint. */
  private writeRole(ctx: HandlerContext): null {
    const name = this.roleName(ctx);
    const b = ctx.req.body;
    const role: Role = this.roles.get(name) ?? {
      name,
      roleId: fieldString(b, 'role_id') ?? newUuid(),
      bindSecretId: true,
      secretIdBoundCidrs: [],
      secretIdNumUses: 0,
      secretIdTtl: 0,
      tokenBoundCidrs: [],
      tokenPolicies: [],
      tokenTtl: 0,
      tokenMaxTtl: 0,
      tokenExplicitMaxTtl: 0,
      tokenNumUses: 0,
      tokenPeriod: 0,
      tokenType: 'default',
      tokenNoDefaultPolicy: false,
    };
    const next: Role = { ...role };
    next.bindSecretId = fieldBool(b, 'bind_secret_id') ?? next.bindSecretId;
    const secretCidrs = fieldStringList(b, 'secret_id_bound_cidrs') ?? fieldStringList(b, 'bound_cidr_list');
    if (secretCidrs !== undefined) next.secretIdBoundCidrs = parseCidrs(secretCidrs, 'secret_id_bound_cidrs');
    const tokenCidrs = fieldStringList(b, 'token_bound_cidrs');
    if (tokenCidrs !== undefined) next.tokenBoundCidrs = parseCidrs(tokenCidrs, 'token_bound_cidrs');
    next.secretIdNumUses = fieldInt(b, 'secret_id_num_uses') ?? next.secretIdNumUses;
    if (next.secretIdNumUses < 0) throw badRequest('secret_id_num_uses cannot be negative');
    next.secretIdTtl = fieldDuration(b, 'secret_id_ttl') ?? next.secretIdTtl;
    const policies = fieldStringList(b, 'token_policies') ?? fieldStringList(b, 'policies');
    if (policies !== undefined) next.tokenPolicies = policies.map((p) => p.toLowerCase());
    next.tokenTtl = fieldDuration(b, 'token_ttl') ?? next.tokenTtl;
    next.tokenMaxTtl = fieldDuration(b, 'token_max_ttl') ?? next.tokenMaxTtl;
    next.tokenExplicitMaxTtl = fieldDuration(b, 'token_explicit_max_ttl') ?? next.tokenExplicitMaxTtl;
    next.tokenNumUses = fieldInt(b, 'token_num_uses') ?? next.tokenNumUses;
    next.tokenPeriod = fieldDuration(b, 'token_period') ?? fieldDuration(b, 'period') ?? next.tokenPeriod;
    next.tokenNoDefaultPolicy = fieldBool(b, 'token_no_default_policy') ?? next.tokenNoDefaultPolicy;
    const tokenType = fieldString(b, 'token_type');
    if (tokenType !== undefined) {
      const mapped = tokenType === 'default-service' ? 'service' : tokenType === 'default-batch' ? 'batch' : tokenType;
      if (mapped !== 'default' && mapped !== 'service' && mapped !== 'batch') throw badRequest(`invalid 'token_type' value "${tokenType}"`);
      next.tokenType = mapped;
    }
    if (next.tokenPeriod > 0) throw badRequest('the dev Vault does not issue periodic tokens (token_period)');
    if (next.tokenMaxTtl > 0 && next.tokenTtl > next.tokenMaxTtl) throw badRequest('"token_ttl" value must be less than or equal to "token_max_ttl" value');
    if (!next.bindSecretId && next.secretIdBoundCidrs.length === 0 && next.tokenBoundCidrs.length === 0) {
      throw badRequest('at least one constraint should be enabled on the role');
    }
    this.roles.set(name, next);
    return null;
  }

  private deleteRole(ctx: HandlerContext): null {
    const name = this.roleName(ctx);
    this.roles.delete(name);
    for (const entry of [...this.secretIds.values()]) if (entry.roleName === name) this.remove(entry);
    return null;
  }

  private generateSecretId(ctx: HandlerContext): LogicalResponse {
    const role = this.role(ctx);
    const b = ctx.req.body;
    const metadataText = fieldString(b, 'metadata');
    let metadata: Record<string, string> = {};
    if (metadataText !== undefined && metadataText.trim() !== '') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(metadataText);
      } catch {
        parsed = undefined;
      }
      const result = SecretIdMetadata.safeParse(parsed);
      if (!result.success) throw badRequest('failed to parse metadata: not a JSON object of strings');
      metadata = result.data;
    }
    const numUses = fieldInt(b, 'num_uses') ?? role.secretIdNumUses;
    if (numUses < 0) throw badRequest('num_uses cannot be negative');
    if (role.secretIdNumUses > 0 && (numUses === 0 || numUses > role.secretIdNumUses)) {
      throw badRequest("num_uses cannot be higher than the role's secret_id_num_uses");
    }
    const ttl = fieldDuration(b, 'ttl') ?? role.secretIdTtl;
    if (role.secretIdTtl > 0 && (ttl === 0 || ttl > role.secretIdTtl)) throw badRequest("ttl cannot be longer than the role's secret_id_ttl");
    const cidrList = parseCidrs(fieldStringList(b, 'cidr_list') ?? [], 'cidr_list');
    const tokenBoundCidrs = parseCidrs(fieldStringList(b, 'token_bound_cidrs') ?? [], 'token_bound_cidrs');
    const now = ctx.core.now();
    const entry: SecretId = {
      secretId: newUuid(),
      accessor: newUuid(),
      roleName: role.name,
      numUses,
      ttl,
      createdAt: now,
      updatedAt: now,
      expiresAt: ttl > 0 ? now + ttl * 1000 : null,
      cidrList,
      tokenBoundCidrs,
      metadata,
    };
    this.secretIds.set(entry.secretId, entry);
    this.accessors.set(entry.accessor, entry.secretId);
    return { data: { secret_id_accessor: entry.accessor, secret_id: entry.secretId, secret_id_ttl: ttl, secret_id_num_uses: numUses } };
  }

  private live(secretId: string | undefined, ctx: HandlerContext): SecretId | undefined {
    if (secretId === undefined) return undefined;
    const entry = this.secretIds.get(secretId);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= ctx.core.now()) {
      this.remove(entry);
      return undefined;
    }
    return entry;
  }

  private bySecretId(ctx: HandlerContext): SecretId {
    const role = this.role(ctx);
    const entry = this.live(fieldString(ctx.req.body, 'secret_id'), ctx);
    if (entry === undefined || entry.roleName !== role.name) throw new VaultHttpError(404, []);
    return entry;
  }

  private byAccessor(ctx: HandlerContext): SecretId {
    const role = this.role(ctx);
    const accessor = fieldString(ctx.req.body, 'secret_id_accessor') ?? '';
    const entry = this.live(this.accessors.get(accessor), ctx);
    if (entry === undefined || entry.roleName !== role.name) {
      throw badRequest(`failed to find accessor entry for secret_id_accessor: "${accessor}"`);
    }
    return entry;
  }

  private lookupSecretId(entry: SecretId): LogicalResponse {
    return {
      data: {
        cidr_list: [...entry.cidrList],
        creation_time: rfc3339(entry.createdAt),
        expiration_time: entry.expiresAt === null ? '0001-01-01T00:00:00Z' : rfc3339(entry.expiresAt),
        last_updated_time: rfc3339(entry.updatedAt),
        metadata: { ...entry.metadata },
        secret_id_accessor: entry.accessor,
        secret_id_num_uses: entry.numUses,
        secret_id_ttl: entry.ttl,
        token_bound_cidrs: [...entry.tokenBoundCidrs],
      },
    };
  }

  private listAccessors(ctx: HandlerContext): LogicalResponse {
    const role = this.role(ctx);
    const keys = [...this.secretIds.values()].filter((e) => e.roleName === role.name && this.live(e.secretId, ctx)).map((e) => e.accessor);
    if (keys.length === 0) throw new VaultHttpError(404, []);
    return { data: { keys: keys.sort() } };
  }

  private destroy(entry: SecretId): null {
    this.remove(entry);
    return null;
  }

  private remove(entry: SecretId): void {
    this.secretIds.delete(entry.secretId);
    this.accessors.delete(entry.accessor);
  }

  /**
   * Every failure of the credential itself is the same 400, so a caller cannot tell an unknown
   * role_id from a spent secret_id.
   */
  private login(ctx: HandlerContext): LogicalResponse {
    const b = ctx.req.body;
    const roleId = fieldString(b, 'role_id');
    if (roleId === undefined || roleId === '') throw badRequest('missing role_id');
    const role = [...this.roles.values()].find((r) => r.roleId === roleId);
    if (role === undefined) throw badRequest(MESSAGES.invalidRoleOrSecretId);
    let secret: SecretId | undefined;
    if (role.bindSecretId) {
      const secretId = fieldString(b, 'secret_id');
      if (secretId === undefined || secretId === '') throw badRequest('missing secret_id');
      secret = this.live(secretId, ctx);
      if (secret === undefined || secret.roleName !== role.name) throw badRequest(MESSAGES.invalidRoleOrSecretId);
      if (!addressAllowed(ctx.req.remoteAddress, secret.cidrList) || !addressAllowed(ctx.req.remoteAddress, role.secretIdBoundCidrs)) {
        throw badRequest(`source address "${ctx.req.remoteAddress}" unauthorized through CIDR restrictions on the secret ID`);
      }
      if (secret.numUses > 0) {
        secret.numUses -= 1;
        secret.updatedAt = ctx.core.now();
        if (secret.numUses === 0) this.remove(secret);
      }
    } else if (!addressAllowed(ctx.req.remoteAddress, role.secretIdBoundCidrs)) {
      throw badRequest(`source address "${ctx.req.remoteAddress}" unauthorized through CIDR restrictions on the role`);
    }
    const entry = ctx.core.tokens.create({
      policies: role.tokenPolicies,
      noDefaultPolicy: role.tokenNoDefaultPolicy,
      ttl: role.tokenTtl,
      maxTtl: role.tokenMaxTtl,
      explicitMaxTtl: role.tokenExplicitMaxTtl,
      numUses: role.tokenNumUses,
      meta: { ...(secret?.metadata ?? {}), role_name: role.name },
      displayName: ctx.mountPath.replace(/^auth\/|\/$/g, ''),
      path: `${ctx.mountPath}login`,
      orphan: true,
      type: role.tokenType === 'batch' ? 'batch' : 'service',
      boundCidrs: secret !== undefined && secret.tokenBoundCidrs.length > 0 ? secret.tokenBoundCidrs : role.tokenBoundCidrs,
    });
    return { auth: ctx.core.tokens.authBlock(entry) };
  }
}
