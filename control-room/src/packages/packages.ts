import {
  BotManifest,
  BotName,
  BotVersion,
  DsseEnvelope,
  envelopeKeyIds,
  KeyId,
  openPackage,
  isOrderlyError,
  OrderlyError,
  PackageDigest,
  PackageView,
  requireContactsForProduction,
  SegmentName,
  verifyPackageEnvelope,
} from '@orderly/shared';
import { CredentialBroker } from '../credentials/broker';
import { Db } from '../db/db';
import { PublisherKeys } from '../keys/publisher-keys';
import { Ownership, requireBoundKey } from './ownership';

interface PackageRow {
  digest: string;
  name: string;
  version: string;
  publisher_key_id: string;
  manifest: BotManifest;
  envelope: DsseEnvelope;
  size: number;
  created_at: Date;
  published_by: string | null;
  published_by_actor: string | null;
  published_by_kind: string | null;
  vault_role: string | null;
}

export interface StoredPackage {
  view: PackageView;
  manifest: BotManifest;
  envelope: DsseEnvelope;
  /** The principal that published it; null for packages published before this was recorded. */
  publishedBy: Publisher | null;
  /** The Vault role written for this version once it was accepted; null when it declares no credentials (or predates per-version roles). */
  vaultRole: string | null;
}

/** Who published a package: the principal's stable id (separation of duties), audit actor and kind. */
export interface Publisher {
  id: string;
  actor: string;
  /** `user`, `service` or `admin`; undefined for packages published before this was recorded. */
  kind?: string;
}

const toStored = (r: PackageRow): StoredPackage => ({
  view: {
    name: r.name as BotName,
    version: r.version as BotVersion,
    digest: r.digest as PackageDigest,
    publisherKeyId: r.publisher_key_id as KeyId,
    segments: r.manifest.segments,
    size: r.size,
    createdAt: r.created_at.toISOString(),
  },
  manifest: r.manifest,
  envelope: r.envelope,
  publishedBy:
    r.published_by === null
      ? null
      : { id: r.published_by, actor: r.published_by_actor ?? r.published_by, ...(r.published_by_kind ? { kind: r.published_by_kind } : {}) },
  vaultRole: r.vault_role,
});

/** Package ingest and lookup. Blobs are stored by digest, in the same database as their record. */
export class Packages {
  constructor(
    private readonly db: Db,
    private readonly keys: PublisherKeys,
    private readonly limits: { maxArchiveBytes: number; segments: readonly SegmentName[]; prodSegments?: readonly SegmentName[] },
    private readonly credentials: CredentialBroker,
    private readonly ownership: Ownership,
  ) {}

  /**
   * Verifies and stores a package: registered key, signature, digest, safe archive, valid manifest,
   * known segments, and a key of the team that owns the name (the first publish claims it).
   * Publishing identical bytes again is a no-op; other bytes for an existing version are refused.
   *
   * Nothing changes unless every check passes: the version's Vault role is written last, inside
   * the transaction that stores it, so a refused upload (another team's key, a conflict, a bad
   * manifest) never touches Vault, a Vault that cannot write the role stores nothing, and a
   * transaction that fails after the write (its commit included) deletes the role again. Each
   * version has a role of its own: no upload changes what another version leases.
   */
  async ingest(
    archive: Buffer,
    envelope: DsseEnvelope,
    publishedBy?: Publisher,
    options: { team?: string } = {},
  ): Promise<{ pkg: StoredPackage; created: boolean }> {
    let publisher: { keyId: KeyId; key: import('node:crypto').KeyObject } | undefined;
    for (const keyId of envelopeKeyIds(envelope)) {
      publisher = await this.keys.activeKey(keyId);
      if (publisher) break;
    }
    if (!publisher) throw new OrderlyError('ORDERLY_E_KEY_UNKNOWN', 'the package is not signed by a registered publisher key');
    const opened = openPackage(archive, { maxArchiveBytes: this.limits.maxArchiveBytes, maxUnpackedBytes: this.limits.maxArchiveBytes * 5, maxEntries: 1000 });
    verifyPackageEnvelope(envelope, publisher.key, opened.digest, opened.manifest);
    const unknown = opened.manifest.segments.filter((s) => !this.limits.segments.includes(s));
    if (unknown.length > 0) {
      throw new OrderlyError('ORDERLY_E_SEGMENT_UNKNOWN', `bot.json names segments this control room does not serve: ${unknown.join(', ')}`, {
        segments: unknown,
      });
    }
    requireContactsForProduction(opened.manifest, this.limits.prodSegments ?? []);
    const signingKey = publisher;
    const ctx = { actor: publishedBy?.actor ?? 'unknown' };
    // The role written in the transaction below, if any: Vault is not part of the transaction, so
    // when it fails after the write (the claim's audit, the commit itself) the role is deleted
    // again, and no role outlives a version that was never stored.
    let provisioned: string | undefined;
    try {
      return await this.storeVersion(archive, envelope, opened, signingKey.keyId, publishedBy, options, ctx, (role) => (provisioned = role));
    } catch (err) {
      if (provisioned !== undefined) await this.withdrawRole(provisioned, err);
      throw err;
    }
  }

