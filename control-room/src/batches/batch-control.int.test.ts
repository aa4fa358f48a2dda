import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { runQueueName, SegmentName } from '@orderly/shared';
import { TEST_REDIS_URL } from '@orderly/shared/testing';
import { REPO, Stack, startStack } from '../../../test/harness';
import { buildProgram } from '../cli/main';
import { runnerTokenPath } from '../keys/secrets';

/**
 * Pause, resume and cancel of a batch, and its results export, against real PostgreSQL and Redis.
 * No runner: the test claims over the runner API and moves run states in the database.
 */
let stack: Stack;
let db: Client;
let queue: Queue;
let runnerToken: string;

beforeAll(async () => {
  stack = await startStack();
  await stack.publish();
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'claim-steps'));
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  queue = new Queue(runQueueName(SegmentName.parse('demo')), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
  runnerToken = readFileSync(runnerTokenPath(join(stack.dataDir, 'secrets'), 'demo'), 'utf8').trim();
});
afterAll(async () => {
  await queue?.close();
  await db?.end();
  await stack?.close();
});

const BOT = 'eligibility-check';
const memberId = (n: number) => `ZZC${String(n).padStart(6, '0')}`;
const items = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ memberId: memberId(from + i), dateOfBirth: '1900-04-01', portalUrl: stack.portal.url }));
const queued = async () => {
  const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed');
  return (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0);
};
const claim = (runId: string) => stack.api('POST', `/v1/runner/runs/${runId}/claim`, { runnerId: 'batch-control-test' }, runnerToken);
const runIdsOf = async (batchId: string) =>
  (await db.query<{ run_id: string }>('SELECT run_id FROM batch_items WHERE batch_id = $1 ORDER BY position', [batchId])).rows.map((r) => r.run_id);
const statusOf = async (runId: string) => (await db.query<{ status: string }>('SELECT status FROM runs WHERE id = $1', [runId])).rows[0]!.status;
const auditActions = async (batchId: string) =>
  (await db.query<{ action: string }>('SELECT action FROM audit_events WHERE target = $1 ORDER BY seq', [`batch:${batchId}`])).rows.map((r) => r.action);

async function cli(...args: string[]): Promise<string> {
  const printed: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string, cb?: () => void) => {
    printed.push(String(chunk));
    if (typeof cb === 'function') cb();
    return true;
  }) as typeof process.stdout.write;
  try {
    await buildProgram().parseAsync(['node', 'orderly', '--url', stack.controlRoom.url, '--token', stack.adminToken, ...args]);
  } finally {
    process.stdout.write = write;
  }
  return printed.join('');
}

