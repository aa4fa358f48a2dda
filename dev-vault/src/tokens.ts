import type { AuthBlock, JsonObject } from './types';
import { VaultHttpError, badRequest } from './types';
import { formatGoDuration, newAccessor, newTokenId, rfc3339, secondsLeft, sortedUnique, unixSeconds } from './util';

/** Vault's system defaults (`default_lease_ttl` / `max_lease_ttl`), 768h. */
export const SYSTEM_DEFAULT_TTL = 768 * 3600;
export const SYSTEM_MAX_TTL = 768 * 3600;

export interface TokenEntry {
  id: string;
  accessor: string;
  type: 'service' | 'batch';
  policies: string[];
  meta: Record<string, string> | null;
  displayName: string;
  /** The path that created it: auth/token/create, auth/approle/login, ... */
  path: string;
  createdAt: number;
  creationTtl: number;
  /** ms; null for a token that never expires (root). */
  expiresAt: number | null;
  /** ms; the hard end no renewal can pass (explicit_max_ttl, role max or the system max). */
  maxExpiresAt: number | null;
  explicitMaxTtl: number;
  /** Remaining uses; 0 means unlimited. */
  numUses: number;
  renewable: boolean;
  orphan: boolean;
  boundCidrs: string[];
  lastRenewal: number | null;
}

export interface CreateTokenInput {
  policies: string[];
  noDefaultPolicy?: boolean;
  ttl?: number;
  maxTtl?: number;
  explicitMaxTtl?: number;
  numUses?: number;
  renewable?: boolean;
  meta?: Record<string, string> | null;
  displayName?: string;
  path: string;
  orphan?: boolean;
  type?: 'service' | 'batch';
  boundCidrs?: string[];
  id?: string;
}

/**
 * The token store. TTLs are enforced against the injected clock on every lookup, so a test can
 * move time forward instead of sleeping; an expired token is purged the first time it is seen.
 */
export class TokenStore {
  private readonly byId = new Map<string, TokenEntry>();
  private readonly byAccessor = new Map<string, string>();

  constructor(private readonly now: () => number) {}

  create(input: CreateTokenInput): TokenEntry {
    const now = this.now();
    const type = input.type ?? 'service';
    const policies = input.policies.includes('root')
      ? sortedUnique(input.policies)
      : sortedUnique(input.noDefaultPolicy === true ? input.policies : [...input.policies, 'default']);
    const isRoot = policies.includes('root');
    const explicitMaxTtl = input.explicitMaxTtl ?? 0;
    const caps = [explicitMaxTtl, input.maxTtl ?? 0].filter((x) => x > 0);
    const maxTtl = isRoot && input.ttl === undefined && caps.length === 0 ? 0 : Math.min(SYSTEM_MAX_TTL, ...caps);
    let ttl = input.ttl !== undefined && input.ttl > 0 ? input.ttl : isRoot ? 0 : SYSTEM_DEFAULT_TTL;
    if (maxTtl > 0 && (ttl === 0 || ttl > maxTtl)) ttl = maxTtl;
    const id = input.id ?? newTokenId(type);
    const entry: TokenEntry = {
      id,
      accessor: type === 'batch' ? '' : newAccessor(),
      type,
      policies,
      meta: input.meta ?? null,
      displayName: input.displayName ?? 'token',
      path: input.path,
      createdAt: now,
      creationTtl: ttl,
      expiresAt: ttl > 0 ? now + ttl * 1000 : null,
      maxExpiresAt: maxTtl > 0 ? now + maxTtl * 1000 : null,
      explicitMaxTtl,
      numUses: type === 'batch' ? 0 : Math.max(0, input.numUses ?? 0),
      // Batch tokens and tokens that never expire have no lease to renew.
      renewable: type === 'batch' || ttl === 0 ? false : (input.renewable ?? true),
      orphan: input.orphan ?? false,
      boundCidrs: input.boundCidrs ?? [],
      lastRenewal: null,
    };
    this.byId.set(id, entry);
    if (entry.accessor !== '') this.byAccessor.set(entry.accessor, id);
    return entry;
  }

