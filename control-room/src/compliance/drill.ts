import { createHash, createPublicKey, KeyObject, randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { OrderlyError } from '@orderly/shared';
import { AuditLog } from '../audit/audit';
import { AuditHeads } from '../audit/heads';
import { AuditVerdict, AuditVerifier } from '../audit/verify';
import { openDb } from '../db/db';
import { BackupManifest, restoreBackup } from './backup';
import { recordEvidence } from './evidence';

export interface DrillResult {
  manifest: BackupManifest;
  scratchDatabase: string;
  audit: AuditVerdict;
  archiveSha256: string;
}

/**
 * A restore drill: restores the archive into a scratch database on the same server, checks blobs
 * and row counts (as every restore does) and verifies the restored audit chain with the release key,
 * drops the scratch database, and records the drill as `restore_drill` evidence in the live database.
 * A drill whose chain does not verify is an audit failure event (not evidence) and answers
 * ORDERLY_E_BACKUP_FAILED.
 */
export async function drillBackup(options: { databaseUrl: string; key: Buffer; archive: Buffer; releaseKey: KeyObject; actor: string }): Promise<DrillResult> {
  const scratch = `orderly_drill_${randomBytes(6).toString('hex')}`;
  const scratchUrl = new URL(options.databaseUrl);
  scratchUrl.pathname = `/${scratch}`;
  const admin = new Client({ connectionString: options.databaseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${scratch}`);
  } finally {
    await admin.end();
  }
  const archiveSha256 = createHash('sha256').update(options.archive).digest('hex');
  let result: DrillResult | undefined;
  try {
    const manifest = await restoreBackup({ databaseUrl: scratchUrl.toString(), key: options.key, archive: options.archive });
    const db = await openDb({ databaseUrl: scratchUrl.toString(), pgliteDir: '' });
    try {
      const audit = new AuditLog(db);
      const verifier = new AuditVerifier();
      for (let after = 0; ;) {
        const page = await audit.list({ afterSeq: after, limit: 5000 });
        for (const record of page) verifier.push(record);
        if (page.length < 5000) break;
        after = page[page.length - 1]!.seq;
      }
      const verdict = verifier.finish(await new AuditHeads(db, audit, options.releaseKey).list({ limit: 100_000 }), createPublicKey(options.releaseKey));
      result = { manifest, scratchDatabase: scratch, audit: verdict, archiveSha256 };
    } finally {
      await db.close();
    }
  } finally {
    const cleanup = new Client({ connectionString: options.databaseUrl });
    await cleanup.connect();
    try {
      await cleanup.query(`DROP DATABASE IF EXISTS ${scratch} WITH (FORCE)`);
    } finally {
      await cleanup.end();
    }
  }
  const live = await openDb({ databaseUrl: options.databaseUrl, pgliteDir: '' });
  try {
    const verdict = result.audit;
    if (!verdict.ok) {
      // A failed drill is no evidence of recovery: it is an audit event, and the check stays failing.
      await new AuditLog(live).append({
        actor: options.actor,
        action: 'compliance.evidence.restore_drill',
        target: 'restore_drill',
        outcome: 'failure',
        details: { archiveSha256, seq: verdict.seq },
      });
      throw new OrderlyError('ORDERLY_E_BACKUP_FAILED', `the restored audit chain does not verify at seq ${verdict.seq}: ${verdict.reason}`);
    }
    await recordEvidence(live, new AuditLog(live), 'restore_drill', options.actor, {
      archiveSha256,
      auditEvents: verdict.events,
      runs: result.manifest.counts.runs ?? 0,
      packages: result.manifest.packages.length,
    });
  } finally {
    await live.close();
  }
  return result;
}
