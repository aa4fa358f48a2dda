import { createHash, createPublicKey, KeyObject, randomUUID, sign, verify } from 'node:crypto';
import { canonicalJson } from '@orderly/shared';
import { Db } from '../db/db';
import { AuditLog } from '../audit/audit';
import { AuditHeads } from '../audit/heads';
import type { AlertOutbox } from '../alerts/outbox';
import { CHECKS, CheckResult, ComplianceCheck } from './checks';
import { collectFacts, ComplianceFacts, ComplianceSettings, EvidenceKind } from './facts';
import { BotInventory, botInventory } from './inventory';
import { EvidenceDetails, recordEvidence } from './evidence';
import { DisposalKind, DisposalRecord, listDisposals } from './retention';

/** Orderly's version, stamped on every result (auditors ask which build said so). */
export const ORDERLY_VERSION = '0.1.0';

export interface CheckRecord {
  controlId: string;
  checkId: string;
  title: string;
  result: CheckResult;
  expected: string;
  observed: string;
  /** sha256 of the canonical JSON of what the check judged (its id, expected and observed). */
  evidenceSha256: string;
  collectedAt: string;
  version: string;
}

export interface ComplianceReport {
  v: 1;
  id: string;
  collectedAt: string;
  version: string;
  summary: Record<CheckResult, number>;
  results: CheckRecord[];
  /** Evidence the report keeps whole: the bot data inventory when the checks were run (signed with the report). */
  inventory?: BotInventory;
  /** sha256 (hex) of the canonical JSON of the report without digest and signature. */
  digest: string;
  /** Ed25519 signature (base64) of the digest by the control room's release key. */
  signature: string;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Runs every check on one set of facts; a check that throws is an `error` result, not a crash. */
export function evaluate(facts: ComplianceFacts, checks: readonly ComplianceCheck[] = CHECKS): CheckRecord[] {
  const collectedAt = facts.now.toISOString();
  return checks.map((check) => {
    let outcome: { result: CheckResult; expected: string; observed: string };
    try {
      outcome = check.evaluate(facts);
    } catch (err) {
      outcome = { result: 'error', expected: 'the check completes', observed: err instanceof Error ? err.message.slice(0, 200) : 'unknown error' };
    }
    const evidenceSha256 = sha256(canonicalJson({ checkId: check.id, expected: outcome.expected, observed: outcome.observed, collectedAt }));
    return { controlId: check.control, checkId: check.id, title: check.title, ...outcome, evidenceSha256, collectedAt, version: ORDERLY_VERSION };
  });
}

/** Signs results into a report. */
export function signReport(results: CheckRecord[], collectedAt: Date, releaseKey: KeyObject, evidence: { inventory?: BotInventory } = {}): ComplianceReport {
  const summary: Record<CheckResult, number> = { pass: 0, fail: 0, manual: 0, not_applicable: 0, error: 0 };
  for (const r of results) summary[r.result]++;
  const body = {
    v: 1 as const,
    id: randomUUID(),
    collectedAt: collectedAt.toISOString(),
    version: ORDERLY_VERSION,
    summary,
    results,
    ...(evidence.inventory ? { inventory: evidence.inventory } : {}),
  };
  const digest = sha256(canonicalJson(body));
  const signature = sign(null, Buffer.from(digest, 'utf8'), releaseKey).toString('base64');
  return { ...body, digest, signature };
}

/** True when the report's digest recomputes and its signature verifies with the release public key. */
export function verifyReport(report: ComplianceReport, releasePublicKey: KeyObject): boolean {
  const { digest, signature, ...body } = report;
  if (sha256(canonicalJson(body)) !== digest) return false;
  return verify(null, Buffer.from(digest, 'utf8'), releasePublicKey, Buffer.from(signature, 'base64'));
}

/** Runs the checks, signs the report, stores it and appends its digest to the audit chain. */
export class Compliance {
  constructor(
    private readonly deps: {
      db: Db;
      audit: AuditLog;
      heads: AuditHeads;
      releaseKey: KeyObject;
      settings: ComplianceSettings;
      alerts?: AlertOutbox;
      /** The at-rest Transit key's last rotation, from Vault (see facts.ts). */
      transitKeyRotatedAt?: (name: string) => Promise<Date | null>;
    },
  ) {}

  async check(actor: string, now = new Date()): Promise<ComplianceReport> {
    const facts = await collectFacts({
      db: this.deps.db,
      audit: this.deps.audit,
      heads: this.deps.heads,
      releasePublicKey: createPublicKey(this.deps.releaseKey),
      settings: this.deps.settings,
      ...(this.deps.transitKeyRotatedAt ? { transitKeyRotatedAt: this.deps.transitKeyRotatedAt } : {}),
      now,
    });
    const report = signReport(evaluate(facts), now, this.deps.releaseKey, { inventory: facts.inventory });
    await this.deps.db.transaction(async (tx) => {
      // A check that passed last time and fails now sends the signed alert webhook, once per report.
      const [previous] = await tx.query<{ results: { checkId: string; result: string }[] }>(
        "SELECT report->'results' AS results FROM compliance_reports ORDER BY collected_at DESC LIMIT 1",
      );
      const passedBefore = new Set((previous?.results ?? []).filter((r) => r.result === 'pass').map((r) => r.checkId));
      for (const r of report.results) {
        if ((r.result === 'fail' || r.result === 'error') && passedBefore.has(r.checkId)) {
          await this.deps.alerts?.complianceRegressed(tx, {
            kind: 'compliance.check_failed',
            reportId: report.id,
            reportDigest: report.digest,
            checkId: r.checkId,
            controlId: r.controlId,
            result: r.result,
          });
        }
      }
      await tx.query('INSERT INTO compliance_reports (id, collected_at, digest, report) VALUES ($1, $2, $3, $4)', [
        report.id,
        report.collectedAt,
        report.digest,
        JSON.stringify(report),
      ]);
      await this.deps.audit.append(
        {
          actor,
          action: 'compliance.report',
          target: report.id,
          outcome: 'success',
          details: { digest: report.digest, pass: report.summary.pass, fail: report.summary.fail, manual: report.summary.manual, error: report.summary.error },
        },
        tx,
      );
    });
    return report;
  }

  /** The bot data inventory (`GET /v1/compliance/inventory`). */
  async inventory(now = new Date()): Promise<BotInventory> {
    return botInventory(this.deps.db, this.deps.settings.prodSegments, now);
  }

  /** The retention purges' disposal records, newest first (`GET /v1/compliance/disposals`). */
  async disposals(options: { limit?: number; kind?: DisposalKind | undefined } = {}): Promise<DisposalRecord[]> {
    return listDisposals(this.deps.db, options);
  }

  /** Records evidence of a safeguard carried out (a backup, drill or review); counts and ids only. */
  async recordEvidence(kind: EvidenceKind, actor: string, details: EvidenceDetails = {}): Promise<void> {
    await recordEvidence(this.deps.db, this.deps.audit, kind, actor, details);
  }
}
