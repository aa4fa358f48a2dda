import { createWriteStream, readFileSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { z } from 'zod';
import { OrderlyError } from '@orderly/shared';
import { EXPORT_FORMATS, ExportFormat, formatOf, parseItems } from '@orderly/shared';
import { BatchDetailView, BatchProgress, BatchResultsView, BatchStateAnswer, BatchView, CreateBatchAnswer, RetryBatchAnswer } from '@orderly/shared';
import { ApiClient } from '../api-client';
import { output } from '../output';

const BAR_WIDTH = 30;

/** `[#########.....]`: filled by the share of items done, full only when all are (never rounded up). */
export function progressBar(progress: BatchProgress, width = BAR_WIDTH): string {
  const filled = progress.total === 0 ? width : Math.floor((progress.done * width) / progress.total);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** The items per state, non-zero ones only: `waiting 3, succeeded 2`. */
const stateCounts = (progress: BatchProgress) =>
  Object.entries(progress.counts)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${s} ${n}`)
    .join(', ');

/** One plain line of progress (no terminal control characters): bar, done, percent, batch state, counts. */
export function progressLine(batch: BatchView, extra = ''): string {
  const { total, done, percent } = batch.progress;
  const states = stateCounts(batch.progress);
  const held = batch.state === 'open' ? '' : ` ${batch.state}`;
  return `  progress ${progressBar(batch.progress)} ${done}/${total} done (${percent} %)${held}${states ? `: ${states}` : ''}${extra}`;
}

/** Time left at the rate seen so far (items done per second since the watch began), when there is one. */
export function timeLeft(doneThen: number, at: number, batch: BatchView, now: number): string {
  const rate = (batch.progress.done - doneThen) / ((now - at) / 1000);
  if (!(rate > 0) || batch.progress.done >= batch.progress.total) return '';
  const seconds = Math.ceil((batch.progress.total - batch.progress.done) / rate);
  const left = seconds < 120 ? `${seconds} s` : `${Math.ceil(seconds / 60)} min`;
  return ` · ${rate.toFixed(1)} items/s, about ${left} left`;
}

const finished = (batch: BatchView) => batch.progress.done >= batch.progress.total;

/**
 * Shows the progress until every item is done: on a terminal one line redrawn in place, otherwise
 * a plain line each time the progress changes (logs and pipes get no control characters); with
 * `json` one JSON object a line.
 */
export async function watchBatch(
  fetchBatch: () => Promise<BatchView>,
  options: { intervalMs: number; json?: boolean | undefined; out?: Pick<NodeJS.WriteStream, 'write' | 'isTTY'>; now?: () => number },
): Promise<BatchView> {
  const out = options.out ?? process.stdout;
  const now = options.now ?? Date.now;
  const tty = out.isTTY === true && !options.json;
  let current = await fetchBatch();
  const start = { done: current.progress.done, at: now() };
  let last = '';
  for (;;) {
    const line = options.json ? JSON.stringify(current) : progressLine(current, timeLeft(start.done, start.at, current, now()));
    if (tty) out.write(`\r${line}\x1b[K`);
    else if (line !== last) out.write(`${line}\n`);
    last = line;
    if (finished(current)) break;
    await sleep(options.intervalMs);
    current = await fetchBatch();
  }
  if (tty) out.write('\n');
  return current;
}

const describe = (batch: BatchView) => [
  `batch ${batch.id}`,
  `  state    ${batch.state}`,
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
    .option('--watch', 'refresh the progress until every item is done (a progress bar on a terminal, plain lines otherwise)')
    .option('--interval <seconds>', 'with --watch: seconds between refreshes', '2')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { reason?: string; watch?: boolean; interval: string; json?: boolean }) => {
      const api = client();
      if (opts.watch) {
        const intervalMs = Number(opts.interval) * 1000;
        if (!Number.isFinite(intervalMs) || intervalMs < 100 || intervalMs > 3_600_000)
          throw new OrderlyError('ORDERLY_E_BAD_REQUEST', '--interval is a number of seconds from 0.1 to 3600');
        await watchBatch(() => api.request('GET', `/v1/batches/${encodeURIComponent(id)}`, BatchDetailView), { intervalMs, json: opts.json });
        return;
      }
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
          ? batches.map(
              (b) =>
                `${b.id}  ${b.state.padEnd(9)} ${b.bot}@${b.version}  ${b.segment}  ${b.progress.done}/${b.progress.total} (${b.progress.percent} %)  ${b.createdAt}`,
            )
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
  batch
    .command('results')
    .description("export each item's key, state, error code and result (redacted) as CSV or JSONL: a PHI read, audited once per run")
    .argument('<id>', 'batch id')
    .requiredOption('--reason <text>', "why you read the items' results (PHI): recorded in the audit log for each run")
    .option('--format <format>', 'csv or jsonl', 'csv')
    .option('--out <file>', 'write to this file (default: standard output)')
    .action(async (id: string, opts: { reason: string; format: string; out?: string }) => {
      if (!(EXPORT_FORMATS as readonly string[]).includes(opts.format)) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', '--format is csv or jsonl');
      const format = opts.format as ExportFormat;
      const body = await client().stream(`/v1/batches/${encodeURIComponent(id)}/results?format=${format}`, { 'x-orderly-reason': opts.reason });
      const sink: Writable = opts.out ? createWriteStream(opts.out, { mode: 0o600 }) : stdoutSink();
      try {
        await pipeline(Readable.fromWeb(body as import('node:stream/web').ReadableStream), sink);
      } catch {
        throw new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', 'the export was cut off before its end; run it again');
      }
      if (opts.out) process.stderr.write(`wrote the results of batch ${id} to ${opts.out}\n`);
    });
  for (const [action, what] of [
    ['pause', "stop starting the batch's waiting runs (active runs go on to their end)"],
    ['resume', 'start the waiting runs of a paused batch again'],
    ['cancel', 'cancel the batch: each waiting or active run is cancelled, and none is started any more'],
  ] as const) {
    batch
      .command(action)
      .description(what)
      .argument('<id>', 'batch id')
      .option('--json', 'machine-readable output')
      .action(async (id: string, opts: { json?: boolean }) => {
        const answer = await client().request('POST', `/v1/batches/${encodeURIComponent(id)}/${action}`, BatchStateAnswer, {});
        const runs =
          action === 'pause' ? `${answer.runs} queued runs withdrawn` : action === 'resume' ? `${answer.runs} runs queued` : `${answer.runs} runs cancelled`;
        output(opts.json, answer, `batch ${answer.batchId} is ${answer.state} (was ${answer.previous}): ${runs}`);
      });
  }
  return batch;
}

/** Standard output as the end of a pipeline, left open (the process writes after it). */
function stdoutSink(): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      process.stdout.write(chunk.toString('utf8'), () => done());
    },
  });
}
