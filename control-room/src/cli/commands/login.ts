import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { hasCode, OrderlyError } from '@orderly/shared';
import { CreatedTokenView, TokenList } from '../../identity/schemas';
import { ApiClient } from '../api-client';
import { readHidden } from '../prompt';
import { CliConfig, loginTokenPath } from '../config';
import { output } from '../output';
import { showUrl, ssoLogin } from '../sso-login';

/**
 * `orderly login` / `orderly logout`, and the secret prompts the identity commands share.
 * Passwords, TOTP codes and enrolment secrets come from a hidden prompt or stdin, never from
 * arguments: arguments end up in shell history and every process listing.
 */

export const positiveDays = (raw: string): number => {
  if (!/^\d{1,4}$/.test(raw) || Number(raw) < 1) throw new InvalidArgumentError('must be a whole number of days, at least 1');
  return Number(raw);
};

export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

let pipedLines: string[] | undefined;

/** Lines of a piped stdin, read once and handed out in order (password, then code, …). */
async function nextPipedLine(stdin: NodeJS.ReadStream): Promise<string | undefined> {
  if (pipedLines === undefined) {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
    pipedLines = Buffer.concat(chunks).toString('utf8').split(/\r?\n/);
  }
  return pipedLines.shift();
}

/** One secret: a hidden prompt on a terminal, else the next line of stdin. */
export async function readSecret(prompt: string): Promise<string> {
  const stdin = process.stdin;
  const value = stdin.isTTY ? await readHidden(stdin, prompt) : await nextPipedLine(stdin);
  if (!value)
    throw new OrderlyError(
      'ORDERLY_E_BAD_REQUEST',
      `no value given for "${prompt.replace(/[:\s(].*$/, '')}": type it at the prompt or pipe it on stdin, one per line`,
    );
  return value;
}

/** Writes the token file: its directory 0700, the file 0600 (also when it existed with wider modes). */
export function saveToken(path: string, token: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Exchanges username, password and code for an API token and stores it for later commands. */
export async function login(
  config: CliConfig,
  request: { username: string; password: string; code: string; name: string; expiresInDays: number },
  path = loginTokenPath(),
): Promise<{ path: string; expiresAt: string; scopes: string[] }> {
  const client = new ApiClient({ url: config.url, token: undefined });
  const created = await client.request('POST', '/v1/login/token', CreatedTokenView, request);
  saveToken(path, created.token);
  chmodSync(dirname(path), 0o700); // our own directory (…/orderly): nobody else lists it
  return { path, expiresAt: created.expiresAt, scopes: created.scopes };
}

/** Revokes the token `orderly login` stored (on the control room) and deletes the file. */
export async function logout(config: CliConfig, path = loginTokenPath()): Promise<{ revoked: boolean }> {
  const client = new ApiClient(config);
  let revoked = false;
  try {
    const { tokens } = await client.request('GET', '/v1/tokens', TokenList);
    const current = tokens.find((t) => t.current);
    if (current) {
      await client.request('DELETE', `/v1/tokens/${encodeURIComponent(current.id)}`, TokenList.shape.tokens.element);
      revoked = true;
    }
  } catch (err) {
    // An already revoked or expired token is logged out anyway; anything else is reported.
    if (!hasCode(err, 'ORDERLY_E_UNAUTHENTICATED')) throw err;
  }
  rmSync(path, { force: true });
  return { revoked };
}

/** `orderly login --sso`: the provider's sign-in in a browser, the token saved as `login` saves it. */
export async function loginWithSso(
  config: CliConfig,
  request: Parameters<typeof ssoLogin>[1],
  path = loginTokenPath(),
): Promise<{ path: string; expiresAt: string; scopes: string[]; owner: string }> {
  const created = await ssoLogin(config, request);
  saveToken(path, created.token);
  chmodSync(dirname(path), 0o700);
  return { path, expiresAt: created.expiresAt, scopes: created.scopes, owner: created.owner };
}

export function loginCommand(config: () => CliConfig): Command {
  return new Command('login')
    .description(
      'sign in (password and TOTP code, read from a hidden prompt or stdin; or --sso at the identity provider in a browser) and keep an API token in ~/.config/orderly/token (0600)',
    )
    .option('--username <name>', 'your username (password sign-in)')
    .option('--sso', 'sign in at the identity provider (single sign-on) through a browser and a loopback redirect')
    .option('--no-browser', 'with --sso: only print the sign-in URL, do not try to open a browser')
    .option('--name <name>', 'a name for the token, shown in `orderly tokens ls`', 'cli')
    .option('--expires-in-days <days>', 'token lifetime (capped by the control room)', positiveDays, 30)
    .option('--json', 'machine-readable output')
    .action(async (opts: { username?: string; sso?: boolean; browser: boolean; name: string; expiresInDays: number; json?: boolean }) => {
      if (opts.sso) {
        if (opts.username) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'use --sso or --username, not both');
        const saved = await loginWithSso(config(), { name: opts.name, expiresInDays: opts.expiresInDays, openUrl: (url) => showUrl(url, opts.browser) });
        output(opts.json, saved, `signed in as ${saved.owner} (${saved.scopes.join(', ')}); token saved to ${saved.path}, expires ${saved.expiresAt}`);
        return;
      }
      if (!opts.username) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'orderly login needs --username (or --sso for single sign-on)');
      const password = await readSecret('password (not echoed): ');
      const code = await readSecret('TOTP code or recovery code: ');
      const saved = await login(config(), { username: opts.username, password, code, name: opts.name, expiresInDays: opts.expiresInDays });
      output(opts.json, saved, `signed in as ${opts.username} (${saved.scopes.join(', ')}); token saved to ${saved.path}, expires ${saved.expiresAt}`);
    });
}

export function logoutCommand(config: () => CliConfig): Command {
  return new Command('logout')
    .description('revoke the token `orderly login` stored and delete it')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const path = loginTokenPath();
      // Only the login file's token is revoked, whatever --token or ORDERLY_TOKEN say.
      const result = await logout({ ...config(), token: readTokenFile(path) }, path);
      output(opts.json, { ...result, path }, result.revoked ? `token revoked; ${path} deleted` : `no live token; ${path} deleted`);
    });
}

function readTokenFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
