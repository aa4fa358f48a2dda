import {
  BotName,
  BotVersion,
  DsseEnvelope,
  isOrderlyError,
  OrderlyError,
  PackageDetailView,
  PackageDigest,
  PackageStatusView,
  PermissionDiffView,
  PromoteRequest,
  ReleaseAttestationView,
  ReleaseChannel,
  releaseStatement,
  RunnerPackageRelease,
  SegmentName,
} from '@orderly/shared';
import { permissionDiff } from './permission-diff';
import { assertSeparated } from './separation';
import { Db } from '../db/db';
import { ReleaseAuthority } from '../keys/release';
import { PublisherKeys } from '../keys/publisher-keys';
import { compareBotVersions } from './versions';
import { Packages, Publisher, StoredPackage } from './packages';

interface AttestationRow {
  id: string | number;
  digest: string;
  channel: ReleaseChannel;
  approver_id: string;
  approver_actor: string;
  approved_at: Date;
  expires_at: Date;
  ticket: string | null;
  envelope: DsseEnvelope;
}

type NotRunnable = PackageStatusView['notRunnable']['dev'];

const DAY_MS = 24 * 3600 * 1000;

/**
 * Promotion and the release gate. An approver who did not publish a package promotes its digest
 * to `prod`: the control room signs a release attestation with its release key. Production
 * segments run only digests with a valid, unexpired one; no segment runs a package whose
 * publisher key is revoked. The control room checks when a run is created; runners check again
 * on every run (DESIGN invariant 2).
 */
export class Releases {
  constructor(
    private readonly db: Db,
    private readonly packages: Packages,
    private readonly keys: PublisherKeys,
    private readonly authority: ReleaseAuthority,
    private readonly prodSegments: readonly SegmentName[],
  ) {}

  /** The channel whose release a segment's runners require. */
  channelOf(segment: SegmentName): ReleaseChannel {
    return this.prodSegments.includes(segment) ? 'prod' : 'dev';
  }

