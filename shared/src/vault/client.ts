import { createPublicKey, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import NodeVault from 'node-vault';
import { z } from 'zod';
import { OrderlyError } from '../errors';
import { classifyFailure } from './failures';
import { MountPath, RoleName, checked, renderBotPolicy, secretIdCreationPath } from './policy';
import { systemClock, withRetry, type RetryClock, type RetryPolicy, type VaultRetryEvent } from './retry';
import {
  AuthResponse,
  HealthBody,
  KvMetadataData,
  KvReadData,
  RoleIdData,
  SecretIdData,
  TokenLookupData,
  TransitCiphertextData,
  TransitDataKeyData,
  TransitKeyData,
  TransitPlaintextData,
  TransitSignData,
  TransitVerifyData,
  WrappedResponse,
  WrappingLookupData,
  vaultEnvelope,
} from './schemas';

/** How to reach Vault; parsed by the process's config and passed in (nothing here reads the environment). */
export interface VaultClientConfig {
  /** VAULT_ADDR, e.g. `https://vault.internal:8200`. */
  address: string;
  /** One attempt's timeout (default 5 s); the remaining deadline cuts it further. */
  requestTimeoutMs?: number;
  /** Budget of one operation, retries included, when a call gives no deadline (default 15 s). */
  defaultBudgetMs?: number;
  /** First retry delay (default 100 ms), doubled per attempt up to `maxDelayMs` (default 2 s). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** PEM CA bundle for an https address. */
  caCert?: string;
  /** Vault Enterprise / OpenBao namespace. */
  namespace?: string;
  /** Called before each retry (for the caller's logger); the wrapper logs nothing. */
  onRetry?: (event: VaultRetryEvent) => void;
  /** Injected in tests. */
  clock?: RetryClock;
}

/** Per call: an absolute deadline on the config clock (epoch ms) for the call and its retries. */
export interface CallOptions {
  deadline?: number;
}

export interface BotRoleSpec {
  roleName: string;
  /** KV v2 secret paths the bot may read (see KvSecretPath). */
  kvPaths: readonly string[];
  kvMount?: string;
  approleMount?: string;
  /** TTL of a run's token; it caps the run (invariant 3). */
  tokenTtlSeconds: number;
  tokenMaxTtlSeconds?: number;
  /** How long an unwrapped SecretID stays usable. */
  secretIdTtlSeconds: number;
  secretIdBoundCidrs?: readonly string[];
  tokenBoundCidrs?: readonly string[];
}

export interface WrappedSecretId {
  wrappingToken: string;
  wrappingAccessor: string;
  ttlSeconds: number;
  creationTime: string;
  creationPath: string;
}

export interface UnwrappedSecretId {
  secretId: string;
  secretIdAccessor: string;
  secretIdTtlSeconds: number;
  secretIdNumUses: number;
}

export interface LoginResult {
  /** A new client bound to the login's token; never shares node-vault state with this one. */
  client: VaultClient;
  accessor: string;
  policies: string[];
  leaseDurationSeconds: number;
  renewable: boolean;
  tokenType: string | undefined;
}

export interface KvSecret<T> {
  data: T;
  version: number;
  createdTime: string;
  customMetadata: Record<string, string> | null;
}

export interface KvMetadata {
  currentVersion: number;
  oldestVersion: number;
  createdTime: string;
  updatedTime: string;
  casRequired: boolean;
  maxVersions: number;
  customMetadata: Record<string, string> | null;
  versions: Record<string, { createdTime: string; deletionTime: string; destroyed: boolean }>;
}

export interface TokenInfo {
  accessor: string;
  policies: string[];
  ttlSeconds: number;
  creationTtlSeconds: number;
  expireTime: string | null;
  renewable: boolean;
  numUses: number;
  orphan: boolean;
  path: string;
  type: string | undefined;
}

export interface TransitKeyInfo {
  name: string;
  type: string;
  latestVersion: number;
  minDecryptionVersion: number;
  minEncryptionVersion: number;
  deletionAllowed: boolean;
  /** When the latest version was made (the last rotation); null when Vault did not say. */
  latestVersionCreatedAt: Date | null;
}

/**
 * The creation time of a Transit key version: Vault lists encryption keys' versions as unix seconds
 * and signing keys' as objects with an RFC 3339 `creation_time`.
 */
function versionCreatedAt(entry: unknown): Date | null {
  const at =
    typeof entry === 'number'
      ? new Date(entry * 1000)
      : entry && typeof entry === 'object' && typeof (entry as { creation_time?: unknown }).creation_time === 'string'
        ? new Date((entry as { creation_time: string }).creation_time)
        : null;
  return at && !Number.isNaN(at.getTime()) ? at : null;
}

interface Settings {
  address: string;
  namespace: string;
  caCert: string | undefined;
  clock: RetryClock;
  policy: RetryPolicy;
  defaultBudgetMs: number;
  onRetry: ((event: VaultRetryEvent) => void) | undefined;
}

type Method = 'GET' | 'POST' | 'LIST' | 'DELETE';

interface CallSpec<T> {
  operation: string;
  method: Method;
  /** Path under /v1/, no leading slash; also what error messages name. */
  path: string;
  query?: Record<string, string>;
  body?: Record<string, unknown>;
  headers?: Record<string, string>;
  idempotent: boolean;
  schema: z.ZodType<T>;
}

const NOT_FOUND = Symbol('not-found');
const mount = (value: string): string => checked(MountPath, value, 'mount path');
const Empty = z.unknown();

/**
 * node-vault falls back to VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE, VAULT_PREFIX and
 * VAULT_SKIP_VERIFY from the environment and logs request bodies under DEBUG=node-vault. Each
 * of those is pinned here, so configuration only comes from our parsed config and no secret
 * reaches stderr.
 */
function newNodeVault(settings: Settings, token: string): NodeVault.client {
  const client = NodeVault({
    endpoint: settings.address,
    apiVersion: 'v1',
    debug: () => undefined,
    requestOptions: { strictSSL: true, ...(settings.caCert === undefined ? {} : { ca: settings.caCert }) },
  });
  client.token = token;
  const loose = client as unknown as { namespace?: string; pathPrefix?: string };
  loose.namespace = settings.namespace;
  loose.pathPrefix = '';
  return client;
}

function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, operation: string, path: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  // Issue paths and codes only: zod messages could quote a received value, and values are secrets.
  const problems = result.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.code}`);
  throw new OrderlyError('ORDERLY_E_VAULT_ERROR', `Vault's answer to ${operation} on ${path} failed validation`, { path, operation, problems });
}

