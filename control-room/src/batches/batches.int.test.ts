import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { isOrderlyError } from '@orderly/shared';
import { Stack, startStack } from '../../../test/harness';
import { buildProgram } from '../cli/main';

/** Work queues against real PostgreSQL and Redis (no runner: run states are moved in the database). */
let stack: Stack;
let db: Client;

beforeAll(async () => {
  stack = await startStack();
  await stack.publish();
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
});
afterAll(async () => {
  await db.end();
  await stack.close();
});

const BOT = 'eligibility-check';
const memberId = (n: number) => `ZZB${String(n).padStart(6, '0')}`;
const csvOf = (from: number, to: number, dob = '1900-03-01') =>
  `memberId,dateOfBirth,portalUrl\r\n${Array.from({ length: to - from + 1 }, (_, i) => `${memberId(from + i)},${dob},"${stack.portal.url}"`).join('\r\n')}\r\n`;
const count = async (sql: string) => Number((await db.query<{ n: string }>(sql)).rows[0]!.n);
const batchRuns = () => count("SELECT count(*) AS n FROM runs WHERE idempotency_key LIKE 'batch-%'");
const batchCount = () => count('SELECT count(*) AS n FROM batches');

describe('a batch loaded twice creates each run once', () => {
  const N = 500;
  let batchId: string;

  test('the first load creates the batch and one waiting run per item', async () => {
    const before = await batchRuns();
    const res = await stack.api('POST', '/v1/batches', { bot: BOT, keyColumn: 'memberId', csv: csvOf(1, N) });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      created: true,
      runsCreated: N,
      runsExisting: 0,
      batch: { bot: BOT, segment: 'demo', version: '1.0.0', keyColumn: 'memberId' },
    });
    expect(res.body.batch.progress).toMatchObject({ total: N, done: 0, percent: 0, counts: { waiting: N, active: 0, succeeded: 0 } });
    batchId = res.body.batch.id;
    expect(await batchRuns()).toBe(before + N);
    // The run keys are keyed hashes: no member id in any key.
    const keys = (
      await db.query<{ idempotency_key: string }>('SELECT r.idempotency_key FROM batch_items i JOIN runs r ON r.id = i.run_id WHERE i.batch_id = $1', [batchId])
    ).rows;
    expect(keys).toHaveLength(N);
    expect(keys.every((k) => /^batch-[0-9a-f]{32}$/.test(k.idempotency_key))).toBe(true);
  });

  test('the second load answers the same batch and creates no run', async () => {
    const before = await batchRuns();
    const again = await stack.api('POST', '/v1/batches', { bot: BOT, keyColumn: 'memberId', csv: csvOf(1, N) });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ created: false, runsCreated: 0, batch: { id: batchId } });
    expect(await batchRuns()).toBe(before);
    expect(await count(`SELECT count(*) AS n FROM batch_items WHERE batch_id = '${batchId}'`)).toBe(N);
  });

  test('loaded concurrently, the same new file is still one batch and one run per item', async () => {
    const before = await batchRuns();
    const file = csvOf(1001, 1020);
    const answers = await Promise.all([1, 2, 3].map(() => stack.api('POST', '/v1/batches', { bot: BOT, keyColumn: 'memberId', csv: file })));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 201]);
    expect(new Set(answers.map((a) => a.body.batch.id)).size).toBe(1);
    expect(await batchRuns()).toBe(before + 20);
  });

  test('a file overlapping an earlier one creates runs only for its new items', async () => {
    const before = await batchRuns();
    const res = await stack.api('POST', '/v1/batches', { bot: BOT, keyColumn: 'memberId', csv: csvOf(N - 9, N + 5) });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ created: true, runsCreated: 5, runsExisting: 10 });
    expect(await batchRuns()).toBe(before + 5);
  });

  test('progress counts move as runs finish; items show state and error code, never input', async () => {
    const runIds = (await db.query<{ run_id: string }>('SELECT run_id FROM batch_items WHERE batch_id = $1 ORDER BY position', [batchId])).rows.map(
      (r) => r.run_id,
    );
    await db.query("UPDATE runs SET status = 'active', started_at = now() WHERE id = ANY($1)", [runIds.slice(0, 30)]);
    let view = (await stack.api('GET', `/v1/batches/${batchId}`)).body;
    expect(view.progress).toMatchObject({ total: N, done: 0, counts: { waiting: N - 30, active: 30 } });

    await db.query("UPDATE runs SET status = 'succeeded', finished_at = now() WHERE id = ANY($1)", [runIds.slice(0, 20)]);
    await db.query(
      `UPDATE runs SET status = 'failed', finished_at = now(), error = '{"code":"ORDERLY_E_BOT_FAILED","message":"portal said no","retryable":false,"details":{}}' WHERE id = ANY($1)`,
      [runIds.slice(20, 25)],
    );
    await db.query("UPDATE runs SET status = 'dead_lettered' WHERE id = ANY($1)", [runIds.slice(25, 27)]);
    view = (await stack.api('GET', `/v1/batches/${batchId}`)).body;
    expect(view.progress).toEqual({
      total: N,
      done: 27,
      percent: 5.4,
      counts: { waiting: N - 30, active: 3, succeeded: 20, failed: 5, dead_lettered: 2, cancelled: 0, discarded: 0 },
    });
    expect(view.items).toHaveLength(N);
    expect(view.items[0]).toMatchObject({ position: 1, line: 2, runId: runIds[0], status: 'succeeded', retries: 0 });
    expect(view.items[20]).toMatchObject({ position: 21, line: 22, status: 'failed', error: { code: 'ORDERLY_E_BOT_FAILED' } });
    expect(JSON.stringify(view)).not.toContain(memberId(1));

    const list = (await stack.api('GET', '/v1/batches?limit=500')).body.batches as Array<{ id: string; progress: { done: number } }>;
    expect(list.find((b) => b.id === batchId)?.progress.done).toBe(27);
  });

  test("items' inputs and results are a PHI read: a reason, and one audit event per run", async () => {
    const noReason = await fetch(`${stack.controlRoom.url}/v1/batches/${batchId}/results`, { headers: { authorization: `Bearer ${stack.adminToken}` } });
    expect(noReason.status).toBe(400);
    expect(((await noReason.json()) as { error: { code: string } }).error.code).toBe('ORDERLY_E_REASON_REQUIRED');
    const audited = () => count(`SELECT count(*) AS n FROM audit_events WHERE action = 'run.read_phi' AND details->>'batch' = '${batchId}'`);
    const before = await audited();
    const res = await stack.api('GET', `/v1/batches/${batchId}/results`);
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(N);
    expect(res.body.items[0]).toMatchObject({ position: 1, input: { memberId: memberId(1), dateOfBirth: '1900-03-01' } });
    expect(await audited()).toBe(before + N);
  });

  test('retry --failed re-runs the failed and dead-lettered items as new runs, once', async () => {
    const before = await batchRuns();
    const res = await stack.api('POST', `/v1/batches/${batchId}/retry`, {});
    expect(res.status).toBe(200);
    expect(res.body.requeued).toBe(7);
    expect(res.body.runs.map((r: { position: number }) => r.position)).toEqual([21, 22, 23, 24, 25, 26, 27]);
    expect(await batchRuns()).toBe(before + 7);
    const view = (await stack.api('GET', `/v1/batches/${batchId}`)).body;
    expect(view.progress.counts).toMatchObject({ waiting: N - 30 + 7, failed: 0, dead_lettered: 0, succeeded: 20 });
    expect(view.items[20]).toMatchObject({ retries: 1, status: 'waiting', runId: res.body.runs[0].runId });
    const again = await stack.api('POST', `/v1/batches/${batchId}/retry`, {});
    expect(again.body.requeued).toBe(0);
  });
});

