import { runnerKeyId, SegmentName } from '@orderly/shared';
import { Queryable } from '../db/db';

export interface RunnerKey {
  /** SHA-256 of the runner's token: what reports are MACed with, and all the control room keeps of it. */
  tokenSha256: Buffer;
  segment: SegmentName;
}

/**
 * The credentials runners sign reports with, by key id: each segment's bootstrap runner token, and
 * every runner identity not revoked. Identities are re-read at most every `ttlMs`, and on an
 * unknown key at most once a second (a flood of forged reports does not become a flood of
 * queries); a revocation reaches reports within `ttlMs`.
 */
export class RunnerKeys {
  private readonly bootstrap: ReadonlyMap<string, RunnerKey>;
  private identities = new Map<string, RunnerKey>();
  private loadedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly db: Queryable,
    bootstrapTokenHashes: ReadonlyMap<SegmentName, Buffer>,
    private readonly ttlMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {
    this.bootstrap = new Map([...bootstrapTokenHashes].map(([segment, hash]) => [runnerKeyId(hash), { tokenSha256: hash, segment }]));
  }

  async get(keyId: string): Promise<RunnerKey | undefined> {
    const bootstrap = this.bootstrap.get(keyId);
    if (bootstrap) return bootstrap;
    const age = this.now() - this.loadedAt;
    if (age > this.ttlMs || (!this.identities.has(keyId) && age > 1000)) await this.reload();
    return this.identities.get(keyId);
  }

  private async reload(): Promise<void> {
    const rows = await this.db.query<{ token_hash: string; segment: string }>('SELECT token_hash, segment FROM runner_identities WHERE revoked_at IS NULL');
    this.identities = new Map(rows.map((r) => {
      const tokenSha256 = Buffer.from(r.token_hash, 'hex');
      return [runnerKeyId(tokenSha256), { tokenSha256, segment: r.segment as SegmentName }];
    }));
    this.loadedAt = this.now();
  }
}
