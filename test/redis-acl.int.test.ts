// Redis ACL per segment (issue 17), against a real redis-server of its own on a free port with the
// ACL file that scripts/redis-acl.js writes: the machine's Redis is left alone.
import { spawn, ChildProcess, execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Queue, Worker } from 'bullmq';
import { SegmentName } from '@orderly/shared';
import { TEST_REDIS_URL } from '@orderly/shared/testing';
import { checkRedisAccess } from '../runner/src/redis-acl-check';

const root = join(__dirname, '..');
let dir: string;
let server: ChildProcess;
let port: number;
const clients: Redis[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = s.address() as { port: number };
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

function as(user: string): Redis {
  const password = user === 'default' ? undefined : readFileSync(join(dir, 'pw', user.replace(/^orderly-/, '')), 'utf8');
  const client = new Redis({ host: '127.0.0.1', port, username: user, password, maxRetriesPerRequest: null, lazyConnect: true });
  client.on('error', () => undefined);
  clients.push(client);
  return client;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'orderly-acl-'));
  execFileSync('node', [join(root, 'scripts/redis-acl.js'), '--segments', 'dev,prod', '--passwords', join(dir, 'pw'), '--out', join(dir, 'users.acl')]);
  port = await freePort();
  server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--aclfile', join(dir, 'users.acl')],
    { stdio: 'ignore' },
  );
  const probe = as('orderly-control-room');
  for (let i = 0; i < 100; i++) {
    try {
      await probe.connect();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await probe.set('orderly:orderly.run.prod:secret-marker', 'prod-only');
  await probe.set('orderly:orderly.reports.prod:secret-marker', 'prod-reports-only');
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  server?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Sends raw RESP commands on a fresh connection with no AUTH and returns the first reply line of the last. */
function rawReply(commands: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(commands));
    let data = '';
    socket.on('data', (chunk) => {
      data += chunk.toString();
      const lines = data.split('\r\n').filter(Boolean);
      if (lines.length >= commands.split('\r\n').filter(Boolean).length) {
        socket.destroy();
        resolve(lines[lines.length - 1] ?? '');
      }
    });
    socket.on('error', reject);
  });
}

test('the default user is off: a client without a user name (or naming it) is refused', async () => {
  await expect(rawReply('GET orderly:orderly.run.dev:x\r\n')).resolves.toMatch(/^-NOAUTH/);
  await expect(rawReply('AUTH default anything\r\n')).resolves.toMatch(/^-WRONGPASS/);
});

