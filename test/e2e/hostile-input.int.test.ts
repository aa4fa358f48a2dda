import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Client } from 'pg';
import { DEFAULT_BODY_LIMIT, registeredRoutes, RegisteredRoute } from '../../control-room/src/http/hardening';
import { runnerTokenPath } from '../../control-room/src/keys/secrets';
import { Stack, startStack } from '../harness';

/**
 * Issue 6, bad input: every registered route (found through Fastify's onRoute, so routes added
 * later are covered without touching this file) gets malformed JSON, a body over its limit,
 * unknown fields, hostile path parameters and hostile headers. Each answers 4xx with a stable
 * `ORDERLY_E_…` code and no stack trace, and nothing changes: row counts stay the same and the
 * audit log gains only refusals.
 */
let stack: Stack;
let runnerToken: string;
let routes: readonly RegisteredRoute[];
let port: number;

interface Answer {
  status: number;
  text: string;
}

/** A raw HTTP request: node:http does not normalise `..` in paths the way fetch does. */
function raw(method: string, path: string, token: string | undefined, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Bytes straight onto a socket, for header values an HTTP client library refuses to send. */
function rawSocket(text: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const reply = Buffer.concat(chunks).toString('utf8');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0), text: reply.slice(reply.indexOf('\r\n\r\n') + 4) });
    });
  });
}

/** A 4xx in our error format with a registered code, and nothing internal in it. */
function expectRefusal(answer: Answer, what: string): void {
  const context = `${what} → ${answer.status} ${answer.text.slice(0, 300)}`;
  expect({ context, ok: answer.status >= 400 && answer.status < 500 }).toEqual({ context, ok: true });
  const body = JSON.parse(answer.text) as { error?: { code?: string; message?: string } };
  expect({ context, code: /^ORDERLY_E_[A-Z_]+$/.test(body.error?.code ?? '') }).toEqual({ context, code: true });
  expect({ context, internals: /\bat .+:\d+:\d+|node_modules|\.ts:\d+|stack|ECONN|SELECT |INSERT /i.test(answer.text) }).toEqual({ context, internals: false });
}

const tokenFor = (route: RegisteredRoute): string | undefined =>
  route.permission === 'runner.api' ? runnerToken : route.permission === 'public' ? undefined : stack.adminToken;

/** Plausible parameter values, so the part under test is what fails. */
const VALID_PARAM: Record<string, string> = {
  id: randomUUID(),
  digest: `sha256:${'0'.repeat(64)}`,
  bot: 'hostile-bot',
  name: 'api_key',
  shot: '1',
  version: '1.0.0',
};
const fill = (url: string, override?: [string, string]): string =>
  url.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => (override && override[0] === name ? override[1] : encodeURIComponent(VALID_PARAM[name] ?? 'x')));

const HOSTILE_PARAMS = ['..', '%2e%2e', '..%2F..%2Fetc%2Fpasswd', '%2F', 'a%00b', '%0d%0aX-Injected:%201', 'x'.repeat(300), '%ff%fe', '%zz'];
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

async function tableCounts(): Promise<Record<string, number>> {
  const db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  try {
    const tables = (
      await db.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'audit_events' ORDER BY 1")
    ).rows;
    const counts: Record<string, number> = {};
    for (const { tablename } of tables) counts[tablename] = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${tablename}"`)).rows[0]!.n);
    return counts;
  } finally {
    await db.end();
  }
}

async function auditEventsAfter(seq: number): Promise<{ seq: string; action: string; outcome: string }[]> {
  const db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  try {
    return (await db.query('SELECT seq, action, outcome FROM audit_events WHERE seq > $1 ORDER BY seq', [seq])).rows;
  } finally {
    await db.end();
  }
}

beforeAll(async () => {
  stack = await startStack();
  port = Number(new URL(stack.controlRoom.url).port);
  runnerToken = readFileSync(runnerTokenPath(join(stack.dataDir, 'secrets'), 'demo'), 'utf8').trim();
  await stack.publish(); // a real bot, so run routes get past "unknown bot" to the checks under test
  routes = registeredRoutes(stack.controlRoom.app);
});
afterAll(() => stack?.close());

test('the route registry sees every route, and only large-payload routes have a large body limit', () => {
  expect(routes.length).toBeGreaterThan(15);
  expect(routes.filter((r) => r.permission === undefined)).toEqual([]);
  const large = routes
    .filter((r) => r.bodyLimit > DEFAULT_BODY_LIMIT)
    .map((r) => `${r.method} ${r.url}`)
    .sort();
  expect(large).toEqual([
    'POST /v1/batches',
    'POST /v1/packages',
    'POST /v1/runner/runs/:id/screenshots',
    'POST /v1/runner/runs/:id/steps/complete',
    'POST /v1/runs/batch',
  ]);
});