  /**
   * Signs and stores a release attestation for `name@version`. Refused when the approver
   * published the package (separation of duties), when the publisher is unknown (a package from
   * before publishers were recorded: separation cannot be shown), and when its key is revoked.
   */
  async promote(
    name: BotName,
    version: BotVersion,
    request: PromoteRequest,
    approver: Publisher,
    now: Date = new Date(),
  ): Promise<ReleaseAttestationView & { permissions: PermissionDiffView }> {
    const pkg = await this.packages.resolve(name, version);
    await assertSeparated(this.db, this.keys, pkg, approver);
    const revokedAt = await this.keys.revokedAt(pkg.view.publisherKeyId);
    if (revokedAt !== null)
      throw new OrderlyError('ORDERLY_E_KEY_REVOKED', `the publisher key of ${name}@${version} is revoked`, { keyId: pkg.view.publisherKeyId });
    // What this version may do beyond the one in prod must have been seen by this approver.
    const permissions = await this.permissions(name, version, now);
    if (permissions.widens && request.acknowledgePermissions !== permissions.diffDigest) {
      throw new OrderlyError(
        'ORDERLY_E_PERMISSIONS_NOT_ACKNOWLEDGED',
        `${name}@${version} adds permissions to the version in prod; review the diff and promote with its digest`,
        {
          diffDigest: permissions.diffDigest,
          against: permissions.against?.version ?? null,
          credentials: permissions.added.credentials,
          hosts: permissions.added.hosts,
          phi: permissions.added.phi,
          segments: permissions.added.segments,
        },
      );
    }
    const approvedAt = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const expiresAt = new Date(approvedAt.getTime() + request.expiresInDays * DAY_MS);
    const statement = releaseStatement(pkg.view.digest, {
      name,
      version,
      channel: request.channel,
      approver: approver.actor,
      approvedAt: approvedAt.toISOString(),
      expiresAt: expiresAt.toISOString(),
      ...(request.ticket ? { ticket: request.ticket } : {}),
    });
    const envelope = this.authority.sign(statement);
    const rows = await this.db.query<AttestationRow>(
      `INSERT INTO release_attestations (digest, channel, approver_id, approver_actor, approved_at, expires_at, ticket, envelope)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
      [pkg.view.digest, request.channel, approver.id, approver.actor, approvedAt, expiresAt, request.ticket ?? null, JSON.stringify(envelope)],
    );
    return { ...this.attestationView(rows[0]!, now), permissions };
  }

  /**
   * What `name@version` adds (credentials, hosts, PHI fields, segments) to the version released
   * to prod now, with the digest an approver acknowledges. Against nothing when none is released.
   */
  async permissions(name: BotName, version: BotVersion, now: Date = new Date()): Promise<PermissionDiffView> {
    const pkg = await this.packages.resolve(name, version);
    const inProd = await this.released(name, 'prod', undefined, now);
    return permissionDiff(pkg, inProd);
  }

  /**
   * The package a run without a version takes in `segment`: the newest version released for the
   * segment's channel, never merely the newest upload. Only versions that may run in the segment,
   * signed by a key that is not revoked, count.
   * - prod: the version whose valid, unexpired prod release is the most recent (promoting an older
   *   version again is how to roll back); none: ORDERLY_E_RELEASE_MISSING.
   * - dev: the version whose valid, unexpired dev release is the most recent (`orderly bot promote
   *   --to dev` pins it) when any has one; otherwise, as publishing an accepted version releases
   *   it to dev, the highest accepted version by semantic-version precedence. A version uploaded
   *   late with a lower number (a backport, a mistake) is never the default by being newest.
   */
  async defaultFor(name: BotName, segment: SegmentName, now: Date = new Date()): Promise<StoredPackage> {
    const channel = this.channelOf(segment);
    const versions = (await this.packages.listStored(name)).filter((p) => p.manifest.segments.includes(segment));
    if (versions.length === 0) {
      await this.packages.resolve(name); // ORDERLY_E_BOT_UNKNOWN when there is no version at all
      throw new OrderlyError('ORDERLY_E_SEGMENT_UNKNOWN', `${name} may not run in segment ${segment}`, { segment, bot: name });
    }
    const released = await this.released(name, channel, segment, now);
    if (released) return released;
    if (channel === 'prod') {
      throw new OrderlyError(
        'ORDERLY_E_RELEASE_MISSING',
        `no version of ${name} has a valid prod release for segment ${segment}; promote one, or name a version`,
        { bot: name, segment },
      );
    }
    for (const pkg of versions.sort((a, b) => compareBotVersions(b.view.version, a.view.version))) {
      if ((await this.keys.revokedAt(pkg.view.publisherKeyId)) === null) return pkg;
    }
    throw new OrderlyError('ORDERLY_E_KEY_REVOKED', `the publisher key of every version of ${name} for segment ${segment} is revoked`, { bot: name, segment });
  }

  /** The version with the most recent valid, unexpired release on `channel` (that may run in `segment`). */
  private async released(name: BotName, channel: ReleaseChannel, segment: SegmentName | undefined, now: Date): Promise<StoredPackage | undefined> {
    const rows = await this.db.query<AttestationRow & { version: string }>(
      `SELECT a.*, p.version FROM release_attestations a JOIN packages p ON p.digest = a.digest JOIN publisher_keys k ON k.key_id = p.publisher_key_id
       WHERE p.name = $1 AND a.channel = $2 AND a.expires_at > $3 AND k.revoked_at IS NULL ORDER BY a.approved_at DESC, a.id DESC LIMIT 200`,
      [name, channel, now],
    );
    for (const row of rows) {
      // A tampered attestation row is no release.
      if (!this.authority.verifies(row.envelope, row.digest as PackageDigest, channel)) continue;
      const pkg = await this.packages.byDigest(row.digest as PackageDigest);
      if (pkg && (segment === undefined || pkg.manifest.segments.includes(segment))) return pkg;
    }
    return undefined;
  }

  /** Refuses a run of `pkg` in `segment` with the code a runner of that segment would give. */
  async gate(pkg: StoredPackage, segment: SegmentName, now: Date = new Date()): Promise<void> {
    const why = await this.notRunnable(pkg, this.channelOf(segment), now);
    if (why === null) return;
    if (why === 'ORDERLY_E_KEY_REVOKED')
      throw new OrderlyError(why, `the publisher key of ${pkg.view.name}@${pkg.view.version} is revoked`, { keyId: pkg.view.publisherKeyId });
    // The release codes come with their own message from the check itself.
    this.authority.check(await this.envelopes(pkg.view.digest), pkg.view.digest, 'prod', now);
  }

  async list(now: Date = new Date()): Promise<PackageStatusView[]> {
    const [packages, rows, keys, owners] = await Promise.all([
      this.packages.listStored(),
      this.db.query<AttestationRow>('SELECT * FROM release_attestations ORDER BY id'),
      this.keys.list(),
      this.teams(),
    ]);
    const revoked = new Map(keys.map((k) => [k.keyId as string, k.revokedAt]));
    return packages.map((pkg) => ({
      ...this.statusOf(
        pkg,
        rows.filter((r) => r.digest === pkg.view.digest),
        revoked.get(pkg.view.publisherKeyId) ?? null,
        now,
      ),
      team: owners.get(pkg.view.name) ?? null,
    }));
  }

  async detail(name: BotName, version: BotVersion, now: Date = new Date()): Promise<PackageDetailView> {
    const pkg = await this.packages.resolve(name, version);
    const rows = await this.rows(pkg.view.digest);
    const revokedAt = (await this.keys.revokedAt(pkg.view.publisherKeyId)) ?? null;
    const team = (await this.teams(name)).get(name) ?? null;
    return { ...this.statusOf(pkg, rows, revokedAt?.toISOString() ?? null, now), team, attestations: rows.map((r) => this.attestationView(r, now)) };
  }

  /** Owning team by bot name (of `name` only, when given). */
  private async teams(name?: BotName): Promise<Map<string, string>> {
    const rows = await this.db.query<{ name: string; team: string }>(
      'SELECT o.name, t.name AS team FROM bot_owners o JOIN teams t ON t.id = o.team_id WHERE $1::text IS NULL OR o.name = $1',
      [name ?? null],
    );
    return new Map(rows.map((r) => [r.name, r.team]));
  }

  /** What a runner needs on every run: its key's revocation and the release attestations. */
  async forRunner(digest: PackageDigest): Promise<RunnerPackageRelease> {
    // One round trip: this is on the path of every run.
    const rows = await this.db.query<{ publisher_key_id: string; revoked_at: Date | null; attestations: DsseEnvelope[] | string }>(
      `SELECT p.publisher_key_id, k.revoked_at,
         (SELECT COALESCE(json_agg(a.envelope ORDER BY a.id), '[]'::json)
            FROM (SELECT id, envelope FROM release_attestations WHERE digest = p.digest ORDER BY id DESC LIMIT 100) a) AS attestations
       FROM packages p JOIN publisher_keys k ON k.key_id = p.publisher_key_id WHERE p.digest = $1`,
      [digest],
    );
    const row = rows[0];
    if (!row) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no package ${digest}`);
    const attestations = typeof row.attestations === 'string' ? (JSON.parse(row.attestations) as DsseEnvelope[]) : row.attestations;
    return {
      publisherKeyId: row.publisher_key_id as RunnerPackageRelease['publisherKeyId'],
      publisherKeyRevokedAt: row.revoked_at?.toISOString() ?? null,
      attestations,
    };
  }

