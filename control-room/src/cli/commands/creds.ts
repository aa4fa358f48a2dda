import { randomBytes } from 'node:crypto';
import { Command, InvalidArgumentError } from 'commander';
import { OrderlyError } from '@orderly/shared';
import { CredentialStatusList, CredentialStatusView, CredentialWriteView, RevokeRunsView } from '@orderly/shared';
import { ApiClient } from '../api-client';
import { readHidden } from '../prompt';
import { output } from '../output';

/**
 * `orderly creds`: the security team's credential commands. A value is read from stdin (a pipe)
 * or typed at a prompt with echo off, never taken as an argument: arguments end up in shell
 * history and in every process listing (`ps`, /proc/<pid>/cmdline).
 */

const nonNegativeInt =
  (what: string) =>
  (raw: string): number => {
    if (!/^\d{1,6}$/.test(raw)) throw new InvalidArgumentError(`${what} must be a whole number`);
    return Number(raw);
  };

/** All of stdin, minus one trailing line ending (what `echo` and here-strings add). */
async function readPipe(stdin: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** The value to write: a pipe on stdin, else a hidden prompt on the terminal. */
async function readValue(bot: string, name: string): Promise<string> {
  const stdin = process.stdin;
  const value = stdin.isTTY ? await readHidden(stdin, `value for ${bot}/${name} (not echoed): `) : await readPipe(stdin);
  if (value === '') throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'no value given: pipe it on stdin or type it at the prompt');
  return value;
}

const path = (bot: string, name: string) => `/v1/credentials/${encodeURIComponent(bot)}/${encodeURIComponent(name)}`;

function ageText(c: CredentialStatusView): string {
  return c.ageDays === null ? '-' : `${c.ageDays}d/${c.maxAgeDays}d`;
}

function table(list: CredentialStatusView[]): string[] {
  if (list.length === 0) return ['no credentials declared by published bots'];
  const rows = [
    ['BOT', 'NAME', 'VERSION', 'AGE/MAX', 'ROTATED BY', 'OVERDUE'],
    ...list.map((c) => [c.bot, c.name, c.exists ? String(c.version) : 'missing', ageText(c), c.rotatedBy ?? '-', c.exists ? (c.overdue ? 'yes' : 'no') : '-']),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}

export function credsCommand(client: () => ApiClient): Command {
  const creds = new Command('creds').description('bot credentials in Vault: set, rotate, status (values are never printed)');
  creds
    .command('set')
    .description('create or overwrite credential NAME of BOT; the value is read from stdin or a hidden prompt, never from an argument')
    .argument('<bot>', 'bot name')
    .argument('<name>', "credential name, as declared in the bot's manifest")
    .option('--max-age-days <n>', 'rotate at least this often (default: ORDERLY_CREDENTIAL_MAX_AGE_DAYS of the control room)', nonNegativeInt('--max-age-days'))
    .option('--json', 'machine-readable output')
    .action(async (bot: string, name: string, opts: { maxAgeDays?: number; json?: boolean }) => {
      const value = await readValue(bot, name);
      const written = await client().request('PUT', path(bot, name), CredentialWriteView, {
        value,
        ...(opts.maxAgeDays === undefined ? {} : { maxAgeDays: opts.maxAgeDays }),
      });
      output(opts.json, written, `set ${written.bot}/${written.name}: version ${written.version}`);
    });
  creds
    .command('rotate')
    .description('write a new version of credential NAME of BOT (check-and-set: refused if someone else wrote it first)')
    .argument('<bot>', 'bot name')
    .argument('<name>', 'credential name')
    .option('--generate', 'generate the new value here (32 random bytes, base64url) instead of reading it; it is never printed')
    .option('--expected-version <n>', 'write only if the current version is N (0: only if absent)', nonNegativeInt('--expected-version'))
    .option('--json', 'machine-readable output')
    .action(async (bot: string, name: string, opts: { generate?: boolean; expectedVersion?: number; json?: boolean }) => {
      const value = opts.generate ? randomBytes(32).toString('base64url') : await readValue(bot, name);
      const written = await client().request('POST', `${path(bot, name)}/rotate`, CredentialWriteView, {
        value,
        ...(opts.expectedVersion === undefined ? {} : { expectedVersion: opts.expectedVersion }),
      });
      output(opts.json, written, `rotated ${written.bot}/${written.name}: version ${written.version}`);
    });
  creds
    .command('status')
    .description('version, age, who rotated and whether overdue, for each credential the published bots declare')
    .argument('[bot]', 'only this bot')
    .option('--json', 'machine-readable output')
    .action(async (bot: string | undefined, opts: { json?: boolean }) => {
      const query = bot === undefined ? '' : `?bot=${encodeURIComponent(bot)}`;
      const { credentials } = await client().request('GET', `/v1/credentials${query}`, CredentialStatusList);
      output(opts.json, credentials, table(credentials));
    });
  creds
    .command('revoke-runs')
    .description("revoke the Vault tokens of BOT's active runs (they lose Vault access at once); audited")
    .argument('<bot>', 'bot name')
    .option('--json', 'machine-readable output')
    .action(async (bot: string, opts: { json?: boolean }) => {
      const result = await client().request('POST', `/v1/credentials/${encodeURIComponent(bot)}/revoke-runs`, RevokeRunsView, {});
      output(opts.json, result, `revoked the Vault tokens of ${result.revoked} active run(s) of ${bot}`);
    });
  return creds;
}
