import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, IncomingHttpHeaders, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { RunView } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { ControlRoomProcess, startControlRoomProcess } from '../faults';
import { REPO, Stack, startStack, TEST_REASON } from '../harness';

/**
 * Several control-room replicas (issue 18): two `orderly control-room serve` processes on one
 * PostgreSQL and one Redis, and a runner. A schedule fires once per fire time across both, the
 * alert outbox is delivered once per alert, the leader (which runs the once-only background tasks)
 * is SIGKILLed and the other replica takes over, and a replica started with other keys exits
 * with ORDERLY_E_KEYS_MISMATCH.
 */
const BIN = join(REPO, 'node_modules', '.bin', 'orderly');
const ADVISORY_LEADER_LOCK = 7302; // ADVISORY_LOCKS.leader
const TEST_TIMEOUT_MS = 480_000; // above the sum of the waits inside: a loaded machine is slow, not wrong

class Receiver {
  readonly deliveries: { id: string; kind: string; runId?: string }[] = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { kind: string; runId?: string };
        this.deliveries.push({ id: String((req.headers as IncomingHttpHeaders)['x-orderly-alert-id']), kind: body.kind, runId: body.runId });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/alerts`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

const secretDir = mkdtempSync(join(tmpdir(), 'orderly-replicas-test-'));
const secretFile = join(secretDir, 'alert.secret');
const receiver = new Receiver();
let stack: Stack;
let env: Record<string, string>;
let replicaA: ControlRoomProcess;
let replicaB: ControlRoomProcess | undefined;
let db: Client;

beforeAll(async () => {
  writeFileSync(secretFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  await receiver.start();
  const extra = {
    ORDERLY_SCHEDULE_MIN_INTERVAL_SECONDS: '1',
    ORDERLY_LEADER_POLL_SECONDS: '1',
    ORDERLY_AUDIT_HEAD_INTERVAL_SECONDS: '1',
    ORDERLY_ALERT_WEBHOOK_URL: receiver.url,
    ORDERLY_ALERT_WEBHOOK_SECRET_FILE: secretFile,
  };
  // Replica A: the stack's control room process, started first, so it takes the leadership.
  stack = await startStack({ controlRoomProcess: true, vault: false, controlRoomEnv: extra });
  replicaA = stack.controlRoomProcess!;
  // Replica B: the same environment (database, Redis prefix, data and secrets directory), another port.
  env = {
    ORDERLY_DATA_DIR: stack.dataDir,
    DATABASE_URL: stack.databaseUrl!,
    REDIS_URL: TEST_REDIS_URL,
    ORDERLY_QUEUE_PREFIX: stack.prefix,
    ORDERLY_SEGMENTS: 'demo,other',
    ORDERLY_MAX_PACKAGE_BYTES: String(1024 * 1024),
    ...extra,
  };
  replicaB = await startControlRoomProcess(BIN, env);
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'no-browser'));
}, 120_000);

afterAll(async () => {
  await db?.end();
  await replicaB?.close();
  await stack?.close();
  await receiver.close();
  rmSync(secretDir, { recursive: true, force: true });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function api(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${stack.adminToken}`,
      'x-orderly-reason': TEST_REASON,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: await response.json().catch(() => undefined) };
}