test("the dev runner's user cannot read, write, delete or publish on the prod segment's keys and channels", async () => {
  const dev = as('orderly-runner-dev');
  await dev.connect();
  await expect(dev.get('orderly:orderly.run.prod:secret-marker')).rejects.toThrow(/NOPERM/);
  await expect(dev.set('orderly:orderly.run.prod:wait', 'x')).rejects.toThrow(/NOPERM/);
  await expect(dev.del('orderly:orderly.run.prod:secret-marker')).rejects.toThrow(/NOPERM/);
  await expect(dev.zadd('orderly:orderly.run.prod:prioritized', 1, 'job')).rejects.toThrow(/NOPERM/);
  await expect(dev.eval("return redis.call('GET', KEYS[1])", 1, 'orderly:orderly.run.prod:secret-marker')).rejects.toThrow(/NOPERM/);
  // A script may not reach a prod key it did not declare either.
  await expect(dev.eval("return redis.call('GET', 'orderly:orderly.run.prod:secret-marker')", 0)).rejects.toThrow(/can't access|NOPERM/);
  await expect(dev.publish('orderly:orderly.cancel.prod', '{"v":1}')).rejects.toThrow(/NOPERM/);
  await expect(dev.publish('orderly:orderly.cancel.dev', '{"v":1}')).rejects.toThrow(/NOPERM/);
  await expect(dev.publish('orderly:orderly.run.prod', 'x')).rejects.toThrow(/NOPERM/);
  await expect(dev.call('KEYS', '*')).rejects.toThrow(/NOPERM/);
  await expect(dev.flushall()).rejects.toThrow(/NOPERM/);
  const sub = as('orderly-runner-dev');
  await sub.connect();
  await expect(sub.subscribe('orderly:orderly.run.prod')).rejects.toThrow(/NOPERM/);
  // ...while the prod key is intact.
  expect(await as('orderly-control-room').get('orderly:orderly.run.prod:secret-marker')).toBe('prod-only');
});

test("the dev runner's user cannot read, delete or flood the prod segment's reports queue, nor hear its cancels", async () => {
  const dev = as('orderly-runner-dev');
  await dev.connect();
  const prodReports = 'orderly:orderly.reports.prod';
  await expect(dev.get(`${prodReports}:secret-marker`)).rejects.toThrow(/NOPERM/);
  await expect(dev.del(`${prodReports}:secret-marker`)).rejects.toThrow(/NOPERM/);
  await expect(dev.lrange(`${prodReports}:wait`, 0, -1)).rejects.toThrow(/NOPERM/);
  await expect(dev.lpush(`${prodReports}:wait`, 'flood')).rejects.toThrow(/NOPERM/);
  await expect(dev.xadd(`${prodReports}:events`, '*', 'event', 'x')).rejects.toThrow(/NOPERM/);
  await expect(dev.incr(`${prodReports}:id`)).rejects.toThrow(/NOPERM/);
  // Nor the shared queue of earlier releases: only the control room drains it.
  await expect(dev.lpush('orderly:orderly.reports:wait', 'flood')).rejects.toThrow(/NOPERM/);
  await expect(dev.lrange('orderly:orderly.reports:wait', 0, -1)).rejects.toThrow(/NOPERM/);
  // Nor the prod DLQ.
  await expect(dev.lrange('orderly:orderly.dlq.prod:wait', 0, -1)).rejects.toThrow(/NOPERM/);
  // BullMQ's own add (a script over the queue's keys) is refused too.
  const flood = new Queue('orderly.reports.prod', { connection: dev, prefix: 'orderly' });
  flood.on('error', () => undefined);
  await expect(flood.add('report', { forged: true })).rejects.toThrow(/NOPERM|can't access/);
  await flood.close();
  const sub = as('orderly-runner-dev');
  await sub.connect();
  await expect(sub.subscribe('orderly:orderly.cancel.prod')).rejects.toThrow(/NOPERM/);
  await expect(sub.subscribe('orderly:orderly.cancel')).rejects.toThrow(/NOPERM/);
  await expect(sub.psubscribe('orderly:orderly.cancel*')).rejects.toThrow(/NOPERM/);
  // Its own channel it may subscribe to, and the control room may publish there.
  const heard = new Promise<string>((resolve) => sub.on('message', (_c: string, m: string) => resolve(m)));
  await expect(sub.subscribe('orderly:orderly.cancel.dev')).resolves.toBe(1);
  await as('orderly-control-room').publish('orderly:orderly.cancel.dev', 'synthetic-cancel');
  await expect(heard).resolves.toBe('synthetic-cancel');
  // ...while the prod reports key is intact.
  expect(await as('orderly-control-room').get(`${prodReports}:secret-marker`)).toBe('prod-reports-only');
});

test('BullMQ works under the ACL: the control room enqueues, the dev runner consumes its queue and pushes a report', async () => {
  const controlRoom = as('orderly-control-room');
  const runnerConnection = as('orderly-runner-dev');
  const runQueue = new Queue('orderly.run.dev', { connection: controlRoom, prefix: 'orderly' });
  const reports = new Queue('orderly.reports.dev', { connection: runnerConnection, prefix: 'orderly' });
  let worker: Worker | undefined;
  const consumed = new Promise<unknown>((resolve) => {
    worker = new Worker(
      'orderly.run.dev',
      async (job) => {
        await reports.add('report', { runId: job.data.runId });
        resolve(job.data);
        return 'ok';
      },
      { connection: runnerConnection, prefix: 'orderly' },
    );
  });
  await runQueue.add('run', { runId: 'run_synthetic_1' });
  await expect(consumed).resolves.toEqual({ runId: 'run_synthetic_1' });
  const reportsSeen = new Queue('orderly.reports.dev', { connection: controlRoom, prefix: 'orderly' });
  expect(await reportsSeen.getJobCounts('wait', 'active', 'completed')).toEqual(expect.objectContaining({ wait: 1 }));
  await Promise.all([worker?.close(), runQueue.close(), reports.close(), reportsSeen.close()]);
}, 30_000);

test("a runner given another segment's user fails at start with a clear message; its own user passes", async () => {
  const prodUser = as('orderly-runner-prod');
  await expect(checkRedisAccess(prodUser, { prefix: 'orderly', segment: SegmentName.parse('dev'), production: false })).rejects.toThrow(
    'Redis user "orderly-runner-prod" may not use the queue of segment dev (orderly:orderly.run.dev:*): is REDIS_URL another segment\'s user?',
  );
  await expect(checkRedisAccess(prodUser, { prefix: 'orderly', segment: SegmentName.parse('dev'), production: false })).rejects.toMatchObject({
    code: 'ORDERLY_E_CONFIG_INVALID',
  });
  await expect(checkRedisAccess(as('orderly-runner-dev'), { prefix: 'orderly', segment: SegmentName.parse('dev'), production: true })).resolves.toBeUndefined();
});

/**
 * Starts the real `orderly-runner start` CLI for segment dev (sandbox off: this checks Redis, not
 * bwrap) connecting as `user`, with keys of its own; resolves once it exits or logs "runner started".
 */
function startRunnerCli(user: string): Promise<{ code: number | null; stderr: string; started: boolean }> {
  const keys = join(dir, `runner-as-${user}`);
  mkdirSync(keys, { mode: 0o700 });
  const pem = (k: { export(o: { type: 'spki'; format: 'pem' }): string | Buffer }) => k.export({ type: 'spki', format: 'pem' }).toString();
  writeFileSync(join(keys, 'control-room.pub'), pem(generateKeyPairSync('ed25519').publicKey) + pem(generateKeyPairSync('x25519').publicKey));
  writeFileSync(join(keys, 'runner.token'), 'orderly_synthetic-token-for-the-acl-test');
  writeFileSync(join(keys, 'runner.key'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });
  const password = encodeURIComponent(readFileSync(join(dir, 'pw', user.replace(/^orderly-/, '')), 'utf8'));
  const env: Record<string, string | undefined> = {
    ...process.env,
    ORDERLY_SEGMENT: 'dev',
    ORDERLY_CONTROL_ROOM_URL: 'http://127.0.0.1:9',
    ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE: join(keys, 'control-room.pub'),
    ORDERLY_RUNNER_TOKEN_FILE: join(keys, 'runner.token'),
    ORDERLY_RUNNER_SIGNING_KEY_FILE: join(keys, 'runner.key'),
    ORDERLY_CACHE_DIR: join(keys, 'cache'),
    ORDERLY_SANDBOX: 'none',
    ORDERLY_ENV: 'development',
    REDIS_URL: `redis://${user}:${password}@127.0.0.1:${port}`,
  };
  delete env.NODE_OPTIONS;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'runner/bin/orderly-runner.js'), 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let started = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout.on('data', (c: Buffer) => {
      if (!started && c.toString().includes('"runner started"')) {
        started = true;
        child.kill('SIGTERM');
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, started });
    });
  });
}

