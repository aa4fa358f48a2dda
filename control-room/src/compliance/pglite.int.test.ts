import { join } from 'node:path';
import { Stack, startStack } from '../../../test/harness';

/** The demo stack runs on embedded PGlite: the checks and the metrics must work there too. */
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ database: 'pglite', vault: false });
}, 120_000);
afterAll(() => stack?.close());

test('compliance check, inventory, disposals and metrics scrape on PGlite', async () => {
  await stack.publish(join(__dirname, '..', '..', '..', 'test', 'fixtures', 'bots', 'no-browser'));
  const report = await stack.api('GET', '/v1/compliance');
  expect(report.status).toBe(200);
  expect(report.body.results.length).toBeGreaterThanOrEqual(20);
  expect(report.body.summary.error).toBe(0);
  const byId = Object.fromEntries((report.body.results as { checkId: string; result: string }[]).map((r) => [r.checkId, r.result]));
  expect(byId['audit.chain-verifies']).toBe('pass');
  expect(byId['audit.append-only']).toBe('pass');
  expect(report.body.inventory.bots.map((b: { name: string }) => b.name)).toContain('no-browser');
  const inventory = await stack.api('GET', '/v1/compliance/inventory');
  expect(inventory.status).toBe(200);
  expect(inventory.body.bots.find((b: { name: string }) => b.name === 'no-browser')).toMatchObject({
    phi: [],
    segments: ['demo'],
    productionSegments: [],
    contacts: null,
    lastRun: null,
  });
  expect((await stack.api('GET', '/v1/compliance/disposals')).body).toEqual({ disposals: [] });
  const metrics = await fetch(`${stack.controlRoom.url}/metrics`, { headers: { authorization: `Bearer ${stack.adminToken}` } });
  expect(metrics.status).toBe(200);
  expect(await metrics.text()).toContain('orderly_compliance_checks{result="pass"}');
});