function keyVersionOf(ciphertext: string, given: number | undefined): number {
  return given ?? Number(/^vault:v(\d+):/.exec(ciphertext)?.[1] ?? 0);
}

const seg = (value: string, what: string): string => {
  if (value === '' || value.includes('/') || value === '.' || value === '..') {
    throw new OrderlyError('ORDERLY_E_BAD_REQUEST', `invalid ${what} for a Vault path`, { what });
  }
  return encodeURIComponent(value);
};

const kvPath = (path: string): string => {
  const parts = path.split('/');
  if (path === '' || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'invalid KV secret path', { path });
  }
  return parts.map((p) => encodeURIComponent(p)).join('/');
};

/**
 * Orderly's Vault client. Every instance owns its own node-vault client and token: a login
 * returns a new instance instead of switching this one's token, so two runs can never end up
 * sharing (or overwriting) a credential.
 */
export class VaultClient {
  readonly #vault: NodeVault.client;
  readonly #settings: Settings;

  constructor(settings: Settings, token: string) {
    this.#settings = settings;
    this.#vault = newNodeVault(settings, token);
  }

  /** Keeps the token out of console.log / util.inspect / JSON.stringify. */
  [inspect.custom](): string {
    return `VaultClient { address: ${JSON.stringify(this.#settings.address)} }`;
  }

