import { Command } from 'commander';
import { z } from 'zod';
import { isTerminal, RunLogsView, RunView } from '@orderly/shared';
import { ApiClient } from '../api-client';
import { readJsonInput } from '../input';
import { output } from '../output';

function describe(run: RunView): string[] {
  const lines = [`run ${run.id}`, `  bot      ${run.bot}@${run.version} (${run.digest.slice(0, 19)}…)`, `  segment  ${run.segment}`, `  status   ${run.status}`, `  attempts ${run.attempts}`];
  if (run.result !== undefined) lines.push(`  result   ${JSON.stringify(run.result)}`);
  if (run.error) lines.push(`  error    ${run.error.code}: ${run.error.message}`);
  return lines;
}

export function runCommand(client: () => ApiClient): Command {
  const run = new Command('run').description('start and inspect runs');
  run
    .command('start')
    .description('start a run of BOT (the latest published version unless --version)')
    .argument('<bot>', 'bot name')
    .option('--input <file>', 'JSON file with the run input')
    .option('--version <version>', 'bot version')
    .option('--segment <segment>', 'segment to run in (default: the first the bot declares)')
    .option('--idempotency-key <key>', 'starting again with the same key returns the same run')
    .option('--wait', 'wait until the run ends; exit non-zero unless it succeeded')
    .option('--timeout <seconds>', 'with --wait: give up after this long', '300')
    .option('--json', 'machine-readable output')
    .action(async (bot: string, opts: { input?: string; version?: string; segment?: string; idempotencyKey?: string; wait?: boolean; timeout: string; json?: boolean }) => {
      const input = readJsonInput(opts.input);
      const api = client();
      let view = await api.request('POST', '/v1/runs', RunView, {
        bot, input, ...(opts.version ? { version: opts.version } : {}), ...(opts.segment ? { segment: opts.segment } : {}), ...(opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {}),
      });
      if (opts.wait) {
        const deadline = Date.now() + Number(opts.timeout) * 1000;
        while (!isTerminal(view.status) && view.status !== 'dead_lettered' && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
          view = await api.request('GET', `/v1/runs/${view.id}`, RunView);
        }
      }
      output(opts.json, view, describe(view));
      if (opts.wait && view.status !== 'succeeded') process.exitCode = 1;
    });
  run
    .command('show')
    .description('show a run: status, attempts, result or error')
    .argument('<id>', 'run id')
    .option('--logs', 'also print the run log (redacted)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { logs?: boolean; json?: boolean }) => {
      const api = client();
      const view = await api.request('GET', `/v1/runs/${encodeURIComponent(id)}`, RunView);
      const logs = opts.logs ? (await api.request('GET', `/v1/runs/${encodeURIComponent(id)}/logs`, RunLogsView)).lines : undefined;
      output(opts.json, logs ? { ...view, logs } : view, [...describe(view), ...(logs ?? []).map((l) => `  ${l.at} ${l.level.padEnd(5)} ${l.source.padEnd(7)} ${l.msg}`)]);
    });
  run
    .command('cancel')
    .description('cancel a waiting or active run (an active bot is aborted)')
    .argument('<id>', 'run id')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const result = await client().request('POST', `/v1/runs/${encodeURIComponent(id)}/cancel`, z.object({ runId: z.string(), status: z.literal('cancelled'), previous: z.string(), jobRemoved: z.boolean() }));
      output(opts.json, result, `cancelled ${result.runId} (was ${result.previous})`);
    });
  return run;
}