describe('bad files are refused with a stable code and nothing is created', () => {
  const tooMany = () =>
    `memberId,dateOfBirth,portalUrl\n${Array.from({ length: 5001 }, (_, i) => `${memberId(900000 + i)},1900-01-01,${stack.portal.url}`).join('\n')}\n`;
  test.each<[string, () => Record<string, unknown>, number, string]>([
    ['an unclosed quote', () => ({ csv: `memberId,dateOfBirth,portalUrl\nZZB777001,1900-01-01,"${stack.portal.url}\n` }), 400, 'ORDERLY_E_BATCH_ITEMS_INVALID'],
    ['a ragged row', () => ({ csv: `memberId,dateOfBirth,portalUrl\nZZB777001,1900-01-01\n` }), 400, 'ORDERLY_E_BATCH_ITEMS_INVALID'],
    ['a JSONL line that is not an object', () => ({ jsonl: `{"memberId":"ZZB777001"}\n[1]\n` }), 400, 'ORDERLY_E_BATCH_ITEMS_INVALID'],
    ['a missing key column', () => ({ keyColumn: 'rowId', csv: csvOf(777001, 777003) }), 400, 'ORDERLY_E_BATCH_KEY_MISSING'],
    [
      'duplicate keys',
      () => ({ keyColumn: 'memberId', csv: csvOf(777001, 777003) + `${memberId(777002)},1900-05-05,${stack.portal.url}\r\n` }),
      400,
      'ORDERLY_E_BATCH_KEY_DUPLICATE',
    ],
    ['too many items', () => ({ csv: tooMany() }), 400, 'ORDERLY_E_BATCH_TOO_MANY_ITEMS'],
    [
      'an item failing the input schema',
      () => ({ csv: csvOf(777001, 777003) + `ZZB_777004,1900-01-01,${stack.portal.url}\r\n` }),
      400,
      'ORDERLY_E_INPUT_INVALID',
    ],
    [
      "a cell that is not its column's type (a date that is no day)",
      () => ({ csv: csvOf(777001, 777003).replace(/1900-03-01(?=,[^\n]*\r\n$)/, '1900-02-30') }),
      400,
      'ORDERLY_E_BATCH_ITEM_TYPE',
    ],
    ['an unknown bot', () => ({ bot: 'no-such-bot', csv: csvOf(777001, 777002) }), 404, 'ORDERLY_E_BOT_UNKNOWN'],
    ['both csv and jsonl', () => ({ csv: csvOf(777001, 777002), jsonl: '{}' }), 400, 'ORDERLY_E_BAD_REQUEST'],
    // Item 1 is new; item 2's key already has a run with another date of birth: all or nothing.
    [
      'an item whose key has a run with other data',
      () => ({ keyColumn: 'memberId', csv: csvOf(777001, 777001) + `${memberId(1)},1911-11-11,${stack.portal.url}\r\n` }),
      409,
      'ORDERLY_E_IDEMPOTENCY_KEY_REUSED',
    ],
  ])('%s', async (_name, body, status, code) => {
    const [runs, batches] = [await count('SELECT count(*) AS n FROM runs'), await batchCount()];
    const res = await stack.api('POST', '/v1/batches', { bot: BOT, ...body() });
    expect({ status: res.status, code: res.body.error?.code }).toEqual({ status, code });
    expect(JSON.stringify(res.body)).not.toMatch(/ZZB\d{6}/);
    expect([await count('SELECT count(*) AS n FROM runs'), await batchCount()]).toEqual([runs, batches]);
  });

  test('the schema refusal names the line of the failing item', async () => {
    const res = await stack.api('POST', '/v1/batches', { bot: BOT, csv: csvOf(777001, 777002) + `ZZB_777003,1900-01-01,${stack.portal.url}\r\n` });
    expect(res.body.error).toMatchObject({ code: 'ORDERLY_E_INPUT_INVALID', details: { item: 2, line: 4 } });
    expect(res.body.error.message).toMatch(/^line 4: /);
  });

  test('an unknown batch is 404, a malformed id 400', async () => {
    expect((await stack.api('GET', '/v1/batches/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await stack.api('GET', '/v1/batches/nope')).body.error.code).toBe('ORDERLY_E_BAD_REQUEST');
  });
});

describe('orderly batch', () => {
  async function cli(...args: string[]): Promise<string> {
    const printed: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => printed.push(chunk) > 0) as typeof process.stdout.write;
    try {
      await buildProgram().parseAsync(['node', 'orderly', '--url', stack.controlRoom.url, '--token', stack.adminToken, ...args]);
    } finally {
      process.stdout.write = write;
    }
    return printed.join('');
  }
  const dir = () => mkdtempSync(join(tmpdir(), 'orderly-batch-'));

  test('start from a JSONL file twice, show, list and retry', async () => {
    const file = join(dir(), 'items.jsonl');
    writeFileSync(
      file,
      `\uFEFF${[1, 2, 3].map((n) => JSON.stringify({ memberId: memberId(555000 + n), dateOfBirth: '1900-06-01', portalUrl: stack.portal.url })).join('\r\n')}\r\n\r\n`,
    );
    const before = await batchRuns();
    const first = JSON.parse(await cli('batch', 'start', BOT, '--items', file, '--key-column', 'memberId', '--json'));
    expect(first).toMatchObject({ created: true, runsCreated: 3 });
    expect(await cli('batch', 'start', BOT, '--items', file, '--key-column', 'memberId')).toContain(`this file was loaded before: batch ${first.batch.id}`);
    expect(await batchRuns()).toBe(before + 3);
    const shown = await cli('batch', 'show', first.batch.id);
    expect(shown).toContain('progress [..............................] 0/3 done (0 %): waiting 3');
    expect(shown).toContain('line 1 ');
    expect(shown).not.toContain(memberId(555001));
    const withPhi = JSON.parse(await cli('batch', 'show', first.batch.id, '--reason', 'checking batch results', '--json'));
    expect(withPhi.items[0]).toMatchObject({ line: 1, status: 'waiting', input: { memberId: memberId(555001) }, result: null });
    expect(JSON.parse(await cli('batch', 'list', '--json')).map((b: { id: string }) => b.id)).toContain(first.batch.id);
    expect(await cli('batch', 'retry', first.batch.id, '--failed')).toBe(`requeued 0 items of batch ${first.batch.id}\n`);
  });

  test('a bad file fails before any request, with its code', async () => {
    const csv = join(dir(), 'bad.csv');
    writeFileSync(csv, 'memberId,dateOfBirth\n"ZZB1,1900-01-01\n');
    const before = await batchCount();
    const refused = await cli('batch', 'start', BOT, '--items', csv).then(
      () => 'no error',
      (err: unknown) => (isOrderlyError(err) ? err.code : String(err)),
    );
    expect(refused).toBe('ORDERLY_E_BATCH_ITEMS_INVALID');
    const txt = join(dir(), 'items.txt');
    writeFileSync(txt, 'a\n1\n');
    expect(
      await cli('batch', 'start', BOT, '--items', txt).then(
        () => 'no error',
        (err: unknown) => (isOrderlyError(err) ? err.code : String(err)),
      ),
    ).toBe('ORDERLY_E_BATCH_ITEMS_INVALID');
    expect(await batchCount()).toBe(before);
  });
});
