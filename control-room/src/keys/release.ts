import { createPublicKey, KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import {
  checkRelease,
  DsseEnvelope,
  PackageDigest,
  ReleaseChannel,
  releasePublicKeyBlock,
  ReleaseStatement,
  signRelease,
  verifyRelease,
} from '@orderly/shared';
import { publicKeysPath } from './secrets';

/**
 * The control room's release authority: it signs release attestations with the release key
 * (`secrets/release.key`) and verifies them with the public half, the same check runners make.
 */
export class ReleaseAuthority {
  readonly publicKey: KeyObject;

  constructor(private readonly privateKey: KeyObject) {
    this.publicKey = createPublicKey(privateKey);
  }

  sign(statement: ReleaseStatement): DsseEnvelope {
    return signRelease(statement, this.privateKey);
  }

  /** Throws the release code (MISSING, INVALID, EXPIRED) unless one attestation is good now. */
  check(attestations: readonly DsseEnvelope[], digest: PackageDigest, channel: ReleaseChannel, now?: Date): ReleaseStatement {
    return checkRelease(attestations, this.publicKey, digest, channel, now);
  }

  /** True when this one envelope verifies for the digest and channel (expiry aside). */
  verifies(envelope: DsseEnvelope, digest: PackageDigest, channel: ReleaseChannel): boolean {
    try {
      verifyRelease(envelope, this.publicKey, digest, channel);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Appends the release public key to `control-room.pub` (what runners are configured with) under
 * its own PEM label, so runners tell it apart from the job-signing key; returns the new text.
 */
export function publishReleaseKey(secretsDir: string, publicKeysPem: string, releaseKey: KeyObject): string {
  const pem = `${publicKeysPem}${releasePublicKeyBlock(releaseKey)}`;
  writeFileSync(publicKeysPath(secretsDir), pem, { mode: 0o644 });
  return pem;
}
