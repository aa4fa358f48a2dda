import { Command } from 'commander';
import { OrderlyError } from '@orderly/shared';
import { BulkRequeueResult, DiscardResult, DlqDetail, DlqEntry, DlqList, RequeueResult } from '@orderly/shared';
import { ApiClient } from '../api-client';
import { output } from '../output';

interface FilterOptions {
  segment?: string;
  bot?: string;
  errorCode?: string;
  since?: string;
  until?: string;
}

const filterOf = (opts: FilterOptions) => ({
  ...(opts.segment ? { segment: opts.segment } : {}),
  ...(opts.bot ? { bot: opts.bot } : {}),
  ...(opts.errorCode ? { errorCode: opts.errorCode } : {}),
  ...(opts.since ? { since: opts.since } : {}),
  ...(opts.until ? { until: opts.until } : {}),
});
const hasFilter = (opts: FilterOptions) => Object.keys(filterOf(opts)).length > 0;

function withFilters(command: Command): Command {
  return command
    .option('--segment <segment>', 'only this segment')
    .option('--bot <bot>', 'only this bot')
    .option('--error-code <code>', 'only this error code (ORDERLY_E_…)')
    .option('--since <time>', 'dead-lettered at or after (ISO 8601)')
    .option('--until <time>', 'dead-lettered before (ISO 8601)');
}

const line = (e: DlqEntry) =>
  `${e.runId}  ${e.deadLetteredAt ?? '-'}  ${e.segment.padEnd(8)} ${`${e.bot}@${e.version}`.padEnd(28)} ${e.error?.code ?? '-'} (attempts ${e.attempts}, requeued ${e.requeues})`;

function describe(d: DlqDetail): string[] {
  const lines = [
    `dead letter ${d.runId} (${d.status})`,
    `  bot         ${d.bot}@${d.version}`,
    `  segment     ${d.segment}`,
    `  key         ${d.idempotencyKey}`,
    `  error       ${d.error ? `${d.error.code}: ${d.error.message}` : '-'}`,
    `  attempts    ${d.attempts} (requeued ${d.requeues})`,
    `  screenshot  ${d.lastScreenshotId === null ? '-' : `#${d.lastScreenshotId} (GET /v1/runs/${d.runId}/screenshots/${d.lastScreenshotId})`}`,
  ];
  if (d.discardReason) lines.push(`  discarded   ${d.discardReason}`);
  for (const a of d.attemptsHistory) {
    lines.push(`  attempt ${a.attempt}  ${a.claimedAt}  ${a.runnerId}  ${a.outcome ?? 'unfinished'}${a.error ? `  ${a.error.code}: ${a.error.message}` : ''}`);
  }
  return lines;
}

/** `orderly dlq`: the operators' dead letter commands. Every requeue and discard is audited with its reason. */
export function dlqCommand(client: () => ApiClient): Command {
  const dlq = new Command('dlq').description('list, inspect, requeue and discard dead-lettered runs');
  withFilters(dlq.command('ls').description('list dead letters, newest first'))
    .option('--limit <n>', 'entries per page (1-500)', '50')
    .option('--cursor <cursor>', 'the next page, from a previous --json listing')
    .option('--json', 'machine-readable output')
    .action(async (opts: FilterOptions & { limit: string; cursor?: string; json?: boolean }) => {
      const query = new URLSearchParams({ ...filterOf(opts), limit: opts.limit, ...(opts.cursor ? { cursor: opts.cursor } : {}) });
      const page = await client().request('GET', `/v1/dlq?${query.toString()}`, DlqList);
      output(
        opts.json,
        page,
        page.entries.length ? [...page.entries.map(line), ...(page.nextCursor ? [`(more: --cursor ${page.nextCursor})`] : [])] : 'no dead letters',
      );
    });
  dlq
    .command('show')
    .description('show a dead letter: its attempts, redacted errors and last screenshot')
    .argument('<id>', 'run id')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const detail = await client().request('GET', `/v1/dlq/${encodeURIComponent(id)}`, DlqDetail);
      output(opts.json, detail, describe(detail));
    });
  withFilters(
    dlq
      .command('requeue')
      .description('requeue one dead letter (ID), or every one matching the filters (--all or filters, confirmed with --yes)')
      .argument('[id]', 'run id'),
  )
    .requiredOption('--reason <text>', 'why (audited)')
    .option('--ticket <ref>', 'ticket reference (audited)')
    .option('--all', 'bulk: every dead letter (up to --limit)')
    .option('--limit <n>', 'bulk: at most this many (1-500)', '100')
    .option('--yes', 'bulk: confirm; without it only the count is shown')
    .option('--json', 'machine-readable output')
    .action(
      async (
        id: string | undefined,
        opts: FilterOptions & { reason: string; ticket?: string; all?: boolean; limit: string; yes?: boolean; json?: boolean },
      ) => {
        const api = client();
        const ticket = opts.ticket ? { ticket: opts.ticket } : {};
        if (id) {
          if (opts.all || hasFilter(opts)) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'give either a run id or --all/filters, not both');
          const result = await api.request('POST', `/v1/dlq/${encodeURIComponent(id)}/requeue`, RequeueResult, { reason: opts.reason, ...ticket });
          output(opts.json, result, `requeued ${result.runId} (key ${result.idempotencyKey}, requeue #${result.requeues})`);
          return;
        }
        if (!opts.all && !hasFilter(opts)) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'give a run id, or --all or a filter for a bulk requeue');
        const body = { filter: filterOf(opts), reason: opts.reason, ...ticket, limit: Number(opts.limit) };
        if (!opts.yes) {
          const dry = await api.request('POST', '/v1/dlq/requeue', BulkRequeueResult, { ...body, dryRun: true });
          output(
            opts.json,
            dry,
            `${dry.matched} dead letter(s) match; up to ${Math.min(dry.matched, body.limit)} would be requeued. Run again with --yes to requeue them.`,
          );
          throw new OrderlyError('ORDERLY_E_CONFIRMATION_REQUIRED', 'bulk requeue not confirmed (--yes); nothing was requeued');
        }
        const result = await api.request('POST', '/v1/dlq/requeue', BulkRequeueResult, body);
        output(opts.json, result, [
          `requeued ${result.requeued.length} of ${result.matched} matching`,
          ...result.skipped.map((s) => `  skipped ${s.runId}: ${s.code}`),
        ]);
        if (result.skipped.length) process.exitCode = 1;
      },
    );
  dlq
    .command('discard')
    .description('discard a dead letter for good, with a reason (audited)')
    .argument('<id>', 'run id')
    .requiredOption('--reason <text>', 'why (audited)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { reason: string; json?: boolean }) => {
      const result = await client().request('POST', `/v1/dlq/${encodeURIComponent(id)}/discard`, DiscardResult, { reason: opts.reason });
      output(opts.json, result, `discarded ${result.runId}: ${result.reason}`);
    });
  return dlq;
}