/** The sessions holding the leader lock in this test's database, by the pid in their application name. */
async function leaderPids(): Promise<number[]> {
  const { rows } = await db.query<{ application_name: string }>(
    `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.objid = $1 AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [ADVISORY_LEADER_LOCK],
  );
  return rows.map((r) => Number(/pid=(\d+)/.exec(r.application_name)?.[1]));
}

/** Runs a schedule made, by fire time (from its idempotency key `schedule-<id>-<ms>`). */
async function scheduledRuns(url: string, scheduleId: string): Promise<RunView[]> {
  const res = await api(url, 'GET', '/v1/runs?limit=500');
  expect(res.status).toBe(200);
  return (res.body.runs as RunView[]).filter((r) => r.idempotencyKey?.startsWith(`schedule-${scheduleId}-`));
}

const fireTime = (run: RunView) => Number(run.idempotencyKey!.split('-').pop());

/** Dead-letters `n` no-browser runs (they touch the page they do not have) and waits for their alerts' delivery. */
async function deadLetter(url: string, label: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await api(url, 'POST', '/v1/runs', { bot: 'no-browser', idempotencyKey: `${label}-${i}`, input: { touchPage: true } });
    expect(res.status).toBe(201);
    ids.push(res.body.id as string);
  }
  await waitFor(
    async () => {
      const { rows } = await db.query<{ n: string }>(
        "SELECT count(*) AS n FROM alert_outbox WHERE kind = 'run.dead_lettered' AND delivered_at IS NOT NULL AND body->>'runId' = ANY($1)",
        [ids],
      );
      return Number(rows[0]!.n) === n ? true : undefined;
    },
    120_000,
    `${label}: ${n} alerts delivered`,
  );
  return ids;
}

test(
  'two replicas: one leader; schedules fire once per time, alerts are sent once; the leader SIGKILLed, the other takes over',
  async () => {
    const b = replicaB!;
    expect(await leaderPids()).toEqual([replicaA.pid()]);
    // The runner talks to replica B, which survives; reports flow through Redis to either replica.
    await stack.startRunner({ concurrency: 2, env: { ORDERLY_CONTROL_ROOM_URL: b.url } });

    const created = await api(replicaA.url, 'POST', '/v1/schedules', { bot: 'no-browser', input: {}, name: 'replicas-every-second', everySeconds: 1 });
    expect(created.status).toBe(201);
    const scheduleId = created.body.id as string;
    await waitFor(async () => ((await scheduledRuns(b.url, scheduleId)).length >= 4 ? true : undefined), 60_000, 'four scheduled runs');

    // Alerts raised while both replicas send: each delivered once (the senders claim rows).
    const before = await deadLetter(b.url, 'replicas-both', 3);

    // The leader dies; B takes the lock within its poll interval.
    const headsBefore = Number((await db.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM audit_heads')).rows[0]!.seq ?? 0);
    await replicaA.kill();
    const killedAt = Date.now();
    await waitFor(async () => ((await leaderPids()).join() === String(b.pid()) ? true : undefined), 30_000, 'replica B to lead');

    // Leader-only tasks continue on B: the audit head is signed past what A signed.
    const after = await deadLetter(b.url, 'replicas-after-kill', 2);
    await waitFor(
      async () => {
        const { rows } = await db.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM audit_heads');
        return Number(rows[0]!.seq ?? 0) > headsBefore ? true : undefined;
      },
      30_000,
      'an audit head signed by the new leader',
    );
    // Schedules continue: fires after the kill, made into runs that succeed.
    await waitFor(
      async () => {
        const runs = await scheduledRuns(b.url, scheduleId);
        return runs.filter((r) => fireTime(r) > killedAt + 2000 && r.status === 'succeeded').length >= 3 ? true : undefined;
      },
      90_000,
      'scheduled runs after the kill',
    );
    expect((await api(b.url, 'POST', `/v1/schedules/${scheduleId}/pause`)).status).toBe(200);

    // Once per fire time: one run per fire time, each run a single attempt that succeeded (or is still going).
    const runs = await scheduledRuns(b.url, scheduleId);
    const times = runs.map(fireTime);
    expect(new Set(times).size).toBe(times.length);
    const { rows: fires } = await db.query<{ n: string; distinct_keys: string }>(
      'SELECT count(*) AS n, count(DISTINCT idempotency_key) AS distinct_keys FROM runs WHERE idempotency_key LIKE $1',
      [`schedule-${scheduleId}-%`],
    );
    expect(Number(fires[0]!.n)).toBe(Number(fires[0]!.distinct_keys));
    expect(
      runs.filter((r) => r.status !== 'succeeded' && r.status !== 'waiting' && r.status !== 'active').map((r) => ({ status: r.status, key: r.idempotencyKey })),
    ).toEqual([]);
    expect(runs.filter((r) => r.status === 'succeeded').every((r) => r.attempts === 1)).toBe(true);

    // Every dead-letter alert reached the receiver exactly once, before and after the kill.
    const deadLetterDeliveries = receiver.deliveries.filter((d) => d.kind === 'run.dead_lettered');
    const perRun = Object.fromEntries([...before, ...after].map((id) => [id, deadLetterDeliveries.filter((d) => d.runId === id).length]));
    expect(perRun).toEqual(Object.fromEntries([...before, ...after].map((id) => [id, 1])));
    const ids = receiver.deliveries.map((d) => d.id);
    expect(new Set(ids).size).toBe(ids.length);
  },
  TEST_TIMEOUT_MS,
);

test('a replica whose key material differs from the database exits with ORDERLY_E_KEYS_MISMATCH', async () => {
  const fingerprints = async () => (await db.query<{ name: string; fingerprint: string }>('SELECT name, fingerprint FROM key_fingerprints ORDER BY name')).rows;
  const recorded = await fingerprints();
  expect(recorded.map((r) => r.name)).toEqual(['at_rest', 'data_key', 'job_signer', 'release', 'report_sealing']);
  const otherDataDir = mkdtempSync(join(tmpdir(), 'orderly-replicas-other-keys-'));
  try {
    // Another data directory: another secrets directory, so freshly made keys.
    const child = spawn(BIN, ['control-room', 'serve'], {
      env: {
        PATH: process.env.PATH,
        HOME: otherDataDir,
        ORDERLY_LOG_LEVEL: 'warn',
        ...env,
        ORDERLY_DATA_DIR: otherDataDir,
        ORDERLY_PORT: '0',
        ORDERLY_HOST: '127.0.0.1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect({ code, stdout, stderr: stderr.trim().split('\n') }).toEqual({
      code: 1,
      stdout: '',
      stderr: [expect.stringMatching(/^orderly: ORDERLY_E_KEYS_MISMATCH: .*\(at_rest, data_key, job_signer, release, report_sealing\)/)],
    });
    // Nothing it did changed the recorded fingerprints.
    expect(await fingerprints()).toEqual(recorded);
  } finally {
    rmSync(otherDataDir, { recursive: true, force: true });
  }
}, 60_000);
