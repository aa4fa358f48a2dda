import { createPublicKey, X509Certificate } from 'node:crypto';
import { BotManifest, DsseEnvelope, PackageDigest, verifyPackageEnvelope } from '@orderly/shared';
import { SENSITIVE_ROLES } from '../access/bindings';
import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { Db } from '../db/db';
import { AuditLog } from '../audit/audit';
import { AuditHeads } from '../audit/heads';
import { AuditVerdict, AuditVerifier } from '../audit/verify';
import { DEFAULT_LOCKOUT } from '../identity/lockout';
import { AccessReviews } from './access-reviews';
import { BotInventory, botInventory } from './inventory';
import { PURGEABLE_STATUSES } from './retention';

/** The settings the checks judge: a slice of the control room's configuration. */
export interface ComplianceSettings {
  production: boolean;
  segments: readonly string[];
  prodSegments: readonly string[];
  tls: { certFile?: string | undefined; clientCaFile?: string | undefined } | undefined;
  tlsTerminated: boolean;
  transitKey: string | undefined;
  sessionIdleMinutes: number;
  sessionMaxHours: number;
  tokenMaxDays: number;
  credentialMaxAgeDays: number;
  screenshotRetentionDays: number;
  auditRetentionDays: number;
  /** Days a finished run keeps its PHI and log lines (ORDERLY_RUN_RETENTION_DAYS); 0 keeps them forever. */
  runRetentionDays?: number;
  alertWebhook: boolean;
  /** Segments whose bootstrap runner token (a shared file) this control room honours; none in production. */
  bootstrapRunnerSegments?: readonly string[];
  /** Set when single sign-on is configured: the local accounts still allowed in (ORDERLY_BREAK_GLASS_USERS). */
  sso?: { breakGlassUsers: readonly string[] };
  /** Thresholds of the checks themselves (policy, not mechanism). */
  policy?: Partial<CompliancePolicy>;
}

export interface CompliancePolicy {
  staleDays: number;
  deadLetterSlaHours: number;
  backupMaxAgeHours: number;
  restoreDrillMaxDays: number;
  accessReviewMaxDays: number;
  auditReviewMaxDays: number;
  certificateMinDays: number;
  minAuditRetentionDays: number;
  /** Days the at-rest Transit key may go without rotation. */
  transitKeyMaxAgeDays: number;
  /** Hours an item may stay past its retention before the purge counts as not having run. */
  purgeGraceHours: number;
}

export const DEFAULT_POLICY: CompliancePolicy = {
  staleDays: 90,
  deadLetterSlaHours: 24,
  backupMaxAgeHours: 26,
  restoreDrillMaxDays: 365,
  accessReviewMaxDays: 90,
  auditReviewMaxDays: 30,
  certificateMinDays: 14,
  minAuditRetentionDays: 2190,
  transitKeyMaxAgeDays: 365,
  // The purges run every few minutes (leadership.every); a day covers an outage or a failover.
  purgeGraceHours: 24,
};

export interface PersonFact {
  id: string;
  username: string;
  roles: string[];
  mfa: boolean;
  enrolled: boolean;
  disabled: boolean;
  createdAt: Date;
  lastActiveAt: Date | null;
  liveSessions: number;
  liveTokens: number;
}
export interface TokenFact {
  id: string;
  ownerKind: string;
  ownerDisabled: boolean;
  createdAt: Date;
  expiresAt: Date;
  lastUsedAt: Date | null;
}
export interface RunnerIdentityFact {
  id: string;
  segment: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}
export interface CredentialFact {
  bot: string;
  name: string;
  at: Date;
  maxAgeDays: number | null;
}
export type EvidenceKind = 'backup' | 'restore_drill' | 'access_review' | 'audit_review';

