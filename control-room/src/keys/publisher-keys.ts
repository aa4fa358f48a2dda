import { KeyObject } from 'node:crypto';
import { KeyId, keyIdOf, loadPublicKey, OrderlyError, PublisherKeyView, publicKeyPem } from '@orderly/shared';
import { Db, Queryable } from '../db/db';

interface KeyRow {
  key_id: string;
  name: string;
  public_key_pem: string;
  created_at: Date;
  revoked_at: Date | null;
  owner_kind?: 'user' | 'service' | null;
  owner_id?: string | null;
}

/** Who holds a key: a person or a service account (by id). */
export interface KeyHolder {
  kind: 'user' | 'service';
  id: string;
}

const toView = (r: KeyRow): PublisherKeyView => ({
  keyId: r.key_id as KeyId,
  name: r.name,
  publicKeyPem: r.public_key_pem,
  createdAt: r.created_at.toISOString(),
  revokedAt: r.revoked_at ? r.revoked_at.toISOString() : null,
  owner: r.owner_kind && r.owner_id ? `${r.owner_kind}:${r.owner_id}` : null,
});

/** The registry of publisher keys: a package is accepted only if signed by a registered key. */
export class PublisherKeys {
  constructor(private readonly db: Db) {}

  /**
   * Registers a key under a name, bound to the person or service account that holds it (the
   * holder decides which bot names it may publish and, by person, who may not approve what it
   * signed). Registering the same key again with the same holder is a no-op. There is no key
   * without a holder: rows from before holders existed stay readable and revocable, but
   * publish nothing (ORDERLY_E_KEY_UNBOUND at ingest).
   */
  async register(name: string, pem: string, holder: KeyHolder): Promise<{ key: PublisherKeyView; created: boolean }> {
    const key = loadPublicKey(pem);
    const keyId = keyIdOf(key);
    const canonicalPem = publicKeyPem(key);
    const inserted = await this.db.query<KeyRow>(
      `INSERT INTO publisher_keys (key_id, name, public_key_pem, owner_kind, owner_id) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT DO NOTHING RETURNING *`,
      [keyId, name, canonicalPem, holder.kind, holder.id],
    );
    if (inserted[0]) return { key: toView(inserted[0]), created: true };
    const existing = await this.db.query<KeyRow>('SELECT * FROM publisher_keys WHERE key_id = $1 OR name = $2', [keyId, name]);
    // A key never changes hands by registering it again: that would move what it may publish
    // (nor does an unbound row of before become bound: it would inherit what it signed then).
    const same = existing.find((r) => r.key_id === keyId && r.name === name && r.owner_kind === holder.kind && r.owner_id === holder.id);
    if (same) return { key: toView(same), created: false };
    throw new OrderlyError('ORDERLY_E_KEY_CONFLICT', 'this name or this key is already registered with another key, name or holder', { name });
  }

  async list(): Promise<PublisherKeyView[]> {
    return (await this.db.query<KeyRow>('SELECT * FROM publisher_keys ORDER BY created_at')).map(toView);
  }

  /** The active (not revoked) key with this id, for verifying a signature. */
  async activeKey(keyId: string, tx: Queryable = this.db): Promise<{ keyId: KeyId; key: KeyObject } | undefined> {
    const rows = await tx.query<KeyRow>('SELECT * FROM publisher_keys WHERE key_id = $1 AND revoked_at IS NULL', [keyId]);
    const row = rows[0];
    return row ? { keyId: row.key_id as KeyId, key: loadPublicKey(row.public_key_pem) } : undefined;
  }

  /**
   * Revokes a key: packages signed only by it stop being runnable at once (control room and
   * runners check on every run) and nothing new signed by it is accepted. Revoking twice is a
   * no-op that keeps the first time and actor.
   */
  async revoke(keyId: KeyId, actor: string): Promise<PublisherKeyView> {
    const rows = await this.db.query<KeyRow>(
      `UPDATE publisher_keys SET revoked_at = COALESCE(revoked_at, now()), revoked_by = COALESCE(revoked_by, $2) WHERE key_id = $1 RETURNING *`,
      [keyId, actor],
    );
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no publisher key ${keyId}`);
    return toView(rows[0]);
  }

  /** When the key was revoked, or null; undefined when the key is not registered. */
  async revokedAt(keyId: string, tx: Queryable = this.db): Promise<Date | null | undefined> {
    const rows = await tx.query<Pick<KeyRow, 'revoked_at'>>('SELECT revoked_at FROM publisher_keys WHERE key_id = $1', [keyId]);
    return rows[0] ? rows[0].revoked_at : undefined;
  }

  /** The holder of a key, or null for a row registered before keys had holders (it publishes nothing). */
  async holderOf(keyId: string, tx: Queryable = this.db): Promise<KeyHolder | null> {
    const rows = await tx.query<KeyRow>('SELECT owner_kind, owner_id FROM publisher_keys WHERE key_id = $1', [keyId]);
    const row = rows[0];
    return row?.owner_kind && row.owner_id ? { kind: row.owner_kind, id: row.owner_id } : null;
  }

  async pemOf(keyId: string): Promise<string | undefined> {
    const rows = await this.db.query<KeyRow>('SELECT public_key_pem FROM publisher_keys WHERE key_id = $1', [keyId]);
    return rows[0]?.public_key_pem;
  }
}
