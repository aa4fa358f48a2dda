import { Command } from 'commander';
import { z } from 'zod';
import { OrderlyError } from '@orderly/shared';
import { TeamView } from '../../packages/ownership';
import { ApiClient } from '../api-client';
import { output } from '../output';

const memberOf = (opts: { user?: string; service?: string }) => {
  if (Boolean(opts.user) === Boolean(opts.service)) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'name one member: --user USERNAME or --service NAME');
  return opts.user ? { kind: 'user' as const, name: opts.user } : { kind: 'service' as const, name: opts.service! };
};
const teamLine = (t: TeamView) => `${t.name}  members [${t.members.map((m) => `${m.kind}:${m.name}`).join(', ')}]  bots [${t.bots.join(', ')}]`;

/** `orderly teams`: the teams that own bot names (security team; changes need a fresh second factor). */
export function teamsCommand(client: () => ApiClient): Command {
  const teams = new Command('teams').description('teams of people and service accounts that own bot names');
  teams
    .command('create')
    .description('create a team')
    .argument('<name>', '1-64 lower-case letters, digits, ".", "_", "-"')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const team = await client().request('POST', '/v1/teams', TeamView, { name });
      output(opts.json, team, `created team ${team.name}`);
    });
  teams
    .command('ls')
    .description('list teams with their members and bot names')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { teams: list } = await client().request('GET', '/v1/teams', z.object({ teams: z.array(TeamView) }));
      output(opts.json, list, list.length ? list.map(teamLine) : 'no teams');
    });
  teams
    .command('add')
    .description('add a person or a service account to a team')
    .argument('<team>', 'the team')
    .option('--user <username>', 'a person')
    .option('--service <name>', 'a service account')
    .option('--json', 'machine-readable output')
    .action(async (team: string, opts: { user?: string; service?: string; json?: boolean }) => {
      const view = await client().request('POST', `/v1/teams/${encodeURIComponent(team)}/members`, TeamView, memberOf(opts));
      output(opts.json, view, teamLine(view));
    });
  teams
    .command('remove')
    .description('remove a person or a service account from a team')
    .argument('<team>', 'the team')
    .option('--user <username>', 'a person')
    .option('--service <name>', 'a service account')
    .option('--json', 'machine-readable output')
    .action(async (team: string, opts: { user?: string; service?: string; json?: boolean }) => {
      const member = memberOf(opts);
      const view = await client().request(
        'DELETE',
        `/v1/teams/${encodeURIComponent(team)}/members/${member.kind}/${encodeURIComponent(member.name)}`,
        TeamView,
      );
      output(opts.json, view, teamLine(view));
    });
  return teams;
}
