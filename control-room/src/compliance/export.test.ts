import Ajv from 'ajv';
import { InventoryBot } from './inventory';
import { oscalControlId, reportToOscal } from './export';
import type { ComplianceReportView } from './schemas';

/**
 * The OSCAL export against the OSCAL 1.1.2 JSON schema's definitions for what it writes (the
 * assessment-results root, metadata with roles and parties, the result with its inventory items,
 * observations and findings): required fields, closed objects, non-empty arrays and the datatypes'
 * patterns (UUID v4/v5, token, one-line string, date-time with zone), restated here; plus the
 * references a schema cannot check (role ids and party uuids defined in the metadata).
 */
const UUID = { type: 'string', pattern: '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[45][0-9A-Fa-f]{3}-[89ABab][0-9A-Fa-f]{3}-[0-9A-Fa-f]{12}$' };
const TOKEN = { type: 'string', pattern: '^(\\p{L}|_)(\\p{L}|\\p{N}|[.\\-_])*$' };
const STRING = { type: 'string', pattern: '^\\S(.*\\S)?$' };
const DATE_TIME = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$' };
const URI = { type: 'string', pattern: '^[a-zA-Z][a-zA-Z0-9+\\-.]+:.+$' };
const MARKUP = { type: 'string' };
const closed = (properties: Record<string, unknown>, required: string[]) => ({ type: 'object', properties, required, additionalProperties: false });
const list = (items: unknown) => ({ type: 'array', items, minItems: 1 });
const PROP = closed({ name: TOKEN, uuid: UUID, ns: URI, value: STRING, class: TOKEN, group: TOKEN, remarks: MARKUP }, ['name', 'value']);
const OSCAL_AR_SUBSET = closed(
  {
    'assessment-results': closed(
      {
        uuid: UUID,
        metadata: closed(
          {
            title: MARKUP,
            'last-modified': DATE_TIME,
            version: STRING,
            'oscal-version': { type: 'string', pattern: '^1\\.1\\.\\d+$' },
            props: list(PROP),
            roles: list(closed({ id: TOKEN, title: MARKUP, 'short-name': STRING, description: MARKUP, props: list(PROP), remarks: MARKUP }, ['id', 'title'])),
            parties: list(
              closed(
                {
                  uuid: UUID,
                  type: { enum: ['person', 'organization'] },
                  name: STRING,
                  'short-name': STRING,
                  props: list(PROP),
                  'email-addresses': list({ type: 'string', pattern: '^.+@.+$' }),
                  remarks: MARKUP,
                },
                ['uuid', 'type'],
              ),
            ),
          },
          ['title', 'last-modified', 'version', 'oscal-version'],
        ),
        'import-ap': closed({ href: { type: 'string' }, remarks: MARKUP }, ['href']),
        results: list(
          closed(
            {
              uuid: UUID,
              title: MARKUP,
              description: MARKUP,
              props: list(PROP),
              start: DATE_TIME,
              end: DATE_TIME,
              remarks: MARKUP,
              'local-definitions': closed(
                {
                  'inventory-items': list(
                    closed(
                      {
                        uuid: UUID,
                        description: MARKUP,
                        props: list(PROP),
                        remarks: MARKUP,
                        'responsible-parties': list(
                          closed({ 'role-id': TOKEN, 'party-uuids': list(UUID), props: list(PROP), remarks: MARKUP }, ['role-id', 'party-uuids']),
                        ),
                      },
                      ['uuid', 'description'],
                    ),
                  ),
                  remarks: MARKUP,
                },
                [],
              ),
              'reviewed-controls': closed(
                {
                  description: MARKUP,
                  'control-selections': list(closed({ description: MARKUP, 'include-controls': list(closed({ 'control-id': TOKEN }, ['control-id'])) }, [])),
                },
                ['control-selections'],
              ),
              observations: list(
                closed(
                  {
                    uuid: UUID,
                    title: MARKUP,
                    description: MARKUP,
                    props: list(PROP),
                    methods: list({ enum: ['EXAMINE', 'INTERVIEW', 'TEST', 'UNKNOWN'] }),
                    collected: DATE_TIME,
                    'relevant-evidence': list(closed({ href: { type: 'string' }, description: MARKUP }, ['description'])),
                  },
                  ['uuid', 'description', 'methods', 'collected'],
                ),
              ),
              findings: list(
                closed(
                  {
                    uuid: UUID,
                    title: MARKUP,
                    description: MARKUP,
                    target: closed(
                      {
                        type: { enum: ['statement-id', 'objective-id'] },
                        'target-id': TOKEN,
                        status: closed({ state: { enum: ['satisfied', 'not-satisfied'] }, reason: TOKEN, remarks: MARKUP }, ['state']),
                      },
                      ['type', 'target-id', 'status'],
                    ),
                    'related-observations': list(closed({ 'observation-uuid': UUID }, ['observation-uuid'])),
                  },
                  ['uuid', 'title', 'description', 'target'],
                ),
              ),
            },
            ['uuid', 'title', 'description', 'start', 'reviewed-controls'],
          ),
        ),
      },
      ['uuid', 'metadata', 'import-ap', 'results'],
    ),
  },
  ['assessment-results'],
);
const validate = new Ajv({ allErrors: true }).compile(OSCAL_AR_SUBSET);

