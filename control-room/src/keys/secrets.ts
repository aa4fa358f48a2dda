import { createHash, createPublicKey, KeyObject, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateBoxKeyPair, generateSigningKeyPair, loadBoxPrivateKey, loadPrivateKey, SegmentName } from '@orderly/shared';

/**
 * The control room's own key material and bootstrap tokens, kept as 0600 files in the secrets
 * directory and created on first start. Access control (users, roles, per-runner identities)
 * replaces the bootstrap tokens; the keys can move to Vault Transit.
 */
export interface ControlRoomSecrets {
  /** Ed25519: signs job envelopes. */
  signingKey: KeyObject;
  /** Ed25519: signs release attestations (promotion to prod) and audit chain heads. */
  releaseKey: KeyObject;
  /** X25519: runners seal report bodies to it. */
  sealingKey: KeyObject;
  /** AES-256 key for data at rest (run inputs, results). */
  dataKey: Buffer;
  dataKeyId: string;
  adminTokenHash: Buffer;
  /** Bootstrap runner tokens by segment; empty in production, which refuses them. */
  runnerTokenHashes: Map<SegmentName, Buffer>;
  /** Public keys of the bootstrap runners' report-signing keys (the private keys are the runner's files). */
  runnerPublicKeys: Map<SegmentName, KeyObject>;
}

function readOrCreate(path: string, create: () => string): string {
  if (!existsSync(path)) {
    writeFileSync(path, create(), { mode: 0o600, flag: 'wx' });
  }
  return readFileSync(path, 'utf8');
}

export const tokenHash = (token: string): Buffer => createHash('sha256').update(token).digest();

/** Constant-time comparison of a presented token against stored hashes. */
export function tokenMatches(presented: string, hash: Buffer): boolean {
  return timingSafeEqual(tokenHash(presented), hash);
}

export const adminTokenPath = (secretsDir: string) => join(secretsDir, 'admin.token');
export const runnerTokenPath = (secretsDir: string, segment: string) => join(secretsDir, `runner-${segment}.token`);
/** The bootstrap runner's Ed25519 report-signing key: where the runner looks by default (beside its token). */
export const runnerSigningKeyPath = (secretsDir: string, segment: string) => join(secretsDir, `runner-${segment}.key`);
export const publicKeysPath = (secretsDir: string) => join(secretsDir, 'control-room.pub');

/**
 * Writes `control-room.pub`, what runners are configured with: the job-signing public key (local or
 * Vault Transit) and the X25519 key reports are sealed to. Returns its text.
 */
export function publishPublicKeys(secretsDir: string, signingPublicKey: KeyObject, sealingKey: KeyObject): string {
  const pem = [signingPublicKey, createPublicKey(sealingKey)].map((k) => k.export({ type: 'spki', format: 'pem' }).toString()).join('');
  writeFileSync(publicKeysPath(secretsDir), pem, { mode: 0o644 });
  return pem;
}

/**
 * `bootstrapRunners: false` (production) neither creates nor honours the per-segment bootstrap
 * runner tokens and keys: every runner there has an identity of its own, registered and revocable.
 */
export function loadOrCreateSecrets(secretsDir: string, segments: readonly SegmentName[], options: { bootstrapRunners?: boolean } = {}): ControlRoomSecrets {
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  chmodSync(secretsDir, 0o700);
  const signingKey = loadPrivateKey(readOrCreate(join(secretsDir, 'signing.key'), () => generateSigningKeyPair().privateKeyPem));
  const releaseKey = loadPrivateKey(readOrCreate(join(secretsDir, 'release.key'), () => generateSigningKeyPair().privateKeyPem));
  const sealingKey = loadBoxPrivateKey(readOrCreate(join(secretsDir, 'sealing.key'), () => generateBoxKeyPair().privateKeyPem));
  const dataKey = Buffer.from(readOrCreate(join(secretsDir, 'data.key'), () => randomBytes(32).toString('base64')).trim(), 'base64');
  const newToken = () => `orderly_${randomBytes(24).toString('base64url')}`;
  const adminToken = readOrCreate(adminTokenPath(secretsDir), newToken).trim();
  const runnerTokenHashes = new Map<SegmentName, Buffer>();
  const runnerPublicKeys = new Map<SegmentName, KeyObject>();
  for (const segment of options.bootstrapRunners === false ? [] : segments) {
    runnerTokenHashes.set(segment, tokenHash(readOrCreate(runnerTokenPath(secretsDir, segment), newToken).trim()));
    runnerPublicKeys.set(
      segment,
      createPublicKey(loadPrivateKey(readOrCreate(runnerSigningKeyPath(secretsDir, segment), () => generateSigningKeyPair().privateKeyPem))),
    );
  }
  return {
    signingKey,
    releaseKey,
    sealingKey,
    dataKey,
    dataKeyId: `local:${createHash('sha256').update(dataKey).digest('hex').slice(0, 16)}`,
    adminTokenHash: tokenHash(adminToken),
    runnerTokenHashes,
    runnerPublicKeys,
  };
}
