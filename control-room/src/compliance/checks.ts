import { ComplianceFacts, EvidenceKind } from './facts';
import { botsWithoutContacts } from './inventory';

export const CHECK_RESULTS = ['pass', 'fail', 'manual', 'not_applicable', 'error'] as const;
export type CheckResult = (typeof CHECK_RESULTS)[number];

/** What one check decides: pure, from the collected facts only. */
export interface CheckOutcome {
  result: Exclude<CheckResult, 'error'>;
  expected: string;
  observed: string;
}

export interface ComplianceCheck {
  /** Stable id, e.g. `auth.mfa-every-person`. */
  id: string;
  /** The HIPAA Security Rule citation (45 CFR). */
  control: string;
  title: string;
  evaluate(facts: ComplianceFacts): CheckOutcome;
}

const DAY = 24 * 3600 * 1000;
const ageDays = (facts: ComplianceFacts, at: Date) => (facts.now.getTime() - at.getTime()) / DAY;
const verdict = (ok: boolean, expected: string, observed: string): CheckOutcome => ({ result: ok ? 'pass' : 'fail', expected, observed });
const names = (list: readonly string[], max = 10) =>
  list.length === 0 ? 'none' : `${list.length}: ${list.slice(0, max).join(', ')}${list.length > max ? ', …' : ''}`;

function evidenceCheck(kind: EvidenceKind, maxDays: (f: ComplianceFacts) => number, what: string): (f: ComplianceFacts) => CheckOutcome {
  return (f) => {
    const at = f.evidence[kind];
    const limit = maxDays(f);
    const expected = `${what} recorded within ${limit} days`;
    if (!at) return verdict(false, expected, 'never recorded');
    return verdict(ageDays(f, at) <= limit, expected, `last at ${at.toISOString()} (${ageDays(f, at).toFixed(1)} days ago)`);
  };
}

/**
 * The checks Orderly runs on itself. Each maps to one HIPAA Security Rule implementation
 * specification; where the control room cannot see the safeguard (it lives on the runner host or in
 * a procedure), the result is `manual` with what a person must confirm, never a silent pass.
 */
