import { join } from 'node:path';
import { waitFor } from '@orderly/shared/testing';
import { REPO, Stack, startStack } from '../../../test/harness';

/** A batch run by a real runner (sandbox, reports): its progress follows the runs to the end. */
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ vault: false });
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'no-browser'));
}, 120_000);
afterAll(() => stack?.close());

type Progress = { total: number; done: number; percent: number; counts: Record<string, number> };
const progressOf = async (id: string) =>
  (await stack.api('GET', `/v1/batches/${id}`)).body as {
    progress: Progress;
    items: Array<{ position: number; status: string; retries: number; error?: { code: string } }>;
  };

test('a batch goes from waiting to done as the runner works through it; retry re-runs only the dead-lettered item', async () => {
  // No key column: each distinct item is its own key. `touchPage` makes the bot fail (no browser), once (attempts 1).
  const jsonl = '{}\n{"touchPage":false}\n{"touchPage":true}\n';
  const created = await stack.api('POST', '/v1/batches', { bot: 'no-browser', jsonl });
  expect(created.status).toBe(201);
  const id = created.body.batch.id as string;
  expect(created.body.batch.progress).toMatchObject({ total: 3, done: 0, counts: { waiting: 3 } });

  const runner = await stack.startRunner();
  try {
    const done = await waitFor(
      async () => {
        const view = await progressOf(id);
        return view.progress.done === 3 ? view : undefined;
      },
      60_000,
      'the batch to finish',
    );
    expect(done.progress).toMatchObject({ total: 3, done: 3, percent: 100, counts: { waiting: 0, active: 0, succeeded: 2, dead_lettered: 1 } });
    expect(done.items.map((i) => i.status)).toEqual(['succeeded', 'succeeded', 'dead_lettered']);
    expect(done.items[2]!.error?.code).toMatch(/^ORDERLY_E_/);

    // Loaded again: the same batch, no new run.
    const again = await stack.api('POST', '/v1/batches', { bot: 'no-browser', jsonl: `\uFEFF${jsonl.replace(/\n/g, '\r\n')}` });
    expect(again.body).toMatchObject({ created: false, runsCreated: 0, batch: { id } });

    const retry = await stack.api('POST', `/v1/batches/${id}/retry`, {});
    expect(retry.body).toMatchObject({ requeued: 1, runs: [{ position: 3 }] });
    const after = await waitFor(
      async () => {
        const view = await progressOf(id);
        return view.items[2]!.retries === 1 && view.progress.done === 3 ? view : undefined;
      },
      60_000,
      'the retried item to finish',
    );
    expect(after.progress.counts).toMatchObject({ succeeded: 2, dead_lettered: 1 });
    expect(after.items[2]).toMatchObject({ retries: 1, status: 'dead_lettered' });
  } finally {
    await runner.close();
  }
}, 150_000);
