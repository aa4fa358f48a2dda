import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';

/** One reason a configuration is not fit for production. */
export interface ConfigFinding {
  /** Stable name of the check, for scripts. */
  check: string;
  message: string;
}

type Env = Record<string, string | undefined>;

function redisFindings(url: string, who: string): ConfigFinding[] {
  const findings: ConfigFinding[] = [];
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [{ check: 'redis-url', message: `${who}REDIS_URL is not a URL` }];
  }
  const user = decodeURIComponent(parsed.username);
  if (!user || user === 'default') {
    findings.push({
      check: 'redis-default-user',
      message: `${who}REDIS_URL connects as Redis's default user: give each process its own ACL user (scripts/redis-acl.js) and turn the default user off`,
    });
  }
  if (parsed.protocol !== 'rediss:')
    findings.push({ check: 'redis-plain', message: `${who}REDIS_URL is plain redis://: use rediss:// with a certificate from your private CA` });
  return findings;
}

/**
 * What is missing or unsafe for production in a control room's environment (and optionally the
 * runners' environments): pure, so tests give it the demo's configuration.
 */
export function checkProductionConfig(env: Env, runnerEnvs: { name: string; env: Env }[] = []): ConfigFinding[] {
  const findings: ConfigFinding[] = [];
  if (env.ORDERLY_ENV !== 'production')
    findings.push({ check: 'env', message: `ORDERLY_ENV is ${env.ORDERLY_ENV ?? 'unset (development)'}: set ORDERLY_ENV=production` });
  if (!env.ORDERLY_TLS_CERT_FILE && env.ORDERLY_TLS_TERMINATED !== 'true') {
    findings.push({
      check: 'plain-http',
      message: 'plain HTTP: set ORDERLY_TLS_CERT_FILE and ORDERLY_TLS_KEY_FILE (or ORDERLY_TLS_TERMINATED=true behind a TLS proxy)',
    });
  }
  const secrets = join(resolve(env.ORDERLY_DATA_DIR ?? '.orderly'), 'secrets');
  const bootstrap = existsSync(secrets) ? readdirSync(secrets).filter((f) => f === 'admin.token' || /^runner-.+\.token$/.test(f)) : [];
  if (bootstrap.length) {
    findings.push({
      check: 'bootstrap-tokens',
      message: `bootstrap tokens are still on disk in ${secrets} (${bootstrap.join(', ')}): sign in with real users and service accounts, hand each runner its token, then delete these files`,
    });
  }
  findings.push(...redisFindings(env.REDIS_URL ?? 'redis://127.0.0.1:6379', ''));
  if (!env.DATABASE_URL)
    findings.push({ check: 'database-embedded', message: 'DATABASE_URL is unset: the embedded PGlite is for development; use PostgreSQL' });
  else if (!/[?&]sslmode=verify-full(&|$)/.test(env.DATABASE_URL))
    findings.push({ check: 'database-tls', message: 'DATABASE_URL does not ask for sslmode=verify-full' });
  if (!env.VAULT_ADDR) findings.push({ check: 'vault-missing', message: 'VAULT_ADDR is unset: credentials and Transit keys need Vault or OpenBao' });
  else if (env.VAULT_ADDR.startsWith('http:'))
    findings.push({ check: 'vault-plain', message: 'VAULT_ADDR is plain http:// (the dev Vault?): use an https:// Vault or OpenBao' });
  for (const { name, env: r } of runnerEnvs) {
    const who = `runner ${name}: `;
    if (r.ORDERLY_SANDBOX === 'none')
      findings.push({ check: 'sandbox-off', message: `${who}ORDERLY_SANDBOX=none runs bot code outside the sandbox: use bwrap` });
    if (r.ORDERLY_ENV !== 'production') findings.push({ check: 'env', message: `${who}ORDERLY_ENV is not production` });
    findings.push(...redisFindings(r.REDIS_URL ?? 'redis://127.0.0.1:6379', who));
    if (!(r.ORDERLY_CONTROL_ROOM_URL ?? 'http://127.0.0.1:7300').startsWith('https:'))
      findings.push({ check: 'plain-http', message: `${who}ORDERLY_CONTROL_ROOM_URL is plain HTTP` });
  }
  return findings;
}

/** Parses a KEY=VALUE env file (the .env format of images/*.env.example): comments and blanks skipped. */
export function parseEnvFile(text: string): Env {
  const env: Env = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) env[m[1]] = m[2].trim().replace(/^(['"])(.*)\1$/, '$2');
  }
  return env;
}

/** `orderly control-room check-config`: prints every reason the configuration is not production-ready; exit 1 if any. */
export function checkConfigCommand(): Command {
  return new Command('check-config')
    .description('print what is missing or unsafe for production in this environment (and --runner-env files); exit 1 if anything is')
    .option('--runner-env <file...>', "runners' env files (KEY=VALUE) to check as well")
    .action((options: { runnerEnv?: string[] }) => {
      const runners = (options.runnerEnv ?? []).map((file) => ({ name: file, env: parseEnvFile(readFileSync(file, 'utf8')) }));
      // The raw environment, not the zod config: that refuses at the first problem, this lists them all.
      // eslint-disable-next-line no-restricted-properties
      const findings = checkProductionConfig(process.env, runners);
      for (const f of findings) process.stdout.write(`unsafe for production [${f.check}]: ${f.message}\n`);
      if (findings.length) {
        process.stdout.write(`check-config: ${findings.length} problem(s); not fit for production\n`);
        process.exitCode = 1;
      } else process.stdout.write('check-config: nothing missing or unsafe found\n');
    });
}
