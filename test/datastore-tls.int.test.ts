// PostgreSQL and Redis over TLS with a private CA (issue 17), as images/compose.yaml and the README's
// deployment section configure them: DATABASE_URL with sslmode=verify-full&sslrootcert=<CA>, and
// rediss:// with the CA in NODE_EXTRA_CA_CERTS. The machine's PostgreSQL and Redis are left alone:
// this starts a throwaway PostgreSQL (ssl=on, TLS-only pg_hba) and a TLS-only redis-server on free
// ports, with a CA and server certificate it generates in a temp dir (openssl).
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { openDb } from '../control-room/src/db/db';
import { migrate } from '../control-room/src/db/migrations';

const root = join(__dirname, '..');
let dir: string;
let pgPort: number;
let redisPort: number;
const servers: ChildProcess[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

/** A CA and a server certificate it signs for the name `localhost` only (no IP address). */
function makeCa(name: string): void {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=Orderly test CA ${name}`,
    '-keyout',
    `${name}-ca.key`,
    '-out',
    `${name}-ca.crt`,
  );
}

/** PostgreSQL's binaries: on PATH, else Debian's newest /usr/lib/postgresql/<v>/bin. */
function pgBin(name: string): string {
  const onPath = ['/usr/local/bin', '/usr/bin'].map((d) => join(d, name)).find((p) => existsSync(p));
  if (onPath) return onPath;
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a)) : [];
  const found = versions.map((v) => `/usr/lib/postgresql/${v}/bin/${name}`).find((p) => existsSync(p));
  if (!found) throw new Error(`datastore-tls: PostgreSQL's ${name} is not installed (apt-get install postgresql)`);
  return found;
}

/**
 * PostgreSQL refuses to run as root: as root, run it as the postgres user. setpriv execs (runuser
 * would fork), so the pid this test kills is the server's own.
 */
function asPostgres(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', cmd, ...args]] : [cmd, args];
}

async function waitFor(check: () => Promise<unknown>, what: string): Promise<void> {
  let last: unknown;
  for (let i = 0; i < 150; i++) {
    try {
      await check();
      return;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${what} did not come up: ${String(last)}`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'orderly-tls-'));
  chmodSync(dir, 0o755);
  makeCa('private');
  makeCa('other');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'private-ca.crt',
    '-CAkey',
    'private-ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'server.ext',
    '-out',
    'server.crt',
  );
  chmodSync(join(dir, 'server.key'), 0o600);

  // PostgreSQL: ssl=on, and pg_hba accepts only TLS connections.
  const pgData = join(dir, 'pg');
  const [initCmd, initArgs] = asPostgres(pgBin('initdb'), ['-D', pgData, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  if (process.getuid?.() === 0) {
    const ids = execFileSync('id', ['-u', 'postgres']).toString().trim();
    const gid = execFileSync('id', ['-g', 'postgres']).toString().trim();
    for (const f of ['', 'server.key', 'server.crt', 'private-ca.crt']) chownSync(join(dir, f), Number(ids), Number(gid));
  }
  execFileSync(initCmd, initArgs, { stdio: 'pipe' });
  pgPort = await freePort();
  writeFileSync(
    join(pgData, 'postgresql.auto.conf'),
    [
      `port = ${pgPort}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${dir}'`,
      'ssl = on',
      `ssl_cert_file = '${join(dir, 'server.crt')}'`,
      `ssl_key_file = '${join(dir, 'server.key')}'`,
      'fsync = off',
    ].join('\n') + '\n',
  );
  writeFileSync(join(pgData, 'pg_hba.conf'), 'hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n');
  const [pgCmd, pgArgs] = asPostgres(pgBin('postgres'), ['-D', pgData]);
  servers.push(spawn(pgCmd, pgArgs, { stdio: 'ignore' }));

  // Redis: TLS port only (plain port 0), server certificate from the same private CA.
  redisPort = await freePort();
  servers.push(
    spawn(
      'redis-server',
      [
        '--port',
        '0',
        '--tls-port',
        String(redisPort),
        '--bind',
        '127.0.0.1',
        '--tls-cert-file',
        join(dir, 'server.crt'),
        '--tls-key-file',
        join(dir, 'server.key'),
        '--tls-ca-cert-file',
        join(dir, 'private-ca.crt'),
        '--tls-auth-clients',
        'no',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      { stdio: 'ignore' },
    ),
  );

  const url = `postgres://postgres@localhost:${pgPort}/postgres?sslmode=verify-full&sslrootcert=${join(dir, 'private-ca.crt')}`;
  await waitFor(() => query(url, 'SELECT 1'), 'the TLS PostgreSQL');
  await waitFor(async () => {
    const r = new Redis(`rediss://localhost:${redisPort}`, {
      tls: { ca: readFileSync(join(dir, 'private-ca.crt')) },
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    r.on('error', () => undefined);
    try {
      await r.connect();
      await r.ping();
    } finally {
      r.disconnect();
    }
  }, 'the TLS redis-server');
}, 60_000);

afterAll(() => {
  for (const s of servers) s.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Opens the control room's database port on `url` (the pool connects lazily), runs one query, closes. */
async function query(url: string, sql: string): Promise<Record<string, unknown>[]> {
  const db = await openDb({ databaseUrl: url, pgliteDir: join(dir, 'unused') });
  try {
    return await db.query(sql);
  } finally {
    await db.close();
  }
}

const pgUrl = (host: string, query: string) => `postgres://postgres@${host}:${pgPort}/postgres?${query}`;

test('the control room connects to PostgreSQL with sslmode=verify-full and the private CA, over TLS 1.3', async () => {
  const db = await openDb({
    databaseUrl: pgUrl('localhost', `sslmode=verify-full&sslrootcert=${join(dir, 'private-ca.crt')}`),
    pgliteDir: join(dir, 'unused'),
  });
  try {
    const [row] = await db.query<{ ssl: boolean; version: string }>('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    expect(row).toEqual({ ssl: true, version: 'TLSv1.3' });
    // The control room's migrations run over it, as at its start.
    expect(await migrate(db)).toBeGreaterThan(0);
    const [tables] = await db.query<{ n: string }>("SELECT count(*)::text AS n FROM information_schema.tables WHERE table_schema = 'public'");
    expect(Number(tables?.n)).toBeGreaterThan(5);
  } finally {
    await db.close();
  }
});

test('verify-full refuses a server certificate from another CA, and one that does not name the host', async () => {
  const other = query(pgUrl('localhost', `sslmode=verify-full&sslrootcert=${join(dir, 'other-ca.crt')}`), 'SELECT 1');
  await expect(other).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  // ...while the same CA and host work (so the refusal above is the CA's).
  await expect(query(pgUrl('localhost', `sslmode=verify-full&sslrootcert=${join(dir, 'private-ca.crt')}`), 'SELECT 1 AS one')).resolves.toEqual([{ one: 1 }]);
  // The certificate names localhost only: 127.0.0.1 is not that host.
  const wrongName = query(pgUrl('127.0.0.1', `sslmode=verify-full&sslrootcert=${join(dir, 'private-ca.crt')}`), 'SELECT 1');
  await expect(wrongName).rejects.toThrow(/IP: 127\.0\.0\.1 is not in the cert's list|altnames/i);
});

test('the server (pg_hba hostssl only) refuses a client that does not speak TLS', async () => {
  await expect(query(pgUrl('localhost', 'sslmode=disable'), 'SELECT 1')).rejects.toThrow(/pg_hba\.conf rejects connection|no encryption/);
});

/** A process with only REDIS_URL and NODE_EXTRA_CA_CERTS, as the runner and control room get them. */
function redisPingWith(env: Record<string, string>): { code: number; out: string } {
  const script =
    "const { Redis } = require('ioredis'); const r = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: 0, retryStrategy: () => null }); r.on('error', (e) => { console.log('error ' + e.message); process.exit(2); }); r.ping().then((p) => { console.log(p); r.disconnect(); });";
  const base: Record<string, string | undefined> = { ...process.env };
  delete base.NODE_EXTRA_CA_CERTS;
  delete base.NODE_OPTIONS;
  try {
    return {
      code: 0,
      out: execFileSync(process.execPath, ['-e', script], { cwd: root, env: { ...base, ...env }, stdio: 'pipe', timeout: 20_000 })
        .toString()
        .trim(),
    };
  } catch (err) {
    const e = err as { status: number; stdout: Buffer };
    return { code: e.status, out: e.stdout.toString().trim() };
  }
}

test('rediss:// with the private CA in NODE_EXTRA_CA_CERTS connects; without it, or to a wrong name, it is refused', () => {
  expect(redisPingWith({ REDIS_URL: `rediss://localhost:${redisPort}`, NODE_EXTRA_CA_CERTS: join(dir, 'private-ca.crt') })).toEqual({ code: 0, out: 'PONG' });
  const noCa = redisPingWith({ REDIS_URL: `rediss://localhost:${redisPort}` });
  expect(noCa.code).toBe(2);
  expect(noCa.out).toMatch(/self[- ]signed|unable to verify/i);
  const wrongName = redisPingWith({ REDIS_URL: `rediss://127.0.0.1:${redisPort}`, NODE_EXTRA_CA_CERTS: join(dir, 'private-ca.crt') });
  expect(wrongName.code).toBe(2);
  expect(wrongName.out).toMatch(/IP: 127\.0\.0\.1 is not in the cert's list/);
});