describe('pause, resume and cancel', () => {
  let batchId: string;
  let runs: string[];

  test('a paused batch withdraws its queued jobs and its waiting runs cannot be claimed', async () => {
    const before = await queued();
    const created = await stack.api('POST', '/v1/batches', { bot: BOT, keyColumn: 'memberId', items: items(1, 4) });
    expect(created.status).toBe(201);
    expect(created.body.batch.state).toBe('open');
    batchId = created.body.batch.id;
    runs = await runIdsOf(batchId);
    expect(await queued()).toBe(before + 4);

    const paused = await stack.api('POST', `/v1/batches/${batchId}/pause`, {});
    expect(paused.status).toBe(200);
    expect(paused.body).toEqual({ batchId, state: 'paused', previous: 'open', runs: 4 });
    expect(await queued()).toBe(before);

    const refused = await claim(runs[0]!);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'ORDERLY_E_RUN_NOT_CLAIMABLE', details: { batch: 'paused' } });
    expect(await statusOf(runs[0]!)).toBe('waiting');
    expect((await stack.api('GET', `/v1/batches/${batchId}`)).body).toMatchObject({ state: 'paused', progress: { counts: { waiting: 4 } } });
  });

  test('pausing twice, or retrying a paused batch, is a state conflict that changes nothing', async () => {
    for (const action of ['pause', 'retry']) {
      const res = await stack.api('POST', `/v1/batches/${batchId}/${action}`, {});
      expect({ status: res.status, code: res.body.error?.code }).toEqual({ status: 409, code: 'ORDERLY_E_BATCH_STATE_CONFLICT' });
    }
    expect((await stack.api('GET', `/v1/batches/${batchId}`)).body.state).toBe('paused');
  });

  test('resume queues the waiting runs again and they can be claimed', async () => {
    const before = await queued();
    expect(await cli('batch', 'resume', batchId)).toBe(`batch ${batchId} is open (was paused): 4 runs queued\n`);
    expect(await queued()).toBe(before + 4);
    const claimed = await claim(runs[0]!);
    expect(claimed.status).toBe(200);
    expect(await statusOf(runs[0]!)).toBe('active');
  });

  test('cancel cancels every waiting and active run through the run cancel path; the batch stays cancelled', async () => {
    await db.query("UPDATE runs SET status = 'succeeded', finished_at = now() WHERE id = $1", [runs[3]]);
    const answer = JSON.parse(await cli('batch', 'cancel', batchId, '--json'));
    expect(answer).toEqual({ batchId, state: 'cancelled', previous: 'open', runs: 3 });
    expect(await Promise.all(runs.map(statusOf))).toEqual(['cancelled', 'cancelled', 'cancelled', 'succeeded']);
    const view = (await stack.api('GET', `/v1/batches/${batchId}`)).body;
    expect(view).toMatchObject({ state: 'cancelled', progress: { done: 4, percent: 100, counts: { cancelled: 3, succeeded: 1, waiting: 0, active: 0 } } });
    // Each run was cancelled the run cancel's way: its job is gone from the queue (the one left is
    // the job of the run this test finished in the database).
    expect(await queued()).toBe(1);
    // Cancelling again is harmless; resuming a cancelled batch is refused.
    expect((await stack.api('POST', `/v1/batches/${batchId}/cancel`, {})).body).toMatchObject({ state: 'cancelled', previous: 'cancelled', runs: 0 });
    expect((await stack.api('POST', `/v1/batches/${batchId}/resume`, {})).body.error.code).toBe('ORDERLY_E_BATCH_STATE_CONFLICT');
    // Watching a finished batch prints its last line and ends.
    expect(await cli('batch', 'show', batchId, '--watch', '--interval', '0.1')).toMatch(
      /^ {2}progress \[#{30}\] 4\/4 done \(100 %\) cancelled: succeeded 1, cancelled 3\n$/,
    );
  });

  test('every change of state is an audit event naming the batch', async () => {
    expect(await auditActions(batchId)).toEqual(['batch.pause', 'batch.pause', 'batch.resume', 'batch.cancel', 'batch.cancel', 'batch.resume']);
    const [event] = (
      await db.query<{ actor: string; outcome: string; details: Record<string, unknown> }>(
        "SELECT actor, outcome, details FROM audit_events WHERE target = $1 AND action = 'batch.cancel' ORDER BY seq LIMIT 1",
        [`batch:${batchId}`],
      )
    ).rows;
    expect(event).toMatchObject({ outcome: 'success', details: { previous: 'open', runs: 3 } });
  });

  test('an unknown batch is 404, a malformed id 400', async () => {
    expect((await stack.api('POST', '/v1/batches/00000000-0000-4000-8000-000000000000/pause', {})).status).toBe(404);
    expect((await stack.api('POST', '/v1/batches/nope/cancel', {})).body.error.code).toBe('ORDERLY_E_BAD_REQUEST');
  });
});

