import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BotManifest, digestOf, JobPayload, keyIdOf, loadPublicKey, openPackage, OrderlyError, PackageDigest, verifyPackageEnvelope } from '@orderly/shared';
import { ControlRoomClient } from '../control-room-client';
import { admitPackage, ReleasePolicy } from './release-gate';

export interface VerifiedBot {
  digest: PackageDigest;
  manifest: BotManifest;
  /** Source of the entry file: handed to the bot host, which compiles it per run. */
  code: string;
}

/**
 * Packages by digest: fetched from the control room once, verified, kept on disk and in memory.
 * Verification runs before anything from the package is used: digest, publisher key (the one the
 * signed job names), publisher signature, manifest name, version and segment. The release state
 * (publisher key revocation, release attestations) is asked again on every run: only the bytes
 * and their verification are cached, never the permission to run them.
 */
export class PackageCache {
  private readonly verified = new Map<string, VerifiedBot>();

  constructor(
    private readonly dir: string,
    private readonly client: ControlRoomClient,
    private readonly policy: ReleasePolicy = { channel: 'dev', releaseKey: undefined },
  ) {
    // 0700: the bot host runs as another user and has no business reading other bots' packages.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  async get(job: JobPayload): Promise<VerifiedBot> {
    const memo = this.verified.get(`${job.bot.digest}|${job.publisherKeyId}`);
    if (memo) {
      admitPackage(job, await this.client.packageRelease(job.bot.digest), this.policy);
      return this.checkFor(memo, job);
    }
    const response = await this.client.fetchPackage(job.bot.digest);
    admitPackage(job, response, this.policy);
    const archive = Buffer.from(response.archive, 'base64');
    if (digestOf(archive) !== job.bot.digest) {
      throw new OrderlyError('ORDERLY_E_PACKAGE_DIGEST_MISMATCH', 'fetched package bytes do not match the digest in the signed job', {
        digest: job.bot.digest,
      });
    }
    const publisherKey = loadPublicKey(response.publisherPublicKeyPem);
    if (keyIdOf(publisherKey) !== job.publisherKeyId) {
      throw new OrderlyError('ORDERLY_E_KEY_UNKNOWN', 'the publisher key offered for the package is not the one the signed job names');
    }
    const opened = openPackage(archive);
    verifyPackageEnvelope(response.envelope, publisherKey, opened.digest, opened.manifest);
    const entry = opened.files.find((f) => f.path === opened.manifest.entry)!;
    const bot: VerifiedBot = { digest: opened.digest, manifest: opened.manifest, code: entry.data.toString('utf8') };
    this.store(archive, opened.digest);
    this.verified.set(`${job.bot.digest}|${job.publisherKeyId}`, bot);
    return this.checkFor(bot, job);
  }

  private checkFor(bot: VerifiedBot, job: JobPayload): VerifiedBot {
    if (bot.manifest.name !== job.bot.name || bot.manifest.version !== job.bot.version) {
      throw new OrderlyError('ORDERLY_E_SIGNATURE_INVALID', 'package name or version differs from the signed job');
    }
    if (!bot.manifest.segments.includes(job.segment)) {
      throw new OrderlyError('ORDERLY_E_SEGMENT_UNKNOWN', `${bot.manifest.name} may not run in segment ${job.segment}`);
    }
    return bot;
  }

  /** Keeps the archive by digest (write then rename, so a crash never leaves a partial file). */
  private store(archive: Buffer, digest: PackageDigest): void {
    const final = join(this.dir, `${digest.slice('sha256:'.length)}.tgz`);
    const temp = `${final}.${randomBytes(6).toString('hex')}.tmp`;
    writeFileSync(temp, archive, { mode: 0o600 });
    renameSync(temp, final);
  }

  /** Reads a cached archive back (for inspection and tests). */
  archivePath(digest: PackageDigest): string {
    const path = join(this.dir, `${digest.slice('sha256:'.length)}.tgz`);
    readFileSync(path);
    return path;
  }
}
