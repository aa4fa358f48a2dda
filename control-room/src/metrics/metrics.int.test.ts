import { join } from 'node:path';
import parsePrometheusTextFormat, { ParsedFamily } from 'parse-prometheus-text-format';
import { SegmentName } from '@orderly/shared';
import { REPO, Stack, startStack } from '../../../test/harness';
import { openDb } from '../db/db';
import { ControlRoomMetrics } from './metrics';

/** A scrape after a batch of real runs (runner, sandbox, reports) shows what happened to them. */
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ vault: false });
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'no-browser'));
}, 120_000);
afterAll(() => stack?.close());

const value = (families: ParsedFamily[], name: string, labels: Record<string, string>): number | undefined => {
  const family = families.find((f) => f.name === name);
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return sample?.value === undefined ? undefined : Number(sample.value);
};

test('a scrape after a batch of runs shows queue depth, outcomes, durations, dead letters and refusals', async () => {
  expect((await stack.api('GET', '/metrics', undefined, '')).status).toBe(401);

  const runner = await stack.startRunner();
  const batch = [
    ...(await Promise.all([1, 2, 3].map(() => stack.startRun({ bot: 'no-browser', input: {} })))),
    await stack.startRun({ bot: 'no-browser', input: { touchPage: true } }),
  ];
  const finished = await Promise.all(batch.map((run) => stack.waitForRun(run.id)));
  expect(finished.map((r) => r.status).sort()).toEqual(['dead_lettered', 'succeeded', 'succeeded', 'succeeded']);
  await runner.close();
  // Two more with no runner to take them: they wait.
  await stack.startRun({ bot: 'no-browser', input: {} });
  await stack.startRun({ bot: 'no-browser', input: {} });
  await new Promise((r) => setTimeout(r, 1100));

  const res = await fetch(`${stack.controlRoom.url}/metrics`, { headers: { authorization: `Bearer ${stack.adminToken}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  const families = parsePrometheusTextFormat(await res.text());

  expect(value(families, 'orderly_runs', { segment: 'demo', status: 'succeeded' })).toBe(3);
  expect(value(families, 'orderly_runs', { segment: 'demo', status: 'dead_lettered' })).toBe(1);
  expect(value(families, 'orderly_runs', { segment: 'demo', status: 'waiting' })).toBe(2);
  expect(value(families, 'orderly_dead_letters', { segment: 'demo' })).toBe(1);
  expect(value(families, 'orderly_dead_letters', { segment: 'other' })).toBe(0);
  expect(value(families, 'orderly_queue_jobs', { segment: 'demo', state: 'waiting' })).toBe(2);
  expect(value(families, 'orderly_queue_jobs', { segment: 'other', state: 'waiting' })).toBe(0);
  expect(value(families, 'orderly_oldest_waiting_seconds', { segment: 'demo' })).toBeGreaterThanOrEqual(1);
  expect(value(families, 'orderly_oldest_waiting_seconds', { segment: 'other' })).toBe(0);
  expect(families.find((f) => f.name === 'orderly_run_duration_seconds')?.type).toBe('HISTOGRAM');
  expect(families.find((f) => f.name === 'orderly_refusals')?.type).toBe('GAUGE');
  expect(families.find((f) => f.name === 'orderly_lease_failures')?.type).toBe('GAUGE');
  expect(families.find((f) => f.name === 'orderly_compliance_checks')?.metrics).toEqual([]);
  const report = (await stack.api('GET', '/v1/compliance')).body as { summary: Record<string, number> };
  const after = parsePrometheusTextFormat(
    await (await fetch(`${stack.controlRoom.url}/metrics`, { headers: { authorization: `Bearer ${stack.adminToken}` } })).text(),
  );
  expect(value(after, 'orderly_compliance_checks', { result: 'fail' })).toBe(report.summary.fail);
  expect(value(after, 'orderly_compliance_checks', { result: 'pass' })).toBe(report.summary.pass);

  // The parser above merges labelled histogram series into one; prom-client's own registry API
  // gives each series of the histogram.
  const db = await openDb({ databaseUrl: stack.databaseUrl, pgliteDir: '' });
  const metrics = new ControlRoomMetrics({ db, redis: stack.redis, queuePrefix: stack.prefix, segments: ['demo' as SegmentName, 'other' as SegmentName] });
  try {
    const json = await metrics.registry.getMetricsAsJSON();
    const histogram = json.find((m) => m.name === 'orderly_run_duration_seconds');
    const series = (histogram?.values ?? []) as { metricName?: string; labels: Record<string, string | number>; value: number }[];
    const count = (outcome: string) => series.find((s) => s.metricName === 'orderly_run_duration_seconds_count' && s.labels.outcome === outcome)?.value;
    expect(count('succeeded')).toBe(3);
    expect(count('dead_lettered')).toBe(1);
    const inf = series.find((s) => s.metricName === 'orderly_run_duration_seconds_bucket' && s.labels.outcome === 'succeeded' && s.labels.le === '+Inf');
    expect(inf?.value).toBe(3);
  } finally {
    await metrics.close();
    await db.close();
  }
}, 120_000);