  /** Deletes the role of a version that was not stored; a Vault that cannot is named in the error it adds to. */
  private async withdrawRole(role: string, cause: unknown): Promise<void> {
    try {
      await this.credentials.withdraw(role);
    } catch (withdrawal) {
      // The publish failed anyway; say that its role may be left, so the operator removes it.
      throw new OrderlyError(
        'ORDERLY_E_VAULT_UNAVAILABLE',
        `the version was not stored, and its Vault role ${role} could not be deleted again; delete it by hand`,
        { role, cause: isOrderlyError(cause) ? cause.code : 'unexpected', withdrawal: isOrderlyError(withdrawal) ? withdrawal.code : 'unexpected' },
      );
    }
  }

  private storeVersion(
    archive: Buffer,
    envelope: DsseEnvelope,
    opened: ReturnType<typeof openPackage>,
    signingKeyId: KeyId,
    publishedBy: Publisher | undefined,
    options: { team?: string },
    ctx: { actor: string },
    onProvisioned: (role: string) => void,
  ): Promise<{ pkg: StoredPackage; created: boolean }> {
    return this.db.transaction(async (tx) => {
      // First: a key bound to nobody publishes nothing, not even a no-op re-publish.
      const holder = requireBoundKey(await this.keys.holderOf(signingKeyId, tx), opened.manifest.name);
      const existing = await tx.query<PackageRow>('SELECT * FROM packages WHERE name = $1 AND version = $2', [opened.manifest.name, opened.manifest.version]);
      if (existing[0]) {
        if (existing[0].digest === opened.digest) return { pkg: toStored(existing[0]), created: false };
        throw new OrderlyError(
          'ORDERLY_E_PACKAGE_VERSION_CONFLICT',
          `${opened.manifest.name}@${opened.manifest.version} was already published with other bytes`,
          { digest: existing[0].digest },
        );
      }
      const owned = await this.ownership.authorisePublish(tx, opened.manifest.name, holder, options.team, ctx);
      const rows = await tx.query<PackageRow>(
        `INSERT INTO packages (digest, name, version, publisher_key_id, manifest, envelope, size, published_by, published_by_actor, published_by_kind)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
        [
          opened.digest,
          opened.manifest.name,
          opened.manifest.version,
          signingKeyId,
          JSON.stringify(opened.manifest),
          JSON.stringify(envelope),
          archive.length,
          publishedBy?.id ?? null,
          publishedBy?.actor ?? null,
          publishedBy?.kind ?? null,
        ],
      );
      await tx.query('INSERT INTO package_blobs (digest, bytes) VALUES ($1, $2)', [opened.digest, archive]);
      let row = rows[0]!;
      // Last, once every check has passed: the version's own role (a failure rolls the version back).
      if (opened.manifest.credentials.length > 0) {
        const role = await this.credentials.provision(opened.manifest);
        onProvisioned(role);
        row = (await tx.query<PackageRow>('UPDATE packages SET vault_role = $2 WHERE digest = $1 RETURNING *', [opened.digest, role]))[0]!;
      }
      if (owned.claimed) await this.ownership.recordClaim(tx, opened.manifest.name, owned.team, ctx);
      return { pkg: toStored(row), created: true };
    });
  }

  /**
   * The Vault role of a stored version, written now from its stored (accepted) manifest when the
   * version predates per-version roles. Undefined when it declares no credentials.
   */
  async vaultRoleOf(pkg: StoredPackage): Promise<string | undefined> {
    if (pkg.manifest.credentials.length === 0) return undefined;
    if (pkg.vaultRole) return pkg.vaultRole;
    const role = await this.credentials.provision(pkg.manifest);
    await this.db.query('UPDATE packages SET vault_role = $2 WHERE digest = $1', [pkg.view.digest, role]);
    return role;
  }

  /** The named version, or the most recently published one. */
  async resolve(name: BotName, version?: BotVersion): Promise<StoredPackage> {
    const rows = version
      ? await this.db.query<PackageRow>('SELECT * FROM packages WHERE name = $1 AND version = $2', [name, version])
      : await this.db.query<PackageRow>('SELECT * FROM packages WHERE name = $1 ORDER BY created_at DESC LIMIT 1', [name]);
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_BOT_UNKNOWN', `no published package for ${name}${version ? `@${version}` : ''}`, { bot: name });
    return toStored(rows[0]);
  }

  async byDigest(digest: PackageDigest): Promise<StoredPackage | undefined> {
    const rows = await this.db.query<PackageRow>('SELECT * FROM packages WHERE digest = $1', [digest]);
    return rows[0] ? toStored(rows[0]) : undefined;
  }

  async list(): Promise<PackageView[]> {
    return (await this.listStored()).map((p) => p.view);
  }

  /** Every stored version (of `name`), oldest first per name. */
  async listStored(name?: BotName): Promise<StoredPackage[]> {
    return (
      await this.db.query<PackageRow>('SELECT * FROM packages WHERE $1::text IS NULL OR name = $1 ORDER BY name, created_at, version', [name ?? null])
    ).map(toStored);
  }

  async blob(digest: PackageDigest): Promise<Buffer | undefined> {
    const rows = await this.db.query<{ bytes: Uint8Array }>('SELECT bytes FROM package_blobs WHERE digest = $1', [digest]);
    return rows[0] ? Buffer.from(rows[0].bytes) : undefined;
  }
}