/** Everything the checks look at, collected once: the checks are pure functions of it. */
export interface ComplianceFacts {
  now: Date;
  settings: ComplianceSettings;
  policy: CompliancePolicy;
  people: PersonFact[];
  serviceAccounts: { id: string; disabled: boolean; lastUsedAt: Date | null; createdAt: Date }[];
  tokens: TokenFact[];
  runnerIdentities: RunnerIdentityFact[];
  credentials: CredentialFact[];
  audit: { verdict: AuditVerdict; eventsWithoutActor: number; appendOnlyTriggers: string[]; lastEventAt: Date | null; bootstrapActionsLast30Days: number };
  /**
   * Over the last 7 days (how long the outbox keeps delivered alerts): actions of the bootstrap
   * admin in the audit chain, and the break-glass alerts raised for its uses in production; local
   * sign-ins while single sign-on is configured (audited `auth.break_glass`), and their alerts.
   */
  breakGlass: { bootstrapActions: number; alerts: number; localSignIns: number; localSignInAlerts: number };
  /** Dead-lettered runs older than the SLA, and how many of them have an alert in the outbox. */
  deadLetters: { pastSla: number; pastSlaAlerted: number };
  screenshotsPastExpiry: number;
  /**
   * What the retention purges should have removed but is still there (past retention plus the
   * grace), and the newest disposal record of each kind: the evidence that the purges ran.
   */
  retention: {
    runsPastRetention: number;
    logLinesPastRetention: number;
    auditEventsPastRetention: number;
    lastDisposal: Partial<Record<'screenshots' | 'audit_events' | 'run_logs' | 'runs', Date>>;
  };
  /**
   * The packages a run can be started or taken from (the latest version of each bot, and those of
   * waiting or active runs), each with whether its publisher key is revoked and whether its
   * envelope still verifies against that key over the stored digest and manifest.
   */
  runnablePackages: { name: string; version: string; keyRevoked: boolean; signatureValid: boolean }[];
  /**
   * Active people holding a sensitive role (security, approver, admin) with no approver on record
   * for it: no approved two-person request naming it, and not created with it by the bootstrap
   * (break-glass) admin.
   */
  sensitiveGrantsWithoutApprover: string[];
  /** Production segments whose bootstrap runner token is honoured and not revoked. */
  prodSegmentsWithBootstrapRunnerToken: string[];
  /** Packages run in the last 30 days after their publisher key was revoked. */
  runnablePackagesWithRevokedKey: number;
  /** Runs in production segments in the last 30 days of packages without a live prod release attestation. */
  prodRunsWithoutRelease: number;
  evidence: Record<EvidenceKind, Date | null>;
  /** Access review campaigns: undecided items of open campaigns past their due date, last completion. */
  accessReview: { overdueItems: number; lastCompletedAt: Date | null };
  certificateNotAfter: Date | null;
  /**
   * When the at-rest Transit key (ORDERLY_TRANSIT_KEY) was last rotated: undefined without one,
   * null when Vault could not be asked or did not say (the check then fails).
   */
  transitKeyRotatedAt: Date | null | undefined;
  lockoutThreshold: number;
  /** The bot data inventory (latest version of each bot), also kept in the report as evidence. */
  inventory: BotInventory;
}

const date = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(v as string));
const count = (row: Record<string, unknown> | undefined, key: string): number => Number(row?.[key] ?? 0);

