import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { optionalString, parseConfig } from '@orderly/shared';
import { adminTokenPath } from '../identity/secrets';

/** The CLI's configuration: environment first, command-line options override. */
export const CliConfigSchema = z.object({
  ORDERLY_URL: z.url().default('http://127.0.0.1:7300'),
  ORDERLY_TOKEN: optionalString,
  ORDERLY_TOKEN_FILE: optionalString,
  ORDERLY_DATA_DIR: z.string().default('.orderly'),
});

export interface CliConfig {
  url: string;
  token: string | undefined;
}

export function loadCliConfig(options: { url?: string; token?: string }, env: Record<string, string | undefined> = process.env): CliConfig {
  const parsed = parseConfig(CliConfigSchema, env);
  const tokenFile = parsed.ORDERLY_TOKEN_FILE ?? adminTokenPath(join(resolve(parsed.ORDERLY_DATA_DIR), 'secrets'));
  let fileToken: string | undefined;
  try {
    fileToken = readFileSync(tokenFile, 'utf8').trim();
  } catch {
    fileToken = undefined; // no local control room: commands that need a token say so
  }
  return { url: (options.url ?? parsed.ORDERLY_URL).replace(/\/$/, ''), token: options.token ?? parsed.ORDERLY_TOKEN ?? fileToken };
}
