import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { optionalString, parseConfig } from '@orderly/shared';
import { adminTokenPath } from '../keys/secrets';

/** The CLI's configuration: environment first, command-line options override. */
export const CliConfigSchema = z.object({
  ORDERLY_URL: z.url().default('http://127.0.0.1:7300'),
  ORDERLY_TOKEN: optionalString,
  ORDERLY_TOKEN_FILE: optionalString,
  ORDERLY_DATA_DIR: z.string().default('.orderly'),
  XDG_CONFIG_HOME: optionalString,
});

export interface CliConfig {
  url: string;
  token: string | undefined;
}

/** Where `orderly login` keeps the user's API token (mode 0600): `$XDG_CONFIG_HOME/orderly/token`, else `~/.config/orderly/token`. */
export function loginTokenPath(env: Record<string, string | undefined> = process.env): string {
  const parsed = parseConfig(CliConfigSchema, env);
  return join(parsed.XDG_CONFIG_HOME ? resolve(parsed.XDG_CONFIG_HOME) : join(homedir(), '.config'), 'orderly', 'token');
}

function readToken(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The token, first found wins: `--token`, `ORDERLY_TOKEN`, `ORDERLY_TOKEN_FILE` (when set, the
 * only file read), the file `orderly login` wrote, then the local control room's admin token.
 */
export function loadCliConfig(options: { url?: string; token?: string }, env: Record<string, string | undefined> = process.env): CliConfig {
  const parsed = parseConfig(CliConfigSchema, env);
  // A named token file is the only file looked at: a typo must not fall back to another identity.
  const fromFiles =
    parsed.ORDERLY_TOKEN_FILE !== undefined
      ? readToken(parsed.ORDERLY_TOKEN_FILE)
      : (readToken(loginTokenPath(env)) ?? readToken(adminTokenPath(join(resolve(parsed.ORDERLY_DATA_DIR), 'secrets'))));
  // Nothing found: commands that need a token say so.
  const token = options.token ?? parsed.ORDERLY_TOKEN ?? fromFiles;
  return { url: (options.url ?? parsed.ORDERLY_URL).replace(/\/$/, ''), token };
}
