import { randomUUID } from 'node:crypto';
import { OrderlyError, SegmentName } from '@orderly/shared';
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
}

/**
 * One identity per runner, bound to one segment: its token admits it to the runner API of that
 * segment only. Revocation is checked on every request, so it applies at once.
 */
export class RunnerIdentities {
  constructor(private readonly deps: IdentityDeps & { segments: readonly SegmentName[] }) {}

  async register(name: string, segment: SegmentName, createdBy: string): Promise<RunnerIdentityView & { token: string }> {
    if (!this.deps.segments.includes(segment)) throw new OrderlyError('ORDERLY_E_SEGMENT_UNKNOWN', `segment ${segment} is not served by this control room`, { segment });
    const token = newSecret(RUNNER_TOKEN_PREFIX);
    try {
      const [row] = await this.deps.db.query<RunnerRow>(
        'INSERT INTO runner_identities (id, name, segment, token_hash, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING *',
        [randomUUID(), name, segment, secretHash(token), createdBy],
      );
      return { ...this.view(row!), token };
    } catch (err) {
      if ((err as { code?: unknown }).code === '23505') throw new OrderlyError('ORDERLY_E_IDENTITY_CONFLICT', `runner ${name} already exists`, { name });
      throw err;
    }
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
    return this.view(row);
  }

  async resolve(token: string): Promise<{ id: string; name: string; segment: SegmentName } | undefined> {
    const [row] = await this.deps.db.query<RunnerRow>('SELECT * FROM runner_identities WHERE token_hash = $1 AND revoked_at IS NULL', [secretHash(token)]);
    if (!row) return undefined;
    const now = this.deps.clock();
    if ((ms(row.last_used_at) ?? 0) < now - 60_000) await this.deps.db.query('UPDATE runner_identities SET last_used_at = $2 WHERE id = $1', [row.id, iso(now)]);
    return { id: row.id, name: row.name, segment: row.segment as SegmentName };
  }

  private view(row: RunnerRow): RunnerIdentityView {
    return { id: row.id, name: row.name, segment: row.segment, revoked: row.revoked_at !== null, createdAt: iso(ms(row.created_at)!), lastUsedAt: row.last_used_at === null ? null : iso(ms(row.last_used_at)!) };
  }
}