interface Oscal {
  'assessment-results': {
    metadata: { roles?: { id: string }[]; parties?: { uuid: string; name: string; 'email-addresses'?: string[] }[] };
    results: {
      'local-definitions'?: {
        'inventory-items': {
          uuid: string;
          props?: { name: string; value: string }[];
          'responsible-parties'?: { 'role-id': string; 'party-uuids': string[] }[];
        }[];
      };
    }[];
  };
}

function bot(name: string, extra: Partial<InventoryBot> = {}): InventoryBot {
  return {
    name,
    team: 'fake-team',
    version: '1.0.0',
    digest: `sha256:${'0'.repeat(64)}`,
    publishedAt: '2026-05-01T00:00:00.000Z',
    contacts: null,
    phi: ['memberId', 'dob'],
    hosts: ['portal.example.test'],
    credentials: ['portal_password'],
    segments: ['demo', 'prod-a'],
    productionSegments: ['prod-a'],
    schedules: [{ name: 'nightly', version: null, segment: 'prod-a', cron: '0 2 * * *', everySeconds: null, paused: false, lastFiredAt: null }],
    lastRun: {
      id: '00000000-0000-4000-8000-000000000001',
      version: '1.0.0',
      segment: 'prod-a',
      status: 'succeeded',
      createdAt: '2026-05-31T00:00:00.000Z',
      finishedAt: null,
    },
    ...extra,
  };
}

function report(bots: InventoryBot[] | undefined): ComplianceReportView {
  const at = '2026-06-01T12:00:00.000Z';
  const result = (checkId: string, controlId: string, r: 'pass' | 'fail' | 'manual' | 'not_applicable') => ({
    controlId,
    checkId,
    title: `Fake check ${checkId}`,
    result: r,
    expected: 'fake expected',
    observed: 'fake observed',
    evidenceSha256: 'a'.repeat(64),
    collectedAt: at,
    version: '0.1.0',
  });
  return {
    v: 1,
    id: 'fake-report-1',
    collectedAt: at,
    version: '0.1.0',
    summary: { pass: 1, fail: 1, manual: 1, not_applicable: 1, error: 0 },
    results: [
      result('mfa.people', '164.312(d)', 'fail'),
      result('logoff.sessions', '164.312(a)(2)(iii)', 'pass'),
      result('contingency.drill', '164.308(a)(7)(ii)(B)', 'manual'),
      result('inventory.contacts', '164.308(a)(1)(ii)(D)', 'not_applicable'),
    ],
    ...(bots ? { inventory: { v: 1 as const, collectedAt: at, bots } } : {}),
    digest: 'b'.repeat(64),
    signature: 'fake-signature',
  };
}

test('citations become OSCAL control tokens', () => {
  expect(oscalControlId('164.312(a)(2)(iv)')).toBe('hipaa-164.312.a.2.iv');
  expect(oscalControlId('164.308(a)(1)(ii)(D)')).toBe('hipaa-164.308.a.1.ii.D');
  expect(oscalControlId('164.312(b)')).toMatch(new RegExp(TOKEN.pattern, 'u'));
});

