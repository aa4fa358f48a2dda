import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { z } from 'zod';
import { ErrorBodySchema, LogLine, OrderlyError, validateInput } from '@orderly/shared';
import { readJsonInput } from '../input';
import { output } from '../output';
import { bundleBot } from '../pack';
import { readSecret } from './login';

/** What `orderly-runner try` prints: one JSON line, every field redacted already. */
const TryOutcome = z.object({
  ok: z.boolean(),
  result: z.unknown().optional(),
  flags: z.array(z.string()).optional(),
  error: ErrorBodySchema.optional(),
  out: z.string().optional(),
  sandbox: z.enum(['bwrap', 'none']),
  durationMs: z.number(),
  lines: z.array(LogLine),
  screenshots: z.array(z.string()),
});
type TryOutcome = z.infer<typeof TryOutcome>;

/** The runner's own binary: the run goes through a process boundary, never an import of runner internals. */
function runnerCommand(): { command: string; args: string[] } {
  try {
    return { command: process.execPath, args: [require.resolve('@orderly/runner/bin/orderly-runner.js'), 'try'] };
  } catch {
    return { command: 'orderly-runner', args: ['try'] };
  }
}

const secretsInvalid = (message: string) => new OrderlyError('ORDERLY_E_TRY_SECRETS_INVALID', message);

/**
 * The secrets of a try: from a local JSON file of name -> value (never an argument, never Vault),
 * or, without one, typed at a hidden prompt for each credential the manifest declares. The names
 * must be exactly the declared ones.
 */
export async function readTrySecrets(
  path: string | undefined,
  declared: readonly string[],
  ask: (prompt: string) => Promise<string> = readSecret,
): Promise<Record<string, string>> {
  if (path === undefined) {
    const secrets: Record<string, string> = {};
    if (declared.length && !process.stdin.isTTY) throw secretsInvalid(`the bot declares credentials (${declared.join(', ')}): give them in a --secrets file`);
    for (const name of declared) secrets[name] = await ask(`${name} (not echoed): `);
    return secrets;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw secretsInvalid(`${path} is not a readable JSON file`);
  }
  const secrets = z.record(z.string(), z.string()).safeParse(parsed);
  if (!secrets.success || Array.isArray(parsed)) throw secretsInvalid(`${path} must hold one JSON object of credential name -> string value`);
  const missing = declared.filter((name) => !Object.hasOwn(secrets.data, name));
  const undeclared = Object.keys(secrets.data).filter((name) => !declared.includes(name));
  if (missing.length) throw secretsInvalid(`${path} lacks ${missing.join(', ')}, declared in bot.json`);
  if (undeclared.length) throw secretsInvalid(`${path} names ${undeclared.join(', ')}, not declared in bot.json`);
  return secrets.data;
}

/** `.orderly-try/2026-12-03T14-15-22-123Z`: sortable, and a valid file name everywhere. */
export function defaultTryOut(now = new Date()): string {
  return join('.orderly-try', now.toISOString().replace(/[:.]/g, '-'));
}

/** Runs `orderly-runner try` with the request on its stdin; resolves with the outcome it printed. */
function runTry(request: { manifest: unknown; code: string; input: unknown; secrets: Record<string, string>; out: string }): Promise<TryOutcome> {
  const { command, args } = runnerCommand();
  return new Promise((resolvePromise, reject) => {
    // stderr: the runner's own log (ORDERLY_LOG_LEVEL, `error` by default), as it is.
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.on('error', () => reject(new OrderlyError('ORDERLY_E_SANDBOX_UNAVAILABLE', `cannot start ${command} ${args.join(' ')}`)));
    // Ctrl-C reaches the runner too (same process group): it aborts the bot and reports; wait for it.
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    child.on('close', () => {
      process.removeListener('SIGINT', ignore);
      const last = stdout.trim().split('\n').pop() ?? '';
      let parsed: ReturnType<typeof TryOutcome.safeParse> | undefined;
      try {
        parsed = TryOutcome.safeParse(JSON.parse(last));
      } catch {
        parsed = undefined;
      }
      if (parsed?.success) resolvePromise(parsed.data);
      else reject(new OrderlyError('ORDERLY_E_INTERNAL', 'orderly-runner try ended without an outcome'));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(JSON.stringify(request));
  });
}

/** Printable on a terminal: control characters (escape sequences) shown as `?`. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const printable = (text: string) => text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?');

function humanLines(outcome: TryOutcome): string[] {
  const lines = outcome.lines.map((l) => printable(`${l.at} ${l.level.padEnd(5)} ${l.source}: ${l.msg}`));
  if (outcome.ok)
    lines.push(`result: ${printable(JSON.stringify(outcome.result ?? null))}${outcome.flags?.length ? `  (flags: ${outcome.flags.join(', ')})` : ''}`);
  lines.push(
    outcome.screenshots.length ? `screenshots (masked): ${outcome.screenshots.length} in ${join(outcome.out ?? '.', 'screenshots')}` : 'screenshots: none',
  );
  lines.push(
    `${outcome.ok ? 'succeeded' : `failed: ${outcome.error?.code ?? 'ORDERLY_E_INTERNAL'}`} in ${outcome.durationMs} ms (sandbox ${outcome.sandbox}); written to ${outcome.out}`,
  );
  return lines;
}

/**
 * `orderly bot try DIR --input FILE`: bundles the bot as `bot pack` does, checks the input against
 * its manifest and the secrets against its credentials (refused with their codes before anything
 * runs), then runs it once in the runner's sandbox by way of `orderly-runner try`, and writes the
 * redacted log, result (or error) and masked screenshots to --out.
 */
export function botTryCommand(): Command {
  return new Command('try')
    .description(
      "run the bot in DIR once on this machine, in the runner's sandbox with its redaction, without a control room; writes the redacted log, result and masked screenshots to --out",
    )
    .argument('<dir>', 'the bot folder (with bot.json)')
    .requiredOption('--input <file>', "the run input (JSON), checked against the manifest's input schema")
    .option('--secrets <file>', 'a local JSON file of credential name -> value for the credentials bot.json declares (without it: prompted for, hidden)')
    .option('--out <dir>', 'where the result, log and screenshots go (default: ./.orderly-try/<timestamp>)')
    .option('--json', 'machine-readable output')
    .action(async (dir: string, opts: { input: string; secrets?: string; out?: string; json?: boolean }) => {
      const bundled = await bundleBot(dir);
      const input = validateInput(bundled.manifest.input, readJsonInput(opts.input));
      const secrets = await readTrySecrets(opts.secrets, bundled.manifest.credentials);
      const out = resolve(opts.out ?? defaultTryOut());
      const outcome = await runTry({ manifest: bundled.manifest, code: bundled.code, input, secrets, out });
      if (outcome.sandbox === 'none' && !opts.json) process.stderr.write('WARNING: ORDERLY_SANDBOX=none: the bot ran uncontained (development only)\n');
      if (opts.json) output(true, outcome, '');
      else output(false, outcome, humanLines(outcome));
      if (!outcome.ok) {
        const error = outcome.error ?? { code: 'ORDERLY_E_INTERNAL' as const, message: 'the try failed' };
        throw new OrderlyError(error.code, error.message);
      }
    });
}
