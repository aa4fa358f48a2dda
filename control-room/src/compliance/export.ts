import { createHash } from 'node:crypto';
import { CheckResult } from './checks';
import type { InventoryBot } from './inventory';
import type { ComplianceReportView } from './schemas';

const ORDERLY_NS = 'https://orderly.invalid/ns/oscal';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A name-based UUID (v5 layout) so re-exporting one report gives the same OSCAL ids. */
function uuidOf(...parts: string[]): string {
  const h = createHash('sha1').update(parts.join('\u0000')).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/**
 * A 45 CFR citation as an OSCAL control id (a token: letters, digits, `.`, `-`, `_`; no brackets):
 * `164.312(a)(2)(iv)` becomes `hipaa-164.312.a.2.iv`.
 */
export const oscalControlId = (citation: string) => `hipaa-${citation.replace(/\(([^()]*)\)/g, '.$1').replace(/[^A-Za-z0-9._-]/g, '_')}`;

/** A self-contained HTML page a person reads: summary, then one row per check. */
export function reportToHtml(report: ComplianceReportView): string {
  const rows = report.results.map(
    (r) =>
      `<tr class="${r.result}"><td>${escapeHtml(r.result)}</td><td>${escapeHtml(r.controlId)}</td><td>${escapeHtml(r.checkId)}<br><small>${escapeHtml(r.title)}</small></td><td>${escapeHtml(r.expected)}</td><td>${escapeHtml(r.observed)}</td><td><code>${escapeHtml(r.evidenceSha256)}</code></td></tr>`,
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Orderly compliance report ${escapeHtml(report.id)}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em;vertical-align:top;text-align:left}tr.fail td:first-child,tr.error td:first-child{background:#fdd}tr.pass td:first-child{background:#dfd}tr.manual td:first-child{background:#ffd}code{font-size:.8em;word-break:break-all}</style></head>
<body><h1>Orderly compliance report</h1>
<p>Report ${escapeHtml(report.id)}, collected ${escapeHtml(report.collectedAt)} by Orderly ${escapeHtml(report.version)}.
Summary: ${(Object.entries(report.summary) as [CheckResult, number][]).map(([k, n]) => `${n} ${escapeHtml(k)}`).join(', ')}.</p>
<p>Digest (sha256) <code>${escapeHtml(report.digest)}</code>, signed with the control room's release key; the digest is in the audit log as <code>compliance.report</code>.</p>
<table><thead><tr><th>result</th><th>45 CFR</th><th>check</th><th>expected</th><th>observed</th><th>evidence sha256</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>
${inventoryHtml(report)}</body></html>
`;
}

/** The bot data inventory the report carries, as a table (every value escaped). */
function inventoryHtml(report: ComplianceReportView): string {
  if (!report.inventory) return '';
  const list = (xs: readonly string[]) => escapeHtml(xs.join(', ') || '-');
  const rows = report.inventory.bots.map(
    (b) =>
      `<tr><td>${escapeHtml(`${b.name}@${b.version}`)}</td><td>${escapeHtml(b.team ?? '-')}</td>` +
      `<td>${b.contacts ? `${escapeHtml(b.contacts.owner)}<br>${escapeHtml(b.contacts.dataSteward)}<br>${escapeHtml(b.contacts.securityContact)}` : 'none'}</td>` +
      `<td>${list(b.phi)}</td><td>${list(b.hosts)}</td><td>${list(b.credentials)}</td><td>${list(b.segments)}</td><td>${list(b.productionSegments)}</td>` +
      `<td>${list(b.schedules.map((x) => x.name))}</td><td>${b.lastRun ? escapeHtml(`${b.lastRun.status} at ${b.lastRun.createdAt}`) : 'never'}</td></tr>`,
  );
  return `<h2>Bot data inventory</h2>
<table><thead><tr><th>bot</th><th>team</th><th>owner, data steward, security contact</th><th>PHI fields</th><th>hosts</th><th>credentials</th><th>segments</th><th>production</th><th>schedules</th><th>last run</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>
`;
}

/** The roles a bot's contacts hold, as OSCAL roles (defined in the metadata, named by each inventory item's responsible parties). */
const CONTACT_ROLES = [
  { key: 'owner', id: 'asset-owner', title: 'Asset owner' },
  { key: 'dataSteward', id: 'data-steward', title: 'Data steward' },
  { key: 'securityContact', id: 'security-contact', title: 'Security contact' },
] as const;

/** OSCAL strings (props, names) are one line without leading or trailing space; a hostile stored value is folded into one. */
const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

/** A contact (`Name`, `email` or `Name <email>`) as an OSCAL party: the same contact is one party, whichever bots name it. */
function partyOf(contact: string): { uuid: string; type: 'person'; name: string; 'email-addresses'?: string[] } {
  const angle = /^(.*?)\s*<([^<>\s]+@[^<>\s]+)>$/.exec(contact.trim());
  const email = angle ? angle[2]! : /^[^\s@<>]+@[^\s@<>]+$/.test(contact.trim()) ? contact.trim() : undefined;
  const name = oneLine(angle ? angle[1]! || angle[2]! : contact) || 'unnamed';
  return { uuid: uuidOf('orderly-party', oneLine(contact)), type: 'person', name, ...(email ? { 'email-addresses': [email] } : {}) };
}

/**
 * The bot data inventory as OSCAL inventory items (1.1.2 `local-definitions/inventory-items` of the
 * result): one per bot, its facts as props (one prop per PHI field, host, credential, segment and
 * schedule; names only, never values), its owner, data steward and security contact as responsible
 * parties. Returns the items and the parties and roles they name, for the metadata.
 */
function inventoryToOscal(reportId: string, bots: readonly InventoryBot[]) {
  const parties = new Map<string, ReturnType<typeof partyOf>>();
  const roles = new Set<string>();
  const items = bots.map((b) => {
    const prop = (name: string, value: string | null | undefined) => {
      const v = value === null || value === undefined ? '' : oneLine(value);
      return v ? [{ name, ns: ORDERLY_NS, value: v }] : [];
    };
    const each = (name: string, values: readonly string[]) => values.flatMap((v) => prop(name, v));
    const props = [
      ...(oneLine(b.name) ? [{ name: 'asset-id', value: oneLine(b.name) }] : []),
      ...prop('bot-version', b.version),
      ...prop('package-digest', b.digest),
      ...prop('published-at', b.publishedAt),
      ...prop('team', b.team),
      ...each('phi-field', b.phi),
      ...each('host', b.hosts),
      ...each('credential', b.credentials),
      ...each('segment', b.segments),
      ...each('production-segment', b.productionSegments),
      ...each(
        'schedule',
        b.schedules.map((x) => `${x.name} (${x.segment}, ${x.cron !== null ? `cron ${x.cron}` : `every ${x.everySeconds}s`}${x.paused ? ', paused' : ''})`),
      ),
      ...prop('last-run-status', b.lastRun?.status),
      ...prop('last-run-at', b.lastRun?.createdAt),
      ...(b.contacts ? [] : prop('contacts', 'none')),
    ];
    const responsible = b.contacts
      ? CONTACT_ROLES.map((role) => {
          const party = partyOf(b.contacts![role.key]);
          parties.set(party.uuid, party);
          roles.add(role.id);
          return { 'role-id': role.id, 'party-uuids': [party.uuid] };
        })
      : [];
    return {
      uuid: uuidOf('orderly-inventory', reportId, b.name),
      description: `Orderly bot ${b.name} ${b.version}: the PHI fields it takes, the hosts it reaches, the credentials it leases, where it runs and who answers for it.`,
      ...(props.length > 0 ? { props } : {}),
      ...(responsible.length > 0 ? { 'responsible-parties': responsible } : {}),
    };
  });
  return { items, parties: [...parties.values()], roles: CONTACT_ROLES.filter((r) => roles.has(r.id)).map((r) => ({ id: r.id, title: r.title })) };
}

/**
 * The report as OSCAL assessment results (1.1.2): one observation and one finding per check, and
 * the bot data inventory (when the report carries one) as the result's inventory items.
 */
export function reportToOscal(report: ComplianceReportView): unknown {
  const state = (r: CheckResult) => (r === 'pass' ? 'satisfied' : 'not-satisfied');
  const inventory = report.inventory && report.inventory.bots.length > 0 ? inventoryToOscal(report.id, report.inventory.bots) : undefined;
  return {
    'assessment-results': {
      uuid: uuidOf('orderly-ar', report.id),
      metadata: {
        title: `Orderly compliance report ${report.id}`,
        'last-modified': report.collectedAt,
        version: report.version,
        'oscal-version': '1.1.2',
        props: [{ name: 'report-digest', ns: ORDERLY_NS, value: report.digest }],
        ...(inventory && inventory.roles.length > 0 ? { roles: inventory.roles, parties: inventory.parties } : {}),
      },
      'import-ap': { href: '#orderly-self-assessment' },
      results: [
        {
          uuid: uuidOf('orderly-result', report.id),
          title: 'HIPAA Security Rule self-assessment (45 CFR 164.308, 164.310, 164.312)',
          description: 'Checks Orderly runs on itself from its database, audit chain and configuration.',
          start: report.collectedAt,
          end: report.collectedAt,
          ...(inventory ? { 'local-definitions': { 'inventory-items': inventory.items } } : {}),
          'reviewed-controls': {
            'control-selections': [
              { 'include-controls': [...new Set(report.results.map((r) => r.controlId))].map((id) => ({ 'control-id': oscalControlId(id) })) },
            ],
          },
          observations: report.results.map((r) => ({
            uuid: uuidOf('orderly-obs', report.id, r.checkId),
            title: r.checkId,
            description: `Expected: ${r.expected}. Observed: ${r.observed}.`,
            methods: [r.result === 'manual' ? 'EXAMINE' : 'TEST'],
            collected: r.collectedAt,
            props: [{ name: 'result', ns: ORDERLY_NS, value: r.result }],
            'relevant-evidence': [
              { href: `#sha256:${r.evidenceSha256}`, description: 'sha256 of the canonical JSON of check id, expected, observed and collection time' },
            ],
          })),
          findings: report.results.map((r) => ({
            uuid: uuidOf('orderly-finding', report.id, r.checkId),
            title: r.title,
            description: r.observed,
            target: {
              type: 'objective-id',
              'target-id': oscalControlId(r.controlId),
              status: { state: state(r.result), ...(r.result === 'pass' ? {} : { reason: r.result }) },
            },
            'related-observations': [{ 'observation-uuid': uuidOf('orderly-obs', report.id, r.checkId) }],
          })),
        },
      ],
    },
  };
}
