import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { adminTokenPath, ControlRoomConfigSchema, packBot, publicKeysPath, runnerTokenPath, RunningControlRoom, startControlRoom } from '@orderly/control-room';
import { DemoPortal, startDemoPortal } from '@orderly/demo-portal';
import { ControlRoomProcess, startControlRoomProcess } from './faults';
import { RunnerConfigSchema, startRunner } from '@orderly/runner';
import { createLogger, credentialPath, generateSigningKeyPair, isTerminal, RunView } from '@orderly/shared';
import { createTestDatabase, TEST_CHROMIUM_PATH, TEST_REDIS_URL, testRedisPrefix, waitFor } from '@orderly/shared/testing';
import { DevVault, startDevVault } from '@orderly/dev-vault';
import { createVaultClientFactory } from '@orderly/shared/vault';
import { base32Decode, totpAt, totpStep } from '../control-room/src/identity/totp';

export const REPO = join(__dirname, '..');
/** Past its 5 s shutdown grace, how long a test runner may take to close before teardown goes on. */
const RUNNER_CLOSE_BOUND_MS = 20_000;
/**
 * How long the control room may take to close before teardown goes on to drop its database: a
 * BullMQ worker whose blocking connection is still reconnecting after a Redis outage never ends
 * its close (taskforcesh/bullmq#4656).
 */
const CONTROL_ROOM_CLOSE_BOUND_MS = 20_000;
export const ELIGIBILITY_BOT = join(REPO, 'bots', 'eligibility-check');
/** The fault tests' bot: one side effect on a ledger the test can hold at a chosen moment (faults.ts). */
export const LEDGER_BOT = join(REPO, 'test', 'fixtures', 'bots', 'ledger');
export const CHROMIUM = TEST_CHROMIUM_PATH;
/** The demo portal's sign-in for tests: generated per process, stored in Vault by `publish`. */
export const PORTAL_CREDENTIALS = { username: `svc-${randomBytes(4).toString('hex')}`, password: randomBytes(18).toString('base64url') };

/** Writes credential `name` of `bot` into the stack's Vault (as the security team's `creds set` would). */
export async function setCredential(vault: NonNullable<Stack['vault']>, bot: string, name: string, value: string): Promise<number> {
  const client = createVaultClientFactory({ address: vault.address }).withToken(vault.rootToken);
  return (await client.kvWrite(credentialPath(bot, name), { value }, { mount: 'secret' })).version;
}

/**
 * The BullMQ job id of a run's job: a keyed hash of its idempotency key, so tests find it by the run
 * id in the job's signed payload (read here, not verified: the runner verifies).
 */
export async function runJobId(queue: Queue, runId: string): Promise<string> {
  const jobs = await queue.getJobs(['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed']);
  const job = jobs.find((j) => {
    const payload = (j.data as { envelope?: { payload?: string } }).envelope?.payload;
    try {
      return payload !== undefined && (JSON.parse(Buffer.from(payload, 'base64').toString('utf8')) as { runId?: string }).runId === runId;
    } catch {
      return false;
    }
  });
  if (!job?.id) throw new Error(`no job for run ${runId}`);
  return job.id;
}

