import { generateKeyPairSync } from 'node:crypto';
import { CHECKS } from './checks';
import { ComplianceFacts, DEFAULT_POLICY } from './facts';
import { evaluate, signReport, verifyReport } from './report';
import { reportToHtml, reportToOscal } from './export';
import { csvField, InventoryBot, inventoryToCsv } from './inventory';

const NOW = new Date('2026-06-01T12:00:00Z');
const daysAgo = (d: number) => new Date(NOW.getTime() - d * 24 * 3600 * 1000);

/** A production deployment where every automated safeguard holds (synthetic, clearly fake names). */
function healthy(): ComplianceFacts {
  return {
    now: NOW,
    settings: {
      production: true,
      segments: ['demo', 'prod-a'],
      prodSegments: ['prod-a'],
      tls: { certFile: '/fake/cert.pem', clientCaFile: '/fake/ca.pem' },
      tlsTerminated: false,
      transitKey: 'orderly-at-rest',
      sessionIdleMinutes: 15,
      sessionMaxHours: 12,
      tokenMaxDays: 90,
      credentialMaxAgeDays: 90,
      screenshotRetentionDays: 30,
      auditRetentionDays: 2555,
      runRetentionDays: 30,
      alertWebhook: true,
      sso: { breakGlassUsers: ['fake-glass'] },
    },
    policy: DEFAULT_POLICY,
    people: [
      {
        id: 'u1',
        username: 'fake-operator',
        roles: ['operator'],
        mfa: true,
        enrolled: true,
        disabled: false,
        createdAt: daysAgo(200),
        lastActiveAt: daysAgo(1),
        liveSessions: 1,
        liveTokens: 1,
      },
      {
        id: 'u2',
        username: 'fake-glass',
        roles: ['operator'],
        mfa: true,
        enrolled: true,
        disabled: false,
        createdAt: daysAgo(200),
        lastActiveAt: daysAgo(3),
        liveSessions: 0,
        liveTokens: 0,
      },
    ],
    serviceAccounts: [],
    tokens: [{ id: 't1', ownerKind: 'user', ownerDisabled: false, createdAt: daysAgo(10), expiresAt: daysAgo(-80), lastUsedAt: daysAgo(1) }],
    runnerIdentities: [{ id: 'r1', segment: 'prod-a', createdAt: daysAgo(100), lastUsedAt: daysAgo(0) }],
    credentials: [{ bot: 'fake-bot', name: 'portal_password', at: daysAgo(10), maxAgeDays: null }],
    audit: {
      verdict: { ok: true, events: 10, firstSeq: 1, lastSeq: 10, headsChecked: 2, headsBeforeRetention: 0, anchoredByExpiry: false },
      eventsWithoutActor: 0,
      appendOnlyTriggers: ['audit_events_no_truncate', 'audit_events_no_update_delete', 'audit_heads_no_truncate', 'audit_heads_no_update_delete'],
      lastEventAt: NOW,
      bootstrapActionsLast30Days: 0,
    },
    breakGlass: { bootstrapActions: 0, alerts: 0, localSignIns: 1, localSignInAlerts: 1 },
    deadLetters: { pastSla: 0, pastSlaAlerted: 0 },
    screenshotsPastExpiry: 0,
    retention: {
      runsPastRetention: 0,
      logLinesPastRetention: 0,
      auditEventsPastRetention: 0,
      lastDisposal: { runs: daysAgo(0.01), run_logs: daysAgo(0.01), audit_events: daysAgo(0.1) },
    },
    runnablePackages: [{ name: 'fake-prod-bot', version: '1.0.0', keyRevoked: false, signatureValid: true }],
    sensitiveGrantsWithoutApprover: [],
    prodSegmentsWithBootstrapRunnerToken: [],
    runnablePackagesWithRevokedKey: 0,
    prodRunsWithoutRelease: 0,
    evidence: { backup: daysAgo(0.5), restore_drill: daysAgo(100), access_review: daysAgo(30), audit_review: daysAgo(7) },
    accessReview: { overdueItems: 0, lastCompletedAt: daysAgo(30) },
    certificateNotAfter: daysAgo(-60),
    transitKeyRotatedAt: daysAgo(100),
    lockoutThreshold: 5,
    inventory: {
      v: 1,
      collectedAt: NOW.toISOString(),
      bots: [
        {
          ...inventoryBot('fake-prod-bot', ['demo', 'prod-a'], ['prod-a']),
          contacts: { owner: 'Fake Owner', dataSteward: 'Fake Steward', securityContact: 'fake-security@example.test' },
        },
        inventoryBot('fake-demo-bot', ['demo'], []), // no contacts: not needed outside production
      ],
    },
  };
}

