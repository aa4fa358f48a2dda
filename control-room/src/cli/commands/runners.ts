import { Command } from 'commander';
import { RegisteredRunnerView, RunnerIdentityList, RunnerIdentityView } from '../../identity/schemas';
import { ApiClient } from '../api-client';
import { output } from '../output';
import { saveToken } from './login';

const line = (r: RunnerIdentityView) => [r.id, r.name, r.segment, r.revoked ? 'revoked' : 'live', r.lastUsedAt ? `last seen ${r.lastUsedAt}` : 'never seen'].join('  ');

/** `orderly runners`: one identity per runner, bound to one segment. */
export function runnersCommand(client: () => ApiClient): Command {
  const runners = new Command('runners').description('runner identities: register (token shown once), list, revoke');
  runners
    .command('register')
    .description("register one runner of one segment; its token goes to --out (0600) or is printed once")
    .argument('<name>', 'unique runner name')
    .requiredOption('--segment <segment>', 'the one segment it serves')
    .option('--out <file>', 'write the token to this file (mode 0600) instead of printing it; give it to the runner as ORDERLY_RUNNER_TOKEN_FILE')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { segment: string; out?: string; json?: boolean }) => {
      const registered = await client().request('POST', '/v1/runners', RegisteredRunnerView, { name, segment: opts.segment });
      const { token, ...view } = registered;
      if (opts.out) {
        saveToken(opts.out, token);
        output(opts.json, view, `registered ${view.name} for ${view.segment}; token written to ${opts.out}`);
      } else {
        output(opts.json, registered, [`registered ${view.name} for ${view.segment}; token, shown once:`, token]);
      }
    });
  runners
    .command('ls')
    .description('list runner identities')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { runners: list } = await client().request('GET', '/v1/runners', RunnerIdentityList);
      output(opts.json, list, list.length ? list.map(line) : ['no runner identities']);
    });
  runners
    .command('revoke')
    .description('revoke a runner identity; its next request is refused')
    .argument('<runner>', 'name or id')
    .option('--json', 'machine-readable output')
    .action(async (runner: string, opts: { json?: boolean }) => {
      const revoked = await client().request('DELETE', `/v1/runners/${encodeURIComponent(runner)}`, RunnerIdentityView);
      output(opts.json, revoked, line(revoked));
    });
  return runners;
}