/** `host:port` of a URL (the runner's ORDERLY_EGRESS_DENY takes a list of them). */
export function endpointOfUrl(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || '5432'}`;
}

/** Every line a process logged, kept so tests can assert what was (not) written. */
export class CapturedLog extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
  text(): string {
    return this.lines.join('\n');
  }
}

/** The reason the harness gives for reading a run's PHI (the X-Orderly-Reason header). */
/** The `orderly` binaries as npm installs them, for tests that spawn real processes. */
export const BIN = join(REPO, 'node_modules', '.bin');

/**
 * The environment of an `orderly runner start` child process for the demo segment of `stack`: the
 * one place that knows what a runner needs, so a test that spawns one names only what it changes
 * (its id, a faster takeover, another Redis).
 */
export function runnerProcessEnv(stack: Stack, id: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: `${BIN}:${process.env.PATH ?? ''}`,
    HOME: stack.dataDir,
    REDIS_URL: TEST_REDIS_URL,
    ORDERLY_CHROMIUM_PATH: CHROMIUM,
    ORDERLY_QUEUE_PREFIX: stack.prefix,
    ORDERLY_CONTROL_ROOM_URL: stack.controlRoom.url,
    ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE: publicKeysPath(join(stack.dataDir, 'secrets')),
    ORDERLY_RUNNER_TOKEN_FILE: runnerTokenPath(join(stack.dataDir, 'secrets'), 'demo'),
    ORDERLY_CACHE_DIR: join(stack.dataDir, `${id}-cache`),
    ORDERLY_RUNNER_ID: id,
    ORDERLY_LOG_LEVEL: 'warn',
    ...(stack.vault ? { VAULT_ADDR: stack.vault.address } : {}),
    ...extra,
  };
}

export const TEST_REASON = 'integration test, synthetic data';

/**
 * Who holds the harness's publisher keys: a person (never signed in, so never an approver of what
 * the harness publishes) in a team of their own, which claims the bot names the harness publishes.
 */
export const HARNESS_PUBLISHER = { username: 'harness-publisher', team: 'harness-team' } as const;

export interface Stack {
  controlRoom: RunningControlRoom;
  portal: DemoPortal;
  dataDir: string;
  prefix: string;
  databaseUrl: string | undefined;
  adminToken: string;
  publisher: ReturnType<typeof generateSigningKeyPair>;
  log: CapturedLog;
  redis: Redis;
  /** The dev Vault over HTTP, when started with `vault: true`. */
  vault: { address: string; rootToken: string; tokenFile: string; devVault: DevVault } | undefined;
  api(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /**
   * Registers a publisher key held by the harness's publishing person (created on first use, in
   * team HARNESS_PUBLISHER.team, which so claims the names the harness publishes): every key has
   * a holder. Answers the `POST /v1/keys` response.
   */
  registerKey(name: string, publicKeyPem: string): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  publish(dir?: string): Promise<{ digest: string }>;
  startRun(request: Record<string, unknown>): Promise<RunView>;
  waitForRun(id: string, done?: (run: RunView) => boolean, timeoutMs?: number): Promise<RunView>;
  /** `env`: runner variables that override the harness's (a lease, a lock, a control room URL through a cuttable link). */
  startRunner(options?: {
    segment?: string;
    concurrency?: number;
    onBotStarted?: (runId: string, contextMs: number) => void;
    channel?: 'dev' | 'prod';
    env?: Record<string, string>;
  }): Promise<{ close(): Promise<void> }>;
  /** Stops the control room and starts it again on the same port, database and data directory. */
  restartControlRoom(): Promise<void>;
  /**
   * With `controlRoomProcess`: the control room's child process, which a test can SIGKILL (a crash)
   * and start again on the same port. In that mode `controlRoom` offers `url` and `close` only.
   */
  controlRoomProcess: ControlRoomProcess | undefined;
  close(): Promise<void>;
}

/**
 * Starts a real stack: control room (PostgreSQL test database, or PGlite), Redis under a fresh
 * prefix, the demo portal and optionally a runner with real Chromium.
 */
export async function startStack(
  options: {
    database?: 'postgres' | 'pglite';
    runner?: boolean;
    segments?: string;
    /** Level of the captured process logs; `debug` unless set (the bench uses the production default, `info`). */
    logLevel?: string;
    /** Start a dev Vault over HTTP and configure the control room and runners with it (default: yes). */
    vault?: boolean;
    /** Extra control room configuration variables. */
    controlRoomEnv?: Record<string, string>;
    /** Another Redis than the shared test one (fault tests run their own redis-server). */
    redisUrl?: string;
    /** Rewrites the test database URL the control room connects through (e.g. to a cuttable proxy). */
    mapDatabaseUrl?: (url: string) => string | Promise<string>;
    /** Run the control room as a child process (`orderly control-room serve` from dist), so tests can SIGKILL it. */
    controlRoomProcess?: boolean;
  } = {},
): Promise<Stack> {
  const logLevel = options.logLevel ?? 'debug';
  const redisUrl = options.redisUrl ?? TEST_REDIS_URL;
  const dataDir = mkdtempSync(join(tmpdir(), 'orderly-test-'));
  const prefix = testRedisPrefix();
  const log = new CapturedLog();
  let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let controlRoom: RunningControlRoom | undefined;
  let controlRoomEnv: Record<string, string | undefined> = {};
  let portal: DemoPortal;
  let vault: Stack['vault'];
  let controlRoomProcess: ControlRoomProcess | undefined;
  try {
    if (options.vault ?? true) {
      const devVault = await startDevVault({ port: 0 });
      const tokenFile = join(dataDir, 'vault.token');
      writeFileSync(tokenFile, devVault.rootToken, { mode: 0o600 });
      vault = { address: devVault.address, rootToken: devVault.rootToken, tokenFile, devVault };
    }
    db = options.database === 'pglite' ? undefined : await createTestDatabase();
    controlRoomEnv = {
      ORDERLY_DATA_DIR: dataDir,
      ORDERLY_PORT: '0',
      ...(db ? { DATABASE_URL: options.mapDatabaseUrl ? await options.mapDatabaseUrl(db.url) : db.url } : {}),
      REDIS_URL: redisUrl,
      ORDERLY_QUEUE_PREFIX: prefix,
      ORDERLY_SEGMENTS: options.segments ?? 'demo,other',
      ORDERLY_MAX_PACKAGE_BYTES: String(1024 * 1024),
      ...(vault ? { VAULT_ADDR: vault.address, VAULT_TOKEN_FILE: vault.tokenFile } : {}),
      ...options.controlRoomEnv,
    };
    if (options.controlRoomProcess) {
      controlRoomProcess = await startControlRoomProcess(join(REPO, 'node_modules', '.bin', 'orderly'), controlRoomEnv);
      const proc = controlRoomProcess;
      // Only `url` and `close` exist across a process boundary; tests of this mode use no more.
      controlRoom = { url: proc.url, close: () => proc.close() } as unknown as RunningControlRoom;
    } else {
      controlRoom = await startControlRoom(ControlRoomConfigSchema.parse(controlRoomEnv), createLogger({ level: logLevel, name: 'control-room' }, log));
    }
    portal = await startDemoPortal({ credentials: PORTAL_CREDENTIALS });
  } catch (err) {
    // A half-started stack leaves no database, server or data directory behind.
    await controlRoom?.close().catch(() => undefined);
    await vault?.devVault.close().catch(() => undefined);
    await db?.drop().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  let live: RunningControlRoom = controlRoom; // replaced by restartControlRoom
  const adminToken = readFileSync(adminTokenPath(join(dataDir, 'secrets')), 'utf8').trim();
  const redis = new Redis(redisUrl);
  const runners: { close(): Promise<void> }[] = [];
  const publisher = generateSigningKeyPair();

  const api: Stack['api'] = async (method, path, body, token = adminToken) => {
    const response = await fetch(`${live.url}${path}`, {
      method,
      // A reason on every request: the PHI read routes (result, logs, screenshots) ask for one.
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        'x-orderly-reason': TEST_REASON,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: await response.json().catch(() => undefined) };
  };

  let publisherHolder: Promise<void> | undefined;
  const ensurePublisherHolder = () =>
    (publisherHolder ??= (async () => {
      // Enrolled with a second factor like every person (auth.mfa-every-person), though it never signs in.
      const created = await api('POST', '/v1/users', { username: HARNESS_PUBLISHER.username, roles: ['developer'] });
      if (created.status === 201) {
        const username = HARNESS_PUBLISHER.username;
        const enrolmentSecret = created.body.enrolmentSecret as string;
        const started = await api('POST', '/v1/enrolment', { username, enrolmentSecret }, '');
        const code = totpAt(base32Decode(started.body.secret as string), earliestSafeStep(Date.now()) * 30_000);
        const password = `pw-${randomBytes(12).toString('base64url')}`;
        const confirmed = await api('POST', '/v1/enrolment/confirm', { username, enrolmentSecret, password, code }, '');
        if (confirmed.status !== 200) throw new Error(`harness publisher enrolment failed: ${JSON.stringify(confirmed.body)}`);
      } else if (created.status !== 409) throw new Error(`harness publisher setup failed: ${JSON.stringify(created.body)}`);
      const steps: [string, string, unknown][] = [
        ['POST', '/v1/teams', { name: HARNESS_PUBLISHER.team }],
        ['POST', `/v1/teams/${HARNESS_PUBLISHER.team}/members`, { kind: 'user', name: HARNESS_PUBLISHER.username }],
      ];
      for (const [method, path, body] of steps) {
        const res = await api(method, path, body);
        // 409: made already (a control room restarted on the same database).
        if (res.status >= 300 && res.status !== 409) throw new Error(`harness publisher setup ${method} ${path} failed: ${JSON.stringify(res.body)}`);
      }
    })().catch((err: unknown) => {
      publisherHolder = undefined;
      throw err;
    }));
  const registerKey: Stack['registerKey'] = async (name, publicKeyPem) => {
    await ensurePublisherHolder();
    return api('POST', '/v1/keys', { name, publicKeyPem, owner: { kind: 'user', name: HARNESS_PUBLISHER.username } });
  };

  const stack: Stack = {
    controlRoomProcess,
    controlRoom,
    portal,
    dataDir,
    prefix,
    databaseUrl: db?.url,
    adminToken,
    publisher,
    log,
    redis,
    vault,
    api,
    registerKey,
    async publish(dir = ELIGIBILITY_BOT) {
      const key = await registerKey('test-publisher', publisher.publicKeyPem);
      if (key.status >= 300) throw new Error(`key registration failed: ${JSON.stringify(key.body)}`);
      const packed = await packBot(dir, publisher.privateKeyPem);
      const res = await api('POST', '/v1/packages', { archive: packed.archive.toString('base64'), envelope: packed.envelope });
      if (res.status >= 300) throw new Error(`publish failed: ${JSON.stringify(res.body)}`);
      if (vault && packed.manifest.name === 'eligibility-check') {
        await setCredential(vault, 'eligibility-check', 'portal_user', PORTAL_CREDENTIALS.username);
        await setCredential(vault, 'eligibility-check', 'portal_password', PORTAL_CREDENTIALS.password);
      }
      return { digest: packed.digest };
    },
    async startRun(request) {
      const res = await api('POST', '/v1/runs', request);
      if (res.status >= 300) throw new Error(`create run failed: ${JSON.stringify(res.body)}`);
      return res.body as RunView;
    },
    waitForRun(id, done = (run) => isTerminal(run.status) || run.status === 'dead_lettered', timeoutMs = 30_000) {
      return waitFor(
        async () => {
          const res = await api('GET', `/v1/runs/${id}`);
          if (!done(res.body as RunView)) return undefined;
          // The state view carries no result: that is a PHI read of its own.
          const phi = await api('GET', `/v1/runs/${id}/result`);
          const result = (phi.body as { result?: unknown } | undefined)?.result;
          return (result === null || result === undefined ? res.body : { ...res.body, result }) as RunView;
        },
        timeoutMs,
        `run ${id}`,
      );
    },
    async startRunner(runnerOptions = {}) {
      const segment = runnerOptions.segment ?? 'demo';
      const runner = await startRunner(
        RunnerConfigSchema.parse({
          ORDERLY_SEGMENT: segment,
          ORDERLY_CONTROL_ROOM_URL: live.url,
          ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE: publicKeysPath(join(dataDir, 'secrets')),
          ORDERLY_RUNNER_TOKEN_FILE: runnerTokenPath(join(dataDir, 'secrets'), segment),
          REDIS_URL: redisUrl,
          ORDERLY_QUEUE_PREFIX: prefix,
          ORDERLY_CHROMIUM_PATH: CHROMIUM,
          ORDERLY_CACHE_DIR: join(dataDir, `runner-cache-${runners.length}`),
          ORDERLY_RUNNER_ID: `test-runner-${runners.length}`,
          ORDERLY_SHUTDOWN_GRACE_SECONDS: '5',
          ORDERLY_CONCURRENCY: String(runnerOptions.concurrency ?? 1),
          ...(vault ? { VAULT_ADDR: vault.address } : {}),
          ...(runnerOptions.channel ? { ORDERLY_RUNNER_CHANNEL: runnerOptions.channel } : {}),
          // The test database is infrastructure too: no bot reaches it, whatever its manifest lists.
          ...(db ? { ORDERLY_EGRESS_DENY: endpointOfUrl(db.url) } : {}),
          ...runnerOptions.env,
        }),
        createLogger({ level: logLevel, name: 'runner' }, log),
        runnerOptions.onBotStarted ? { onBotStarted: runnerOptions.onBotStarted } : {},
      );
      runners.push(runner);
      return runner;
    },
    async restartControlRoom() {
      if (controlRoomProcess) {
        await controlRoomProcess.close();
        await controlRoomProcess.start();
        return;
      }
      // Same port, database, data directory and Redis prefix: runners and clients keep their URL.
      const port = new URL(live.url).port;
      await live.close();
      live = await startControlRoom(
        ControlRoomConfigSchema.parse({ ...controlRoomEnv, ORDERLY_PORT: port }),
        createLogger({ level: logLevel, name: 'control-room' }, log),
      );
      stack.controlRoom = live;
    },
    async close() {
      // Every step runs even if an earlier one fails, so a failed run still drops its database.
      try {
        // Bounded: a runner that cannot close (its Redis gone) must not hang the suite's teardown,
        // whose leftover work would then fail the suites after it.
        for (const runner of runners.splice(0))
          await Promise.race([runner.close().catch(() => undefined), delay(RUNNER_CLOSE_BOUND_MS, undefined, { ref: false })]);
        await Promise.race([live.close(), delay(CONTROL_ROOM_CLOSE_BOUND_MS, undefined, { ref: false })]);
        await portal.close();
        await vault?.devVault.close();
        const keys = await redis.keys(`${prefix}:*`);
        for (let i = 0; i < keys.length; i += 10_000) await redis.del(...keys.slice(i, i + 10_000));
      } finally {
        redis.disconnect();
        try {
          await db?.drop();
        } finally {
          rmSync(dataDir, { recursive: true, force: true });
        }
      }
    },
  };
  if (options.runner) await stack.startRunner();
  return stack;
}

/** Every row of every table of the database, as JSON text, for scanning for leaks. */
export async function dumpDatabase(url: string): Promise<string> {
  const db = new Client({ connectionString: url });
  await db.connect();
  try {
    const tables = (await db.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).rows.map((r) => r.tablename);
    const texts: string[] = [];
    for (const table of tables) texts.push(...(await db.query<{ j: string }>(`SELECT row_to_json(x)::text AS j FROM "${table}" x`)).rows.map((r) => r.j));
    return texts.join('\n');
  } finally {
    await db.end();
  }
}

/** Every string value stored under the stack's Redis prefix, for scanning for leaks. */
export async function dumpRedis(redis: Redis, prefix: string): Promise<string> {
  const keys = await redis.keys(`${prefix}:*`);
  const parts: string[] = [];
  for (const key of keys) {
    const type = await redis.type(key);
    if (type === 'string') parts.push((await redis.get(key)) ?? '');
    else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(key)));
    else if (type === 'list') parts.push(JSON.stringify(await redis.lrange(key, 0, -1)));
    else if (type === 'set') parts.push(JSON.stringify(await redis.smembers(key)));
    else if (type === 'zset') parts.push(JSON.stringify(await redis.zrange(key, '0', '-1')));
    else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(key, '-', '+')));
  }
  return parts.join('\n');
}

/** A person created through the HTTP API, enrolled, with an API token from `POST /v1/login/token`. */
export interface TestUser {
  id: string;
  username: string;
  password: string;
  token: string;
  tokenId: string;
  /** A TOTP code never used before (waits for the next 30-second step when needed). */
  nextCode(): Promise<string>;
}

/**
 * The oldest TOTP step a code may be taken at now and still be accepted when it arrives: the
 * previous step only while at least 15 s of the current one are left (a code of step now-1 is
 * refused once the step turns, so one taken near the end of a step would fail on a slow machine),
 * else the current step, good for 30 s and more. A code of a later step is never too old.
 */
export function earliestSafeStep(nowMs: number): number {
  const step = totpStep(nowMs);
  const leftMs = (step + 1) * 30_000 - nowMs;
  return leftMs >= 15_000 ? step - 1 : step;
}

/**
 * Creates a person with `roles` as the bootstrap admin, enrols TOTP the way a person would
 * (enrolment secret, otpauth secret, first code, password) and signs in for an API token.
 */
export async function createUser(stack: Stack, username: string, roles: string[]): Promise<TestUser> {
  const created = await stack.api('POST', '/v1/users', { username, roles });
  if (created.status !== 201) throw new Error(`create user failed: ${JSON.stringify(created.body)}`);
  const enrolmentSecret = created.body.enrolmentSecret as string;
  const started = await stack.api('POST', '/v1/enrolment', { username, enrolmentSecret }, '');
  const key = base32Decode(started.body.secret as string);
  let lastStep = -1;
  // Each code's step must be newer than the last accepted one (replay refusal); ±1 step is accepted.
  const nextCode = async () => {
    const step = Math.max(lastStep + 1, earliestSafeStep(Date.now()));
    while (step > totpStep(Date.now()) + 1) await new Promise((resolve) => setTimeout(resolve, 1000));
    lastStep = step;
    return totpAt(key, step * 30_000);
  };
  const password = `pw-${randomBytes(12).toString('base64url')}`;
  const confirmed = await stack.api('POST', '/v1/enrolment/confirm', { username, enrolmentSecret, password, code: await nextCode() }, '');
  if (confirmed.status !== 200) throw new Error(`enrolment failed: ${JSON.stringify(confirmed.body)}`);
  const login = await stack.api('POST', '/v1/login/token', { username, password, code: await nextCode(), name: 'test', expiresInDays: 1 }, '');
  if (login.status !== 201) throw new Error(`login failed: ${JSON.stringify(login.body)}`);
  return { id: created.body.user.id as string, username, password, token: login.body.token as string, tokenId: login.body.id as string, nextCode };
}
