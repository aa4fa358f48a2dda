import { randomUUID } from 'node:crypto';
import { OrderlyError } from '@orderly/shared';
import type { Principal } from '../access/permissions';
import { IdentityDeps, iso, ms } from './deps';
import { TokenView } from './schemas';
import { API_TOKEN_PREFIX, newSecret, secretHash } from './tokens';

export type TokenOwner = { kind: 'user' | 'service'; id: string; name: string; roles: readonly string[] };

interface TokenRow {
  id: string;
  owner_kind: 'user' | 'service';
  owner_id: string;
  owner_name: string | null;
  name: string;
  scopes: string[];
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

export interface ResolvedToken {
  tokenId: string;
  owner: TokenOwner;
  /** The token's scopes that its owner still holds: removing a role removes it from every token. */
  roles: string[];
}

const SELECT_TOKENS = `SELECT t.*, COALESCE(u.username, s.name) AS owner_name FROM api_tokens t
  LEFT JOIN users u ON t.owner_kind = 'user' AND u.id = t.owner_id
  LEFT JOIN service_accounts s ON t.owner_kind = 'service' AND s.id = t.owner_id`;

/**
 * API tokens for the CLI and CI: owned by a person or a service account, scoped to a subset of
 * the owner's roles, always expiring, shown once and stored as a SHA-256 hash. Every request
 * checks the database, so a revocation (or a disabled owner, or a removed role) applies at once.
 */
export class ApiTokens {
  constructor(private readonly deps: IdentityDeps) {}

  async create(
    owner: TokenOwner,
    request: { name: string; scopes?: readonly string[] | undefined; expiresInDays: number },
  ): Promise<TokenView & { token: string }> {
    if (request.expiresInDays > this.deps.settings.tokenMaxDays) {
      throw new OrderlyError('ORDERLY_E_BAD_REQUEST', `tokens expire within ${this.deps.settings.tokenMaxDays} days (ORDERLY_TOKEN_MAX_DAYS)`, {
        maxDays: this.deps.settings.tokenMaxDays,
      });
    }
    const scopes = [...new Set(request.scopes ?? owner.roles)];
    const beyond = scopes.filter((s) => !owner.roles.includes(s));
    if (beyond.length > 0) throw new OrderlyError('ORDERLY_E_FORBIDDEN', 'a token can carry only roles its owner holds', { scopes: beyond });
    if (scopes.length === 0) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'a token needs at least one role');
    const token = newSecret(API_TOKEN_PREFIX);
    const id = randomUUID();
    const now = this.deps.clock();
    await this.deps.db.query(
      'INSERT INTO api_tokens (id, token_hash, owner_kind, owner_id, name, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
      [id, secretHash(token), owner.kind, owner.id, request.name, scopes, iso(now), iso(now + request.expiresInDays * 86_400_000)],
    );
    return { ...(await this.get(id)), token };
  }

  async get(id: string): Promise<TokenView> {
    const [row] = await this.deps.db.query<TokenRow>(`${SELECT_TOKENS} WHERE t.id::text = $1`, [id]);
    if (!row) throw new OrderlyError('ORDERLY_E_NOT_FOUND', 'no such token');
    return this.view(row);
  }

  /** One owner's tokens, or every token (the security team's view). */
  async list(owner: { kind: 'user' | 'service'; id: string } | 'all'): Promise<TokenView[]> {
    const rows =
      owner === 'all'
        ? await this.deps.db.query<TokenRow>(`${SELECT_TOKENS} ORDER BY t.created_at`)
        : await this.deps.db.query<TokenRow>(`${SELECT_TOKENS} WHERE t.owner_kind = $1 AND t.owner_id = $2 ORDER BY t.created_at`, [owner.kind, owner.id]);
    return rows.map((r) => this.view(r));
  }

  /** Revokes a token: its owner may, and so may whoever holds users.manage. */
  async revoke(id: string, by: Principal): Promise<TokenView> {
    const [row] = await this.deps.db.query<TokenRow>(`${SELECT_TOKENS} WHERE t.id::text = $1`, [id]);
    const owns = row !== undefined && row.owner_kind === by.kind && row.owner_id === by.id;
    // Someone else's token answers like a missing one: ids of other people's tokens are not confirmed.
    if (!row || (!owns && !by.permissions.has('users.manage'))) throw new OrderlyError('ORDERLY_E_NOT_FOUND', 'no such token');
    await this.deps.db.query('UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2), revoked_by = COALESCE(revoked_by, $3) WHERE id = $1', [
      row.id,
      iso(this.deps.clock()),
      by.actor,
    ]);
    return this.get(row.id);
  }

  /** The live token for a presented bearer value, or undefined (unknown, revoked, expired, owner disabled). */
  async resolve(token: string): Promise<ResolvedToken | undefined> {
    const [row] = await this.deps.db.query<{
      id: string;
      owner_kind: 'user' | 'service';
      owner_id: string;
      scopes: string[];
      expires_at: Date;
      revoked_at: Date | null;
      last_used_at: Date | null;
      owner_name: string | null;
      owner_roles: string[] | null;
      owner_disabled: Date | null;
      owner_enrolled: boolean;
    }>(
      `SELECT t.id, t.owner_kind, t.owner_id, t.scopes, t.expires_at, t.revoked_at, t.last_used_at,
              COALESCE(u.username, s.name) AS owner_name, COALESCE(u.roles, s.roles) AS owner_roles,
              COALESCE(u.disabled_at, s.disabled_at) AS owner_disabled, (t.owner_kind = 'service' OR u.enrolled_at IS NOT NULL) AS owner_enrolled
       FROM api_tokens t
       LEFT JOIN users u ON t.owner_kind = 'user' AND u.id = t.owner_id
       LEFT JOIN service_accounts s ON t.owner_kind = 'service' AND s.id = t.owner_id
       WHERE t.token_hash = $1`,
      [secretHash(token)],
    );
    const now = this.deps.clock();
    if (
      !row ||
      row.revoked_at !== null ||
      ms(row.expires_at)! <= now ||
      !row.owner_name ||
      !row.owner_roles ||
      row.owner_disabled !== null ||
      !row.owner_enrolled
    )
      return undefined;
    // last_used_at is a hint for the owner's list; written at most once a minute per token.
    if ((ms(row.last_used_at) ?? 0) < now - 60_000) await this.deps.db.query('UPDATE api_tokens SET last_used_at = $2 WHERE id = $1', [row.id, iso(now)]);
    const ownerRoles = row.owner_roles;
    return {
      tokenId: row.id,
      owner: { kind: row.owner_kind, id: row.owner_id, name: row.owner_name, roles: ownerRoles },
      roles: row.scopes.filter((s) => ownerRoles.includes(s)),
    };
  }

  private view(row: TokenRow): TokenView {
    return {
      id: row.id,
      name: row.name,
      owner: `${row.owner_kind}:${row.owner_name ?? row.owner_id}`,
      scopes: row.scopes,
      createdAt: iso(ms(row.created_at)!),
      expiresAt: iso(ms(row.expires_at)!),
      revoked: row.revoked_at !== null,
      lastUsedAt: row.last_used_at === null ? null : iso(ms(row.last_used_at)!),
    };
  }
}
