import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { z } from 'zod';
import { OrderlyError } from '@orderly/shared';
import { formatOf, parseItems } from '@orderly/shared';
import { BatchDetailView, BatchResultsView, BatchView, CreateBatchAnswer, RetryBatchAnswer } from '@orderly/shared';
import { ApiClient } from '../api-client';
import { output } from '../output';

function progressLine(batch: BatchView): string {
  const { total, done, percent, counts } = batch.progress;
  const states = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${s} ${n}`)
    .join(', ');
  return `  progress ${done}/${total} done (${percent} %)${states ? `: ${states}` : ''}`;
}

const describe = (batch: BatchView) => [
  `batch ${batch.id}`,
  `  bot      ${batch.bot}@${batch.version}`,
  `  segment  ${batch.segment}`,
  ...(batch.keyColumn ? [`  key      column ${batch.keyColumn}`] : []),
  progressLine(batch),
];

/** The file's text and format; the file is parsed here too, so a bad file fails before any request. */
export function readItemsFile(path: string): { format: 'csv' | 'jsonl'; text: string; count: number } {
  const format = formatOf(path);
  if (!format) throw new OrderlyError('ORDERLY_E_BATCH_ITEMS_INVALID', `${path}: items files end in .csv or .jsonl`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new OrderlyError('ORDERLY_E_BATCH_ITEMS_INVALID', `${path} is not a readable file`);
  }
  return { format, text, count: parseItems(format, text).length };
}

export function batchCommand(client: () => ApiClient): Command {
  const batch = new Command('batch').description('work queues: one run per item of a CSV or JSONL file');
  batch
    .command('start')
    .description('start a batch of BOT: one run per item of FILE; loading the same file again creates no runs twice')
    .argument('<bot>', 'bot name')
    .requiredOption('--items <file>', 'items: a .csv file (header row, one item a row) or a .jsonl file (one JSON object a line)')
    .option('--key-column <column>', 'the field whose value keys each item (default: the whole item)')
    .option('--version <version>', 'bot version')
    .option('--segment <segment>', 'segment to run in (default: the first the bot declares)')
    .option('--json', 'machine-readable output')
    .action(async (bot: string, opts: { items: string; keyColumn?: string; version?: string; segment?: string; json?: boolean }) => {
      const file = readItemsFile(opts.items);
      const answer = await client().request('POST', '/v1/batches', CreateBatchAnswer, {
        bot,
        [file.format]: file.text,
        ...(opts.keyColumn ? { keyColumn: opts.keyColumn } : {}),
        ...(opts.version ? { version: opts.version } : {}),
        ...(opts.segment ? { segment: opts.segment } : {}),
      });
      const head = answer.created
        ? `created batch ${answer.batch.id}: ${answer.runsCreated} new runs${answer.runsExisting ? `, ${answer.runsExisting} items already had a run` : ''}`
        : `this file was loaded before: batch ${answer.batch.id} (no runs created)`;
      output(opts.json, answer, [head, ...describe(answer.batch)]);
    });
  batch
    .command('show')
    .description("show a batch's progress and each item's state and error code; with --reason also each item's input and result")
    .argument('<id>', 'batch id')
    .option('--reason <text>', "why you read the items' inputs and results (PHI): recorded in the audit log for each run")
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { reason?: string; json?: boolean }) => {
      const api = client();
      const view = await api.request('GET', `/v1/batches/${encodeURIComponent(id)}`, BatchDetailView);
      const results =
        opts.reason === undefined
          ? undefined
          : await api.request('GET', `/v1/batches/${encodeURIComponent(id)}/results`, BatchResultsView, undefined, { 'x-orderly-reason': opts.reason });
      const byPosition = new Map(results?.items.map((r) => [r.position, r]));
      const items = view.items.map((item) => {
        const phi = byPosition.get(item.position);
        return phi ? { ...item, input: phi.input, result: phi.result } : item;
      });
      const lines = items.map((item) => {
        const where = item.line !== null ? `line ${item.line}` : `item ${item.position}`;
        const error = item.error ? ` ${item.error.code}` : '';
        const result = 'result' in item ? ` ${JSON.stringify(item.result)}` : '';
        return `  ${where.padEnd(10)} ${item.status.padEnd(13)} run ${item.runId}${error}${result}`;
      });
      output(opts.json, { ...view, items }, [...describe(view), ...lines]);
    });
  batch
    .command('list')
    .description('list batches, newest first, with their progress')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'machine-readable output')
    .action(async (opts: { limit: string; json?: boolean }) => {
      const { batches } = await client().request('GET', `/v1/batches?limit=${encodeURIComponent(opts.limit)}`, z.object({ batches: z.array(BatchView) }));
      output(
        opts.json,
        batches,
        batches.length
          ? batches.map((b) => `${b.id}  ${b.bot}@${b.version}  ${b.segment}  ${b.progress.done}/${b.progress.total} (${b.progress.percent} %)  ${b.createdAt}`)
          : 'no batches',
      );
    });
  batch
    .command('retry')
    .description('run the items whose run failed or was dead-lettered again, as new runs')
    .argument('<id>', 'batch id')
    .requiredOption('--failed', 'retry the failed and dead-lettered items (the only kind of retry)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const answer = await client().request('POST', `/v1/batches/${encodeURIComponent(id)}/retry`, RetryBatchAnswer, {});
      output(opts.json, answer, `requeued ${answer.requeued} items of batch ${answer.batchId}`);
    });
  return batch;
}