function inventoryBot(name: string, segments: string[], productionSegments: string[]): InventoryBot {
  return {
    name,
    team: 'fake-team',
    version: '1.0.0',
    digest: `sha256:${'0'.repeat(64)}`,
    publishedAt: daysAgo(3).toISOString(),
    contacts: null,
    phi: ['memberId'],
    hosts: ['portal.example.test'],
    credentials: ['portal_password'],
    segments,
    productionSegments,
    schedules: [],
    lastRun: null,
  };
}

/** How to break each automated check; the list must cover every check that is not manual. */
const BREAKS: Record<string, (f: ComplianceFacts) => void> = {
  'access.unique-user-ids': (f) => {
    f.audit.bootstrapActionsLast30Days = 3;
  },
  'access.emergency-procedure': (f) => {
    f.settings.alertWebhook = false;
  },
  'access.break-glass-accounts': (f) => {
    f.breakGlass.localSignIns = 2;
  },
  'access.automatic-logoff': (f) => {
    f.settings.sessionIdleMinutes = 240;
  },
  'access.token-lifetime': (f) => {
    f.tokens[0]!.expiresAt = daysAgo(-400);
  },
  'encryption.at-rest': (f) => {
    f.settings.transitKey = undefined;
  },
  'encryption.transit-key-rotation': (f) => {
    f.transitKeyRotatedAt = daysAgo(400);
  },
  'audit.chain-verifies': (f) => {
    f.audit.verdict = { ok: false, seq: 4, reason: 'prev_hash does not match' };
  },
  'audit.append-only': (f) => {
    f.audit.appendOnlyTriggers = f.audit.appendOnlyTriggers.slice(1);
  },
  'audit.retention': (f) => {
    f.settings.auditRetentionDays = 30;
  },
  'audit.activity-review': (f) => {
    f.evidence.audit_review = daysAgo(45);
  },
  'integrity.revoked-keys': (f) => {
    f.runnablePackagesWithRevokedKey = 1;
  },
  'integrity.prod-released': (f) => {
    f.prodRunsWithoutRelease = 2;
  },
  'auth.mfa-every-person': (f) => {
    f.people[0]!.mfa = false;
  },
  'auth.runner-identities': (f) => {
    f.runnerIdentities = [];
  },
  'auth.no-bootstrap-runner-token': (f) => {
    f.prodSegmentsWithBootstrapRunnerToken = ['prod-a'];
  },
  'auth.lockout': (f) => {
    f.lockoutThreshold = 0;
  },
  'transmission.tls': (f) => {
    f.settings.tls = undefined;
  },
  'transmission.certificate-expiry': (f) => {
    f.certificateNotAfter = daysAgo(-3);
  },
  'transmission.runner-mtls': (f) => {
    f.settings.tls = { certFile: '/fake/cert.pem' };
  },
  'workforce.termination': (f) => {
    f.people[0]!.disabled = true;
  },
  'access.stale-accounts': (f) => {
    f.people[0]!.lastActiveAt = daysAgo(120);
  },
  'access.stale-tokens': (f) => {
    f.tokens[0]!.lastUsedAt = daysAgo(100);
    f.tokens[0]!.createdAt = daysAgo(100);
    f.tokens[0]!.expiresAt = daysAgo(-1);
  },
  'access.review': (f) => {
    f.evidence.access_review = daysAgo(91);
  },
  'access.roles-assigned': (f) => {
    f.people[0]!.roles = ['admin'];
  },
  'credentials.rotation-age': (f) => {
    f.credentials[0]!.at = daysAgo(91);
  },
  'incident.dead-letters': (f) => {
    f.deadLetters = { pastSla: 1, pastSlaAlerted: 1 };
  },
  'contingency.backup': (f) => {
    f.evidence.backup = null;
  },
  'contingency.restore-drill': (f) => {
    f.evidence.restore_drill = daysAgo(400);
  },
  'media.screenshot-purge': (f) => {
    f.screenshotsPastExpiry = 5;
  },
  'media.retention-purges-ran': (f) => {
    f.retention.logLinesPastRetention = 12;
  },
  'integrity.runnable-signed': (f) => {
    f.runnablePackages[0]!.keyRevoked = true;
  },
  'access.grant-approver': (f) => {
    f.sensitiveGrantsWithoutApprover = ['fake-security (security)'];
  },
  'inventory.contacts': (f) => {
    f.inventory.bots[0]!.contacts = null;
  },
};

