import { Acl, parsePolicy } from './acl';
import { renderBotPolicy, secretIdCreationPath } from '@orderly/shared/vault';

describe('renderBotPolicy', () => {
  it('grants read on exactly the declared KV v2 data paths, and nothing else', () => {
    const hcl = renderBotPolicy({
      roleName: 'eligibility-bot',
      kvMount: 'secret',
      kvPaths: ['bots/eligibility/portal', 'shared/payers/*', 'bots/eligibility/portal'],
    });
    const rules = parsePolicy(hcl);
    expect(rules).toEqual([
      { path: 'secret/data/bots/eligibility/portal', capabilities: ['read'] },
      { path: 'secret/data/shared/payers/*', capabilities: ['read'] },
    ]);
    const acl = new Acl([rules]);
    expect(acl.allows('secret/data/bots/eligibility/portal', 'read', false)).toBe(true);
    expect(acl.allows('secret/data/shared/payers/acme', 'read', false)).toBe(true);
    expect(acl.allows('secret/data/bots/eligibility/portal', 'update', false)).toBe(false);
    expect(acl.allows('secret/metadata/bots/eligibility/portal', 'read', false)).toBe(false);
    expect(acl.allows('secret/data/bots/other/portal', 'read', false)).toBe(false);
    expect(acl.allows('secret/metadata/', 'list', false)).toBe(false);
  });

  it.each([['../escape'], ['bots/../../sys'], ['/abs'], ['a//b'], ['a/*/b'], ['a/+'], ['a"b'], ['']])('refuses the path %p without echoing it', (path) => {
    let error: unknown;
    try {
      renderBotPolicy({ roleName: 'r1', kvMount: 'secret', kvPaths: [path] });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'ORDERLY_E_BAD_REQUEST', details: { field: 'KV secret path' } });
    if (path !== '') expect((error as Error).message).not.toContain(path);
  });

  it('builds the wrapped SecretID creation path the runner checks', () => {
    expect(secretIdCreationPath('claims-bot')).toBe('auth/approle/role/claims-bot/secret-id');
    expect(() => secretIdCreationPath('bad/role')).toThrow(expect.objectContaining({ code: 'ORDERLY_E_BAD_REQUEST' }));
  });
});
