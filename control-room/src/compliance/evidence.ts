import { Db } from '../db/db';
import { AuditLog } from '../audit/audit';
import type { EvidenceKind } from './facts';

export type EvidenceDetails = Record<string, string | number | boolean | null>;

/** Stores one evidence row and its audit event in one transaction (the backup CLI calls it directly). */
export async function recordEvidence(db: Db, audit: AuditLog, kind: EvidenceKind, actor: string, details: EvidenceDetails = {}): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query('INSERT INTO compliance_evidence (kind, actor, details) VALUES ($1, $2, $3)', [kind, actor, JSON.stringify(details)]);
    await audit.append({ actor, action: `compliance.evidence.${kind}`, target: kind, outcome: 'success', details }, tx);
  });
}