const resultOf = (facts: ComplianceFacts, id: string) => evaluate(facts).find((r) => r.checkId === id)!;

test('at least 20 checks, unique ids, each cited in 45 CFR 164.308, 164.310 or 164.312', () => {
  expect(CHECKS.length).toBeGreaterThanOrEqual(20);
  expect(new Set(CHECKS.map((c) => c.id)).size).toBe(CHECKS.length);
  for (const check of CHECKS) expect(check.control).toMatch(/^164\.(308|310|312)\(/);
  const automated = evaluate(healthy())
    .filter((r) => r.result !== 'manual' && r.result !== 'not_applicable')
    .map((r) => r.checkId);
  expect(automated.length).toBeGreaterThanOrEqual(20);
  expect(Object.keys(BREAKS).sort()).toEqual([...automated].sort());
});

test('a healthy deployment passes every automated check', () => {
  const failing = evaluate(healthy()).filter((r) => r.result === 'fail' || r.result === 'error');
  expect(failing).toEqual([]);
});

test.each(Object.entries(BREAKS))('%s fails when broken and passes again when fixed', (id, breakIt) => {
  const broken = healthy();
  breakIt(broken);
  expect(resultOf(broken, id).result).toBe('fail');
  expect(resultOf(healthy(), id).result).toBe('pass');
});

test('an access review item past its due date fails the review check even after a recent review', () => {
  const facts = healthy();
  facts.accessReview.overdueItems = 1;
  expect(resultOf(facts, 'access.review')).toMatchObject({ result: 'fail', observed: expect.stringContaining('1 items past due') });
});

test('a Transit key Vault could not be asked about fails its rotation check; without one it does not apply', () => {
  const facts = healthy();
  facts.transitKeyRotatedAt = null;
  expect(resultOf(facts, 'encryption.transit-key-rotation')).toMatchObject({ result: 'fail', observed: 'the key could not be read from Vault' });
  facts.settings.transitKey = undefined;
  expect(resultOf(facts, 'encryption.transit-key-rotation').result).toBe('not_applicable');
});

test('emergency access: bootstrap admin actions without a break-glass alert fail; with one they pass; development does not apply', () => {
  const facts = healthy();
  facts.breakGlass.bootstrapActions = 2;
  expect(resultOf(facts, 'access.emergency-procedure')).toMatchObject({
    result: 'fail',
    observed: expect.stringContaining('2 bootstrap admin actions, 0 break-glass alerts'),
  });
  facts.breakGlass.alerts = 1;
  expect(resultOf(facts, 'access.emergency-procedure').result).toBe('pass');
  facts.settings.production = false;
  expect(resultOf(facts, 'access.emergency-procedure').result).toBe('not_applicable');
});

test('break-glass accounts under single sign-on: one without a second factor fails, an unalerted sign-in fails; without single sign-on it does not apply', () => {
  const facts = healthy();
  facts.people[1]!.mfa = false;
  expect(resultOf(facts, 'access.break-glass-accounts')).toMatchObject({
    result: 'fail',
    observed: expect.stringContaining('without a second factor: 1: fake-glass'),
  });
  facts.people[1]!.mfa = true;
  facts.settings.sso = { breakGlassUsers: ['fake-glass', 'fake-gone'] };
  expect(resultOf(facts, 'access.break-glass-accounts')).toMatchObject({ result: 'pass', observed: expect.stringContaining('not found: 1: fake-gone') });
  facts.breakGlass.localSignIns = 3;
  expect(resultOf(facts, 'access.break-glass-accounts')).toMatchObject({
    result: 'fail',
    observed: expect.stringContaining('3 local sign-ins, 1 alerts in 7 days'),
  });
  delete facts.settings.sso;
  expect(resultOf(facts, 'access.break-glass-accounts').result).toBe('not_applicable');
});

test('a check that throws is an error result, not a crash', () => {
  const facts = healthy();
  (facts as { people: unknown }).people = null;
  expect(resultOf(facts, 'auth.mfa-every-person').result).toBe('error');
});

test('each result carries citation, expected, observed, evidence sha256, time and version; the report is signed', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const report = signReport(evaluate(healthy()), NOW, privateKey);
  for (const r of report.results) {
    expect(r).toMatchObject({ collectedAt: NOW.toISOString(), version: expect.any(String), expected: expect.any(String), observed: expect.any(String) });
    expect(r.evidenceSha256).toMatch(/^[0-9a-f]{64}$/);
  }
  expect(verifyReport(report, publicKey)).toBe(true);
  const forged = { ...report, results: report.results.map((r, i) => (i === 0 ? { ...r, result: 'pass' as const, observed: 'forged' } : r)) };
  expect(verifyReport(forged, publicKey)).toBe(false);
});

