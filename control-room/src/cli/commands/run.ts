import { Command } from 'commander';
import { z } from 'zod';
import { isTerminal, OrderlyError, RunLogsView, RunView } from '@orderly/shared';
import { ApiClient } from '../api-client';
import { readJsonInput } from '../input';
import { output } from '../output';

/** The input and result of a run: a PHI read, asked with a reason and audited. */
const RunResultView = z.object({ runId: z.string(), status: z.string(), input: z.unknown(), result: z.unknown() });
const reasonHeader = (reason: string) => ({ 'x-orderly-reason': reason });

function describe(run: RunView): string[] {
  const lines = [
    `run ${run.id}`,
    `  bot      ${run.bot}@${run.version} (${run.digest.slice(0, 19)}…)`,
    `  segment  ${run.segment}`,
    `  status   ${run.status}`,
    `  attempts ${run.attempts}`,
  ];
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
    .option('--reason <text>', 'with --wait: also show the result, a PHI read recorded with this reason')
    .option('--json', 'machine-readable output')
    .action(
      async (
        bot: string,
        opts: { input?: string; version?: string; segment?: string; idempotencyKey?: string; wait?: boolean; timeout: string; reason?: string; json?: boolean },
      ) => {
        const input = readJsonInput(opts.input);
        const api = client();
        let view = await api.request('POST', '/v1/runs', RunView, {
          bot,
          input,
          ...(opts.version ? { version: opts.version } : {}),
          ...(opts.segment ? { segment: opts.segment } : {}),
          ...(opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {}),
        });
        if (opts.wait) {
          const deadline = Date.now() + Number(opts.timeout) * 1000;
          while (!isTerminal(view.status) && view.status !== 'dead_lettered' && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 200));
            view = await api.request('GET', `/v1/runs/${view.id}`, RunView);
          }
          if (opts.reason !== undefined && isTerminal(view.status))
            view = { ...view, result: (await api.request('GET', `/v1/runs/${view.id}/result`, RunResultView, undefined, reasonHeader(opts.reason))).result };
        }
        output(opts.json, view, describe(view));
        if (opts.wait && view.status !== 'succeeded') process.exitCode = 1;
      },
    );
  run
    .command('show')
    .description('show a run: status, attempts and error; with --reason also its result (and --logs its log)')
    .argument('<id>', 'run id')
    .option('--logs', 'also print the run log (redacted; needs --reason)')
    .option('--reason <text>', "why you read the run's result and logs (PHI): recorded in the audit log")
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { logs?: boolean; reason?: string; json?: boolean }) => {
      const api = client();
      let view = await api.request('GET', `/v1/runs/${encodeURIComponent(id)}`, RunView);
      // Without a reason the control room answers ORDERLY_E_REASON_REQUIRED: say so before asking.
      if (opts.logs && opts.reason === undefined) throw new OrderlyError('ORDERLY_E_REASON_REQUIRED', "reading a run's logs needs --reason");
      if (opts.reason !== undefined)
        view = {
          ...view,
          result: (await api.request('GET', `/v1/runs/${encodeURIComponent(id)}/result`, RunResultView, undefined, reasonHeader(opts.reason))).result,
        };
      const logs =
        opts.logs && opts.reason !== undefined
          ? (await api.request('GET', `/v1/runs/${encodeURIComponent(id)}/logs`, RunLogsView, undefined, reasonHeader(opts.reason))).lines
          : undefined;
      output(opts.json, logs ? { ...view, logs } : view, [
        ...describe(view),
        ...(logs ?? []).map((l) => `  ${l.at} ${l.level.padEnd(5)} ${l.source.padEnd(7)} ${l.msg}`),
      ]);
    });
  run
    .command('cancel')
    .description('cancel a waiting or active run (an active bot is aborted)')
    .argument('<id>', 'run id')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const result = await client().request(
        'POST',
        `/v1/runs/${encodeURIComponent(id)}/cancel`,
        z.object({ runId: z.string(), status: z.literal('cancelled'), previous: z.string(), jobRemoved: z.boolean() }),
      );
      output(opts.json, result, `cancelled ${result.runId} (was ${result.previous})`);
    });
  return run;
}