test("the runner CLI for segment dev, given the prod segment's Redis user, exits at start with a clear message; with the dev user it starts", async () => {
  const wrong = await startRunnerCli('orderly-runner-prod');
  expect(wrong.started).toBe(false);
  expect(wrong.code).toBe(1);
  expect(wrong.stderr).toContain(
    'orderly-runner: ORDERLY_E_CONFIG_INVALID: Redis user "orderly-runner-prod" may not use the queue of segment dev (orderly:orderly.run.dev:*): is REDIS_URL another segment\'s user?',
  );
  const right = await startRunnerCli('orderly-runner-dev');
  expect(right.stderr).not.toContain('ORDERLY_E_');
  expect(right.started).toBe(true);
}, 70_000);

test("a production runner refuses Redis's default user", async () => {
  const machine = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  machine.on('error', () => undefined);
  clients.push(machine);
  await expect(checkRedisAccess(machine, { prefix: 'orderly', segment: SegmentName.parse('dev'), production: true })).rejects.toThrow(/default user/);
});

test('the ACL generator refuses names that would widen a key pattern', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { aclLines } = require('../scripts/redis-acl.js') as {
    aclLines: (o: { prefix: string; segments: string[]; hashes: Record<string, string> }) => string[];
  };
  expect(() => aclLines({ prefix: 'orderly', segments: ['dev*'], hashes: {} })).toThrow(/ORDERLY_E_CONFIG_INVALID: "dev\*"/);
  expect(() => aclLines({ prefix: 'ord erly', segments: ['dev'], hashes: {} })).toThrow(/ORDERLY_E_CONFIG_INVALID/);
});
