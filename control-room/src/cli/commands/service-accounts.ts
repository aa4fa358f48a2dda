import { Command } from 'commander';
import { z } from 'zod';
import { CreatedTokenView, ServiceAccountView } from '../../identity/schemas';
import { ApiClient } from '../api-client';
import { output } from '../output';
import { collect, positiveDays } from './login';

/** `orderly service-accounts`: identities for automation (CI), tokens only. */
export function serviceAccountsCommand(client: () => ApiClient): Command {
  const accounts = new Command('service-accounts').description('service accounts for automation: create, issue tokens, disable');
  accounts
    .command('create')
    .description('create a service account (roles: developer, operator or auditor)')
    .argument('<name>', 'unique name, e.g. ci-publisher')
    .requiredOption('--role <role>', 'a role (repeat for more)', collect)
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { role: string[]; json?: boolean }) => {
      const created = await client().request('POST', '/v1/service-accounts', ServiceAccountView, { name, roles: opts.role });
      output(opts.json, created, `created service account ${created.name} (${created.roles.join(', ')})`);
    });
  accounts
    .command('token')
    .description('issue an API token for a service account; printed once')
    .argument('<account>', 'name or id')
    .requiredOption('--name <name>', 'what it is for')
    .requiredOption('--expires-in-days <days>', 'lifetime (capped by ORDERLY_TOKEN_MAX_DAYS)', positiveDays)
    .option('--json', 'machine-readable output')
    .action(async (account: string, opts: { name: string; expiresInDays: number; json?: boolean }) => {
      const created = await client().request('POST', `/v1/service-accounts/${encodeURIComponent(account)}/tokens`, CreatedTokenView, {
        name: opts.name,
        expiresInDays: opts.expiresInDays,
      });
      output(opts.json, created, [`token ${created.id} for ${created.owner}, expires ${created.expiresAt}; shown once:`, created.token]);
    });
  accounts
    .command('owner')
    .description('set the person who answers for a service account (separation of duties counts its uploads and keys as theirs)')
    .argument('<account>', 'name or id')
    .requiredOption('--user <username>', 'the owning person')
    .option('--json', 'machine-readable output')
    .action(async (account: string, opts: { user: string; json?: boolean }) => {
      const set = await client().request(
        'PUT',
        `/v1/service-accounts/${encodeURIComponent(account)}/owner`,
        z.object({ serviceAccount: z.string(), owner: z.string() }),
        { user: opts.user },
      );
      output(opts.json, set, `service account ${account} is owned by ${opts.user} (${set.owner})`);
    });
  accounts
    .command('disable')
    .description('disable a service account: its tokens stop working at once (audited as service_account.disable)')
    .argument('<account>', 'name or id')
    .option('--json', 'machine-readable output')
    .action(async (account: string, opts: { json?: boolean }) => {
      const disabled = await client().request('POST', `/v1/service-accounts/${encodeURIComponent(account)}/disable`, ServiceAccountView);
      output(opts.json, disabled, `disabled service account ${disabled.name}; its tokens no longer work`);
    });
  return accounts;
}
