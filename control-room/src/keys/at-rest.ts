import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { open, OrderlyError, seal, SealedBox } from '@orderly/shared';
import type { VaultClient } from '@orderly/shared/vault';
import type { Queryable } from '../db/db';

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
export function transitAtRestCipher(options: {
  vault: VaultClient;
  keyName: string;
  macKey: Buffer;
  dataKeyTtlMs?: number;
  dataKeyUses?: number;
}): AtRestCipher {
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

/** A table holding boxes sealed with the at-rest cipher: its key columns and its sealed columns. */
export interface SealedTable {
  table: string;
  key: readonly string[];
  sealed: readonly string[];
}

/** Every place the at-rest cipher's boxes are stored; a key rotation must reach all of them. */
export const SEALED_AT_REST: readonly SealedTable[] = [
  { table: 'runs', key: ['id'], sealed: ['input_sealed', 'result_sealed'] },
  { table: 'run_steps', key: ['run_id', 'name'], sealed: ['result_sealed'] },
  { table: 'run_screenshots', key: ['id'], sealed: ['png_sealed'] },
  { table: 'schedules', key: ['id'], sealed: ['input_sealed'] },
];

/** Rewraps the boxes of one table, paging by its key; returns how many moved. */
export async function rewrapTable(db: Queryable, cipher: AtRestCipher, { table, key, sealed }: SealedTable, batchSize: number): Promise<number> {
  const rewrap = cipher.rewrap?.bind(cipher);
  if (!rewrap) return 0;
  const keyList = key.join(', ');
  const keyTuple = `(${keyList})`;
  const placeholders = (from: number) => `(${key.map((_, i) => `$${from + i}`).join(', ')})`;
  let moved = 0;
  let after: unknown[] | undefined;
  for (;;) {
    const rows = await db.query<Record<string, unknown>>(
      `SELECT ${keyList}, ${sealed.join(', ')} FROM ${table} ${after ? `WHERE ${keyTuple} > ${placeholders(2)}` : ''} ORDER BY ${keyList} LIMIT $1`,
      [batchSize, ...(after ?? [])],
    );
    if (rows.length === 0) return moved;
    for (const row of rows) {
      const boxes = await Promise.all(sealed.map((column) => (row[column] ? rewrap(row[column] as AtRestBox) : Promise.resolve(undefined))));
      const changed = sealed.flatMap((column, i) => (boxes[i] ? [{ column, box: boxes[i] }] : []));
      if (changed.length === 0) continue;
      await db.query(
        `UPDATE ${table} SET ${changed.map((c, i) => `${c.column} = $${i + 1}`).join(', ')} WHERE ${keyTuple} = ${placeholders(changed.length + 1)}`,
        [...changed.map((c) => JSON.stringify(c.box)), ...key.map((k) => row[k])],
      );
      moved += changed.length;
    }
    const last = rows[rows.length - 1]!;
    after = key.map((k) => last[k]);
  }
}
