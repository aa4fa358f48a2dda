import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { DemoPortal, startDemoPortal } from '@orderly/demo-portal';
import { CHROMIUM, ELIGIBILITY_BOT, PORTAL_CREDENTIALS, REPO } from '../harness';

/**
 * `orderly bot try` as a developer runs it: the `orderly` binary, real Chromium, the runner's
 * bwrap sandbox and egress proxy, and no control room, Redis or Vault (none is started here, and
 * none is named in the environment). Secrets and input are synthetic and per process.
 */
const BIN = join(REPO, 'node_modules', '.bin');
const FIXTURE = join(REPO, 'test', 'fixtures', 'bots', 'try-local');
const API_KEY = `k-${randomBytes(18).toString('base64url')}`;
const MEMBER = { memberId: 'ZZT100200301', dateOfBirth: '1900-01-15' };

let work: string;
let portal: DemoPortal;
let unlisted: Server;
let unlistedUrl: string;
let unlistedHits = 0;
/** A listed host that counts what reaches it: a refused try must not. */
let counted: Server;
let countedUrl: string;
let countedHits = 0;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'orderly-try-'));
  portal = await startDemoPortal({ credentials: PORTAL_CREDENTIALS });
  // 127.0.0.2 is loopback, but not a host the fixture's manifest lists (it lists 127.0.0.1).
  unlisted = createServer((_req, res) => {
    unlistedHits++;
    res.end('<title>unlisted</title>');
  });
  await new Promise<void>((resolve) => unlisted.listen(0, '127.0.0.2', () => resolve()));
  unlistedUrl = `http://127.0.0.2:${(unlisted.address() as AddressInfo).port}/`;
  counted = createServer((_req, res) => {
    countedHits++;
    res.end('<title>counted</title>');
  });
  await new Promise<void>((resolve) => counted.listen(0, '127.0.0.1', () => resolve()));
  countedUrl = `http://127.0.0.1:${(counted.address() as AddressInfo).port}/`;
}, 60_000);

afterAll(async () => {
  unlisted?.close();
  counted?.close();
  await portal?.close();
  rmSync(work, { recursive: true, force: true });
});