export const CHECKS: readonly ComplianceCheck[] = [
  {
    id: 'access.unique-user-ids',
    control: '164.312(a)(2)(i)',
    title: 'Unique user identification: every audit event has an actor, and the shared bootstrap identity is not used for daily work',
    evaluate: (f) =>
      verdict(
        f.audit.eventsWithoutActor === 0 && (!f.settings.production || f.audit.bootstrapActionsLast30Days === 0),
        f.settings.production ? 'no event without an actor; no action by the bootstrap admin in 30 days' : 'no event without an actor',
        `${f.audit.eventsWithoutActor} events without an actor; ${f.audit.bootstrapActionsLast30Days} bootstrap admin actions in 30 days`,
      ),
  },
  {
    id: 'access.emergency-procedure',
    control: '164.312(a)(2)(ii)',
    title: 'Emergency access procedure: the bootstrap admin token is the break-glass identity; in production each use alerts through the webhook',
    evaluate: (f) => {
      if (!f.settings.production)
        return { result: 'not_applicable', expected: 'break-glass alerts in production', observed: 'development: the bootstrap admin token is for setup' };
      const { bootstrapActions: uses, alerts } = f.breakGlass;
      return verdict(
        f.settings.alertWebhook && (uses === 0 || alerts > 0),
        'alert webhook configured; uses of the bootstrap admin token in 7 days alerted',
        `webhook ${f.settings.alertWebhook ? 'configured' : 'not configured'}; ${uses} bootstrap admin actions, ${alerts} break-glass alerts in 7 days`,
      );
    },
  },
  {
    id: 'access.break-glass-accounts',
    control: '164.312(a)(2)(ii)',
    title: 'With single sign-on, local accounts are break-glass only: named, with a second factor, each sign-in alerted',
    evaluate: (f) => {
      if (!f.settings.sso)
        return {
          result: 'not_applicable',
          expected: 'break-glass local accounts under single sign-on',
          observed: 'no single sign-on: local accounts are the way in',
        };
      const listed = f.settings.sso.breakGlassUsers;
      const people = new Map(f.people.map((p) => [p.username, p]));
      const withoutMfa = listed.filter((u) => people.has(u) && !people.get(u)?.mfa);
      const notFound = listed.filter((u) => !people.has(u));
      const { localSignIns, localSignInAlerts } = f.breakGlass;
      return verdict(
        f.settings.alertWebhook && withoutMfa.length === 0 && localSignInAlerts >= localSignIns,
        'alert webhook configured; every break-glass account (ORDERLY_BREAK_GLASS_USERS) has a second factor; every local sign-in in 7 days alerted',
        `webhook ${f.settings.alertWebhook ? 'configured' : 'not configured'}; break-glass accounts ${names(listed)}; without a second factor: ${names(withoutMfa)}; not found: ${names(notFound)}; ${localSignIns} local sign-ins, ${localSignInAlerts} alerts in 7 days`,
      );
    },
  },
  {
    id: 'access.automatic-logoff',
    control: '164.312(a)(2)(iii)',
    title: 'Automatic logoff: idle and absolute session limits in force',
    evaluate: (f) =>
      verdict(
        f.settings.sessionIdleMinutes <= 30 && f.settings.sessionMaxHours <= 12,
        'idle limit at most 30 minutes, absolute at most 12 hours',
        `idle ${f.settings.sessionIdleMinutes} minutes, absolute ${f.settings.sessionMaxHours} hours`,
      ),
  },
  {
    id: 'access.token-lifetime',
    control: '164.312(a)(2)(iii)',
    title: 'API tokens expire within the policy lifetime',
    evaluate: (f) => {
      const long = f.tokens.filter((t) => (t.expiresAt.getTime() - t.createdAt.getTime()) / DAY > f.settings.tokenMaxDays + 0.01).map((t) => t.id);
      return verdict(
        long.length === 0 && f.settings.tokenMaxDays <= 90,
        'token lifetime at most 90 days',
        `max ${f.settings.tokenMaxDays} days; tokens beyond it: ${names(long)}`,
      );
    },
  },
  {
    id: 'encryption.at-rest',
    control: '164.312(a)(2)(iv)',
    title: 'Encryption at rest: run inputs, results, screenshots sealed under a Vault Transit key in production',
    evaluate: (f) =>
      f.settings.production
        ? verdict(
            f.settings.transitKey !== undefined,
            'ORDERLY_TRANSIT_KEY set (envelope encryption in Vault Transit)',
            f.settings.transitKey ? `Transit key ${f.settings.transitKey}` : 'local data key only',
          )
        : {
            result: 'pass',
            expected: 'inputs and results sealed (AES-256-GCM)',
            observed: f.settings.transitKey ? `Transit key ${f.settings.transitKey}` : 'local data key (development)',
          },
  },
  {
    id: 'encryption.transit-key-rotation',
    control: '164.312(a)(2)(iv)',
    title: 'Encryption at rest: the Vault Transit key is rotated within the policy age',
    evaluate: (f) => {
      if (!f.settings.transitKey)
        return { result: 'not_applicable', expected: 'an at-rest Transit key (ORDERLY_TRANSIT_KEY)', observed: 'local data key only' };
      const expected = `Transit key ${f.settings.transitKey} rotated within ${f.policy.transitKeyMaxAgeDays} days`;
      if (!f.transitKeyRotatedAt) return verdict(false, expected, 'the key could not be read from Vault');
      const days = ageDays(f, f.transitKeyRotatedAt);
      return verdict(
        days <= f.policy.transitKeyMaxAgeDays,
        expected,
        `latest version made ${f.transitKeyRotatedAt.toISOString()} (${days.toFixed(1)} days ago)`,
      );
    },
  },
  {
    id: 'audit.chain-verifies',
    control: '164.312(b)',
    title: 'Audit controls: the hash chain and its signed heads verify end to end',
    evaluate: (f) =>
      verdict(
        f.audit.verdict.ok,
        'chain and signed heads verify',
        f.audit.verdict.ok
          ? `${f.audit.verdict.events} events, ${f.audit.verdict.headsChecked} heads`
          : `broken at seq ${f.audit.verdict.seq}: ${f.audit.verdict.reason}`,
      ),
  },
  {
    id: 'audit.append-only',
    control: '164.312(b)',
    title: 'Audit controls: the append-only triggers are in place and enabled',
    evaluate: (f) => {
      const wanted = ['audit_events_no_truncate', 'audit_events_no_update_delete', 'audit_heads_no_truncate', 'audit_heads_no_update_delete'];
      const missing = wanted.filter((t) => !f.audit.appendOnlyTriggers.includes(t));
      return verdict(missing.length === 0, wanted.join(', '), missing.length === 0 ? 'all enabled' : `missing or disabled: ${missing.join(', ')}`);
    },
  },
  {
    id: 'audit.retention',
    control: '164.312(b)',
    title: 'Audit controls: audit retention meets policy (six years)',
    evaluate: (f) =>
      verdict(
        f.settings.auditRetentionDays === 0 || f.settings.auditRetentionDays >= f.policy.minAuditRetentionDays,
        `at least ${f.policy.minAuditRetentionDays} days (0: kept forever)`,
        `${f.settings.auditRetentionDays} days`,
      ),
  },
  {
    id: 'audit.activity-review',
    control: '164.308(a)(1)(ii)(D)',
    title: 'Information system activity review: an audit review was recorded recently',
    evaluate: evidenceCheck('audit_review', (f) => f.policy.auditReviewMaxDays, 'an audit log review'),
  },
  {
    id: 'integrity.revoked-keys',
    control: '164.312(c)(1)',
    title: 'Integrity: no run of a package whose publisher key was revoked',
    evaluate: (f) =>
      verdict(f.runnablePackagesWithRevokedKey === 0, 'no package run after its key was revoked (30 days)', `${f.runnablePackagesWithRevokedKey} packages`),
  },
  {
    id: 'integrity.runnable-signed',
    control: '164.312(c)(1)',
    title:
      'Integrity: every runnable package (latest of each bot, and those of waiting or active runs) is signed by an unrevoked key and its signature verifies',
    evaluate: (f) => {
      const bad = f.runnablePackages
        .filter((p) => p.keyRevoked || !p.signatureValid)
        .map((p) => `${p.name}@${p.version} (${p.keyRevoked ? 'key revoked' : 'signature does not verify'})`);
      return verdict(
        bad.length === 0,
        'each runnable package signed by an unrevoked publisher key',
        `${f.runnablePackages.length} runnable; failing: ${names(bad)}`,
      );
    },
  },
  {
    id: 'integrity.prod-released',
    control: '164.312(c)(1)',
    title: 'Integrity: every production run had a live prod release attestation',
    evaluate: (f) =>
      f.settings.prodSegments.length === 0
        ? { result: 'not_applicable', expected: 'production segments', observed: 'no production segment configured' }
        : verdict(f.prodRunsWithoutRelease === 0, 'every production run released (30 days)', `${f.prodRunsWithoutRelease} runs without a release`),
  },
  {
    id: 'auth.mfa-every-person',
    control: '164.312(d)',
    title: 'Person authentication: every active person has a second factor (TOTP) enrolled',
    evaluate: (f) => {
      const without = f.people.filter((p) => !p.disabled && !p.mfa).map((p) => p.username);
      return verdict(without.length === 0, 'every active person has TOTP', `without: ${names(without)}`);
    },
  },
  {
    id: 'auth.runner-identities',
    control: '164.312(d)',
    title: 'Entity authentication: every production segment has its own runner identities (not the bootstrap runner token)',
    evaluate: (f) => {
      if (f.settings.prodSegments.length === 0)
        return { result: 'not_applicable', expected: 'production segments', observed: 'no production segment configured' };
      const missing = f.settings.prodSegments.filter((s) => !f.runnerIdentities.some((r) => r.segment === s));
      return verdict(missing.length === 0, 'a runner identity per production segment', `segments without one: ${names(missing)}`);
    },
  },
  {
    id: 'auth.no-bootstrap-runner-token',
    control: '164.312(d)',
    title: 'Entity authentication: no production segment accepts the shared bootstrap runner token (runners use their own identities)',
    evaluate: (f) => {
      if (f.settings.prodSegments.length === 0)
        return { result: 'not_applicable', expected: 'production segments', observed: 'no production segment configured' };
      return verdict(
        f.prodSegmentsWithBootstrapRunnerToken.length === 0,
        'the bootstrap runner token refused (production) or revoked for every production segment',
        `production segments accepting it: ${names(f.prodSegmentsWithBootstrapRunnerToken)}`,
      );
    },
  },
  {
    id: 'auth.lockout',
    control: '164.308(a)(5)(ii)(C)',
    title: 'Log-in monitoring: sign-in lockout after repeated failures is on',
    evaluate: (f) => verdict(f.lockoutThreshold > 0 && f.lockoutThreshold <= 10, 'lockout after at most 10 failures', `after ${f.lockoutThreshold} failures`),
  },
  {
    id: 'transmission.tls',
    control: '164.312(e)(1)',
    title: 'Transmission security: TLS 1.3 on (or terminated in front) in production',
    evaluate: (f) => {
      const observed = f.settings.tls?.certFile
        ? 'TLS 1.3 minimum served by the control room'
        : f.settings.tlsTerminated
          ? 'terminated by a proxy'
          : 'plain HTTP';
      if (!f.settings.production)
        return { result: f.settings.tls?.certFile || f.settings.tlsTerminated ? 'pass' : 'not_applicable', expected: 'TLS in production', observed };
      return verdict(Boolean(f.settings.tls?.certFile) || f.settings.tlsTerminated, 'TLS 1.3 or terminated TLS', observed);
    },
  },
  {
    id: 'transmission.certificate-expiry',
    control: '164.312(e)(2)(ii)',
    title: 'Transmission security: the server certificate is valid for more than the policy days',
    evaluate: (f) => {
      if (!f.settings.tls?.certFile)
        return { result: 'not_applicable', expected: 'a certificate served by the control room', observed: 'no certificate configured' };
      if (!f.certificateNotAfter) return { result: 'fail', expected: 'a readable certificate', observed: 'the certificate could not be read' };
      const days = (f.certificateNotAfter.getTime() - f.now.getTime()) / DAY;
      return verdict(
        days > f.policy.certificateMinDays,
        `more than ${f.policy.certificateMinDays} days left`,
        `expires ${f.certificateNotAfter.toISOString()} (${days.toFixed(1)} days)`,
      );
    },
  },
  {
    id: 'transmission.runner-mtls',
    control: '164.312(e)(1)',
    title: 'Transmission security: runners authenticate with client certificates (mTLS) in production',
    evaluate: (f) =>
      f.settings.production
        ? verdict(Boolean(f.settings.tls?.clientCaFile), 'ORDERLY_TLS_CLIENT_CA_FILE set', f.settings.tls?.clientCaFile ? 'mTLS on' : 'mTLS off')
        : { result: 'not_applicable', expected: 'mTLS in production', observed: 'development' },
  },
  {
    id: 'workforce.termination',
    control: '164.308(a)(3)(ii)(C)',
    title: 'Termination procedures: disabled people and service accounts have no live sessions or tokens',
    evaluate: (f) => {
      const live = f.people.filter((p) => p.disabled && (p.liveSessions > 0 || p.liveTokens > 0)).map((p) => p.username);
      const tokens = f.tokens.filter((t) => t.ownerDisabled).length;
      return verdict(
        live.length === 0 && tokens === 0,
        'no live session or token of a disabled principal',
        `people: ${names(live)}; live tokens of disabled owners: ${tokens}`,
      );
    },
  },
  {
    id: 'access.stale-accounts',
    control: '164.308(a)(4)(ii)(C)',
    title: 'Access modification: no active person unused for longer than the stale limit',
    evaluate: (f) => {
      const stale = f.people.filter((p) => !p.disabled && ageDays(f, p.lastActiveAt ?? p.createdAt) > f.policy.staleDays).map((p) => p.username);
      return verdict(stale.length === 0, `every active person used within ${f.policy.staleDays} days`, `stale: ${names(stale)}`);
    },
  },
  {
    id: 'access.stale-tokens',
    control: '164.308(a)(4)(ii)(C)',
    title: 'Access modification: no live API token or runner identity unused for longer than the stale limit',
    evaluate: (f) => {
      const stale = [
        ...f.tokens.filter((t) => ageDays(f, t.lastUsedAt ?? t.createdAt) > f.policy.staleDays).map((t) => `token ${t.id}`),
        ...f.runnerIdentities.filter((r) => ageDays(f, r.lastUsedAt ?? r.createdAt) > f.policy.staleDays).map((r) => `runner ${r.id}`),
      ];
      return verdict(stale.length === 0, `every live token and runner identity used within ${f.policy.staleDays} days`, `stale: ${names(stale)}`);
    },
  },
  {
    id: 'access.review',
    control: '164.308(a)(4)(ii)(C)',
    title: 'Access review: an access review was completed within 90 days and no open campaign is past its due date',
    evaluate: (f) => {
      const recorded = evidenceCheck('access_review', (g) => g.policy.accessReviewMaxDays, 'a completed access review')(f);
      if (f.accessReview.overdueItems > 0)
        return {
          result: 'fail',
          expected: `${recorded.expected}; no undecided item past its due date`,
          observed: `${f.accessReview.overdueItems} items past due; ${recorded.observed}`,
        };
      return recorded;
    },
  },
  {
    id: 'access.roles-assigned',
    control: '164.308(a)(4)(ii)(B)',
    title: 'Access authorization: every active person holds at least one role and none holds admin',
    evaluate: (f) => {
      const odd = f.people.filter((p) => !p.disabled && (p.roles.length === 0 || (f.settings.production && p.roles.includes('admin')))).map((p) => p.username);
      return verdict(
        odd.length === 0,
        f.settings.production ? 'each active person has a role; no person holds admin' : 'each active person has a role',
        `exceptions: ${names(odd)}`,
      );
    },
  },
  {
    id: 'access.grant-approver',
    control: '164.308(a)(4)(ii)(B)',
    title: 'Access authorization: every sensitive role a person holds (security, approver) was approved by a second person',
    evaluate: (f) =>
      verdict(
        f.sensitiveGrantsWithoutApprover.length === 0,
        'an approved two-person request for each sensitive role held (or granted at creation by the bootstrap admin)',
        `without an approver: ${names(f.sensitiveGrantsWithoutApprover)}`,
      ),
  },
  {
    id: 'credentials.rotation-age',
    control: '164.308(a)(5)(ii)(D)',
    title: 'Password management: every bot credential rotated within its maximum age',
    evaluate: (f) => {
      const overdue = f.credentials.filter((c) => ageDays(f, c.at) > (c.maxAgeDays ?? f.settings.credentialMaxAgeDays)).map((c) => `${c.bot}/${c.name}`);
      return verdict(
        overdue.length === 0,
        `rotated within max age (default ${f.settings.credentialMaxAgeDays} days)`,
        `${f.credentials.length} credentials; overdue: ${names(overdue)}`,
      );
    },
  },
  {
    id: 'incident.dead-letters',
    control: '164.308(a)(6)(ii)',
    title: 'Security incident procedures: dead letters past their SLA were escalated (alerted) and none is left past it unresolved',
    evaluate: (f) =>
      verdict(
        f.deadLetters.pastSla === 0,
        `no dead letter older than ${f.policy.deadLetterSlaHours} hours`,
        `${f.deadLetters.pastSla} past the SLA (${f.deadLetters.pastSlaAlerted} alerted); webhook ${f.settings.alertWebhook ? 'configured' : 'not configured'}`,
      ),
  },
  {
    id: 'contingency.backup',
    control: '164.308(a)(7)(ii)(A)',
    title: 'Data backup plan: a backup was taken recently',
    evaluate: (f) => {
      const at = f.evidence.backup;
      const hours = f.policy.backupMaxAgeHours;
      if (!at) return verdict(false, `a backup within ${hours} hours`, 'never recorded');
      const age = (f.now.getTime() - at.getTime()) / 3600_000;
      return verdict(age <= hours, `a backup within ${hours} hours`, `last at ${at.toISOString()} (${age.toFixed(1)} hours ago)`);
    },
  },
  {
    id: 'contingency.restore-drill',
    control: '164.308(a)(7)(ii)(B)',
    title: 'Disaster recovery plan: a restore drill within 12 months',
    evaluate: evidenceCheck('restore_drill', (f) => f.policy.restoreDrillMaxDays, 'a restore drill'),
  },
  {
    id: 'inventory.contacts',
    control: '164.308(a)(2)',
    title: 'Assigned security responsibility: every bot in a production segment names an owner, a data steward and a security contact',
    evaluate: (f) => {
      const inProduction = f.inventory.bots.filter((b) => b.productionSegments.length > 0).length;
      if (f.settings.prodSegments.length === 0)
        return { result: 'not_applicable', expected: 'production segments', observed: 'no production segment configured' };
      const without = botsWithoutContacts(f.inventory);
      return verdict(
        without.length === 0,
        'contacts in the latest version of every bot in a production segment',
        `${inProduction} bots in production; without contacts: ${names(without)}`,
      );
    },
  },
  {
    id: 'media.screenshot-purge',
    control: '164.310(d)(2)(i)',
    title: 'Media disposal: screenshot retention is configured and expired screenshots were purged',
    evaluate: (f) =>
      verdict(
        f.settings.screenshotRetentionDays > 0 && f.screenshotsPastExpiry === 0,
        'retention set; no screenshot kept a day past its expiry',
        `retention ${f.settings.screenshotRetentionDays} days; ${f.screenshotsPastExpiry} past expiry`,
      ),
  },
  {
    id: 'media.retention-purges-ran',
    control: '164.310(d)(2)(i)',
    title: 'Media disposal: the run PHI and log purge and the audit expiry ran (nothing past its retention is left)',
    evaluate: (f) => {
      const runDays = f.settings.runRetentionDays ?? 0;
      const auditDays = f.settings.auditRetentionDays;
      if (runDays <= 0 && auditDays <= 0)
        return { result: 'not_applicable', expected: 'a run or audit retention', observed: 'runs and audit events are kept forever (retention 0)' };
      const { runsPastRetention, logLinesPastRetention, auditEventsPastRetention, lastDisposal } = f.retention;
      const last = (kind: keyof typeof lastDisposal) => lastDisposal[kind]?.toISOString() ?? 'never';
      const parts = [
        runDays > 0
          ? `runs: ${runsPastRetention} with PHI and ${logLinesPastRetention} log lines past ${runDays} days (last purge ${last('runs')})`
          : 'runs kept forever',
        auditDays > 0 ? `audit: ${auditEventsPastRetention} events past ${auditDays} days (last expiry ${last('audit_events')})` : 'audit kept forever',
      ];
      return verdict(
        runsPastRetention === 0 && logLinesPastRetention === 0 && auditEventsPastRetention === 0,
        `nothing left more than ${f.policy.purgeGraceHours} hours past its retention`,
        parts.join('; '),
      );
    },
  },
  {
    id: 'media.run-sandbox',
    control: '164.310(d)(1)',
    title: 'Device and media controls: every production runner runs bots in the sandbox with redaction on',
    evaluate: (f) =>
      f.settings.prodSegments.length === 0
        ? { result: 'not_applicable', expected: 'production segments', observed: 'no production segment configured' }
        : {
            result: 'manual',
            expected: 'ORDERLY_SANDBOX on every runner of segments ' + f.settings.prodSegments.join(', '),
            observed: 'runners do not report their sandbox setting to the control room yet',
          },
  },
  {
    id: 'facility.workstation',
    control: '164.310(b)',
    title: 'Workstation use: operators read PHI only from managed workstations',
    evaluate: () => ({ result: 'manual', expected: 'a workstation policy and its evidence', observed: 'not visible to the control room' }),
  },
];