  toJSON(): { address: string } {
    return { address: this.#settings.address };
  }

  private deadline(options: CallOptions | undefined): number {
    return options?.deadline ?? this.#settings.clock.now() + this.#settings.defaultBudgetMs;
  }

  private async request(spec: CallSpec<unknown>, timeoutMs: number, vault: NodeVault.client): Promise<unknown> {
    const query = spec.query === undefined ? '' : `?${new URLSearchParams(spec.query).toString()}`;
    return vault.request({
      path: `/${spec.path}${query}`,
      method: spec.method,
      headers: { ...(spec.headers ?? {}) },
      timeout: timeoutMs,
      ...(spec.body === undefined ? {} : { json: spec.body }),
    });
  }

  /** One logical call: retries per the policy, then zod-parses the answer. */
  private async call<T>(spec: CallSpec<T>, options: CallOptions | undefined, vault = this.#vault): Promise<T> {
    const raw = await withRetry(
      { operation: spec.operation, path: spec.path, idempotent: spec.idempotent, deadline: this.deadline(options) },
      this.#settings.policy,
      this.#settings.clock,
      (timeoutMs) => this.request(spec as CallSpec<unknown>, timeoutMs, vault),
      this.#settings.onRetry,
    );
    return parseOrThrow(spec.schema, raw, spec.operation, spec.path);
  }

  /** Like call, but a 404 is an answer (absent secret), not an error. */
  private async callOrNotFound<T>(spec: CallSpec<T>, options: CallOptions | undefined): Promise<T | typeof NOT_FOUND> {
    const raw = await withRetry(
      { operation: spec.operation, path: spec.path, idempotent: spec.idempotent, deadline: this.deadline(options) },
      this.#settings.policy,
      this.#settings.clock,
      async (timeoutMs) => {
        try {
          return await this.request(spec as CallSpec<unknown>, timeoutMs, this.#vault);
        } catch (error) {
          if (classifyFailure(error).kind === 'not-found') return NOT_FOUND;
          throw error;
        }
      },
      this.#settings.onRetry,
    );
    return raw === NOT_FOUND ? NOT_FOUND : parseOrThrow(spec.schema, raw, spec.operation, spec.path);
  }

  /* ---- health ---- */

  /** sys/health; answers (sealed, standby) are data here, not errors. */
  async health(options?: CallOptions): Promise<z.infer<typeof HealthBody>> {
    return this.call({ operation: 'health', method: 'GET', path: 'sys/health', idempotent: true, schema: HealthBody }, options);
  }

  /* ---- policies and AppRole (control room) ---- */

  /** Writes an ACL policy (idempotent: the same text twice is the same policy). */
  async writePolicy(name: string, hcl: string, options?: CallOptions): Promise<void> {
    await this.call(
      {
        operation: 'policy write',
        method: 'POST',
        path: `sys/policies/acl/${seg(name, 'policy name')}`,
        body: { policy: hcl },
        idempotent: true,
        schema: Empty,
      },
      options,
    );
  }

  /**
   * Creates or updates a bot's role and its policy: read on the declared KV paths only,
   * single-use SecretIDs, service tokens whose TTL caps the run.
   */
  async upsertBotRole(spec: BotRoleSpec, options?: CallOptions): Promise<{ roleName: string; policyName: string; policy: string }> {
    const roleName = checked(RoleName, spec.roleName, 'role name');
    const approle = mount(spec.approleMount ?? 'approle');
    // One policy per role, named after it: the caller chooses a namespaced role name.
    const policyName = roleName.toLowerCase();
    const policy = renderBotPolicy({ roleName, kvMount: spec.kvMount ?? 'secret', kvPaths: spec.kvPaths });
    await this.writePolicy(policyName, policy, options);
    await this.call(
      {
        operation: 'approle role write',
        method: 'POST',
        path: `auth/${approle}/role/${roleName}`,
        idempotent: true,
        schema: Empty,
        body: {
          token_policies: [policyName],
          token_ttl: spec.tokenTtlSeconds,
          token_max_ttl: spec.tokenMaxTtlSeconds ?? spec.tokenTtlSeconds,
          token_type: 'service',
          bind_secret_id: true,
          secret_id_num_uses: 1,
          secret_id_ttl: spec.secretIdTtlSeconds,
          secret_id_bound_cidrs: [...(spec.secretIdBoundCidrs ?? [])],
          token_bound_cidrs: [...(spec.tokenBoundCidrs ?? [])],
        },
      },
      options,
    );
    return { roleName, policyName, policy };
  }

  /**
   * Deletes a bot's role and its policy (as upsertBotRole named them): the compensation when the
   * version they were written for was not stored after all. Deleting what is absent succeeds.
   */
  async deleteBotRole(roleName: string, options?: CallOptions & { approleMount?: string }): Promise<void> {
    const name = checked(RoleName, roleName, 'role name');
    const approle = mount(options?.approleMount ?? 'approle');
    // The role first: without it the policy grants nobody anything, whatever happens next.
    await this.call({ operation: 'approle role delete', method: 'DELETE', path: `auth/${approle}/role/${name}`, idempotent: true, schema: Empty }, options);
    await this.call(
      { operation: 'policy delete', method: 'DELETE', path: `sys/policies/acl/${seg(name.toLowerCase(), 'policy name')}`, idempotent: true, schema: Empty },
      options,
    );
  }

  async readRoleId(roleName: string, options?: CallOptions & { approleMount?: string }): Promise<string> {
    const approle = mount(options?.approleMount ?? 'approle');
    const env = await this.call(
      {
        operation: 'approle role-id read',
        method: 'GET',
        path: `auth/${approle}/role/${checked(RoleName, roleName, 'role name')}/role-id`,
        idempotent: true,
        schema: vaultEnvelope(RoleIdData),
      },
      options,
    );
    return env.data.role_id;
  }

  /**
   * Generates a single-use SecretID and returns only its wrapping token: the control room never
   * sees the SecretID itself. Not retried after an ambiguous failure (it would mint another).
   */
  async createWrappedSecretId(
    roleName: string,
    input: { wrapTtlSeconds: number; metadata?: Record<string, string>; cidrList?: readonly string[]; approleMount?: string },
    options?: CallOptions,
  ): Promise<WrappedSecretId> {
    if (!Number.isInteger(input.wrapTtlSeconds) || input.wrapTtlSeconds <= 0) {
      throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'wrapTtlSeconds must be a positive integer', { wrapTtlSeconds: input.wrapTtlSeconds });
    }
    const path = secretIdCreationPath(roleName, input.approleMount);
    const env = await this.call(
      {
        operation: 'approle secret-id generate (wrapped)',
        method: 'POST',
        path,
        idempotent: false,
        schema: WrappedResponse,
        headers: { 'X-Vault-Wrap-TTL': `${input.wrapTtlSeconds}s` },
        body: {
          num_uses: 1,
          ...(input.metadata === undefined ? {} : { metadata: JSON.stringify(input.metadata) }),
          ...(input.cidrList === undefined ? {} : { cidr_list: [...input.cidrList] }),
        },
      },
      options,
    );
    const info = env.wrap_info;
    return {
      wrappingToken: info.token,
      wrappingAccessor: info.accessor,
      ttlSeconds: info.ttl,
      creationTime: info.creation_time,
      creationPath: info.creation_path,
    };
  }

  async destroySecretIdAccessor(roleName: string, accessor: string, options?: CallOptions & { approleMount?: string }): Promise<void> {
    const approle = mount(options?.approleMount ?? 'approle');
    await this.call(
      {
        operation: 'approle secret-id destroy',
        method: 'POST',
        path: `auth/${approle}/role/${checked(RoleName, roleName, 'role name')}/secret-id-accessor/destroy`,
        body: { secret_id_accessor: accessor },
        idempotent: false,
        schema: Empty,
      },
      options,
    );
  }

  /* ---- response wrapping (runner) ---- */

  /**
   * Looks a wrapping token up without consuming it and checks it was minted at
   * `expectedCreationPath`: a token for any other path means someone substituted it.
   */
  async lookupWrapping(
    wrappingToken: string,
    expectedCreationPath: string,
    options?: CallOptions,
  ): Promise<{ creationPath: string; creationTime: string; creationTtlSeconds: number }> {
    const env = await this.call(
      {
        operation: 'wrapping lookup',
        method: 'POST',
        path: 'sys/wrapping/lookup',
        body: { token: wrappingToken },
        idempotent: true,
        schema: vaultEnvelope(WrappingLookupData),
      },
      options,
    );
    if (env.data.creation_path !== expectedCreationPath) {
      throw new OrderlyError(
        'ORDERLY_E_VAULT_WRAP_INVALID',
        `the response-wrapping token was created at "${env.data.creation_path}", not at the expected "${expectedCreationPath}"`,
        { path: 'sys/wrapping/lookup', expectedCreationPath, creationPath: env.data.creation_path },
      );
    }
    return { creationPath: env.data.creation_path, creationTime: env.data.creation_time, creationTtlSeconds: env.data.creation_ttl };
  }

  /**
   * Checks the creation path, then unwraps with the wrapping token itself as the credential (a
   * fresh node-vault client, so this client's token is not involved). Unwrapping is single use,
   * so it is never repeated after an ambiguous failure.
   */
  async unwrapSecretId(wrappingToken: string, expectedCreationPath: string, options?: CallOptions): Promise<UnwrappedSecretId> {
    await this.lookupWrapping(wrappingToken, expectedCreationPath, options);
    const env = await this.call(
      {
        operation: 'wrapping unwrap',
        method: 'POST',
        path: 'sys/wrapping/unwrap',
        body: {},
        idempotent: false,
        schema: vaultEnvelope(SecretIdData),
      },
      options,
      newNodeVault(this.#settings, wrappingToken),
    );
    return {
      secretId: env.data.secret_id,
      secretIdAccessor: env.data.secret_id_accessor,
      secretIdTtlSeconds: env.data.secret_id_ttl,
      secretIdNumUses: env.data.secret_id_num_uses,
    };
  }

  /** AppRole login; the token goes into a new VaultClient and is never returned as a string. */
  async approleLogin(credentials: { roleId: string; secretId: string; approleMount?: string }, options?: CallOptions): Promise<LoginResult> {
    const approle = mount(credentials.approleMount ?? 'approle');
    const env = await this.call(
      {
        operation: 'approle login',
        method: 'POST',
        path: `auth/${approle}/login`,
        body: { role_id: credentials.roleId, secret_id: credentials.secretId },
        idempotent: false,
        schema: AuthResponse,
      },
      options,
      newNodeVault(this.#settings, ''),
    );
    const auth = env.auth;
    return {
      client: new VaultClient(this.#settings, auth.client_token),
      accessor: auth.accessor,
      policies: auth.token_policies ?? auth.policies ?? [],
      leaseDurationSeconds: auth.lease_duration,
      renewable: auth.renewable,
      tokenType: auth.token_type,
    };
  }

  /* ---- KV v2 ---- */

  /** Reads a secret (latest or `version`); null when absent, deleted or destroyed. */
  async kvRead<S extends z.ZodType = z.ZodRecord<z.ZodString, z.ZodUnknown>>(
    path: string,
    options?: CallOptions & { version?: number; mount?: string; schema?: S },
  ): Promise<KvSecret<z.infer<S>> | null> {
    const kvMount = mount(options?.mount ?? 'secret');
    const full = `${kvMount}/data/${kvPath(path)}`;
    const env = await this.callOrNotFound(
      {
        operation: 'kv read',
        method: 'GET',
        path: full,
        idempotent: true,
        schema: vaultEnvelope(KvReadData),
        ...(options?.version === undefined ? {} : { query: { version: String(options.version) } }),
      },
      options,
    );
    if (env === NOT_FOUND) return null;
    const data = options?.schema === undefined ? env.data.data : parseOrThrow(options.schema, env.data.data, 'kv read (secret shape)', full);
    return {
      data: data as z.infer<S>,
      version: env.data.metadata.version,
      createdTime: env.data.metadata.created_time,
      customMetadata: env.data.metadata.custom_metadata ?? null,
    };
  }

  /**
   * Writes a new version. With `cas`, Vault writes only if the current version is `cas` (0: only
   * if absent); a mismatch is ORDERLY_E_CREDENTIAL_CAS_CONFLICT. A CAS write is not retried
   * after an ambiguous failure: the retry would report a conflict with its own first attempt.
   */
  async kvWrite(
    path: string,
    data: Record<string, unknown>,
    options?: CallOptions & { cas?: number; mount?: string },
  ): Promise<{ version: number; createdTime: string }> {
    const kvMount = mount(options?.mount ?? 'secret');
    const env = await this.call(
      {
        operation: 'kv write',
        method: 'POST',
        path: `${kvMount}/data/${kvPath(path)}`,
        idempotent: options?.cas === undefined,
        body: { data, ...(options?.cas === undefined ? {} : { options: { cas: options.cas } }) },
        schema: vaultEnvelope(z.object({ version: z.number().int().positive(), created_time: z.string() })),
      },
      options,
    );
    return { version: env.data.version, createdTime: env.data.created_time };
  }

  async kvReadMetadata(path: string, options?: CallOptions & { mount?: string }): Promise<KvMetadata | null> {
    const kvMount = mount(options?.mount ?? 'secret');
    const env = await this.callOrNotFound(
      {
        operation: 'kv metadata read',
        method: 'GET',
        path: `${kvMount}/metadata/${kvPath(path)}`,
        idempotent: true,
        schema: vaultEnvelope(KvMetadataData),
      },
      options,
    );
    if (env === NOT_FOUND) return null;
    const d = env.data;
    return {
      currentVersion: d.current_version,
      oldestVersion: d.oldest_version,
      createdTime: d.created_time,
      updatedTime: d.updated_time,
      casRequired: d.cas_required,
      maxVersions: d.max_versions,
      customMetadata: d.custom_metadata ?? null,
      versions: Object.fromEntries(
        Object.entries(d.versions).map(([k, v]) => [k, { createdTime: v.created_time, deletionTime: v.deletion_time, destroyed: v.destroyed }]),
      ),
    };
  }

  /* ---- token (self) ---- */

  async lookupSelf(options?: CallOptions): Promise<TokenInfo> {
    const env = await this.call(
      { operation: 'token lookup-self', method: 'GET', path: 'auth/token/lookup-self', idempotent: true, schema: vaultEnvelope(TokenLookupData) },
      options,
    );
    const d = env.data;
    return {
      accessor: d.accessor,
      policies: d.policies,
      ttlSeconds: d.ttl,
      creationTtlSeconds: d.creation_ttl,
      expireTime: d.expire_time,
      renewable: d.renewable,
      numUses: d.num_uses,
      orphan: d.orphan,
      path: d.path,
      type: d.type,
    };
  }

  /** Renews this client's token; Vault caps the result at the token's max TTL. */
  async renewSelf(incrementSeconds?: number, options?: CallOptions): Promise<{ leaseDurationSeconds: number; renewable: boolean; warnings: string[] }> {
    const env = await this.call(
      {
        operation: 'token renew-self',
        method: 'POST',
        path: 'auth/token/renew-self',
        idempotent: true,
        schema: AuthResponse,
        body: incrementSeconds === undefined ? {} : { increment: `${incrementSeconds}s` },
      },
      options,
    );
    return { leaseDurationSeconds: env.auth.lease_duration, renewable: env.auth.renewable, warnings: env.warnings ?? [] };
  }

  /**
   * Revokes this client's token (the runner's `finally`). Not retried after an ambiguous
   * failure: a repeat after a revocation that did happen would be denied and look like an error.
   */
  async revokeSelf(options?: CallOptions): Promise<void> {
    await this.call({ operation: 'token revoke-self', method: 'POST', path: 'auth/token/revoke-self', body: {}, idempotent: false, schema: Empty }, options);
  }

  /** Revokes the token behind an accessor (the control room cutting off an active run). */
  async revokeAccessor(accessor: string, options?: CallOptions): Promise<void> {
    await this.call(
      { operation: 'token revoke-accessor', method: 'POST', path: 'auth/token/revoke-accessor', body: { accessor }, idempotent: true, schema: Empty },
      options,
    );
  }

  /* ---- transit ---- */

  async transitCreateKey(name: string, type: 'aes256-gcm96' | 'ed25519' = 'aes256-gcm96', options?: CallOptions & { mount?: string }): Promise<void> {
    await this.call(
      {
        operation: 'transit key create',
        method: 'POST',
        path: `${mount(options?.mount ?? 'transit')}/keys/${seg(name, 'key name')}`,
        body: { type },
        idempotent: true,
        schema: Empty,
      },
      options,
    );
  }

  async transitReadKey(name: string, options?: CallOptions & { mount?: string }): Promise<TransitKeyInfo> {
    const env = await this.call(
      {
        operation: 'transit key read',
        method: 'GET',
        path: `${mount(options?.mount ?? 'transit')}/keys/${seg(name, 'key name')}`,
        idempotent: true,
        schema: vaultEnvelope(TransitKeyData),
      },
      options,
    );
    const d = env.data;
    return {
      name: d.name,
      type: d.type,
      latestVersion: d.latest_version,
      minDecryptionVersion: d.min_decryption_version,
      minEncryptionVersion: d.min_encryption_version,
      deletionAllowed: d.deletion_allowed,
      latestVersionCreatedAt: versionCreatedAt(d.keys[String(d.latest_version)]),
    };
  }

  /** Rotates to a new key version; returns it. Never retried after an ambiguous failure (it would rotate twice). */
  async transitRotate(name: string, options?: CallOptions & { mount?: string }): Promise<number> {
    const transitMount = mount(options?.mount ?? 'transit');
    await this.call(
      {
        operation: 'transit key rotate',
        method: 'POST',
        path: `${transitMount}/keys/${seg(name, 'key name')}/rotate`,
        body: {},
        idempotent: false,
        schema: Empty,
      },
      options,
    );
    return (await this.transitReadKey(name, options)).latestVersion;
  }

  async transitConfigureKey(
    name: string,
    config: { minDecryptionVersion?: number; minEncryptionVersion?: number; deletionAllowed?: boolean },
    options?: CallOptions & { mount?: string },
  ): Promise<void> {
    await this.call(
      {
        operation: 'transit key config',
        method: 'POST',
        path: `${mount(options?.mount ?? 'transit')}/keys/${seg(name, 'key name')}/config`,
        idempotent: true,
        schema: Empty,
        body: {
          ...(config.minDecryptionVersion === undefined ? {} : { min_decryption_version: config.minDecryptionVersion }),
          ...(config.minEncryptionVersion === undefined ? {} : { min_encryption_version: config.minEncryptionVersion }),
          ...(config.deletionAllowed === undefined ? {} : { deletion_allowed: config.deletionAllowed }),
        },
      },
      options,
    );
  }

  /** A fresh data key: `plaintext` (for local AES-256-GCM) plus the same key encrypted under the transit key. */
  async transitDataKey(
    name: string,
    options?: CallOptions & { mount?: string; wrappedOnly?: boolean; bits?: 128 | 256 | 512 },
  ): Promise<{ plaintext: Buffer | undefined; ciphertext: string; keyVersion: number }> {
    const kind = options?.wrappedOnly === true ? 'wrapped' : 'plaintext';
    const env = await this.call(
      {
        operation: `transit datakey ${kind}`,
        method: 'POST',
        path: `${mount(options?.mount ?? 'transit')}/datakey/${kind}/${seg(name, 'key name')}`,
        body: { bits: options?.bits ?? 256 },
        idempotent: true,
        schema: vaultEnvelope(TransitDataKeyData),
      },
      options,
    );
    if (kind === 'plaintext' && env.data.plaintext === undefined) {
      throw new OrderlyError('ORDERLY_E_VAULT_ERROR', 'Vault returned no plaintext data key', { path: `transit/datakey/${kind}` });
    }
    return {
      plaintext: env.data.plaintext === undefined ? undefined : Buffer.from(env.data.plaintext, 'base64'),
      ciphertext: env.data.ciphertext,
      keyVersion: keyVersionOf(env.data.ciphertext, env.data.key_version),
    };
  }

  async transitEncrypt(
    name: string,
    plaintext: Buffer,
    options?: CallOptions & { mount?: string; associatedData?: Buffer },
  ): Promise<{ ciphertext: string; keyVersion: number }> {
    const env = await this.call(
      {
        operation: 'transit encrypt',
        method: 'POST',
        path: `${mount(options?.mount ?? 'transit')}/encrypt/${seg(name, 'key name')}`,
        idempotent: true,
        body: {
          plaintext: plaintext.toString('base64'),
          ...(options?.associatedData === undefined ? {} : { associated_data: options.associatedData.toString('base64') }),
        },
        schema: vaultEnvelope(TransitCiphertextData),
      },
      options,
    );
    return { ciphertext: env.data.ciphertext, keyVersion: keyVersionOf(env.data.ciphertext, env.data.key_version) };
  }

  async transitDecrypt(name: string, ciphertext: string, options?: CallOptions & { mount?: string; associatedData?: Buffer }): Promise<Buffer> {
    const env = await this.call(
      {
        operation: 'transit decrypt',
        method: 'POST',
        path: `${mount(options?.mount ?? 'transit')}/decrypt/${seg(name, 'key name')}`,
        idempotent: true,
        body: { ciphertext, ...(options?.associatedData === undefined ? {} : { associated_data: options.associatedData.toString('base64') }) },
        schema: vaultEnvelope(TransitPlaintextData),
      },
      options,
    );
    return Buffer.from(env.data.plaintext, 'base64');
  }

  /** Re-encrypts under the latest key version without revealing the plaintext to the caller. */
  async transitRewrap(name: string, ciphertext: string, options?: CallOptions & { mount?: string }): Promise<{ ciphertext: string; keyVersion: number }> {
    const env = await this.call(
      {
        operation: 'transit rewrap',
        method: 'POST',
        path: `${mount(options?.mount ?? 'transit')}/rewrap/${seg(name, 'key name')}`,
        idempotent: true,
        body: { ciphertext },
        schema: vaultEnvelope(TransitCiphertextData),
      },
      options,
    );
    return { ciphertext: env.data.ciphertext, keyVersion: keyVersionOf(env.data.ciphertext, env.data.key_version) };
  }

  /** The public key of the newest version of an ed25519 Transit key (Vault returns it raw, base64). */
  async transitSigningKey(name: string, options?: CallOptions & { mount?: string }): Promise<{ version: number; publicKey: KeyObject }> {
    const env = await this.call(
      {
        operation: 'transit key read',
        method: 'GET',
        path: `${mount(options?.mount ?? 'transit')}/keys/${seg(name, 'key name')}`,
        idempotent: true,
        schema: vaultEnvelope(TransitKeyData),
      },
      options,
    );
    const version = env.data.latest_version;
    const entry = z.object({ public_key: z.base64() }).safeParse(env.data.keys[String(version)]);
    if (env.data.type !== 'ed25519' || !entry.success)
      throw new OrderlyError('ORDERLY_E_VAULT_ERROR', `transit key ${name} is not an ed25519 signing key`, { path: `transit/keys/${name}` });
    const raw = Buffer.from(entry.data.public_key, 'base64');
    return { version, publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' }) };
  }

  async transitSign(name: string, input: Buffer, options?: CallOptions & { mount?: string }): Promise<{ signature: string; keyVersion: number }> {
    const env = await this.call(
      {
        operation: 'transit sign',
        method: 'POST',
        path: `${mount(options?.mount ?? 'transit')}/sign/${seg(name, 'key name')}`,
        idempotent: true,
        body: { input: input.toString('base64') },
        schema: vaultEnvelope(TransitSignData),
      },
      options,
    );
    return { signature: env.data.signature, keyVersion: keyVersionOf(env.data.signature, env.data.key_version) };
  }

  async transitVerify(name: string, input: Buffer, signature: string, options?: CallOptions & { mount?: string }): Promise<boolean> {
    const env = await this.call(
      {
        operation: 'transit verify',
        method: 'POST',
        path: `${mount(options?.mount ?? 'transit')}/verify/${seg(name, 'key name')}`,
        idempotent: true,
        body: { input: input.toString('base64'), signature },
        schema: vaultEnvelope(TransitVerifyData),
      },
      options,
    );
    return env.data.valid;
  }
}

/** Makes VaultClients; each call builds a new node-vault client, never a shared one. */
export interface VaultClientFactory {
  /** A client that authenticates with `token`. */
  withToken(token: string): VaultClient;
  /** A client without a token: health, wrapping lookup/unwrap and AppRole login. */
  anonymous(): VaultClient;
}

export function createVaultClientFactory(config: VaultClientConfig): VaultClientFactory {
  let address: URL;
  try {
    address = new URL(config.address);
  } catch {
    throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', 'the Vault address is not a URL', { variable: 'VAULT_ADDR' });
  }
  if (address.protocol !== 'http:' && address.protocol !== 'https:') {
    throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', 'the Vault address must be http(s)', { variable: 'VAULT_ADDR' });
  }
  const settings: Settings = Object.freeze({
    address: config.address.replace(/\/+$/, ''),
    namespace: config.namespace ?? '',
    caCert: config.caCert,
    clock: config.clock ?? systemClock,
    policy: {
      requestTimeoutMs: config.requestTimeoutMs ?? 5_000,
      baseDelayMs: config.baseDelayMs ?? 100,
      maxDelayMs: config.maxDelayMs ?? 2_000,
    },
    defaultBudgetMs: config.defaultBudgetMs ?? 15_000,
    onRetry: config.onRetry,
  });
  return {
    withToken: (token) => {
      if (token === '') throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'an empty Vault token was given');
      return new VaultClient(settings, token);
    },
    anonymous: () => new VaultClient(settings, ''),
  };
}