describe('results export', () => {
  const N = 450; // more than two export pages
  let batchId: string;
  let runs: string[];

  beforeAll(async () => {
    const created = await stack.api('POST', '/v1/batches', { bot: BOT, keyColumn: 'memberId', items: items(1001, 1000 + N) });
    batchId = created.body.batch.id;
    runs = await runIdsOf(batchId);
    await db.query(
      `UPDATE runs SET status = 'failed', finished_at = now(), error = '{"code":"ORDERLY_E_BOT_FAILED","message":"no","retryable":false,"details":{}}' WHERE id = $1`,
      [runs[1]],
    );
  });

  const readPhiEvents = async () =>
    Number((await db.query(`SELECT count(*) AS n FROM audit_events WHERE action = 'run.read_phi' AND details->>'batch' = $1`, [batchId])).rows[0].n);

  test('CSV through the CLI: a header and one record per item in file order, each run audited', async () => {
    const before = await readPhiEvents();
    const out = join(mkdtempSync(join(tmpdir(), 'orderly-export-')), 'results.csv');
    await cli('batch', 'results', batchId, '--reason', 'reconcile the batch', '--format', 'csv', '--out', out);
    const lines = readFileSync(out, 'utf8').split('\r\n');
    expect(lines[0]).toBe('position,line,key,run_id,status,error_code,result');
    expect(lines.at(-1)).toBe('');
    expect(lines).toHaveLength(N + 2);
    expect(lines[1]).toBe(`1,,${memberId(1001)},${runs[0]},waiting,,`);
    expect(lines[2]).toBe(`2,,${memberId(1002)},${runs[1]},failed,ORDERLY_E_BOT_FAILED,`);
    expect(lines[N]).toBe(`${N},,${memberId(1000 + N)},${runs[N - 1]},waiting,,`);
    expect(await readPhiEvents()).toBe(before + N);
  });

  test('JSONL through the API matches the runs', async () => {
    const res = await fetch(`${stack.controlRoom.url}/v1/batches/${batchId}/results?format=jsonl`, {
      headers: { authorization: `Bearer ${stack.adminToken}`, 'x-orderly-reason': 'reconcile the batch' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const rows = (await res.text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows.map((r) => r.runId)).toEqual(runs);
    expect(rows[1]).toEqual({
      position: 2,
      line: null,
      key: memberId(1002),
      runId: runs[1],
      status: 'failed',
      errorCode: 'ORDERLY_E_BOT_FAILED',
      result: null,
    });
  });

  test('without a reason, or in another format, nothing is exported', async () => {
    const noReason = await fetch(`${stack.controlRoom.url}/v1/batches/${batchId}/results?format=csv`, {
      headers: { authorization: `Bearer ${stack.adminToken}` },
    });
    expect(noReason.status).toBe(400);
    expect(((await noReason.json()) as { error: { code: string } }).error.code).toBe('ORDERLY_E_REASON_REQUIRED');
    const xml = await fetch(`${stack.controlRoom.url}/v1/batches/${batchId}/results?format=xml`, {
      headers: { authorization: `Bearer ${stack.adminToken}`, 'x-orderly-reason': 'reconcile the batch' },
    });
    expect(xml.status).toBe(400);
    expect(((await xml.json()) as { error: { code: string } }).error.code).toBe('ORDERLY_E_BAD_REQUEST');
  });
});

describe("CSV cells are typed by the bot's input schema", () => {
  // claim-steps: amountCents and waitMs are integers, onUncertain an enum of strings.
  const header = 'portalUrl,amountCents,waitMs,onUncertain\r\n';
  const row = (amount: string, wait = '0') => `${stack.portal.url},${amount},${wait},none\r\n`;
  const counts = async () =>
    (await db.query<{ runs: string; batches: string }>('SELECT (SELECT count(*) FROM runs) AS runs, (SELECT count(*) FROM batches) AS batches')).rows[0];

  test("integer columns become numbers in the runs' inputs", async () => {
    const created = await stack.api('POST', '/v1/batches', { bot: 'claim-steps', keyColumn: 'amountCents', csv: header + row('101') + row(' 202 ', '5') });
    expect(created.status).toBe(201);
    const res = await fetch(`${stack.controlRoom.url}/v1/batches/${created.body.batch.id}/results`, {
      headers: { authorization: `Bearer ${stack.adminToken}`, 'x-orderly-reason': 'check the typed inputs' },
    });
    const inputs = ((await res.json()) as { items: { input: unknown }[] }).items.map((i) => i.input);
    expect(inputs).toEqual([
      { portalUrl: stack.portal.url, amountCents: 101, waitMs: 0, onUncertain: 'none' },
      { portalUrl: stack.portal.url, amountCents: 202, waitMs: 5, onUncertain: 'none' },
    ]);
  });

  test('a row that does not fit is refused with its line and column, and nothing of the batch is created', async () => {
    const before = await counts();
    const res = await stack.api('POST', '/v1/batches', { bot: 'claim-steps', csv: header + row('301') + row('302') + row('12.50') + row('304') });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({
      code: 'ORDERLY_E_BATCH_ITEM_TYPE',
      message: 'line 4, column "amountCents": not an integer',
      details: { line: 4, column: 'amountCents', expected: 'an integer' },
    });
    expect(await counts()).toEqual(before);
  });
});