test('every route refuses hostile bodies, parameters and headers with a stable code, and nothing changes', async () => {
  const countsBefore = await tableCounts();
  const lastSeq = Number((await auditEventsAfter(0)).at(-1)?.seq ?? 0);
  let requests = 0;

  for (const route of routes) {
    const token = tokenFor(route);
    const label = `${route.method} ${route.url}`;
    if (BODY_METHODS.has(route.method)) {
      expectRefusal(await raw(route.method, fill(route.url), token, '{"bot": "eligibility-check",'), `${label} malformed JSON`);
      expectRefusal(await raw(route.method, fill(route.url), token, '[1, 2'), `${label} malformed JSON array`);
      expectRefusal(await raw(route.method, fill(route.url), token, JSON.stringify({ unexpectedField: true })), `${label} unknown field`);
      expectRefusal(await raw(route.method, fill(route.url), token, 'null'), `${label} null body`);
      if (route.bodyLimit <= DEFAULT_BODY_LIMIT) {
        const over = await raw(route.method, fill(route.url), token, JSON.stringify({ pad: 'x'.repeat(route.bodyLimit) }));
        expectRefusal(over, `${label} oversize body`);
        expect({ label, code: JSON.parse(over.text).error.code }).toEqual({ label, code: 'ORDERLY_E_BODY_TOO_LARGE' });
      }
      requests += 5;
    }
    for (const param of route.url.match(/:[A-Za-z0-9_]+/g) ?? []) {
      for (const hostile of HOSTILE_PARAMS) {
        const answer = await raw(route.method, fill(route.url, [param.slice(1), hostile]), token, BODY_METHODS.has(route.method) ? '{}' : undefined);
        expectRefusal(answer, `${label} ${param}=${hostile.slice(0, 20)}`);
        requests++;
      }
    }
  }
  expect(requests).toBeGreaterThan(100);

  // Known bodies with one field too many: refused for the field, not for something else.
  const known: [string, string, unknown, string?][] = [
    ['POST', '/v1/keys', { name: 'k', publicKeyPem: stack.publisher.publicKeyPem, extra: 1 }],
    ['POST', '/v1/runs', { bot: 'eligibility-check', input: {}, extra: 1 }],
    ['POST', '/v1/packages', { archive: 'AAAA', envelope: { payloadType: 't', payload: 'AAAA', signatures: [{ keyid: 'k', sig: 'AAAA', extra: 1 }] } }],
    ['POST', '/v1/runs/batch', { runs: [{ bot: 'eligibility-check', extra: 1 }] }],
    ['POST', `/v1/runner/runs/${randomUUID()}/claim`, { attempt: 1, runnerId: 'r', extra: 1 }, runnerToken],
    ['POST', `/v1/runner/runs/${randomUUID()}/lease`, { attempt: 1, accessor: 'a', extra: 1 }, runnerToken],
  ];
  for (const [method, path, body, token] of known) {
    const answer = await raw(method, path, token ?? stack.adminToken, JSON.stringify(body));
    expectRefusal(answer, `${method} ${path} extra field`);
    expect(answer.text).toMatch(/extra|Unrecognized/i);
  }
  const query = await raw('GET', '/v1/runs?status=waiting&unknown=1', stack.adminToken);
  expectRefusal(query, 'unknown query parameter');

  // Headers that reach us: bad idempotency keys and tickets are refused by name.
  const badKey = await raw('POST', '/v1/runs', stack.adminToken, JSON.stringify({ bot: 'eligibility-check', input: {} }), {
    'idempotency-key': '../../etc/passwd',
  });
  expectRefusal(badKey, 'Idempotency-Key with path characters');
  expect(JSON.parse(badKey.text).error.code).toBe('ORDERLY_E_IDEMPOTENCY_KEY_INVALID');
  for (const ticket of ['a b', '../x', 'x'.repeat(65), '\u00e9t\u00e9']) {
    const answer = await raw('POST', '/v1/keys', stack.adminToken, '{}', { 'x-orderly-ticket': Buffer.from(ticket, 'utf8').toString('latin1') });
    expectRefusal(answer, `ticket ${ticket.slice(0, 10)}`);
  }
  // CR, LF, NUL and other control characters inside a header value never reach a route: Node's
  // parser refuses them and our handler answers in our format.
  for (const value of ['abc\rX-Injected: 1', 'abc\u0000def', 'abc\u0001def', 'abc\u007fdef']) {
    const answer = await rawSocket(
      `POST /v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${stack.adminToken}\r\nIdempotency-Key: ${value}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
    );
    expectRefusal(answer, `control character in a header: ${JSON.stringify(value)}`);
  }
  const oversizeHeader = await rawSocket(`GET /v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Orderly-Ticket: ${'a'.repeat(70_000)}\r\n\r\n`);
  expectRefusal(oversizeHeader, 'oversize header');

  // Nothing changed, and the audit log shows only refusals.
  expect(await tableCounts()).toEqual(countsBefore);
  const events = await auditEventsAfter(lastSeq);
  expect(events.length).toBeGreaterThan(50);
  expect(events.filter((e) => e.outcome === 'success')).toEqual([]);
});