  /** The live entry for `id`, or undefined when unknown, revoked or expired. */
  lookup(id: string | undefined): TokenEntry | undefined {
    if (id === undefined || id === '') return undefined;
    const entry = this.byId.get(id);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= this.now()) {
      this.remove(entry);
      return undefined;
    }
    return entry;
  }

  lookupAccessor(accessor: string): TokenEntry | undefined {
    const id = this.byAccessor.get(accessor);
    return id === undefined ? undefined : this.lookup(id);
  }

  /** Counts one use; true when that was the last one and the token must go after this request. */
  use(entry: TokenEntry): boolean {
    if (entry.numUses === 0) return false;
    entry.numUses -= 1;
    if (entry.numUses === 0) {
      // Mark it spent: 0 means "unlimited" in the entry, so keep it out of later lookups now.
      entry.numUses = -1;
      return true;
    }
    return false;
  }

  isSpent(entry: TokenEntry): boolean {
    return entry.numUses < 0;
  }

  revoke(entry: TokenEntry): void {
    if (entry.type === 'batch') throw badRequest('batch tokens cannot be revoked');
    this.remove(entry);
  }

  remove(entry: TokenEntry): void {
    this.byId.delete(entry.id);
    if (entry.accessor !== '') this.byAccessor.delete(entry.accessor);
  }

  ttlOf(entry: TokenEntry): number {
    return entry.expiresAt === null ? 0 : secondsLeft(entry.expiresAt, this.now());
  }

  /**
   * Renews from now by `increment` (default: the token's original TTL), never past the token's
   * max TTL; a capped renewal carries Vault's warning.
   */
  renew(entry: TokenEntry, increment: number | undefined): { auth: AuthBlock; warnings: string[] } {
    if (entry.expiresAt === null) throw badRequest('lease not found');
    if (!entry.renewable) throw badRequest('lease is not renewable');
    const now = this.now();
    const wanted = increment !== undefined && increment > 0 ? increment : entry.creationTtl;
    let ttl = wanted;
    const warnings: string[] = [];
    if (entry.maxExpiresAt !== null) {
      const left = secondsLeft(entry.maxExpiresAt, now);
      if (ttl > left) {
        const maxTtl = Math.floor((entry.maxExpiresAt - entry.createdAt) / 1000);
        warnings.push(`TTL of "${formatGoDuration(wanted)}" exceeded the effective max_ttl of "${formatGoDuration(maxTtl)}"; TTL value is capped accordingly`);
        ttl = left;
      }
    }
    if (ttl <= 0) throw new VaultHttpError(400, 'past the max TTL, cannot renew');
    entry.expiresAt = now + ttl * 1000;
    entry.lastRenewal = now;
    return { auth: this.authBlock(entry), warnings };
  }

  /** The `auth` object of a response that hands out or renews this token. */
  authBlock(entry: TokenEntry): AuthBlock {
    return {
      client_token: entry.id,
      accessor: entry.accessor,
      policies: [...entry.policies],
      token_policies: [...entry.policies],
      metadata: entry.meta === null ? null : { ...entry.meta },
      // The TTL just granted, as Vault answers it: a floor of the time left would say 299 for 300
      // once a millisecond has passed since the grant.
      lease_duration: entry.expiresAt === null ? 0 : Math.max(0, Math.round((entry.expiresAt - this.now()) / 1000)),
      renewable: entry.renewable,
      entity_id: '',
      token_type: entry.type,
      orphan: entry.orphan,
      mfa_requirement: null,
      num_uses: Math.max(0, entry.numUses),
    };
  }

  /** `data` of auth/token/lookup*; lookup-accessor blanks the id like Vault does. */
  lookupData(entry: TokenEntry, includeId: boolean): JsonObject {
    const data: JsonObject = {
      accessor: entry.accessor,
      creation_time: unixSeconds(entry.createdAt),
      creation_ttl: entry.creationTtl,
      display_name: entry.displayName,
      entity_id: '',
      expire_time: entry.expiresAt === null ? null : rfc3339(entry.expiresAt),
      explicit_max_ttl: entry.explicitMaxTtl,
      id: includeId ? entry.id : '',
      issue_time: rfc3339(entry.createdAt),
      meta: entry.meta === null ? null : { ...entry.meta },
      num_uses: Math.max(0, entry.numUses),
      orphan: entry.orphan,
      path: entry.path,
      policies: [...entry.policies],
      renewable: entry.renewable,
      ttl: this.ttlOf(entry),
      type: entry.type,
    };
    if (entry.lastRenewal !== null) {
      data.last_renewal = rfc3339(entry.lastRenewal);
      data.last_renewal_time = unixSeconds(entry.lastRenewal);
    }
    return data;
  }
}
