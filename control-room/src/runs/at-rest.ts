import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { open, OrderlyError, seal, SealedBox } from '@orderly/shared';
import type { VaultClient } from '@orderly/shared/vault';

/**
 * Encryption of data at rest (run inputs and results hold PHI). The AAD binds each ciphertext to
 * its run and purpose, so a ciphertext copied onto another row does not decrypt there.
 */
export interface AtRestCipher {
  seal(value: unknown, aad: string): Promise<AtRestBox>;
  open(box: AtRestBox, aad: string): Promise<unknown>;
  /** Keyed hash for correlating sensitive values without storing them (or a plain hash of them). */
  mac(value: string): string;
  /**
   * Moves a box's wrapped data key to the newest Transit key version without exposing it (Vault
   * `rewrap`); the box's ciphertext is unchanged. Undefined when there is nothing to rewrap.
   */
  rewrap?(box: AtRestBox): Promise<AtRestBox | undefined>;
  /** Stops sealing with the current data key, so new boxes use the newest key version. */
  retireDataKey?(): void;
}

/** A sealed box, plus the data key wrapped by Vault Transit when Transit encrypted it. */
export const AtRestBox = SealedBox.extend({ dk: z.string().max(1000).optional() });
export type AtRestBox = z.infer<typeof AtRestBox>;

const macWith = (key: Buffer) => (value: string) => createHmac('sha256', key).update(value).digest('hex');

/** A local AES-256 key from the data directory: the embedded default without Vault. */
export function localAtRestCipher(key: Buffer, keyId: string): AtRestCipher {
  return {
    seal: async (value, aad) => seal(key, keyId, Buffer.from(JSON.stringify(value)), aad),
    open: async (box, aad) => JSON.parse(open(key, box, aad).toString('utf8')) as unknown,
    mac: macWith(key),
  };
}

/**
 * Envelope encryption with Vault Transit: AES-256-GCM under a data key from
 * `transit/datakey/plaintext/<key>`, whose Transit-wrapped form is stored beside the ciphertext.
 * A data key seals for at most `dataKeyTtlMs` or `dataKeyUses` boxes (the hot path, run creation,
 * needs no Vault round trip per run), so one leaked data key exposes little. Reads unwrap through
 * Transit every time: Vault's policy, `min_decryption_version` included, applies at once. Transit
 * key rotation needs no downtime: old boxes decrypt with old versions until `rewrap` moves them.
 */
export function transitAtRestCipher(options: { vault: VaultClient; keyName: string; macKey: Buffer; dataKeyTtlMs?: number; dataKeyUses?: number }): AtRestCipher {
  const ttl = options.dataKeyTtlMs ?? 5 * 60_000;
  const maxUses = options.dataKeyUses ?? 10_000;
  let current: { plaintext: Buffer; wrapped: string; version: number; expires: number; uses: number } | undefined;
  let pending: Promise<NonNullable<typeof current>> | undefined;

  async function dataKey(): Promise<NonNullable<typeof current>> {
    if (current && current.expires > Date.now() && current.uses < maxUses) return current;
    // One request for a new data key however many seals wait for it.
    pending ??= options.vault.transitDataKey(options.keyName).then(
      (dk) => {
        pending = undefined;
        current = { plaintext: dk.plaintext!, wrapped: dk.ciphertext, version: dk.keyVersion, expires: Date.now() + ttl, uses: 0 };
        return current;
      },
      (err: unknown) => {
        pending = undefined;
        throw err;
      },
    );
    return pending;
  }

  return {
    async seal(value, aad) {
      const key = await dataKey();
      key.uses++;
      return { ...seal(key.plaintext, `transit:${options.keyName}:v${key.version}`, Buffer.from(JSON.stringify(value)), aad), dk: key.wrapped };
    },
    async open(box, aad) {
      if (!box.dk) throw new OrderlyError('ORDERLY_E_VAULT_ERROR', 'sealed data has no wrapped data key');
      const key = await options.vault.transitDecrypt(options.keyName, box.dk);
      return JSON.parse(open(key, box, aad).toString('utf8')) as unknown;
    },
    mac: macWith(options.macKey),
    retireDataKey() {
      current = undefined;
    },
    async rewrap(box) {
      if (!box.dk) return undefined;
      const rewrapped = await options.vault.transitRewrap(options.keyName, box.dk);
      if (rewrapped.ciphertext === box.dk) return undefined;
      return { ...box, kid: `transit:${options.keyName}:v${rewrapped.keyVersion}`, dk: rewrapped.ciphertext };
    },
  };
}
