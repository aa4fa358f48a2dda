import { KeyObject } from 'node:crypto';
import { sha256Hex } from '../crypto/keys';
import { OrderlyError } from '../errors';
import { PackageDigest } from '../ids';
import { DsseEnvelope, IN_TOTO_PAYLOAD_TYPE, verifyEnvelope } from '../signing/dsse';
import { PackageStatement } from '../signing/statement';
import { BotManifest, parseManifest } from './manifest';
import { ArchiveLimits, DEFAULT_ARCHIVE_LIMITS, PackageFile, readArchive } from './tar';

export const MANIFEST_FILE = 'bot.json';

export interface OpenedPackage {
  digest: PackageDigest;
  manifest: BotManifest;
  files: PackageFile[];
}

export function digestOf(archive: Buffer): PackageDigest {
  return `sha256:${sha256Hex(archive)}` as PackageDigest;
}

/** Reads and checks a package archive: safe entries, a valid bot.json, and its entry file present. */
export function openPackage(archive: Buffer, limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS): OpenedPackage {
  const files = readArchive(archive, limits);
  const manifestFile = files.find((f) => f.path === MANIFEST_FILE);
  if (!manifestFile) throw new OrderlyError('ORDERLY_E_MANIFEST_INVALID', 'package has no bot.json');
  const manifest = parseManifest(manifestFile.data.toString('utf8'));
  if (!files.some((f) => f.path === manifest.entry)) {
    throw new OrderlyError('ORDERLY_E_MANIFEST_INVALID', `package has no entry file ${manifest.entry}`);
  }
  return { digest: digestOf(archive), manifest, files };
}

/**
 * Checks that the publisher's DSSE envelope is signed by `publisherKey` and attests exactly these
 * bytes and this manifest's name and version.
 */
export function verifyPackageEnvelope(envelope: DsseEnvelope, publisherKey: KeyObject, digest: PackageDigest, manifest: BotManifest): PackageStatement {
  const payload = verifyEnvelope(envelope, publisherKey, IN_TOTO_PAYLOAD_TYPE);
  let statement: PackageStatement;
  try {
    statement = PackageStatement.parse(JSON.parse(payload.toString('utf8')));
  } catch {
    throw new OrderlyError('ORDERLY_E_SIGNATURE_INVALID', 'envelope payload is not a bot package statement');
  }
  if (`sha256:${statement.subject[0]!.digest.sha256}` !== digest) {
    throw new OrderlyError('ORDERLY_E_PACKAGE_DIGEST_MISMATCH', 'package bytes do not match the signed digest', { digest });
  }
  if (statement.predicate.name !== manifest.name || statement.predicate.version !== manifest.version) {
    throw new OrderlyError('ORDERLY_E_SIGNATURE_INVALID', 'signed name and version differ from bot.json');
  }
  return statement;
}