/** Reads the facts from the database, the audit chain and the TLS certificate. */
export async function collectFacts(deps: {
  db: Db;
  audit: AuditLog;
  heads: AuditHeads;
  releasePublicKey: KeyObject;
  settings: ComplianceSettings;
  /** Reads the at-rest Transit key's last rotation from Vault (absent without Vault). */
  transitKeyRotatedAt?: (name: string) => Promise<Date | null>;
  now?: Date;
}): Promise<ComplianceFacts> {
  const { db } = deps;
  const now = deps.now ?? new Date();
  const policy = { ...DEFAULT_POLICY, ...deps.settings.policy };
  const people = await db.query<Record<string, unknown>>(
    `SELECT u.id, u.username, u.roles, (u.totp_sealed IS NOT NULL OR EXISTS (SELECT 1 FROM sso_identities i WHERE i.user_id = u.id AND i.last_mfa)) AS mfa, u.enrolled_at IS NOT NULL AS enrolled, u.disabled_at IS NOT NULL AS disabled, u.created_at,
       GREATEST((SELECT max(last_seen_at) FROM sessions s WHERE s.user_id = u.id), (SELECT max(last_used_at) FROM api_tokens t WHERE t.owner_kind = 'user' AND t.owner_id = u.id)) AS last_active,
       (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.expires_at > $1) AS live_sessions,
       (SELECT count(*) FROM api_tokens t WHERE t.owner_kind = 'user' AND t.owner_id = u.id AND t.revoked_at IS NULL AND t.expires_at > $1) AS live_tokens
     FROM users u ORDER BY u.username`,
    [now],
  );
  const serviceAccounts = await db.query<Record<string, unknown>>(
    `SELECT a.id, a.disabled_at IS NOT NULL AS disabled, a.created_at, (SELECT max(last_used_at) FROM api_tokens t WHERE t.owner_kind = 'service' AND t.owner_id = a.id) AS last_used FROM service_accounts a`,
  );
  const tokens = await db.query<Record<string, unknown>>(
    `SELECT t.id, t.owner_kind, t.created_at, t.expires_at, t.last_used_at,
       COALESCE((SELECT u.disabled_at IS NOT NULL FROM users u WHERE t.owner_kind = 'user' AND u.id = t.owner_id), (SELECT a.disabled_at IS NOT NULL FROM service_accounts a WHERE t.owner_kind = 'service' AND a.id = t.owner_id), false) AS owner_disabled
     FROM api_tokens t WHERE t.revoked_at IS NULL AND t.expires_at > $1`,
    [now],
  );
  const runners = await db.query<Record<string, unknown>>('SELECT id, segment, created_at, last_used_at FROM runner_identities WHERE revoked_at IS NULL');
  const credentials = await db.query<Record<string, unknown>>(
    'SELECT DISTINCT ON (bot, name) bot, name, at, max_age_days FROM credential_rotations ORDER BY bot, name, version DESC',
  );

  const verifier = new AuditVerifier();
  for (let after = 0; ;) {
    const page = await deps.audit.list({ afterSeq: after, limit: 5000 });
    for (const record of page) verifier.push(record);
    if (page.length < 5000) break;
    after = page[page.length - 1]!.seq;
  }
  const verdict = verifier.finish(await deps.heads.list({ limit: 100_000 }), deps.releasePublicKey);
  const [auditStats] = await db.query<Record<string, unknown>>(
    `SELECT count(*) FILTER (WHERE actor IS NULL OR btrim(actor) = '') AS no_actor, max(at) AS last_at,
       count(*) FILTER (WHERE actor = 'admin' AND at > $1::timestamptz - interval '30 days') AS bootstrap FROM audit_events`,
    [now],
  );
  const triggers = await db.query<{ tgname: string }>(
    `SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D' AND tgrelid IN ('audit_events'::regclass, 'audit_heads'::regclass) ORDER BY tgname`,
  );
  const [dead] = await db.query<Record<string, unknown>>(
    `SELECT count(*) AS past, count(*) FILTER (WHERE EXISTS (SELECT 1 FROM alert_outbox o WHERE o.kind = 'run.dead_lettered' AND o.body->>'runId' = r.id::text)) AS alerted
     FROM runs r WHERE r.status = 'dead_lettered' AND r.finished_at < $1::timestamptz - make_interval(hours => $2::int)`,
    [now, policy.deadLetterSlaHours],
  );
  const [shots] = await db.query<Record<string, unknown>>(`SELECT count(*) AS n FROM run_screenshots WHERE expires_at < $1::timestamptz - interval '1 day'`, [
    now,
  ]);
  const runDays = deps.settings.runRetentionDays ?? 0;
  const graceDays = policy.purgeGraceHours / 24;
  // The purge's own selection (retention.ts purgeRunBatch), with the grace added to its cut-off.
  const [runsLeft] =
    runDays > 0
      ? await db.query<Record<string, unknown>>(
          `WITH due AS (SELECT id FROM runs WHERE phi_purged_at IS NULL AND status = ANY($2)
             AND finished_at < $1::timestamptz - ($3::double precision * interval '1 day') AND updated_at < $1::timestamptz - ($3::double precision * interval '1 day'))
           SELECT (SELECT count(*) FROM due) AS runs, (SELECT count(*) FROM run_logs l WHERE l.run_id IN (SELECT id FROM due)) AS lines`,
          [now, [...PURGEABLE_STATUSES], runDays + graceDays],
        )
      : [];
  // The audit expiry's own selection (AuditLog.expire): the leading prefix older than the cut-off, never the newest event.
  const [auditLeft] =
    deps.settings.auditRetentionDays > 0
      ? await db.query<Record<string, unknown>>(
          `SELECT count(*) AS n FROM audit_events WHERE at < $1::timestamptz - ($2::double precision * interval '1 day')
             AND seq < COALESCE((SELECT min(seq) FROM audit_events WHERE at >= $1::timestamptz - ($2::double precision * interval '1 day')), 9223372036854775807)
             AND seq < (SELECT max(seq) FROM audit_events)`,
          [now, deps.settings.auditRetentionDays + graceDays],
        )
      : [];
  const runnable = await db.query<Record<string, unknown>>(
    `SELECT p.digest, p.name, p.version, p.manifest, p.envelope, k.public_key_pem, k.revoked_at IS NOT NULL AS key_revoked FROM packages p
       JOIN publisher_keys k ON k.key_id = p.publisher_key_id
     WHERE p.digest IN (SELECT DISTINCT ON (name) digest FROM packages ORDER BY name, created_at DESC, digest)
        OR p.digest IN (SELECT digest FROM runs WHERE status IN ('waiting', 'active'))
     ORDER BY p.name, p.version`,
  );
  // A binding is `role` or `role@segment`; a person whose sensitive bindings were all approved, or
  // who was created holding them by the bootstrap admin, is not listed.
  const ungranted = await db.query<{ username: string; binding: string }>(
    `SELECT u.username, b.binding FROM users u, unnest(u.roles) AS b(binding)
     WHERE u.disabled_at IS NULL AND split_part(b.binding, '@', 1) = ANY($1)
       AND NOT (u.created_by = 'admin')
       AND NOT EXISTS (SELECT 1 FROM access_requests r WHERE r.kind = 'grant_roles' AND r.target_id = u.id AND r.status = 'approved'
                       AND r.decided_by IS NOT NULL AND b.binding = ANY(r.roles_after))
     ORDER BY u.username, b.binding`,
    [[...SENSITIVE_ROLES]],
  );
  const [breakGlass] = await db.query<Record<string, unknown>>(
    `SELECT (SELECT count(*) FROM alert_outbox WHERE kind = 'access.break_glass_used' AND created_at > $1::timestamptz - interval '7 days') AS alerts,
       (SELECT count(*) FROM audit_events WHERE actor = 'admin' AND at > $1::timestamptz - interval '7 days') AS uses,
       (SELECT count(*) FROM alert_outbox WHERE kind = 'auth.break_glass' AND created_at > $1::timestamptz - interval '7 days') AS local_alerts,
       (SELECT count(*) FROM audit_events WHERE action = 'auth.break_glass' AND at > $1::timestamptz - interval '7 days') AS local_uses`,
    [now],
  );
  const bootstrapRevoked = new Set((await db.query<{ segment: string }>('SELECT segment FROM bootstrap_runner_revocations')).map((r) => r.segment));
  const disposals = await db.query<{ kind: string; at: unknown }>('SELECT kind, max(disposed_at) AS at FROM disposal_records GROUP BY kind');
  const [revoked] = await db.query<Record<string, unknown>>(
    `SELECT count(DISTINCT p.digest) AS n FROM packages p JOIN publisher_keys k ON k.key_id = p.publisher_key_id
     WHERE k.revoked_at IS NOT NULL AND EXISTS (SELECT 1 FROM runs r WHERE r.digest = p.digest AND r.created_at > $1::timestamptz - interval '30 days' AND r.created_at > k.revoked_at)`,
    [now],
  );
  const [unreleased] = await db.query<Record<string, unknown>>(
    `SELECT count(*) AS n FROM runs r WHERE r.segment = ANY($2) AND r.created_at > $1::timestamptz - interval '30 days'
       AND NOT EXISTS (SELECT 1 FROM release_attestations a WHERE a.digest = r.digest AND a.channel = 'prod' AND a.approved_at <= r.created_at AND a.expires_at > r.created_at)`,
    [now, deps.settings.prodSegments],
  );
  const evidenceRows = await db.query<{ kind: string; at: unknown }>('SELECT kind, max(at) AS at FROM compliance_evidence GROUP BY kind');
  const evidenceAt = new Map(evidenceRows.map((r) => [r.kind, date(r.at)]));

  return {
    now,
    settings: deps.settings,
    policy,
    people: people.map((r) => ({
      id: String(r.id),
      username: String(r.username),
      roles: r.roles as string[],
      mfa: r.mfa === true,
      enrolled: r.enrolled === true,
      disabled: r.disabled === true,
      createdAt: new Date(r.created_at as string),
      lastActiveAt: date(r.last_active),
      liveSessions: Number(r.live_sessions),
      liveTokens: Number(r.live_tokens),
    })),
    serviceAccounts: serviceAccounts.map((r) => ({
      id: String(r.id),
      disabled: r.disabled === true,
      lastUsedAt: date(r.last_used),
      createdAt: new Date(r.created_at as string),
    })),
    tokens: tokens.map((r) => ({
      id: String(r.id),
      ownerKind: String(r.owner_kind),
      ownerDisabled: r.owner_disabled === true,
      createdAt: new Date(r.created_at as string),
      expiresAt: new Date(r.expires_at as string),
      lastUsedAt: date(r.last_used_at),
    })),
    runnerIdentities: runners.map((r) => ({
      id: String(r.id),
      segment: String(r.segment),
      createdAt: new Date(r.created_at as string),
      lastUsedAt: date(r.last_used_at),
    })),
    credentials: credentials.map((r) => ({
      bot: String(r.bot),
      name: String(r.name),
      at: new Date(r.at as string),
      maxAgeDays: r.max_age_days === null ? null : Number(r.max_age_days),
    })),
    audit: {
      verdict,
      eventsWithoutActor: count(auditStats, 'no_actor'),
      appendOnlyTriggers: triggers.map((t) => t.tgname),
      lastEventAt: date(auditStats?.last_at),
      bootstrapActionsLast30Days: count(auditStats, 'bootstrap'),
    },
    breakGlass: {
      bootstrapActions: count(breakGlass, 'uses'),
      alerts: count(breakGlass, 'alerts'),
      localSignIns: count(breakGlass, 'local_uses'),
      localSignInAlerts: count(breakGlass, 'local_alerts'),
    },
    deadLetters: { pastSla: count(dead, 'past'), pastSlaAlerted: count(dead, 'alerted') },
    screenshotsPastExpiry: count(shots, 'n'),
    retention: {
      runsPastRetention: count(runsLeft, 'runs'),
      logLinesPastRetention: count(runsLeft, 'lines'),
      auditEventsPastRetention: count(auditLeft, 'n'),
      lastDisposal: Object.fromEntries(disposals.map((d) => [d.kind, date(d.at)!])),
    },
    runnablePackages: runnable.map((r) => ({
      name: String(r.name),
      version: String(r.version),
      keyRevoked: r.key_revoked === true,
      signatureValid: envelopeVerifies(r),
    })),
    prodSegmentsWithBootstrapRunnerToken: (deps.settings.bootstrapRunnerSegments ?? []).filter(
      (s) => deps.settings.prodSegments.includes(s) && !bootstrapRevoked.has(s),
    ),
    sensitiveGrantsWithoutApprover: ungranted.map((r) => `${r.username} (${r.binding})`),
    runnablePackagesWithRevokedKey: count(revoked, 'n'),
    prodRunsWithoutRelease: count(unreleased, 'n'),
    evidence: {
      backup: evidenceAt.get('backup') ?? null,
      restore_drill: evidenceAt.get('restore_drill') ?? null,
      access_review: evidenceAt.get('access_review') ?? null,
      audit_review: evidenceAt.get('audit_review') ?? null,
    },
    accessReview: await new AccessReviews({ db, audit: deps.audit }).status(now),
    certificateNotAfter: readCertificateNotAfter(deps.settings.tls?.certFile),
    transitKeyRotatedAt: await transitRotation(deps),
    lockoutThreshold: DEFAULT_LOCKOUT.threshold,
    inventory: await botInventory(db, deps.settings.prodSegments, now),
  };
}

