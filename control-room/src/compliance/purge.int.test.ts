import { join } from 'node:path';
import { RunView } from '@orderly/shared';
import { waitFor } from '@orderly/shared/testing';
import { REPO, Stack, startStack } from '../../../test/harness';

/**
 * The finished runs' PHI purge as the control room runs it (on the audit tick, here every second,
 * with a retention of one second): real runs through a runner, then the API's PHI reads of a purged
 * run answer 410 `ORDERLY_E_RUN_PHI_PURGED` while a dead letter keeps its PHI.
 */
describe.each(['postgres', 'pglite'] as const)('on %s', (database) => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      database,
      vault: false,
      controlRoomEnv: { ORDERLY_RUN_RETENTION_DAYS: String(1 / 86_400), ORDERLY_AUDIT_HEAD_INTERVAL_SECONDS: '1' },
    });
    await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'no-browser'));
  }, 120_000);
  afterAll(() => stack?.close());

  test('a finished run loses its PHI on the audit tick, its state stays, and reading its PHI is refused with a stable code; a dead letter keeps it', async () => {
    const runner = await stack.startRunner();
    const done = await stack.startRun({ bot: 'no-browser', input: {} });
    const dead = await stack.startRun({ bot: 'no-browser', input: { touchPage: true } }); // the fixture's way to dead-letter
    // Status only: the harness's waitForRun also reads the result, which the purge may already have taken.
    const statusOf = async (id: string) => ((await stack.api('GET', `/v1/runs/${id}`)).body as RunView).status;
    await waitFor(async () => ((await statusOf(done.id)) === 'succeeded' ? true : undefined), 30_000, 'the run to succeed');
    await waitFor(async () => ((await statusOf(dead.id)) === 'dead_lettered' ? true : undefined), 30_000, 'the run to be dead-lettered');
    await runner.close();

    const disposals = await waitFor(
      async () => {
        const res = await stack.api('GET', '/v1/compliance/disposals');
        const records = (res.body?.disposals ?? []) as { kind: string; count: number; policy: string }[];
        return records.some((d) => d.kind === 'runs') ? records : undefined;
      },
      30_000,
      'a runs disposal record',
    );
    expect(disposals.filter((d) => d.kind === 'runs').reduce((n, d) => n + d.count, 0)).toBe(1);
    expect(disposals.find((d) => d.kind === 'runs')?.policy).toMatch(/ORDERLY_RUN_RETENTION_DAYS=/);

    const result = await stack.api('GET', `/v1/runs/${done.id}/result`);
    expect(result.status).toBe(410);
    expect(result.body.error).toMatchObject({ code: 'ORDERLY_E_RUN_PHI_PURGED', retryable: false, details: { runId: done.id } });
    expect((await stack.api('GET', `/v1/runs/${done.id}/logs`)).body.error.code).toBe('ORDERLY_E_RUN_PHI_PURGED');
    expect((await stack.api('GET', `/v1/runs/${done.id}`)).body).toMatchObject({ id: done.id, status: 'succeeded', bot: 'no-browser' });

    const kept = await stack.api('GET', `/v1/runs/${dead.id}/result`);
    expect(kept.status).toBe(200);
    expect(kept.body.input).toEqual({ touchPage: true });

    const audit = await stack.api('GET', '/v1/audit/events?limit=5000');
    const purgeEvents = ((audit.body?.events ?? []) as { action: string; details: { runs: number } }[]).filter((e) => e.action === 'retention.run_phi_purge');
    expect(purgeEvents.map((e) => e.details.runs)).toEqual([1]);
  }, 120_000);
});
