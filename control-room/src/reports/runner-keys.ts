import { createPublicKey, KeyObject } from 'node:crypto';
import { runnerKeyId, SegmentName } from '@orderly/shared';
import { Queryable } from '../db/db';

export interface RunnerKey {
  /** The runner's Ed25519 public key: reports carry a signature that only its private key makes. */
  publicKey: KeyObject;
  segment: SegmentName;
  /** `runner:<name>` of a registered identity, `runner:<segment>` of a bootstrap runner. */
  runner: string;
}

/** How long a revocation may take to reach reports (documented in the README). */
export const RUNNER_KEYS_TTL_MS = 10_000;

/**
 * The public keys runners sign reports with, by key id: each segment's bootstrap runner key (unless
 * revoked), and the key of every runner identity not revoked. The database holds public keys only,
 * so someone who reads it cannot sign a report. Keys are re-read at most every `ttlMs`, and on an
 * unknown key at most once a second (a flood of forged reports does not become a flood of
 * queries); a revocation reaches reports within `ttlMs`.
 */
export class RunnerKeys {
  private readonly bootstrap: ReadonlyMap<string, RunnerKey>;
  private keys = new Map<string, RunnerKey>();
  private revokedBootstrap = new Set<string>();
  private loadedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly db: Queryable,
    bootstrapPublicKeys: ReadonlyMap<SegmentName, KeyObject>,
    private readonly ttlMs = RUNNER_KEYS_TTL_MS,
    private readonly now: () => number = Date.now,
    /** Told of each bootstrap revocation seen in the database, so the HTTP side drops its token too. */
    private readonly onBootstrapRevoked: (segment: SegmentName) => void = () => undefined,
  ) {
    this.bootstrap = new Map(
      [...bootstrapPublicKeys].map(([segment, publicKey]) => [runnerKeyId(publicKey), { publicKey, segment, runner: `runner:${segment}` }]),
    );
  }

  async get(keyId: string): Promise<RunnerKey | undefined> {
    const age = this.now() - this.loadedAt;
    if (age > this.ttlMs || (!this.bootstrap.has(keyId) && !this.keys.has(keyId) && age > 1000)) await this.reload();
    const bootstrap = this.bootstrap.get(keyId);
    if (bootstrap) return this.revokedBootstrap.has(bootstrap.segment) ? undefined : bootstrap;
    return this.keys.get(keyId);
  }

  /** Re-reads keys and revocations now: after a local registration or revocation, and on a timer. */
  async reload(): Promise<void> {
    const rows = await this.db.query<{ name: string; key_id: string; public_key: string; segment: string }>(
      'SELECT name, key_id, public_key, segment FROM runner_identities WHERE revoked_at IS NULL AND key_id IS NOT NULL',
    );
    const keys = new Map<string, RunnerKey>();
    for (const r of rows) {
      try {
        // The id is recomputed, not taken from the row: a key is heard only under its own fingerprint.
        const publicKey = createPublicKey(r.public_key);
        keys.set(runnerKeyId(publicKey), { publicKey, segment: r.segment as SegmentName, runner: `runner:${r.name}` });
      } catch {
        // A row whose key does not parse signs nothing; registration checks keys, so this is damage.
      }
    }
    const revoked = await this.db.query<{ segment: string }>('SELECT segment FROM bootstrap_runner_revocations');
    this.revokedBootstrap = new Set(revoked.map((r) => r.segment));
    for (const segment of this.revokedBootstrap) this.onBootstrapRevoked(segment as SegmentName);
    this.keys = keys;
    this.loadedAt = this.now();
  }
}
