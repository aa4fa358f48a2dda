import { randomUUID } from 'node:crypto';
import { loadPublicKey, OrderlyError, publicKeyPem, runnerKeyId, SegmentName } from '@orderly/shared';
import type { Queryable } from '../db/db';
import { IdentityDeps, iso, ms } from './deps';
import { RunnerIdentityView } from './schemas';
import { newSecret, RUNNER_TOKEN_PREFIX, secretHash } from './tokens';

interface RunnerRow {
  id: string;
  name: string;
  segment: string;
  created_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
  pending_request: string | null;
  key_id: string | null;
}

/**
 * One identity per runner, bound to one segment: its token admits it to the runner API of that
 * segment only. Revocation is checked on every request, so it applies at once.
 */
export class RunnerIdentities {
  /** `onKeysChanged`: told after a registration or revocation, so reports see it without waiting for a cache. */
  constructor(private readonly deps: IdentityDeps & { segments: readonly SegmentName[]; onKeysChanged?: () => Promise<void> }) {}

  /**
   * Registers a runner with its token (shown once) and its Ed25519 report-signing public key,
   * made on the runner (`orderly runner keygen`): the control room never makes or sees a runner's
   * private key, so neither it nor a database reader can sign a report (without one:
   * ORDERLY_E_RUNNER_KEY_REQUIRED, nothing registered). With `pendingRequest` the identity
   * admits nothing (no request, no report) until that access request is confirmed.
   */
  async register(
    name: string,
    segment: SegmentName,
    createdBy: string,
    options: { publicKeyPem?: string | undefined; pendingRequest?: string | undefined; db?: Queryable } = {},
  ): Promise<RunnerIdentityView & { token: string }> {
    const db = options.db ?? this.deps.db;
    if (!this.deps.segments.includes(segment))
      throw new OrderlyError('ORDERLY_E_SEGMENT_UNKNOWN', `segment ${segment} is not served by this control room`, { segment });
    if (options.publicKeyPem === undefined) {
      throw new OrderlyError(
        'ORDERLY_E_RUNNER_KEY_REQUIRED',
        "a runner brings its own report-signing key: send the public key (publicKey) of a pair made on the runner with 'orderly runner keygen'",
        { field: 'publicKey' },
      );
    }
    const publicKey = loadPublicKey(options.publicKeyPem);
    const token = newSecret(RUNNER_TOKEN_PREFIX);
    try {
      const [row] = await db.query<RunnerRow>(
        'INSERT INTO runner_identities (id, name, segment, token_hash, created_by, pending_request, public_key, key_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *',
        [randomUUID(), name, segment, secretHash(token), createdBy, options.pendingRequest ?? null, publicKeyPem(publicKey), runnerKeyId(publicKey)],
      );
      await this.deps.onKeysChanged?.();
      return { ...this.view(row!), token };
    } catch (err) {
      if ((err as { code?: unknown }).code === '23505')
        throw new OrderlyError('ORDERLY_E_IDENTITY_CONFLICT', `runner ${name} already exists, or its key is another runner's`, { name });
      throw err;
    }
  }

  /**
   * Revokes a segment's bootstrap runner credentials (the token and key files the control room
   * made): permanent, and reached by every control room within the report-key cache delay.
   */
  async revokeBootstrap(segment: SegmentName, revokedBy: string): Promise<{ segment: string; revokedAt: string; revokedBy: string }> {
    if (!this.deps.segments.includes(segment))
      throw new OrderlyError('ORDERLY_E_SEGMENT_UNKNOWN', `segment ${segment} is not served by this control room`, { segment });
    await this.deps.db.query(
      'INSERT INTO bootstrap_runner_revocations (segment, revoked_at, revoked_by) VALUES ($1, $2, $3) ON CONFLICT (segment) DO NOTHING',
      [segment, iso(this.deps.clock()), revokedBy],
    );
    const [row] = await this.deps.db.query<{ segment: string; revoked_at: Date; revoked_by: string }>(
      'SELECT * FROM bootstrap_runner_revocations WHERE segment = $1',
      [segment],
    );
    await this.deps.onKeysChanged?.();
    return { segment: row!.segment, revokedAt: iso(ms(row!.revoked_at)!), revokedBy: row!.revoked_by };
  }

  async list(): Promise<RunnerIdentityView[]> {
    return (await this.deps.db.query<RunnerRow>('SELECT * FROM runner_identities ORDER BY name')).map((r) => this.view(r));
  }

  async revoke(idOrName: string): Promise<RunnerIdentityView> {
    const [row] = await this.deps.db.query<RunnerRow>(
      'UPDATE runner_identities SET revoked_at = COALESCE(revoked_at, $2) WHERE id::text = $1 OR name = $1 RETURNING *',
      [idOrName, iso(this.deps.clock())],
    );
    if (!row) throw new OrderlyError('ORDERLY_E_NOT_FOUND', 'no such runner');
    await this.deps.onKeysChanged?.();
    return this.view(row);
  }

  async resolve(token: string): Promise<{ id: string; name: string; segment: SegmentName } | undefined> {
    const [row] = await this.deps.db.query<RunnerRow>(
      'SELECT * FROM runner_identities WHERE token_hash = $1 AND revoked_at IS NULL AND pending_request IS NULL',
      [secretHash(token)],
    );
    if (!row) return undefined;
    const now = this.deps.clock();
    if ((ms(row.last_used_at) ?? 0) < now - 60_000)
      await this.deps.db.query('UPDATE runner_identities SET last_used_at = $2 WHERE id = $1', [row.id, iso(now)]);
    return { id: row.id, name: row.name, segment: row.segment as SegmentName };
  }

  private view(row: RunnerRow): RunnerIdentityView {
    return {
      id: row.id,
      name: row.name,
      segment: row.segment,
      revoked: row.revoked_at !== null,
      pending: row.pending_request !== null,
      createdAt: iso(ms(row.created_at)!),
      lastUsedAt: row.last_used_at === null ? null : iso(ms(row.last_used_at)!),
      keyId: row.key_id,
    };
  }
}