function orderly(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = { PATH: `${BIN}:${process.env.PATH ?? ''}`, HOME: work, ORDERLY_CHROMIUM_PATH: CHROMIUM, ORDERLY_SANDBOX: 'bwrap' };
    const child = spawn(join(BIN, 'orderly'), args, { env, cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function writeJson(name: string, value: unknown): string {
  const path = join(work, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

/** Every file under dir: its path (relative) and its bytes as text. */
function filesUnder(dir: string): Array<{ path: string; text: string }> {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((p) => join(dir, p))
    .filter((p) => statSync(p).isFile())
    .map((p) => ({ path: relative(dir, p), text: readFileSync(p).toString('latin1') }));
}

function expectNowhere(dir: string, stdout: string, values: Record<string, string>): void {
  const files = filesUnder(dir);
  for (const [what, value] of Object.entries(values)) {
    const inFiles = files.filter((f) => f.path.includes(value) || f.text.includes(value)).map((f) => f.path);
    expect({ what, inFiles, inStdout: stdout.includes(value) }).toEqual({ what, inFiles: [], inStdout: false });
  }
}

const logLines = (out: string) =>
  readFileSync(join(out, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { level: string; source: string; msg: string });

test('the demo bot succeeds against the demo portal in the sandbox, with secrets from a local file; no secret or PHI in what it wrote', async () => {
  const before = portal.stats().eligibilityChecks;
  const input = writeJson('eligibility-input.json', { portalUrl: portal.url, ...MEMBER });
  const secrets = writeJson('eligibility-secrets.json', { portal_user: PORTAL_CREDENTIALS.username, portal_password: PORTAL_CREDENTIALS.password });
  const out = join(work, 'eligibility-out');
  const res = await orderly(['bot', 'try', ELIGIBILITY_BOT, '--input', input, '--secrets', secrets, '--out', out]);
  expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
  expect(portal.stats().eligibilityChecks).toBe(before + 1);
  expect(JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'))).toEqual({ result: { coverage: 'Active', plan: expect.any(String) } });
  expect(logLines(out).map((l) => l.msg)).toContainEqual(expect.stringContaining('eligibility checked'));
  expect(res.stdout).toContain('result: {"coverage":"Active"');
  expect(res.stdout).toMatch(/succeeded in \d+ ms \(sandbox bwrap\)/);
  expect(existsSync(join(out, 'error.json'))).toBe(false);
  expectNowhere(out, res.stdout, { ...PORTAL_CREDENTIALS, ...MEMBER });
}, 120_000);

test('a bot that writes its secret everywhere: the result, log and screenshot names hold it masked; the default out is .orderly-try/<timestamp>', async () => {
  const input = writeJson('leak-input.json', { portalUrl: portal.url, memberId: MEMBER.memberId });
  const secrets = writeJson('leak-secrets.json', { api_key: API_KEY });
  const res = await orderly(['bot', 'try', FIXTURE, '--input', input, '--secrets', secrets, '--json']);
  expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
  const outcome = JSON.parse(res.stdout) as {
    ok: boolean;
    out: string;
    flags?: string[];
    screenshots: string[];
    result: { echoed: string; title: string; recorded: unknown };
  };
  expect(outcome.ok).toBe(true);
  expect(relative(work, outcome.out)).toMatch(/^\.orderly-try\/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$/);
  // The result leaves as it would leave a runner: the secret masked, the run flagged.
  const written = JSON.parse(readFileSync(join(outcome.out, 'result.json'), 'utf8')) as { result: { echoed: string; recorded: unknown }; flags: string[] };
  expect(written.flags).toEqual(['secret_in_result']);
  expect(written.result.echoed).not.toBe(API_KEY);
  expect(written.result.recorded).toEqual({ where: 'portal' });
  expect(outcome.flags).toEqual(['secret_in_result']);
  // The log has every line the bot wrote (bot, console, stdout), masked.
  const lines = logLines(outcome.out);
  expect(lines.filter((l) => l.msg.startsWith('signed in with'))).toHaveLength(1);
  expect(lines.some((l) => l.msg.startsWith('key-b64'))).toBe(true);
  expect(lines.some((l) => l.source === 'console')).toBe(true);
  // One masked screenshot, a PNG, its name redacted.
  expect(outcome.screenshots).toHaveLength(1);
  expect(readFileSync(outcome.screenshots[0]!).subarray(1, 4).toString('latin1')).toBe('PNG');
  expect(statSync(outcome.out).mode & 0o077).toBe(0);
  expectNowhere(outcome.out, res.stdout, { apiKey: API_KEY, apiKeyBase64: Buffer.from(API_KEY).toString('base64'), memberId: MEMBER.memberId });
}, 120_000);

test('invalid input, a bad secrets file or a folder without bot.json is refused with its code, and nothing is run or written', async () => {
  const secrets = writeJson('refused-secrets.json', { api_key: API_KEY });
  const cases: Array<{ args: string[]; code: string }> = [
    {
      args: [FIXTURE, '--input', writeJson('bad-input.json', { portalUrl: countedUrl, memberId: 'not-a-member-id' }), '--secrets', secrets],
      code: 'ORDERLY_E_INPUT_INVALID',
    },
    {
      args: [FIXTURE, '--input', writeJson('extra-input.json', { portalUrl: countedUrl, memberId: MEMBER.memberId, extra: 1 }), '--secrets', secrets],
      code: 'ORDERLY_E_INPUT_INVALID',
    },
    {
      args: [
        FIXTURE,
        '--input',
        writeJson('good-input.json', { portalUrl: countedUrl, memberId: MEMBER.memberId }),
        '--secrets',
        writeJson('missing-secrets.json', {}),
      ],
      code: 'ORDERLY_E_TRY_SECRETS_INVALID',
    },
    {
      args: [FIXTURE, '--input', join(work, 'good-input.json'), '--secrets', writeJson('undeclared-secrets.json', { api_key: API_KEY, other: 'x'.repeat(20) })],
      code: 'ORDERLY_E_TRY_SECRETS_INVALID',
    },
    { args: [FIXTURE, '--input', join(work, 'good-input.json')], code: 'ORDERLY_E_TRY_SECRETS_INVALID' },
    { args: [work, '--input', join(work, 'good-input.json')], code: 'ORDERLY_E_MANIFEST_INVALID' },
  ];
  for (const [i, c] of cases.entries()) {
    const out = join(work, `refused-${i}`);
    const res = await orderly(['bot', 'try', ...c.args, '--out', out]);
    expect({ i, code: res.code, stderr: res.stderr.split(':')[1]?.trim(), lines: res.stderr.trim().split('\n').length }).toEqual({
      i,
      code: 1,
      stderr: c.code,
      lines: 1,
    });
    expect({ i, written: existsSync(out) }).toEqual({ i, written: false });
    expect(res.stderr).not.toContain(API_KEY);
  }
  expect(countedHits).toBe(0);
}, 120_000);

test('a bot going to a host its manifest does not list is refused by the egress proxy: nothing reaches that host, the try fails with its code', async () => {
  const input = writeJson('unlisted-input.json', { portalUrl: portal.url, memberId: MEMBER.memberId, unlistedUrl });
  const secrets = writeJson('unlisted-secrets.json', { api_key: API_KEY });
  const out = join(work, 'unlisted-out');
  const res = await orderly(['bot', 'try', FIXTURE, '--input', input, '--secrets', secrets, '--out', out]);
  expect(res.code).toBe(1);
  expect(res.stderr).toMatch(/^orderly: ORDERLY_E_BOT_FAILED: [^\n]+\n$/);
  // The browser's request is refused in the browser, fetch's by the egress proxy; neither got out.
  expect(res.stderr).toContain('browser page.goto: net::ERR_BLOCKED_BY_CLIENT');
  expect(res.stderr).toContain('fetch ORDERLY_E_EGRESS_REFUSED');
  expect(unlistedHits).toBe(0);
  // The proxy's refusal is on the run's log: host (an address, masked) and port, and the reason.
  const port = new URL(unlistedUrl).port;
  const refusals = logLines(out).filter((l) => l.source === 'runner' && l.msg.startsWith('egress refused:'));
  expect(refusals.map((l) => l.msg)).toEqual([`egress refused: [IP]:${port} (not-listed)`]);
  expect(JSON.parse(readFileSync(join(out, 'error.json'), 'utf8'))).toMatchObject({ code: 'ORDERLY_E_BOT_FAILED' });
  expect(existsSync(join(out, 'result.json'))).toBe(false);
  expect(res.stdout).toMatch(/failed: ORDERLY_E_BOT_FAILED in \d+ ms \(sandbox bwrap\)/);
  expectNowhere(out, res.stdout + res.stderr, { apiKey: API_KEY, memberId: MEMBER.memberId });
}, 120_000);
