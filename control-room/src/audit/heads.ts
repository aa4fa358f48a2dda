import { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson, keyIdOf, signBytes, verifyBytes } from '@orderly/shared';
import { Db } from '../db/db';
import { AuditLog } from './audit';

/**
 * Signed chain heads. The hash chain shows an event changed, removed or inserted in the middle, but
 * not a cut tail: dropping the newest events leaves a shorter chain that still verifies. So, at
 * intervals and on shutdown, the control room signs `{ seq, hash, at }` of the last event with its
 * release key (Ed25519; the private key never leaves the control room) and stores it in
 * `audit_heads` (append-only by trigger). A verifier holding the release public key then sees a
 * tail cut below any signed head, and a signed head that no longer matches its event.
 */

export const AuditHead = z.object({
  seq: z.number().int().min(1),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  at: z.iso.datetime(),
  keyId: z.string().regex(/^[0-9a-f]{64}$/),
  /** base64 Ed25519 signature over `headSigningBytes`. */
  signature: z.string().max(200),
});
export type AuditHead = z.infer<typeof AuditHead>;

/** What is signed: a typed, canonical statement, so the signature cannot be replayed as anything else. */
export function headSigningBytes(head: Pick<AuditHead, 'seq' | 'hash' | 'at'>): Buffer {
  return Buffer.from(canonicalJson({ type: 'orderly.audit-head/v1', seq: head.seq, hash: head.hash, at: head.at }), 'utf8');
}

export function signHead(releaseKey: KeyObject, head: Pick<AuditHead, 'seq' | 'hash' | 'at'>): AuditHead {
  return { ...head, keyId: keyIdOf(releaseKey), signature: signBytes(releaseKey, headSigningBytes(head)).toString('base64') };
}

/** True when `head` was signed by `publicKey`. */
export function headSignatureValid(publicKey: KeyObject, head: AuditHead): boolean {
  try {
    return verifyBytes(publicKey, headSigningBytes(head), Buffer.from(head.signature, 'base64'));
  } catch {
    return false;
  }
}

export class AuditHeads {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditLog,
    private readonly releaseKey: KeyObject,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Signs and stores the current head if it moved since the last signed one; returns it, or undefined. */
  async signIfMoved(): Promise<AuditHead | undefined> {
    const head = await this.audit.head();
    if (!head) return undefined;
    const last = await this.db.query<{ seq: string }>('SELECT seq FROM audit_heads ORDER BY seq DESC LIMIT 1');
    if (last[0] && Number(last[0].seq) >= head.seq) return undefined;
    const signed = signHead(this.releaseKey, { ...head, at: this.now().toISOString() });
    // Two control rooms on one database may sign the same head: one row is enough.
    await this.db.query('INSERT INTO audit_heads (seq, hash, at, key_id, signature) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING', [
      signed.seq,
      signed.hash,
      signed.at,
      signed.keyId,
      signed.signature,
    ]);
    return signed;
  }

  async list(options: { afterSeq?: number; limit?: number } = {}): Promise<AuditHead[]> {
    const rows = await this.db.query<{ seq: string; hash: string; at: Date; key_id: string; signature: string }>(
      'SELECT * FROM audit_heads WHERE seq > $1 ORDER BY seq LIMIT $2',
      [options.afterSeq ?? 0, options.limit ?? 10_000],
    );
    return rows.map((r) => ({ seq: Number(r.seq), hash: r.hash, at: r.at.toISOString(), keyId: r.key_id, signature: r.signature }));
  }
}