test('the OSCAL export carries the bot inventory as inventory items with props and responsible parties, and validates', () => {
  const contacts = { owner: 'Fake Owner <fake-owner@example.test>', dataSteward: 'Fake Steward', securityContact: 'fake-security@example.test' };
  const oscal = reportToOscal(
    report([
      bot('fake-prod-bot', { contacts }),
      bot('fake-other-bot', { contacts: { ...contacts, dataSteward: 'Other Steward' } }), // owner and security contact shared: one party each
      bot('fake-demo-bot', { segments: ['demo'], productionSegments: [], schedules: [], lastRun: null, team: null }),
    ]),
  ) as Oscal;
  expect(validate(oscal) ? [] : validate.errors).toEqual([]);

  const ar = oscal['assessment-results'];
  const items = ar.results[0]!['local-definitions']!['inventory-items'];
  expect(items).toHaveLength(3);
  const propsOf = (i: number) => items[i]!.props!.map((p) => `${p.name}=${p.value}`);
  expect(propsOf(0)).toEqual(
    expect.arrayContaining([
      'asset-id=fake-prod-bot',
      'bot-version=1.0.0',
      'team=fake-team',
      'phi-field=memberId',
      'phi-field=dob',
      'host=portal.example.test',
      'credential=portal_password',
      'segment=demo',
      'segment=prod-a',
      'production-segment=prod-a',
      'schedule=nightly (prod-a, cron 0 2 * * *)',
      'last-run-status=succeeded',
    ]),
  );
  expect(propsOf(2)).toEqual(expect.arrayContaining(['asset-id=fake-demo-bot', 'contacts=none']));
  expect(propsOf(2).filter((p) => /^(team|production-segment|schedule|last-run-status)=/.test(p))).toEqual([]);

  const parties = new Map((ar.metadata.parties ?? []).map((p) => [p.uuid, p]));
  const named = (i: number) =>
    Object.fromEntries(items[i]!['responsible-parties']!.map((r) => [r['role-id'], r['party-uuids'].map((u) => parties.get(u)?.name)]));
  expect(named(0)).toEqual({ 'asset-owner': ['Fake Owner'], 'data-steward': ['Fake Steward'], 'security-contact': ['fake-security@example.test'] });
  expect(named(1)['data-steward']).toEqual(['Other Steward']);
  expect(items[2]!['responsible-parties']).toBeUndefined();
  expect(parties.size).toBe(4); // shared owner and security contact are one party each
  expect([...parties.values()].find((p) => p.name === 'Fake Owner')?.['email-addresses']).toEqual(['fake-owner@example.test']);
  // Every reference resolves: role ids to metadata roles, party uuids to metadata parties.
  const roles = new Set((ar.metadata.roles ?? []).map((r) => r.id));
  for (const item of items)
    for (const r of item['responsible-parties'] ?? []) {
      expect(roles.has(r['role-id'])).toBe(true);
      for (const u of r['party-uuids']) expect(parties.has(u)).toBe(true);
    }
  expect(JSON.stringify(reportToOscal(report([bot('fake-prod-bot', { contacts })])))).toContain(items[0]!.uuid); // stable ids
});

test('hostile stored values are folded into valid one-line OSCAL strings; an empty inventory writes no local definitions', () => {
  const oscal = reportToOscal(report([bot('fake-bot', { hosts: ['  a.example.test\n', ' ', 'b.example.test\tx'], phi: [] })])) as Oscal;
  expect(validate(oscal) ? [] : validate.errors).toEqual([]);
  const props = oscal['assessment-results'].results[0]!['local-definitions']!['inventory-items'][0]!.props!;
  expect(props.filter((p) => p.name === 'host').map((p) => p.value)).toEqual(['a.example.test', 'b.example.test x']);
  expect(props.some((p) => p.name === 'phi-field')).toBe(false);

  for (const bots of [undefined, []]) {
    const bare = reportToOscal(report(bots)) as Oscal;
    expect(validate(bare) ? [] : validate.errors).toEqual([]);
    expect(bare['assessment-results'].results[0]!['local-definitions']).toBeUndefined();
    expect(bare['assessment-results'].metadata.parties).toBeUndefined();
  }
});

test('the schema subset is not a rubber stamp: the bracketed control ids of old, an empty prop list or an undefined field fail it', () => {
  const oscal = reportToOscal(report([bot('fake-bot')])) as Record<string, Record<string, unknown>>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const broken = (change: (ar: Record<string, any>) => void) => {
    const copy = JSON.parse(JSON.stringify(oscal)) as Record<string, Record<string, unknown>>;
    change(copy['assessment-results']!);
    return validate(copy);
  };
  expect(validate(oscal)).toBe(true);
  expect(
    broken((ar) => {
      ar.results[0].findings[0].target['target-id'] = 'hipaa-164.312(d)';
    }),
  ).toBe(false);
  expect(
    broken((ar) => {
      ar.results[0]['local-definitions']['inventory-items'][0].props = [];
    }),
  ).toBe(false);
  expect(
    broken((ar) => {
      ar.results[0]['local-definitions']['inventory-items'][0].owner = 'x';
    }),
  ).toBe(false);
  expect(
    broken((ar) => {
      delete ar.results[0]['local-definitions']['inventory-items'][0].description;
    }),
  ).toBe(false);
});