async function transitRotation(deps: {
  settings: ComplianceSettings;
  transitKeyRotatedAt?: (name: string) => Promise<Date | null>;
}): Promise<Date | null | undefined> {
  const name = deps.settings.transitKey;
  if (!name) return undefined;
  if (!deps.transitKeyRotatedAt) return null;
  // Vault down or the key unreadable is a failed check (observed: unknown), not a failed report.
  return deps.transitKeyRotatedAt(name).catch(() => null);
}

/** True when a stored package's envelope verifies against its publisher key, digest and manifest. */
function envelopeVerifies(row: Record<string, unknown>): boolean {
  const parse = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);
  try {
    // The stored manifest as it was verified at publish (its name and version are what the statement binds).
    const manifest = parse(row.manifest) as BotManifest;
    verifyPackageEnvelope(parse(row.envelope) as DsseEnvelope, createPublicKey(String(row.public_key_pem)), String(row.digest) as PackageDigest, manifest);
    return true;
  } catch {
    return false;
  }
}

/** notAfter of the PEM certificate in `file`; null when unset or unreadable (the check then fails). */
export function readCertificateNotAfter(file: string | undefined): Date | null {
  if (!file) return null;
  try {
    return new Date(new X509Certificate(readFileSync(file)).validTo);
  } catch {
    return null;
  }
}