test('the report exports as escaped HTML and as OSCAL assessment results with one finding per check', () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  const facts = healthy();
  facts.people[0]!.username = '<script>fake</script>';
  facts.people[0]!.mfa = false;
  const report = signReport(evaluate(facts), NOW, privateKey);
  const html = reportToHtml(report);
  expect(html).not.toContain('<script>');
  expect(html).toContain('&lt;script&gt;');
  const oscal = reportToOscal(report) as {
    'assessment-results': { results: { findings: { target: { 'target-id': string; status: { state: string } } }[]; observations: unknown[] }[] };
  };
  const [result] = oscal['assessment-results'].results;
  expect(result!.findings).toHaveLength(report.results.length);
  expect(result!.observations).toHaveLength(report.results.length);
  const mfa = result!.findings.find((f) => f.target['target-id'] === 'hipaa-164.312.d');
  expect(mfa?.target.status.state).toBe('not-satisfied');
  expect(JSON.stringify(reportToOscal(report))).toBe(JSON.stringify(oscal)); // stable ids
});

test('inventory.contacts names the production bots without contacts; without production segments it does not apply', () => {
  const facts = healthy();
  facts.inventory.bots[0]!.contacts = null;
  expect(resultOf(facts, 'inventory.contacts')).toMatchObject({ result: 'fail', observed: expect.stringContaining('fake-prod-bot') });
  facts.settings.prodSegments = [];
  expect(resultOf(facts, 'inventory.contacts').result).toBe('not_applicable');
});

test('the signed report keeps the bot inventory as evidence: changing it breaks the signature', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const facts = healthy();
  facts.inventory.bots[1]!.hosts = ['<img src=x>'];
  const report = signReport(evaluate(facts), NOW, privateKey, { inventory: facts.inventory });
  expect(report.inventory?.bots.map((b) => b.name)).toEqual(['fake-prod-bot', 'fake-demo-bot']);
  const html = reportToHtml(report);
  expect(html).toContain('<h2>Bot data inventory</h2>');
  expect(html).toContain('Fake Owner<br>Fake Steward<br>fake-security@example.test');
  expect(html).toContain('&lt;img src=x&gt;');
  expect(html).not.toContain('<img');
  expect(verifyReport(report, publicKey)).toBe(true);
  const forged = { ...report, inventory: { ...report.inventory!, bots: report.inventory!.bots.slice(1) } };
  expect(verifyReport(forged, publicKey)).toBe(false);
});

test('inventory CSV: quoted per RFC 4180, formulas neutralised, one row per bot', () => {
  expect(csvField('plain')).toBe('plain');
  expect(csvField('a,b')).toBe('"a,b"');
  expect(csvField('say "hi"')).toBe('"say ""hi"""');
  expect(csvField('line\nbreak')).toBe('"line\nbreak"');
  expect(csvField('=HYPERLINK("http://example.test")')).toBe('"\'=HYPERLINK(""http://example.test"")"');
  expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)");
  const facts = healthy();
  // Hostile values, as a manifest stored before validation might hold them.
  facts.inventory.bots[1]!.hosts = ['a.example.test', '=cmd|calc'];
  facts.inventory.bots[1]!.schedules = [
    { name: 'nightly', version: null, segment: 'demo', cron: '0 2 * * *', everySeconds: null, paused: true, lastFiredAt: null },
  ];
  const lines = inventoryToCsv(facts.inventory).split('\r\n');
  expect(lines[0]).toMatch(/^bot,team,version,digest,published_at,owner,data_steward,security_contact,phi_fields,hosts,/);
  expect(lines).toHaveLength(4); // header, two bots, trailing empty
  expect(lines[1]).toContain('Fake Owner,Fake Steward,fake-security@example.test,memberId,portal.example.test,portal_password,demo;prod-a,prod-a');
  expect(lines[2]).toContain(',a.example.test;=cmd|calc,'); // not at the start of the field: no formula
  expect(lines[2]).toContain('nightly (demo, cron 0 2 * * *, paused)');
  facts.inventory.bots[1]!.hosts = ['=cmd|calc'];
  expect(inventoryToCsv(facts.inventory).split('\r\n')[2]).toContain(",'=cmd|calc,");
});
