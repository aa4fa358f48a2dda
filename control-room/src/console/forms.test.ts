import { credentialsTable, doneBanner, peopleTables, stepUpForm } from './forms';

const HOSTILE = '<script>window.x=1</script>"><img src=x onerror=alert(1)>';

describe('console forms', () => {
  test('a credential value field is a password field that never carries a value', () => {
    const out = credentialsTable(
      [
        {
          bot: 'leaky',
          name: 'api_key',
          exists: true,
          version: 3,
          createdAt: null,
          updatedAt: null,
          ageDays: 200,
          rotatedBy: 'user:sec',
          rotatedAt: null,
          maxAgeDays: 90,
          overdue: true,
        },
      ],
      true,
    ).value;
    const field = /<input id="value-leaky-api_key"[^>]*>/.exec(out)?.[0];
    expect(field).toContain('type="password"');
    expect(field).toContain('autocomplete="off"');
    expect(field).not.toMatch(/\svalue=/);
    expect(out).toContain('name="expectedVersion" value="3"');
    expect(out).toContain('overdue');
    // Without credentials.manage: status only, no form.
    expect(credentialsTable([], false).value).not.toContain('<form');
  });

  test('hostile names render as text', () => {
    const out = peopleTables(
      [{ id: 'u1', username: HOSTILE, roles: [HOSTILE], enrolled: true, disabled: false, lockedUntil: null, createdAt: '2026-01-01T00:00:00.000Z' }],
      [
        {
          id: 'r1',
          kind: 'grant_roles',
          target: HOSTILE,
          rolesBefore: [],
          rolesAfter: ['approver'],
          segment: null,
          requestedBy: 'user:other',
          status: 'pending',
          decidedBy: null,
          decidedAt: null,
          createdAt: '2026-01-01T00:00:00.000Z',
        },
      ],
      'user:me',
    ).value;
    expect(out).not.toContain('<script>');
    expect(out).not.toContain('<img');
    expect(out).toContain('&lt;script&gt;');
  });

  test('the requester is not offered their own access request; outcome banners show only fixed texts', () => {
    const mine = peopleTables(
      [],
      [
        {
          id: 'r1',
          kind: 'grant_roles',
          target: 'user:x',
          rolesBefore: [],
          rolesAfter: ['approver'],
          segment: null,
          requestedBy: 'user:me',
          status: 'pending',
          decidedBy: null,
          decidedAt: null,
          createdAt: '2026-01-01T00:00:00.000Z',
        },
      ],
      'user:me',
    ).value;
    expect(mine).not.toContain('/approve');
    expect(doneBanner(HOSTILE).value).toBe('');
    expect(doneBanner('rotated').value).toContain('Credential rotated');
    expect(stepUpForm('/console/x"><script>').value).not.toContain('<script>');
  });
});
