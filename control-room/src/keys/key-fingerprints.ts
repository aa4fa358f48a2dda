import { createHash, createPublicKey, KeyObject } from 'node:crypto';
import { keyIdOf, OrderlyError } from '@orderly/shared';
import { Db } from '../db/db';

/**
 * Every control-room replica on one database must hold the same key material: runs sealed at rest,
 * job ids and MACs keyed by the data key, envelopes checked against the published signer, reports
 * sealed to the sealing key, audit heads and releases signed by the release key. A replica started
 * with another secrets directory (or other Transit keys) would otherwise start fine and fail later,
 * run by run. So the first start records one fingerprint per key (migration 0021) and every start
 * compares.
 *
 * A fingerprint is a SHA-256 over a public or derived identifier, never over a secret: the key id
 * (SHA-256 of the SPKI public key) of each asymmetric key, the data key's published id, and for keys
 * kept in Vault Transit the key's name (a Transit key is rotated in place: its public key changes
 * with a rotation, its name does not).
 */
export interface KeyIdentifiers {
  dataKeyId: string;
  /** Undefined: the local data key seals at rest. */
  transitKey: string | undefined;
  /** Undefined: the local signing key signs job envelopes. */
  signingTransitKey: string | undefined;
  signerPublicKey: KeyObject;
  sealingKey: KeyObject;
  releaseKey: KeyObject;
}

const digest = (name: string, identifier: string) => createHash('sha256').update(`orderly.key-fingerprint/v1\n${name}\n${identifier}`).digest('hex');

export function keyFingerprints(ids: KeyIdentifiers): Record<string, string> {
  return {
    data_key: digest('data_key', ids.dataKeyId),
    at_rest: digest('at_rest', ids.transitKey ? `transit:${ids.transitKey}` : ids.dataKeyId),
    job_signer: digest('job_signer', ids.signingTransitKey ? `transit:${ids.signingTransitKey}` : keyIdOf(ids.signerPublicKey)),
    report_sealing: digest('report_sealing', keyIdOf(createPublicKey(ids.sealingKey))),
    release: digest('release', keyIdOf(ids.releaseKey)),
  };
}

/**
 * Records the fingerprints on first start (a key first seen is recorded too), then refuses to start
 * when any differs from the recorded one: `ORDERLY_E_KEYS_MISMATCH`, naming the keys, not values.
 */
export async function checkKeyFingerprints(db: Db, ids: KeyIdentifiers): Promise<void> {
  const mine = keyFingerprints(ids);
  const recorded = await db.transaction(async (tx) => {
    for (const [name, fingerprint] of Object.entries(mine)) {
      await tx.query('INSERT INTO key_fingerprints (name, fingerprint) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, fingerprint]);
    }
    return tx.query<{ name: string; fingerprint: string }>('SELECT name, fingerprint FROM key_fingerprints');
  });
  const differing = recorded
    .filter((r) => mine[r.name] !== undefined && mine[r.name] !== r.fingerprint)
    .map((r) => r.name)
    .sort();
  if (differing.length > 0) {
    throw new OrderlyError(
      'ORDERLY_E_KEYS_MISMATCH',
      `this control room's key material differs from the one the database was initialised with (${differing.join(', ')}): every replica must share the secrets directory and Transit keys`,
      { keys: differing },
    );
  }
}
