import { ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { RunView } from '@orderly/shared';
import { waitFor } from '@orderly/shared/testing';
import { BIN, PORTAL_CREDENTIALS, REPO, runnerProcessEnv, setCredential, Stack, startStack } from '../harness';

/**
 * Crash recovery end to end, with real processes: a runner SIGKILLed in the middle of a
 * multi-step run, another runner that picks the run up, and a browser killed mid-run. The demo
 * portal counts every side effect, so "exactly once" is measured where it happens.
 */
const BOT = join(REPO, 'test', 'fixtures', 'bots', 'claim-steps');
let stack: Stack;
let db: Client;
let env: Record<string, string>;
let runnerSeq = 0;
const spawned: ChildProcess[] = [];

beforeAll(async () => {
  stack = await startStack();
  await stack.publish(BOT);
  await setCredential(stack.vault!, 'claim-steps', 'portal_user', PORTAL_CREDENTIALS.username);
  await setCredential(stack.vault!, 'claim-steps', 'portal_password', PORTAL_CREDENTIALS.password);
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  // A dead runner's job is found within seconds, not the production half minute.
  env = { ORDERLY_JOB_LOCK_MS: '2000', ORDERLY_STALLED_INTERVAL_MS: '1000', ORDERLY_SHUTDOWN_GRACE_SECONDS: '5' };
}, 60_000);
afterAll(async () => {
  for (const child of spawned) signalGroup(child, 'SIGKILL');
  await db.end();
  await stack.close();
});

/**
 * `orderly runner start` hands over to the runner's own binary, a child process: the runner is
 * started in its own process group, so a signal reaches the CLI, the runner and its bot host.
 */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function startRunnerProcess(): { child: ChildProcess; exited: Promise<number | null> } {
  const n = ++runnerSeq;
  const child = spawn(join(BIN, 'orderly'), ['runner', 'start', '--segment', 'demo'], {
    env: runnerProcessEnv(stack, `checkpoint-runner-${n}`, env),
    cwd: stack.dataDir,
    stdio: 'ignore',
    detached: true,
  });
  spawned.push(child);
  return { child, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

const startClaimRun = (key: string, onUncertain: 'rerun' | 'none') =>
  stack.startRun({ bot: 'claim-steps', idempotencyKey: key, input: { portalUrl: stack.portal.url, amountCents: 12_345, waitMs: 25_000, onUncertain } });

/** Waits until the first attempt is inside its slow step (the claim is submitted and recorded). */
const waitUntilWaiting = (runId: string) =>
  waitFor(
    async () => {
      const rows = await db.query("SELECT 1 FROM run_steps WHERE run_id = $1 AND name = 'wait-for-adjudication' AND status = 'started'", [runId]);
      return rows.rowCount ? true : undefined;
    },
    45_000,
    'the run to reach its slow step',
  );

const attempts = async (runId: string) =>
  (
    await db.query<{ attempt: number; runner_id: string; outcome: string | null; error: { code: string } | null }>(
      'SELECT attempt, runner_id, outcome, error FROM run_attempts WHERE run_id = $1 ORDER BY attempt',
      [runId],
    )
  ).rows;

test('a runner SIGKILLed mid-run: another runner retries it after a backoff, skips recorded steps, and each side effect happens once', async () => {
  const first = startRunnerProcess();
  const run = await startClaimRun('kill-rerun-1', 'rerun');
  await waitUntilWaiting(run.id);
  expect(stack.portal.stats().claimSubmissions).toEqual({ 'kill-rerun-1/submit-claim': 1 });
  signalGroup(first.child, 'SIGKILL');
  await first.exited;

  const killedAt = Date.now();
  const second = startRunnerProcess();
  try {
    const ended = await stack.waitForRun(run.id, undefined, 60_000);
    expect(ended).toMatchObject({ status: 'succeeded', attempts: 2, result: { attempt: 2 } });
    const result = ended.result as { ref: string; confirmation: string };
    expect(result.ref).toMatch(/^CLM-\d{6}$/);
    expect(result.confirmation).toMatch(/^CLM-\d{6}$/);
    expect(stack.portal.stats().claimSubmissions).toEqual({ 'kill-rerun-1/submit-claim': 1, 'kill-rerun-1/confirm-claim': 1 });
    const rows = await attempts(run.id);
    expect(rows).toEqual([
      { attempt: 1, runner_id: 'checkpoint-runner-1', outcome: 'failed', error: expect.objectContaining({ code: 'ORDERLY_E_ATTEMPT_LOST' }) },
      { attempt: 2, runner_id: 'checkpoint-runner-2', outcome: 'succeeded', error: null },
    ]);
    // Lock expiry, stall detection and the backoff all passed: not an immediate redelivery.
    expect(Date.now() - killedAt).toBeGreaterThan(1500);
  } finally {
    signalGroup(second.child, 'SIGTERM');
    await second.exited;
  }
}, 140_000);

test('a step left uncertain by a killed runner, with no onUncertain policy, dead-letters the run instead of repeating it', async () => {
  const first = startRunnerProcess();
  const run = await startClaimRun('kill-none-1', 'none');
  await waitUntilWaiting(run.id);
  signalGroup(first.child, 'SIGKILL');
  await first.exited;
  const second = startRunnerProcess();
  try {
    const ended: RunView = await stack.waitForRun(run.id, undefined, 60_000);
    expect(ended).toMatchObject({ status: 'dead_lettered', attempts: 2, error: { code: 'ORDERLY_E_STEP_UNCERTAIN', retryable: false } });
    expect(stack.portal.stats().claimSubmissions['kill-none-1/submit-claim']).toBe(1);
    expect(stack.portal.stats().claimSubmissions['kill-none-1/confirm-claim']).toBeUndefined();
  } finally {
    signalGroup(second.child, 'SIGTERM');
    await second.exited;
  }
}, 140_000);

/** Parent pid of a process, from /proc; undefined when it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    // The command name is in parentheses and may hold spaces: the fields after it are fixed.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

const commOf = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};

/** True when `pid` descends from this test process (through a sandbox: bwrap, its init, the host). */
function descendsFromUs(pid: number): boolean {
  for (let p: number | undefined = parentOf(pid); p !== undefined && p > 1; p = parentOf(p)) if (p === process.pid) return true;
  return false;
}

/** A process's command line, NUL-separated arguments joined by spaces; '' when it is gone. */
const cmdlineOf = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
};

/**
 * The browser processes this test process started in its sandboxes: the ones Playwright launched
 * (driven over a pipe), not Chromium's own helpers (`--type=...`, crashpad), whose parent may be a
 * sandbox's init once their launcher exits.
 */
function ourBrowsers(): number[] {
  const pids = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
  return pids.filter((pid) => {
    const cmdline = cmdlineOf(pid);
    return cmdline.includes('--remote-debugging-pipe') && !cmdline.includes('--type=') && descendsFromUs(pid);
  });
}

test('a browser killed mid-run is a retryable crash; the next attempt runs on a new browser and repeats no recorded step', async () => {
  // Suites run in one Jest process: browsers of earlier suites' sandboxes are not this run's.
  const earlier = new Set(ourBrowsers());
  const newBrowsers = () => ourBrowsers().filter((pid) => !earlier.has(pid));
  // No pre-warmed sandbox: the one new browser there is belongs to the run.
  await stack.startRunner({ env: { ORDERLY_SANDBOX_PREWARM: '0' } });
  const run = await startClaimRun('browser-crash-1', 'rerun');
  await waitUntilWaiting(run.id);
  const browsers = newBrowsers();
  // On a mismatch the command lines say which processes were counted.
  expect(browsers.map((pid) => `${pid} (parent ${commOf(parentOf(pid) ?? 0)}): ${cmdlineOf(pid).slice(0, 160)}`)).toHaveLength(1);
  process.kill(browsers[0]!, 'SIGKILL');

  const ended = await stack.waitForRun(run.id, undefined, 60_000);
  expect(ended).toMatchObject({ status: 'succeeded', attempts: 2, result: { attempt: 2 } });
  const rows = await attempts(run.id);
  expect(rows[0]).toMatchObject({ attempt: 1, outcome: 'failed', error: expect.objectContaining({ code: 'ORDERLY_E_BOT_HOST_CRASHED' }) });
  expect(stack.portal.stats().claimSubmissions).toMatchObject({ 'browser-crash-1/submit-claim': 1, 'browser-crash-1/confirm-claim': 1 });
  // Attempt 2 ran in a new sandbox with its own browser, and no browser outlives its run.
  expect(newBrowsers()).toEqual([]);
}, 140_000);
