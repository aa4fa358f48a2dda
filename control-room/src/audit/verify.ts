import { KeyObject } from 'node:crypto';
import { AUDIT_EXPIRE_ACTION, AUDIT_GENESIS_HASH, auditHash, AuditRecord } from './audit';
import { AuditHead, headSignatureValid } from './heads';

/** The first broken link, or a summary of what was checked. */
export type AuditVerdict =
  | { ok: true; events: number; firstSeq: number | null; lastSeq: number | null; headsChecked: number; headsBeforeRetention: number; anchoredByExpiry: boolean }
  | { ok: false; seq: number; reason: string };

/**
 * Verifies the audit log as a client would, from what the API hands out, so that a verifier need
 * not trust the server's own verdict:
 *
 * 1. The chain, from the first retained event: every prev_hash is the previous event's hash and
 *    every hash recomputes. The first event follows the genesis hash, or, after retention expiry,
 *    the hash an `audit.expire` event later in the chain names as the last one removed.
 * 2. Every signed head verifies with the release public key, and the event at its seq still has
 *    the signed hash. Heads older than the first retained event are expired with it.
 * 3. No signed head lies beyond the last event: a cut tail shows.
 *
 * Events are pushed in seq order (paged from the API); `finish` takes the signed heads.
 */
export class AuditVerifier {
  private prevHash: string | undefined;
  private firstSeq: number | null = null;
  private lastSeq: number | null = null;
  private firstPrevHash: string | undefined;
  private count = 0;
  private broken: { seq: number; reason: string } | undefined;
  /** seq → hash of every retained event, to check signed heads against. */
  private readonly hashes = new Map<number, string>();
  /** Hashes that `audit.expire` events name as the last removed event. */
  private readonly expiryAnchors = new Set<string>();

  push(record: AuditRecord): void {
    if (this.broken) return;
    this.count++;
    if (this.lastSeq !== null && record.seq <= this.lastSeq) return this.fail(record.seq, 'events are out of order or repeated');
    if (this.prevHash === undefined) {
      this.firstSeq = record.seq;
      this.firstPrevHash = record.prevHash;
    } else if (record.prevHash !== this.prevHash) {
      return this.fail(record.seq, 'prev_hash does not match the previous event (an event was removed or inserted before it)');
    }
    if (auditHash(record.prevHash, record) !== record.hash) return this.fail(record.seq, 'hash does not match the event (it was changed)');
    if (record.action === AUDIT_EXPIRE_ACTION && typeof record.details.throughHash === 'string') this.expiryAnchors.add(record.details.throughHash);
    this.hashes.set(record.seq, record.hash);
    this.prevHash = record.hash;
    this.lastSeq = record.seq;
  }

  private fail(seq: number, reason: string): void {
    this.broken ??= { seq, reason };
  }

  finish(heads: readonly AuditHead[], releasePublicKey: KeyObject): AuditVerdict {
    const problems: { seq: number; reason: string }[] = this.broken ? [this.broken] : [];
    let anchoredByExpiry = false;
    if (this.firstSeq !== null && this.firstPrevHash !== AUDIT_GENESIS_HASH) {
      if (this.expiryAnchors.has(this.firstPrevHash!)) anchoredByExpiry = true;
      else
        problems.push({ seq: this.firstSeq, reason: 'the first event does not follow the genesis hash, and no audit.expire event names the events before it' });
    }
    let headsChecked = 0;
    let headsBeforeRetention = 0;
    for (const head of heads) {
      if (!headSignatureValid(releasePublicKey, head)) {
        problems.push({ seq: head.seq, reason: 'the signed head at this seq has an invalid signature' });
        continue;
      }
      if (this.lastSeq === null || head.seq > this.lastSeq) {
        problems.push({
          seq: head.seq,
          reason: `a signed head names seq ${head.seq}, beyond the last event (${this.lastSeq ?? 'none'}): events were removed from the end`,
        });
        continue;
      }
      if (head.seq < this.firstSeq!) {
        headsBeforeRetention++;
        continue;
      }
      const hash = this.hashes.get(head.seq);
      if (hash === undefined) problems.push({ seq: head.seq, reason: 'the event of a signed head is missing' });
      else if (hash !== head.hash) problems.push({ seq: head.seq, reason: 'the event at this seq does not match its signed head' });
      else headsChecked++;
    }
    if (problems.length > 0) {
      const first = problems.reduce((a, b) => (b.seq < a.seq ? b : a));
      return { ok: false, seq: first.seq, reason: first.reason };
    }
    return { ok: true, events: this.count, firstSeq: this.firstSeq, lastSeq: this.lastSeq, headsChecked, headsBeforeRetention, anchoredByExpiry };
  }
}

/** Verifies a whole log held in memory (tests, small logs). */
export function verifyAuditLog(records: readonly AuditRecord[], heads: readonly AuditHead[], releasePublicKey: KeyObject): AuditVerdict {
  const verifier = new AuditVerifier();
  for (const record of records) verifier.push(record);
  return verifier.finish(heads, releasePublicKey);
}