  private async rows(digest: PackageDigest): Promise<AttestationRow[]> {
    return this.db.query<AttestationRow>('SELECT * FROM release_attestations WHERE digest = $1 ORDER BY id', [digest]);
  }

  private async envelopes(digest: PackageDigest): Promise<DsseEnvelope[]> {
    return (await this.rows(digest)).map((r) => r.envelope);
  }

  private async notRunnable(pkg: StoredPackage, channel: ReleaseChannel, now: Date): Promise<NotRunnable> {
    if ((await this.keys.revokedAt(pkg.view.publisherKeyId)) !== null) return 'ORDERLY_E_KEY_REVOKED';
    return channel === 'dev'
      ? null
      : this.releaseProblem(
          (await this.rows(pkg.view.digest)).map((r) => r.envelope),
          pkg.view.digest,
          now,
        );
  }

  private releaseProblem(envelopes: readonly DsseEnvelope[], digest: PackageDigest, now: Date): NotRunnable {
    try {
      this.authority.check(envelopes, digest, 'prod', now);
      return null;
    } catch (err) {
      if (
        isOrderlyError(err) &&
        (err.code === 'ORDERLY_E_RELEASE_MISSING' || err.code === 'ORDERLY_E_RELEASE_INVALID' || err.code === 'ORDERLY_E_RELEASE_EXPIRED')
      )
        return err.code;
      throw err;
    }
  }

  private statusOf(pkg: StoredPackage, rows: readonly AttestationRow[], revokedAt: string | null, now: Date): PackageStatusView {
    const prodProblem = this.releaseProblem(
      rows.map((r) => r.envelope),
      pkg.view.digest,
      now,
    );
    const revoked: NotRunnable = revokedAt === null ? null : 'ORDERLY_E_KEY_REVOKED';
    const notRunnable = { dev: revoked, prod: revoked ?? prodProblem };
    return {
      ...pkg.view,
      publishedBy: pkg.publishedBy?.id ?? null,
      publishedByActor: pkg.publishedBy?.actor ?? null,
      publisherKeyRevokedAt: revokedAt,
      channels: prodProblem === null ? ['prod'] : [],
      runnable: { dev: notRunnable.dev === null, prod: notRunnable.prod === null },
      notRunnable,
    };
  }

  private attestationView(row: AttestationRow, now: Date): ReleaseAttestationView {
    return {
      id: Number(row.id),
      digest: row.digest as PackageDigest,
      channel: row.channel,
      approver: row.approver_actor,
      approvedAt: row.approved_at.toISOString(),
      expiresAt: row.expires_at.toISOString(),
      ticket: row.ticket,
      valid: this.authority.verifies(row.envelope, row.digest as PackageDigest, row.channel),
      expired: row.expires_at.getTime() <= now.getTime(),
      envelope: row.envelope,
    };
  }
}
