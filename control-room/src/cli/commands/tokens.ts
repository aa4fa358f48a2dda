import { Command } from 'commander';
import { CreatedTokenView, TokenList, TokenView } from '../../identity/schemas';
import { ApiClient } from '../api-client';
import { output } from '../output';
import { collect, positiveDays } from './login';

export const tokenLine = (t: TokenView) =>
  [t.id, t.name, t.owner, t.scopes.join(','), `expires ${t.expiresAt}`, t.revoked ? 'revoked' : 'live', t.current ? '(this one)' : ''].join('  ').trimEnd();

/** `orderly tokens`: your API tokens (the security team: everyone's). */
export function tokensCommand(client: () => ApiClient): Command {
  const tokens = new Command('tokens').description('API tokens: create (shown once), list, revoke');
  tokens
    .command('create')
    .description('create an API token for yourself, scoped to some of your roles; printed once')
    .requiredOption('--name <name>', 'what it is for, e.g. "ci publish"')
    .requiredOption('--expires-in-days <days>', 'lifetime (capped by ORDERLY_TOKEN_MAX_DAYS)', positiveDays)
    .option('--scope <role>', 'a role the token carries (repeat; default: all of yours)', collect)
    .option('--json', 'machine-readable output')
    .action(async (opts: { name: string; expiresInDays: number; scope?: string[]; json?: boolean }) => {
      const created = await client().request('POST', '/v1/tokens', CreatedTokenView, {
        name: opts.name,
        expiresInDays: opts.expiresInDays,
        ...(opts.scope ? { scopes: opts.scope } : {}),
      });
      output(opts.json, created, [`token ${created.id} (${created.scopes.join(', ')}), expires ${created.expiresAt}; shown once:`, created.token]);
    });
  tokens
    .command('ls')
    .description("list your tokens (never their values); --all: everyone's (users.manage)")
    .option('--all', 'every token (the security team)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { all?: boolean; json?: boolean }) => {
      const { tokens: list } = await client().request('GET', `/v1/tokens${opts.all ? '?all=true' : ''}`, TokenList);
      output(opts.json, list, list.length ? list.map(tokenLine) : ['no tokens']);
    });
  tokens
    .command('revoke')
    .description('revoke a token at once (yours, or any with users.manage)')
    .argument('<id>', 'token id (from `orderly tokens ls`)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const revoked = await client().request('DELETE', `/v1/tokens/${encodeURIComponent(id)}`, TokenView);
      output(opts.json, revoked, `revoked ${revoked.id} (${revoked.name})`);
    });
  return tokens;
}
